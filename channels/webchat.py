"""Web chat over socket.io, speaking the rasa-webchat widget's protocol.

Client -> server: `session_request {session_id, replay?}`, `user_uttered {message, session_id,
customData, title?}`, and (our own widget) `history_request {session_id}`.
Server -> client: `session_confirm <session_id>`, `bot_uttered {text, quick_replies, attachment,
metadata}`, `history {messages}`, `error_message {text}`, `typing_on {sender_name, sender,
seconds?}` / `typing_off {}`, and `turn_done {message_id}` after the last reply of a message's
turn (widgets ignore what they have no handler for: socket.io drops such events).
A client that asks for an acknowledgement of `user_uttered` gets `{message_id}`: the id the
message was stored under, which its `turn_done` carries (the tests wait for it).
A browser's session id maps to one conversation, so a reload or a restart of any process
continues the same conversation.

What the published rasa-webchat widget (1.0.1) needs, and our own widget (channels/static/) copes with:
- Notices (a refusal: too long, empty, not text; "kept, the answer comes", "send it again")
  go out as `error_message` (our widget shows those) and as a `bot_uttered` with
  `metadata.notice: true` (rasa-webchat knows no `error_message`); our widget skips the copy.
- Every `bot_uttered` carries `metadata.sender_name` (the agent's first name for an agent's
  message, the shop's name otherwise) and `metadata.sender` ("agent" or "bot").
- rasa-webchat renders a reply's text as Markdown, where a single line break is a space: every
  line break goes out as a hard break (two spaces before it), which our widget takes off again.
- rasa-webchat keeps the conversation in the browser's storage and asks for nothing on return,
  so what was sent to a conversation's web chats is kept (`SentLog`: the last LOG_LENGTH
  messages, LOG_SECONDS): a socket's session that leaves notes how far the conversation was, and
  on its next `session_request` gets what came after (`metadata.replayed: true`). Our widget asks
  for the whole history instead (`replay: false`). Only while no other socket of that session is
  open in this process (its tabs share the browser's storage); a gateway that crashed notes
  nothing, so nothing is replayed then (never a message twice).
- A button pressed in rasa-webchat sends only its payload (`/greet`): the transcript and the
  desk get the title of the button with that payload the conversation was last offered (our
  widget also sends the title, which picks among buttons sharing a payload); the payload still
  goes to Rasa.

Redis keys (under KEY_PREFIX `<p>`), all expiring after LOG_SECONDS:
  <p>:webchat:seq:<conversation>   how many messages the conversation's web chats were sent
  <p>:webchat:log:<conversation>   list of "<seq> <bot_uttered JSON>", the last LOG_LENGTH
  <p>:webchat:left:<session id>    "<conversation> <seq>": where the session's last socket left

With an inbox (bot/pipeline/inbox.py, always in the gateway) every `user_uttered` gets a message id and is
stored before anything else happens; the turn runs from the inbox and its replies go to the
browser's sockets (room `session:<session id>`, and the conversation's room for `bot_uttered`).
When the message cannot be stored, the visitor gets an `error_message` to send it again.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import uuid
from typing import TYPE_CHECKING, Any

import socketio
from aiohttp import web
from redis.exceptions import RedisError

from bot.delivery import queue as delivery
from bot.gateway.keys import SETTINGS, SOCKETIO, WEB_CHAT
from bot.gateway.socketio_redis import JsonRedisManager
from bot.pipeline.rasa_client import RasaUnavailable
from bot.pipeline.types import BotMessage, Inbound
from bot.policy.identity import client_ref, verify_web_login
from bot.policy.rules import policy
from bot.shared import language
from bot.shared.forwarded import client_address
from bot.shared.safe_input import clean_token
from bot.texts import messages
from channels.base import Capabilities, Channel, ChannelAdapter, ChannelContext, DeliveryError
from channels.socketio_guard import OriginPolicy, WebChatServer, install_log_filter

if TYPE_CHECKING:
    from bot.pipeline.service import ConversationService

log = logging.getLogger(__name__)

CHANNEL = "webchat"
_SESSION_ID = re.compile(r"[A-Za-z0-9_-]{16,64}")  # fullmatch: "$" would let a final newline in
LOG_LENGTH = 50                  # messages per conversation kept for a browser that was away
LOG_SECONDS = 7 * 24 * 3600      # how long they are kept
AGENT_TYPING_SECONDS = 6         # an agent's typing dots go out unless the desk says again
MAX_TITLE = 200                  # characters of a button title a widget may send
KEEP_TIMEOUT = 1.0               # seconds keeping a message for a browser's return may take


def hard_breaks(text: str) -> str:
    """Line breaks that survive Markdown (rasa-webchat): two spaces before each."""
    if "\n" not in text:
        return text
    return "  \n".join(line.rstrip(" ") for line in text.split("\n"))


def _first_name(name: str | None) -> str:
    return (name or "").split()[0] if (name or "").strip() else ""


def render(message: BotMessage) -> dict[str, Any]:
    """A bot message as rasa-webchat's `bot_uttered` payload (buttons become quick replies)."""
    data: dict[str, Any] = {}
    if message.text:
        data["text"] = hard_breaks(message.text)
    if message.buttons:
        data["quick_replies"] = [
            {"content_type": "text", "title": b.title, "payload": b.payload} for b in message.buttons
        ]
    if message.image:
        data["attachment"] = {"type": "image", "payload": {"src": message.image}}
    agent = _first_name(message.agent_name)
    data["metadata"] = {"sender": "agent" if agent else "bot", "sender_name": agent or policy().brand}
    return data


