"""Web chat over socket.io, speaking the rasa-webchat widget's protocol.

Client -> server: `session_request {session_id}`, `user_uttered {message, session_id, customData}`,
and (our own widget) `history_request {session_id}`.
Server -> client: `session_confirm <session_id>`, `bot_uttered {text, quick_replies, attachment}`,
`history {messages}`, `error_message {text}`, and `turn_done {message_id}` after the last reply of a
message's turn (widgets ignore it: socket.io clients drop events they have no handler for).
A client that asks for an acknowledgement of `user_uttered` gets `{message_id}`: the id the
message was stored under, which its `turn_done` carries (the tests wait for it).
A browser's session id maps to one conversation, so a reload or a restart of any process
continues the same conversation.

With an inbox (bot/pipeline/inbox.py, always in the gateway) every `user_uttered` gets a message id and is
stored before anything else happens; the turn runs from the inbox and its replies go to the
browser's sockets (room `session:<session id>`, and the conversation's room for `bot_uttered`).
When the message cannot be stored, the visitor gets an `error_message` to send it again.
"""

from __future__ import annotations

import logging
import re
import uuid
from typing import TYPE_CHECKING, Any

import socketio
from aiohttp import web
from redis.exceptions import RedisError

from bot.delivery import queue as delivery
from bot.gateway.keys import SETTINGS, SOCKETIO
from bot.gateway.socketio_redis import JsonRedisManager
from bot.pipeline.rasa_client import RasaUnavailable
from bot.pipeline.types import BotMessage, Inbound
from bot.policy.identity import client_ref, verify_web_login
from bot.shared import language
from bot.shared.forwarded import client_address
from bot.shared.safe_input import clean_token
from bot.texts import messages
from channels.base import Capabilities, Channel, ChannelAdapter, ChannelContext, DeliveryError
from channels.socketio_guard import WebChatServer, install_log_filter

if TYPE_CHECKING:
    from bot.pipeline.service import ConversationService

log = logging.getLogger(__name__)

CHANNEL = "webchat"
_SESSION_ID = re.compile(r"[A-Za-z0-9_-]{16,64}")  # fullmatch: "$" would let a final newline in


def render(message: BotMessage) -> dict[str, Any]:
    """A bot message as rasa-webchat's `bot_uttered` payload (buttons become quick replies)."""
    data: dict[str, Any] = {}
    if message.text:
        data["text"] = message.text
    if message.buttons:
        data["quick_replies"] = [
            {"content_type": "text", "title": b.title, "payload": b.payload} for b in message.buttons
        ]
    if message.image:
        data["attachment"] = {"type": "image", "payload": {"src": message.image}}
    return data


def _hint(data: dict[str, Any]) -> str | None:
    custom = data.get("customData")
    if isinstance(custom, dict):
        lang = str(custom.get("language") or "")[:2].lower()
        if lang in language.SUPPORTED:
            return lang
    return None


class WebChat:
    def __init__(self, sio: socketio.AsyncServer, service: ConversationService, identity_secret: str = "",
                 trusted_proxies: tuple = ()) -> None:
        self.sio = sio
        self.trusted_proxies = trusted_proxies  # X-Forwarded-For believed only from these (bot.shared.forwarded)
        self.service = service
        self.identity_secret = identity_secret
        self.inbox: Any = None  # bot.pipeline.inbox.Inbox, see `use`
        sio.on("session_request", self.session_request)
        sio.on("user_uttered", self.user_uttered)
        sio.on("history_request", self.history_request)
        sio.on("*", self.unknown_event)

    def use(self, inbox: Any) -> None:
        """Take every message through the inbox (durable first, processed from there)."""
        self.inbox = inbox
        inbox.register(CHANNEL, self.process_stored, self.notify_session)

    async def _emit_to(self, room: str, event: str, data: dict[str, Any]) -> None:
        """To a room in every gateway process. The manager hands it to this process's sockets
        before it publishes to Redis, so they get it even while Redis is away."""
        await self.sio.emit(event, data, room=room)

    async def notify_session(self, session_id: str, payload: dict[str, Any], text: str, lang: str) -> None:
        await self._emit_to(_session_room(session_id), "error_message", {"text": text})

    async def process_stored(self, payload: dict[str, Any]) -> None:
        """One stored web chat message: the turn, then its replies to the browser."""
        session_id = payload["session_id"]
        with delivery.collect() as turn:  # the transcript rows of the replies, marked when sent
            outcome = await self.service.handle(Inbound(
                CHANNEL, session_id, payload.get("text"), language_hint=payload.get("language_hint"),
                message_id=payload.get("message_id"), client=payload.get("client"),
            ))
        room = _session_room(session_id)
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
                await self._emit_to(room, "error_message", {"text": reply.text})
            else:
                batch.append(reply)
        await deliver()
        # after the replies, to the same sockets: a client knows no more replies to this message come
        await self._emit_to(room, "turn_done", {"message_id": payload.get("message_id")})

    async def _notify(self, sid: str, key: str, lang: str, **values: object) -> None:
        await self.sio.emit("error_message", {"text": messages.text(key, lang, **values)}, to=sid)

    async def session_request(self, sid: str, data: Any = None, *_: Any) -> None:
        requested = data.get("session_id") if isinstance(data, dict) else None
        session_id = requested if isinstance(requested, str) and _SESSION_ID.fullmatch(requested) else uuid.uuid4().hex
        conversation = await self.service.conversation_for(CHANNEL, session_id)
        await self.sio.save_session(sid, {"session_id": session_id, "conversation": conversation})
        await self.sio.enter_room(sid, conversation)
        await self.sio.enter_room(sid, _session_room(session_id))
        await self.sio.emit("session_confirm", session_id, to=sid)

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
        stored = await self.inbox.store(CHANNEL, message_id, session_id, {
            "session_id": session_id, "text": text, "language_hint": hint, "message_id": message_id,
            "client": self._client(sid)})
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

    def __init__(self, sio: socketio.AsyncServer) -> None:
        self.sio = sio

    async def send(self, address: str, messages: list[BotMessage], *, proactive: bool = False) -> None:
        for done, message in enumerate(messages):
            try:
                await self.sio.emit("bot_uttered", render(message), room=address)
            except (RedisError, OSError, ValueError) as exc:
                raise DeliveryError(f"webchat: {type(exc).__name__}", delivered=done) from exc


class WebChatAdapter(ChannelAdapter):
    """The web chat widget over socket.io (GET/POST /socket.io/). Always on; a signed web login
    needs WEBCHAT_IDENTITY_SECRET."""

    channels = (WEBCHAT,)

    def __init__(self, chat: WebChat) -> None:
        self.chat = chat
        self.sender = WebChatSender(chat.sio)

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
            cors_allowed_origins="*",
            max_http_buffer_size=64 * 1024,
            # JSON on the pub/sub channel, never pickle (bot/gateway/socketio_redis.py)
            client_manager=JsonRedisManager(settings.redis_url, channel=f"{settings.key_prefix}:socketio"),
        )
        sio.attach(app)
        app[SOCKETIO] = sio

    @classmethod
    async def start(cls, context: ChannelContext) -> "WebChatAdapter":
        settings = context.settings
        return cls(WebChat(context.app[SOCKETIO], context.service, settings.webchat_identity_secret,
                           trusted_proxies=settings.trusted_proxies))

    def senders(self) -> dict:
        return {CHANNEL: self.sender}  # the one outbound path (bot/delivery/outbound.py)

    def use(self, inbox) -> None:
        self.chat.use(inbox)