def notice(text: str) -> dict[str, Any]:
    """A notice from the gateway as a `bot_uttered` (for rasa-webchat; our widget shows `error_message`)."""
    return {"text": hard_breaks(text), "metadata": {"notice": True, "sender": "bot", "sender_name": policy().brand}}


class SentLog:
    """What was sent to each conversation's web chats, for a browser that was away (see the module)."""

    _ADD = """
    local seq = redis.call('INCR', KEYS[1])
    redis.call('EXPIRE', KEYS[1], ARGV[3])
    redis.call('RPUSH', KEYS[2], seq .. ' ' .. ARGV[1])
    redis.call('LTRIM', KEYS[2], -tonumber(ARGV[2]), -1)
    redis.call('EXPIRE', KEYS[2], ARGV[3])
    return seq
    """

    def __init__(self, redis: Any, prefix: str, length: int = LOG_LENGTH, seconds: int = LOG_SECONDS) -> None:
        self.redis = redis
        self.prefix = prefix
        self.length = length
        self.seconds = seconds
        self._add = redis.register_script(self._ADD)

    def _k(self, *parts: str) -> str:
        return ":".join((self.prefix, "webchat", *parts))

    async def add(self, conversation: str, data: dict[str, Any]) -> int:
        """Keep one `bot_uttered` sent to the conversation; its number in the conversation."""
        return int(await self._add(keys=[self._k("seq", conversation), self._k("log", conversation)],
                                   args=[json.dumps(data, ensure_ascii=False), self.length, self.seconds]))

    async def left(self, session_id: str, conversation: str) -> None:
        """The session's last socket left: note how far the conversation was."""
        seq = int(await self.redis.get(self._k("seq", conversation)) or 0)
        await self.redis.set(self._k("left", session_id), f"{conversation} {seq}", ex=self.seconds)

    async def still_open(self, session_id: str) -> None:
        """Another socket of the session is still open (and sees everything): nothing to note."""
        await self.redis.delete(self._k("left", session_id))

    async def missed(self, session_id: str, conversation: str) -> list[dict[str, Any]]:
        """What the session's conversation was sent after its last socket left (once)."""
        noted = await self.redis.getdel(self._k("left", session_id))
        if not noted:
            return []
        where, _, seq = noted.partition(" ")
        if where != conversation or not seq.isdigit():  # joined or started afresh since: not for it
            return []
        out = []
        for entry in await self.redis.lrange(self._k("log", conversation), 0, -1):
            number, _, raw = entry.partition(" ")
            if number.isdigit() and int(number) > int(seq):
                try:
                    out.append(json.loads(raw))
                except ValueError:
                    continue
        return out


def _hint(data: dict[str, Any]) -> str | None:
    custom = data.get("customData")
    if isinstance(custom, dict):
        lang = str(custom.get("language") or "")[:2].lower()
        if lang in language.SUPPORTED:
            return lang
    return None


class WebChat:
    def __init__(self, sio: socketio.AsyncServer, service: ConversationService, identity_secret: str = "",
                 trusted_proxies: tuple = (), sent: SentLog | None = None) -> None:
        self.sio = sio
        self.trusted_proxies = trusted_proxies  # X-Forwarded-For believed only from these (bot.shared.forwarded)
        self.service = service
        self.identity_secret = identity_secret
        self.sent = sent  # what was sent to each conversation, for browsers that were away
        self.inbox: Any = None  # bot.pipeline.inbox.Inbox, see `use`
        sio.on("session_request", self.session_request)
        sio.on("user_uttered", self.user_uttered)
        sio.on("history_request", self.history_request)
        sio.on("disconnect", self.disconnected)
        sio.on("*", self.unknown_event)

    def use(self, inbox: Any) -> None:
        """Take every message through the inbox (durable first, processed from there)."""
        self.inbox = inbox
        inbox.register(CHANNEL, self.process_stored, self.notify_session)

    async def _emit_to(self, room: str, event: str, data: dict[str, Any]) -> None:
        """To a room in every gateway process. The manager hands it to this process's sockets
        before it publishes to Redis, so they get it even while Redis is away."""
        await self.sio.emit(event, data, room=room)

    async def _notice(self, text: str, *, room: str | None = None, to: str | None = None) -> None:
        """A notice from the gateway: `error_message` for our widget, a `bot_uttered` for rasa-webchat."""
        where = {"room": room} if room else {"to": to}
        await self.sio.emit("error_message", {"text": text}, **where)
        await self.sio.emit("bot_uttered", notice(text), **where)

    async def notify_session(self, session_id: str, payload: dict[str, Any], text: str, lang: str) -> None:
        await self._notice(text, room=_session_room(session_id))

    async def _clicked(self, conversation: str, text: Any, title: Any) -> str | None:
        """The title of the button the conversation was last offered with this payload (what the
        customer saw themselves send); None when it is no such payload."""
        if not isinstance(text, str) or not text.strip():
            return None
        try:
            offered = await self.service.store.last_buttons(conversation, CHANNEL)
        except (RedisError, OSError) as exc:
            log.warning("webchat: buttons of %s not read: %s", conversation, type(exc).__name__)
            return None
        same = [b for b in offered if b.get("payload") == text.strip() and b.get("title")]
        chosen = next((b for b in same if b["title"] == title), same[0] if same else None)
        return chosen["title"] if chosen and chosen["title"] != text.strip() else None

    async def process_stored(self, payload: dict[str, Any]) -> None:
        """One stored web chat message: the turn, then its replies to the browser. While it runs
        the browser shows that the bot is typing (`typing_on`, then `typing_off` before
        `turn_done`, or alone when the turn has to wait), unless people have the conversation:
        then nobody is typing until an agent does."""
        session_id = payload["session_id"]
        room = _session_room(session_id)
        before = await self.service.conversation_for(CHANNEL, session_id)
        typing = await self.service.handoffs.state(before) not in ("waiting", "with_agent")
        if typing:
            await self._emit_to(room, "typing_on", {"sender": "bot", "sender_name": policy().brand})
        try:
            shown = await self._clicked(before, payload.get("text"), payload.get("title"))
            with delivery.collect() as turn:  # the transcript rows of the replies, marked when sent
                outcome = await self.service.handle(Inbound(
                    CHANNEL, session_id, payload.get("text"), language_hint=payload.get("language_hint"),
                    message_id=payload.get("message_id"), client=payload.get("client"), shown=shown,
                ))
            await self._reply(payload, room, turn, outcome, typing)
        except BaseException:
            if typing:  # the turn waits (Rasa away) or failed: nobody is typing now
                await self._emit_to(room, "typing_off", {})
            raise

    async def _reply(self, payload: dict[str, Any], room: str, turn: Any, outcome: Any, typing: bool) -> None:
        conversation = outcome.conversation
        for sid, _ in list(self.sio.manager.get_participants("/", room)):
            # identified in the chat: this browser now belongs to the customer's conversation
            session = await self.sio.get_session(sid)
            if conversation and session.get("conversation") != conversation:
                if session.get("conversation"):
                    await self.sio.leave_room(sid, session["conversation"])
                await self.sio.enter_room(sid, conversation)
                await self.sio.save_session(sid, {**session, "conversation": conversation})
        batch: list[BotMessage] = []

        async def deliver() -> None:  # the one outbound path (bot/delivery/outbound.py), in order
            if batch:
                outbound = self.service.outbound
                future = outbound.submit(CHANNEL, conversation or room, list(batch),
                                         rows=turn.rows_for(batch, CHANNEL), conversation=conversation or None,
                                         what="web chat reply")
                await outbound.delivery.wait(future)
                batch.clear()

        for reply in outcome.replies:
            if reply.is_error:  # to this browser only, not the conversation's other chats
                await deliver()
                await self._notice(reply.text, room=room)
            else:
                batch.append(reply)
        await deliver()
        if typing:
            await self._emit_to(room, "typing_off", {})
        # after the replies, to the same sockets: a client knows no more replies to this message come
        await self._emit_to(room, "turn_done", {"message_id": payload.get("message_id")})

    async def _notify(self, sid: str, key: str, lang: str, **values: object) -> None:
        await self._notice(messages.text(key, lang, **values), to=sid)

    async def session_request(self, sid: str, data: Any = None, *_: Any) -> None:
        requested = data.get("session_id") if isinstance(data, dict) else None
        session_id = requested if isinstance(requested, str) and _SESSION_ID.fullmatch(requested) else uuid.uuid4().hex
        conversation = await self.service.conversation_for(CHANNEL, session_id)
        await self.sio.save_session(sid, {"session_id": session_id, "conversation": conversation})
        await self.sio.enter_room(sid, conversation)
        await self.sio.enter_room(sid, _session_room(session_id))
        await self.sio.emit("session_confirm", session_id, to=sid)
        # what this browser missed while it was away (rasa-webchat; our widget asks for its history)
        wants = not (isinstance(data, dict) and data.get("replay") is False)
        missed = await self._missed(session_id, conversation) if self.sent is not None else []
        for data_ in missed if wants else []:
            meta = data_.get("metadata") if isinstance(data_.get("metadata"), dict) else {}
            await self.sio.emit("bot_uttered", {**data_, "metadata": {**meta, "replayed": True}}, to=sid)

    async def _missed(self, session_id: str, conversation: str) -> list[dict[str, Any]]:
        try:
            return await self.sent.missed(session_id, conversation)
        except (RedisError, OSError) as exc:
            log.warning("webchat: missed messages not read: %s", type(exc).__name__)
            return []

    async def disconnected(self, sid: str, *_: Any) -> None:
        """A socket left: its session notes how far its conversation was, unless another of its
        sockets is still open here."""
        if self.sent is None:
            return
        try:
            session = await self.sio.get_session(sid)
        except KeyError:
            return
        session_id, conversation = session.get("session_id"), session.get("conversation")
        if not (session_id and conversation):
            return
        others = [s for s, _ in self.sio.manager.get_participants("/", _session_room(session_id)) if s != sid]
        try:
            if others:
                await self.sent.still_open(session_id)
            else:
                await self.sent.left(session_id, conversation)
        except (RedisError, OSError) as exc:
            log.warning("webchat: where a session left not noted: %s", type(exc).__name__)

    async def agent_typing(self, conversation: str, agent_name: str) -> None:
        """An agent is typing in the desk: the conversation's web chats show it for a few seconds."""
        await self._emit_to(conversation, "typing_on", {
            "sender": "agent", "sender_name": _first_name(agent_name) or policy().brand,
            "seconds": AGENT_TYPING_SECONDS})

    async def _conversation(self, sid: str) -> tuple[str, str] | None:
        session = await self.sio.get_session(sid)
        if session.get("conversation"):
            return session["session_id"], session["conversation"]
        return None

    async def history_request(self, sid: str, data: Any = None, *_: Any) -> None:
        known = await self._conversation(sid)
        if not known:
            await self._notify(sid, "bad_request", language.DEFAULT_LANGUAGE)
            return
        # Only the socket holding this session's id asks, and only for the conversation the session
        # may see now: a customer's joined conversation only while the session is verified for them.
        conversation = await self._current(sid, *known)
        entries = await self.service.history(conversation)
        out = []
        for entry in entries:
            sender = "user" if entry["sender"] == "customer" else entry["sender"]
            item: dict[str, Any] = {"sender": sender, "text": entry.get("text", "")}
            if sender != "user":
                item["sender_name"] = _first_name(entry.get("agent_name")) or policy().brand
            if entry.get("buttons"):
                item["quick_replies"] = [
                    {"content_type": "text", "title": b["title"], "payload": b["payload"]}
                    for b in entry["buttons"]
                ]
            out.append(item)
        await self.sio.emit("history", {"messages": out}, to=sid)

    async def _current(self, sid: str, session_id: str, conversation: str) -> str:
        """The session's conversation as of now (its verification may have lapsed since connecting)."""
        current = await self.service.conversation_for(CHANNEL, session_id)
        if current != conversation:
            await self.sio.leave_room(sid, conversation)
            await self.sio.enter_room(sid, current)
            await self.sio.save_session(sid, {"session_id": session_id, "conversation": current})
        return current

    async def user_uttered(self, sid: str, data: Any = None, *_: Any) -> dict[str, Any] | None:
        """A visitor's message. Its acknowledgement (when the client asks for one) is the message
        id it was stored under, or None when nothing was stored."""
        if isinstance(data, dict) and "message" not in data and data and set(data) <= {"session_id", "customData"}:
            return None  # rasa-webchat opened without an `initPayload`: nothing said yet, nothing to answer
        if not isinstance(data, dict) or "message" not in data:
            log.info("webchat %s: malformed user_uttered (%s)", sid, type(data).__name__)
            await self._notify(sid, "bad_request", language.DEFAULT_LANGUAGE)
            return
        known = await self._conversation(sid)
        if not known:
            # rasa-webchat may send before session_confirm arrives; use the id it carries.
            await self.session_request(sid, {"session_id": data.get("session_id")})
            known = await self._conversation(sid)
        session_id, conversation = known
        # always through the inbox (bot/pipeline/inbox.py): stored first, answered from there
        return {"message_id": await self._store(sid, session_id, conversation, data)}

    def _client(self, sid: str) -> str | None:
        """A one-way reference of the visitor's IP address (for rate limits only)."""
        request = (self.sio.get_environ(sid) or {}).get("aiohttp.request")  # engine.io's REMOTE_ADDR is always 127.0.0.1
        if request is None:
            return None
        return client_ref(client_address(request, self.trusted_proxies))
    async def _store(self, sid: str, session_id: str, conversation: str, data: dict[str, Any]) -> str | None:
        """Store the message in the inbox; its id, or None when it could not be stored."""
        from bot.pipeline.inbox import Stored

        try:
            await self._signed_login(sid, session_id, conversation, data.get("customData"))
        except Exception as exc:  # Redis or the database down: the message itself still counts
            log.warning("webchat %s: signed login not checked now: %s", sid, type(exc).__name__)
        text, hint = data.get("message"), _hint(data)
        if not isinstance(text, (str, type(None))):
            text = None  # binary or structured: not text (the service says so); stored as nothing
        message_id = uuid.uuid4().hex  # web chat messages have no id of their own: one at receipt
        title = data.get("title")  # our widget: the title of the button pressed (rasa-webchat sends none)
        title = title[:MAX_TITLE] if isinstance(title, str) and title.strip() else None
        stored = await self.inbox.store(CHANNEL, message_id, session_id, {
            "session_id": session_id, "text": text, "language_hint": hint, "message_id": message_id,
            "client": self._client(sid), **({"title": title} if title else {})})
        if stored is Stored.FAILED:
            lang = language.choose(text, hint or language.DEFAULT_LANGUAGE) if isinstance(text, str) and text.strip() \
                else (hint or language.DEFAULT_LANGUAGE)
            await self._notify(sid, "inbox_not_received", lang)
            return None
        return message_id

    async def _signed_login(self, sid: str, session_id: str, conversation: str, custom: Any) -> str:
        """customData {user_id, user_hash}: the business's site vouches for this visitor."""
        if not (self.identity_secret and isinstance(custom, dict) and custom.get("user_id")):
            return conversation
        user_id = custom.get("user_id")  # a site may pass a number; anything else but text is no login
        user_id = str(user_id) if isinstance(user_id, int) and not isinstance(user_id, bool) else user_id
        if not verify_web_login(self.identity_secret, user_id, custom.get("user_hash")):
            log.info("webchat %s: identity hash does not match", sid)
            return conversation
        try:
            joined = await self.service.verified_login(CHANNEL, session_id, user_id)
        except RasaUnavailable:
            return conversation
        if joined and joined != conversation:
            await self.sio.leave_room(sid, conversation)
            await self.sio.enter_room(sid, joined)
            await self.sio.save_session(sid, {"session_id": session_id, "conversation": joined})
            return joined
        return conversation

    async def unknown_event(self, event: str, sid: str, *_: Any) -> None:
        name = event[:64] if clean_token(event, 64) else "?"  # shown and logged: no control characters
        log.info("webchat %s: unknown event %r", sid, name)
        await self._notify(sid, "unknown_event", language.DEFAULT_LANGUAGE, event=name)


def _session_room(session_id: str) -> str:
    return f"session:{session_id}"


# -- the adapter (channels/registry.py) -----------------------------------------------------------

WEBCHAT = Channel(
    CHANNEL, {"nl": "de chat op de website", "en": "the chat on our website"},
    # a session id proves nothing (a signed web login does: WEBCHAT_IDENTITY_SECRET)
    Capabilities(identifies_sender=False),
    address_field=None,               # we cannot write first to someone who closed the chat
    identity_field="web_login_id",    # the business's site login (signed, `_signed_login`)
)


class WebChatSender:
    """Messages to every open web chat of a conversation (the address is the conversation key),
    in any gateway process. Raises DeliveryError when socket.io could not take them."""

    name = CHANNEL

    def __init__(self, sio: socketio.AsyncServer, sent: SentLog | None = None) -> None:
        self.sio = sio
        self.sent = sent

    async def send(self, address: str, messages: list[BotMessage], *, proactive: bool = False) -> None:
        for done, message in enumerate(messages):
            data = render(message)
            if self.sent is not None:  # kept first: a browser leaving now gets it on return
                try:
                    async with asyncio.timeout(KEEP_TIMEOUT):  # Redis slow or away: deliver all the same
                        await self.sent.add(address, data)
                except (RedisError, OSError, TimeoutError) as exc:
                    log.warning("webchat: message for %s not kept for its return: %s", address, type(exc).__name__)
            try:
                await self.sio.emit("bot_uttered", data, room=address)
            except (RedisError, OSError, ValueError) as exc:
                raise DeliveryError(f"webchat: {type(exc).__name__}", delivered=done) from exc


class WebChatAdapter(ChannelAdapter):
    """The web chat widget over socket.io (GET/POST /socket.io/). Always on; a signed web login
    needs WEBCHAT_IDENTITY_SECRET."""

    channels = (WEBCHAT,)

    def __init__(self, chat: WebChat) -> None:
        self.chat = chat
        self.sender = WebChatSender(chat.sio, chat.sent)

    @classmethod
    def enabled(cls, settings) -> bool:
        return True

    @classmethod
    def summary(cls, settings) -> list[str]:
        return ["web chat: on"]

    @classmethod
    def add_routes(cls, app: web.Application) -> None:
        settings = app[SETTINGS]
        install_log_filter()  # a malformed socket.io packet: one log line per connection, no traceback
        sio = WebChatServer(
            async_mode="aiohttp",
            origin_policy=OriginPolicy.from_settings(settings),  # WEBCHAT_ORIGINS and our own origin
            max_http_buffer_size=64 * 1024,
            # JSON on the pub/sub channel, never pickle (bot/gateway/socketio_redis.py)
            client_manager=JsonRedisManager(settings.redis_url, channel=f"{settings.key_prefix}:socketio"),
        )
        sio.attach(app)
        app[SOCKETIO] = sio

    @classmethod
    async def start(cls, context: ChannelContext) -> "WebChatAdapter":
        settings = context.settings
        chat = WebChat(context.app[SOCKETIO], context.service, settings.webchat_identity_secret,
                       trusted_proxies=settings.trusted_proxies, sent=SentLog(context.redis, settings.key_prefix))
        context.app[WEB_CHAT] = chat  # the desk tells it when an agent types
        return cls(chat)

    def senders(self) -> dict:
        return {CHANNEL: self.sender}  # the one outbound path (bot/delivery/outbound.py)

    def use(self, inbox) -> None:
        self.chat.use(inbox)
