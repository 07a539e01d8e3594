"""Telegram: a bot webhook (Bot API via python-telegram-bot) and a sender.

Inbound: Telegram POSTs each update to /webhooks/telegram with the secret given at setWebhook
in `X-Telegram-Bot-Api-Secret-Token`. The edge checks the secret (403), the size (413) and that
the body is an Update (400), answers 200 at once and handles the update in the background:

- a text (also an edited text: Telegram gives it its own update_id, so it is a new message)
  -> `Inbound(text=...)`; a customer is addressed by their Telegram user id, which is also the
  chat id of their private chat with the bot. Only private chats are served; anything from a
  group or channel is ignored, so customer data never ends up in a group.
- `/start <code>` (a t.me/<bot>?start=<code> link, or typed) -> `Inbound(link_code=...)`: a
  one-time code the customer got on another channel links this account to them.
- `/start` (the first message of every new chat) -> we reply ourselves with a short bilingual
  welcome and a reply keyboard with one "share my phone number" button, then hand the service a
  greeting ("hallo", or "hello" when Telegram says the app is in English: "hallo" alone would
  switch the conversation to Dutch) so the bot introduces itself. If the service reports the
  update as a duplicate (a webhook retry), nothing is sent at all.
- a shared contact -> `Inbound(text="", contact_phone="+31...")`, but only when the contact is
  the sender's own (Telegram then vouches for the number); someone else's contact is refused.
- an inline button press (callback query) -> the query is answered (stops the spinner) and the
  button's payload goes to the service as text.
- a photo, voice note, document, sticker, video, audio or animation -> `Inbound(text=caption or
  "", media=[file ids])`; a location, venue, poll or dice -> `Inbound(text=None)` (the service
  answers that it reads text only).
- anything else (channel posts, my_chat_member, polls, ...) is logged by type and answered 200
  without being parsed: PTB insists on the newest Bot API fields of every type, and an update we
  ignore anyway must not be refused (Telegram would retry it). Only updates carrying a message,
  an edited message or a callback query are refused (400) when PTB cannot parse them.
In the gateway a parsed update is first stored in the inbox (bot/pipeline/inbox.py, keyed on update_id)
and handled from there; when it cannot be stored the webhook answers 503 and Telegram sends it
again.

Outbound (`TelegramSender.send`): one Telegram message per BotMessage, buttons as an inline
keyboard (one button a row). Telegram limits callback data to 64 bytes: a longer payload (or
one that starts with our own "k:") is kept in Redis for 7 days and the button carries "k:<id>".
Telegram lets a bot write to anyone who started it, at any time, so proactive messages need no
template. Forbidden (the customer blocked the bot), BadRequest and a rejected token are final;
network errors, timeouts and flood control are retried (3 attempts) before DeliveryError.
A retried send can reach the customer twice when Telegram took it but the answer was lost.

Only ids are logged (update, user, chat): never message texts or phone numbers.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import re
import warnings
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import telegram
from aiohttp import web
from redis.asyncio import Redis
from redis.exceptions import RedisError
from telegram import (
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    ReplyKeyboardMarkup,
    Update,
)
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TelegramError
from telegram.request import HTTPXRequest

from bot.delivery import queue as delivery
from bot.gateway.keys import TELEGRAM
from bot.pipeline.types import BotMessage, Button, Inbound, Outcome
from bot.shared import language
from bot.shared.locks import KeyedLocks
from bot.shared.safe_input import clean_token, encodable, nesting_within
from bot.shared.settings import Settings
from bot.texts import messages
from channels.base import BackgroundTasks, Capabilities, Channel, ChannelAdapter, ChannelContext, DeliveryError

if TYPE_CHECKING:
    from bot.pipeline.service import ConversationService

log = logging.getLogger(__name__)

CHANNEL = "telegram"
WEBHOOK_PATH = "/webhooks/telegram"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
MAX_BODY = 1024 * 1024            # bytes of one webhook request
TEXT_LIMIT = 4096                 # Telegram: characters (UTF-16 code units) of one message
CAPTION_LIMIT = 1024              # Telegram: characters of a photo caption
CALLBACK_DATA_LIMIT = 64          # Telegram: bytes of a button's callback data
CALLBACK_PREFIX = "k:"            # callback data that is a key into Redis
CALLBACK_TTL = 7 * 24 * 3600      # how long a long button payload stays resolvable
SEND_ATTEMPTS = 3
BACKOFF = (0.5, 1.5)              # seconds before the 2nd and the 3rd attempt
MAX_RETRY_AFTER = 30.0            # flood control asking for a longer wait is not waited for
HANDLED_KINDS = frozenset({"message", "edited_message", "callback_query"})
MEDIA_KINDS = ("photo", "voice", "document", "sticker", "video", "video_note", "audio", "animation")
NON_TEXT_KINDS = ("location", "venue", "poll", "dice")
_E164 = re.compile(r"\+[1-9]\d{6,14}")             # fullmatch ("$" lets a final newline in)
_KIND = re.compile(r"[a-z_]{1,40}")
_CHAT_ID = re.compile(r"-?[1-9]\d{0,19}")
MAX_NESTING = 32                  # a real update nests about 8 deep
MAX_ID = 2**63 - 1                # Telegram's ids fit in a signed 64-bit integer

SCALE_ROW = 7  # score buttons per keyboard row at most: 1-7 in one row, 0-10 in two of 6 and 5


def text(key: str, lang: str) -> str:
    """What the Telegram adapter itself says (bot/texts/messages.py, keys telegram_*)."""
    return messages.text(f"telegram_{key}", lang)


def _utf16_len(value: str) -> int:
    return len(value.encode("utf-16-le")) // 2


def cut(value: str, limit: int = TEXT_LIMIT) -> str:
    """`value` within Telegram's limit (counted in UTF-16 code units, as Telegram does)."""
    if _utf16_len(value) <= limit:
        return value
    out, used = [], 0
    for ch in value:
        size = 2 if ord(ch) > 0xFFFF else 1
        if used + size > limit - 1:
            break
        out.append(ch)
        used += size
    return "".join(out).rstrip() + "…"


def e164(phone: str) -> str | None:
    """A Telegram contact's number ("31612345678", "+31 6 1234 5678") as E.164, or None."""
    digits = re.sub(r"[\s().-]", "", phone or "")
    if not digits.startswith("+"):
        digits = "+" + digits
    return digits if _E164.fullmatch(digits) else None


# -- the shape of an update ------------------------------------------------------------------
# PTB builds its objects from whatever JSON it gets (a text that is a number, an id that is a
# list), and the handling below would then fail in the background. The fields the adapter reads
# are checked first; a malformed update is refused (400) at the edge like one PTB cannot parse.

def _is_id(value: Any, low: int = -MAX_ID) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= MAX_ID


def _is_text(value: Any) -> bool:
    return isinstance(value, str) and encodable(value)


def _user_problem(user: Any) -> str | None:
    if not isinstance(user, dict):
        return "not an object"
    if not _is_id(user.get("id"), 1):
        return "id"
    if not isinstance(user.get("is_bot", False), bool):
        return "is_bot"
    if user.get("language_code") is not None and not isinstance(user["language_code"], str):
        return "language_code"
    return None


def _chat_problem(chat: Any) -> str | None:
    if not isinstance(chat, dict):
        return "not an object"
    if not _is_id(chat.get("id")):
        return "id"
    return None if isinstance(chat.get("type"), str) else "type"


def _message_problem(message: Any) -> str | None:
    if not isinstance(message, dict):
        return "not an object"
    if "from" in message and (problem := _user_problem(message["from"])):
        return f"from {problem}"
    if problem := _chat_problem(message.get("chat")):
        return f"chat {problem}"
    for name in ("text", "caption"):
        if message.get(name) is not None and not isinstance(message[name], str):
            return name  # a lone surrogate is allowed here: the service answers it
    for name in ("entities", "caption_entities"):
        if message.get(name) is not None and not (
                isinstance(message[name], list) and all(isinstance(e, dict) for e in message[name])):
            return name
    contact = message.get("contact")
    if contact is not None:
        if not isinstance(contact, dict) or not isinstance(contact.get("phone_number"), str):
            return "contact"
        if contact.get("user_id") is not None and not _is_id(contact["user_id"], 1):
            return "contact user_id"
    for kind in MEDIA_KINDS:
        item = message.get(kind)
        if item is None:
            continue
        items = item if kind == "photo" else [item]
        if not isinstance(items, list) or not items or not all(
                isinstance(i, dict) and clean_token(i.get("file_id"), 256) for i in items):
            return kind
    return None


def malformed(data: dict[str, Any]) -> str | None:
    """What is wrong with an update carrying a message or callback query, or None."""
    if not _is_id(data.get("update_id"), 0):
        return "update_id"
    for kind in ("message", "edited_message"):
        if kind in data and (problem := _message_problem(data[kind])):
            return f"{kind} {problem}"
    if "callback_query" in data:
        query = data["callback_query"]
        if not isinstance(query, dict) or not isinstance(query.get("id"), str):
            return "callback_query"
        if problem := _user_problem(query.get("from")):
            return f"callback_query from {problem}"
        if query.get("data") is not None and not _is_text(query["data"]):
            return "callback_query data"
        message = query.get("message")
        if message is not None and (not isinstance(message, dict) or _chat_problem(message.get("chat"))):
            return "callback_query message"
    return None


def language_hint(user: telegram.User | None) -> str | None:
    code = ((user.language_code if user else None) or "")[:2].lower()
    return code if code in language.SUPPORTED else None


class TelegramSender:
    """Sends bot messages to Telegram chats (chat id = user id for private chats)."""

    name = CHANNEL

    def __init__(self, bot: telegram.Bot, redis: Redis, key_prefix: str,
                 requests: tuple[HTTPXRequest, ...] = (), bot_username: str = "") -> None:
        self.bot = bot
        self.bot_username = bot_username  # t.me/<bot_username>?start=<code> links
        self.redis = redis
        self.key_prefix = key_prefix
        self._requests = requests

    # -- long callback payloads ---------------------------------------------------------------

    def _callback_key(self, short: str) -> str:
        return f"{self.key_prefix}:tgcb:{short}"

    async def callback_data(self, payload: str) -> str:
        """The callback data for a button: the payload itself, or "k:<id>" kept in Redis."""
        if len(payload.encode("utf-8")) <= CALLBACK_DATA_LIMIT and not payload.startswith(CALLBACK_PREFIX):
            return payload
        digest = hashlib.sha256(payload.encode("utf-8")).digest()[:16]
        short = base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")
        await self.redis.set(self._callback_key(short), payload, ex=CALLBACK_TTL)
        return CALLBACK_PREFIX + short

    async def resolve_callback(self, data: str) -> str | None:
        """The payload behind a button's callback data; None when it expired."""
        if not data.startswith(CALLBACK_PREFIX):
            return data
        payload = await self.redis.get(self._callback_key(data[len(CALLBACK_PREFIX):]))
        if isinstance(payload, bytes):
            payload = payload.decode("utf-8")
        return payload

    async def keyboard(self, buttons: list[Button]) -> InlineKeyboardMarkup | None:
        if not buttons:
            return None
        rows: list[list[InlineKeyboardButton]] = []
        scale: list[InlineKeyboardButton] = []  # a score scale (buttons titled 0-10) shares rows

        def flush() -> None:
            if scale:
                per_row = -(-len(scale) // -(-len(scale) // SCALE_ROW))  # even rows of at most SCALE_ROW
                rows.extend(scale[i:i + per_row] for i in range(0, len(scale), per_row))
                scale.clear()

        for b in buttons:
            button = InlineKeyboardButton(b.title or b.payload, callback_data=await self.callback_data(b.payload))
            if (b.title or b.payload).isdigit() and len(b.title or b.payload) <= 2:
                scale.append(button)
                continue
            flush()
            rows.append([button])
        flush()
        return InlineKeyboardMarkup(rows)

    # -- sending ------------------------------------------------------------------------------

    async def _call(self, what: str, chat_id: int, method, **kwargs: Any) -> Any:
        """One Bot API call with the retry policy; DeliveryError when it did not go through."""
        for attempt in range(1, SEND_ATTEMPTS + 1):
            try:
                return await method(chat_id=chat_id, **kwargs)
            except Forbidden as exc:
                log.warning("telegram %s to chat %s refused: forbidden (blocked bot?)", what, chat_id)
                raise DeliveryError(f"telegram {what} to {chat_id}: forbidden", final=True) from exc
            except BadRequest as exc:  # a NetworkError subclass: must come first
                log.warning("telegram %s to chat %s refused: bad request", what, chat_id)
                raise DeliveryError(f"telegram {what} to {chat_id}: bad request", final=True) from exc
            except RetryAfter as exc:
                with warnings.catch_warnings():  # PTB 22: int now, timedelta in a later version
                    warnings.simplefilter("ignore", DeprecationWarning)
                    wait = exc.retry_after
                wait = wait.total_seconds() if isinstance(wait, timedelta) else float(wait)
                if attempt == SEND_ATTEMPTS or wait > MAX_RETRY_AFTER:
                    log.warning("telegram %s to chat %s: flood control, gave up", what, chat_id)
                    raise DeliveryError(f"telegram {what} to {chat_id}: flood control") from exc
                log.info("telegram %s to chat %s: flood control, retry in %.0fs", what, chat_id, wait)
                await asyncio.sleep(wait)
            except NetworkError as exc:  # TimedOut included
                if attempt == SEND_ATTEMPTS:
                    log.warning("telegram %s to chat %s failed after %d attempts: %s",
                                what, chat_id, attempt, type(exc).__name__)
                    raise DeliveryError(f"telegram {what} to {chat_id}: {type(exc).__name__}") from exc
                log.info("telegram %s to chat %s: %s, retrying", what, chat_id, type(exc).__name__)
                await asyncio.sleep(BACKOFF[attempt - 1])
            except TelegramError as exc:  # InvalidToken, ChatMigrated, Conflict, ...
                log.error("telegram %s to chat %s refused: %s", what, chat_id, type(exc).__name__)
                raise DeliveryError(f"telegram {what} to {chat_id}: {type(exc).__name__}", final=True) from exc
        raise AssertionError("unreachable")

    async def send_text(self, chat_id: int, body: str, reply_markup: Any = None) -> None:
        await self._call("sendMessage", chat_id, self.bot.send_message, text=cut(body), reply_markup=reply_markup)

    async def send(self, address: str, messages: list[BotMessage], *, proactive: bool = False) -> None:
        if not isinstance(address, str) or not _CHAT_ID.fullmatch(address):
            raise DeliveryError("telegram: the address is not a chat id", final=True)
        chat_id = int(address)
        for done, message in enumerate(messages):
            try:
                await self._send_one(chat_id, message)
            except DeliveryError as exc:
                exc.delivered = done  # the ones before went out: never send them twice
                raise

    async def _send_one(self, chat_id: int, message: BotMessage) -> None:
        try:
            markup = await self.keyboard(message.buttons)
        except RedisError as exc:  # a long button payload could not be kept: try again later
            raise DeliveryError(f"telegram buttons to {chat_id}: Redis {type(exc).__name__}") from exc
        body = message.text or ""
        if message.image:
            fits = _utf16_len(body) <= CAPTION_LIMIT
            await self._call(
                "sendPhoto", chat_id, self.bot.send_photo, photo=message.image,
                caption=(body or None) if fits else None, reply_markup=markup if fits else None,
            )
            if fits:
                return
        if not body and not markup:
            return
        await self.send_text(chat_id, body or text("buttons_only", "nl"), markup)

    async def answer_callback(self, query: telegram.CallbackQuery) -> None:
        try:
            await query.answer()
        except TelegramError as exc:  # too old, network: the press is handled anyway
            log.info("telegram answerCallbackQuery %s failed: %s", query.id, type(exc).__name__)

    async def close(self) -> None:
        await self.bot.shutdown()
        for request in self._requests:
            await request.shutdown()


class TelegramWebhook:
    """The webhook side: validates updates and hands them to the conversation service."""

    def __init__(self, sender: TelegramSender, service: ConversationService, secret: str,
                 tasks: BackgroundTasks) -> None:
        self.sender = sender
        self.bot = sender.bot
        self.service = service
        self.secret = secret
        self.tasks = tasks
        # Handling and replying in order per customer (Telegram may deliver updates in parallel).
        self._locks = KeyedLocks()
        self.inbox = None  # bot.pipeline.inbox.Inbox, see `use`

    def use(self, inbox) -> None:
        """Store every update in the inbox before answering 200; handle it from there."""
        self.inbox = inbox
        inbox.register(CHANNEL, self.process_stored, self.notify)

    async def process_stored(self, payload: dict) -> None:
        await self.process(Update.de_json(payload["update"], self.bot))

    async def notify(self, address: str, payload: dict, body: str, lang: str) -> None:
        await self.sender.send(address, [BotMessage(body)])

    # -- the edge -----------------------------------------------------------------------------

    async def webhook(self, request: web.Request) -> web.Response:
        given = request.headers.get(SECRET_HEADER, "")
        if not hmac.compare_digest(given.encode("utf-8", "replace"), self.secret.encode("utf-8")):
            log.warning("telegram webhook: wrong or missing secret token")
            return web.Response(status=403, text="forbidden")
        if request.content_length is not None and request.content_length > MAX_BODY:
            return web.Response(status=413, text="too large")
        body = bytearray()
        while chunk := await request.content.readany():
            body += chunk
            if len(body) > MAX_BODY:
                return web.Response(status=413, text="too large")
        try:
            data = json.loads(bytes(body))
        except (ValueError, RecursionError):  # RecursionError: JSON nested too deep for the parser
            log.info("telegram webhook: body is not JSON")
            return web.Response(status=400, text="not json")
        if not isinstance(data, dict):
            log.info("telegram webhook: body is not a JSON object")
            return web.Response(status=400, text="not an object")
        if not nesting_within(data, MAX_NESTING):
            log.info("telegram webhook: JSON nested deeper than %d", MAX_NESTING)
            return web.Response(status=400, text="nested too deep")
        update_id = data.get("update_id")
        update_id = update_id if isinstance(update_id, int) and not isinstance(update_id, bool) else None
        kinds = sorted(k for k in data if k != "update_id")
        if update_id is not None and kinds and not HANDLED_KINDS.intersection(kinds):
            # Not parsed at all: PTB requires the newest Bot API fields of every type, and an
            # update we ignore anyway must not be refused (Telegram would retry it).
            named = [k if _KIND.fullmatch(k) else "?" for k in kinds[:5]]
            log.info("telegram update %s ignored: %s", update_id, ",".join(named))
            return web.Response(status=200, text="ok")
        problem = malformed(data)
        if problem is not None:
            log.info("telegram webhook: invalid update %s (%s)", update_id, problem)
            return web.Response(status=400, text="invalid update")
        try:
            update = Update.de_json(data, self.bot)
            if update is None or update_id is None:
                raise ValueError("no update_id")
        except Exception as exc:  # whatever PTB raises on a malformed update
            log.info("telegram webhook: invalid update %s (%s)", update_id, type(exc).__name__)
            return web.Response(status=400, text="invalid update")
        if self.inbox is not None:
            user = update.effective_user
            sender = str(user.id) if user is not None else str(update.effective_chat.id if update.effective_chat else "-")
            stored = await self.inbox.store(CHANNEL, str(update_id), sender, {"update": data})
            if not stored.ok:
                log.warning("telegram update %s not stored: 503, Telegram sends it again", update_id)
                return web.Response(status=503, text="not stored, try again")
            return web.Response(status=200, text="ok")
        if not self.tasks.spawn(self.process(update), f"telegram update {update_id}"):
            return web.Response(status=503, text="busy, try again")  # Telegram sends it again
        return web.Response(status=200, text="ok")

    # -- handling -----------------------------------------------------------------------------

    async def process(self, update: Update) -> None:
        message = update.message or update.edited_message
        if message is not None:
            await self._message(update, message)
        elif update.callback_query is not None:
            await self._callback(update, update.callback_query)
        else:
            kinds = [k for k, v in update.to_dict().items() if k != "update_id" and v]
            log.info("telegram update %s ignored: %s", update.update_id, ",".join(kinds) or "empty")

    async def _message(self, update: Update, message: telegram.Message) -> None:
        user = message.from_user
        if user is None or user.is_bot or message.chat.type != telegram.Chat.PRIVATE:
            log.info("telegram update %s ignored: not a customer's private chat (chat %s)",
                     update.update_id, message.chat.id)
            return
        address = str(user.id)
        hint = language_hint(user)
        inbound = Inbound(CHANNEL, address, None, language_hint=hint, message_id=str(update.update_id))
        if message.contact is not None:
            if message.contact.user_id != user.id:
                log.info("telegram update %s: user %s shared someone else's contact", update.update_id, user.id)
                await self._say(address, "not_own_contact", hint)
                return
            phone = e164(message.contact.phone_number)
            if phone is None:
                log.info("telegram update %s: user %s shared an unreadable number", update.update_id, user.id)
                await self._say(address, "bad_phone", hint)
                return
            inbound.text, inbound.contact_phone = "", phone
        elif message.text is not None:
            words = message.text.strip().split(maxsplit=1)
            command = words[0].split("@", 1)[0] if words else ""
            if command == "/start" and len(words) == 2:  # a t.me/<bot>?start=<code> link
                inbound.text, inbound.link_code = "", words[1]
                await self._handle(inbound)
                return
            if command == "/start":
                await self._start(update, address, hint)
                return
            inbound.text = message.text
        elif kinds := [k for k in MEDIA_KINDS if getattr(message, k)]:
            media = []
            for kind in kinds:
                item = getattr(message, kind)
                item = item[-1] if isinstance(item, (list, tuple)) else item  # photo: largest size
                if item.file_id not in media:
                    media.append(item.file_id)
            inbound.text, inbound.media = message.caption or "", media
        elif any(getattr(message, k) for k in NON_TEXT_KINDS):
            inbound.text = None  # the service answers that it reads text only
        else:
            log.info("telegram update %s ignored: a message without content we handle", update.update_id)
            return
        await self._handle(inbound)

    async def _callback(self, update: Update, query: telegram.CallbackQuery) -> None:
        await self.sender.answer_callback(query)
        user = query.from_user
        if query.data is None or user.is_bot:
            log.info("telegram update %s ignored: callback query without data", update.update_id)
            return
        if query.message is not None and query.message.chat.type != telegram.Chat.PRIVATE:
            log.info("telegram update %s ignored: callback from chat %s", update.update_id, query.message.chat.id)
            return
        address, hint = str(user.id), language_hint(user)
        payload = await self.sender.resolve_callback(query.data)
        if payload is None:
            log.info("telegram update %s: expired button from user %s", update.update_id, user.id)
            await self._say(address, "button_expired", hint)
            return
        await self._handle(Inbound(CHANNEL, address, payload, language_hint=hint, message_id=str(update.update_id)))

    async def _start(self, update: Update, address: str, hint: str | None) -> None:
        greeting = "hello" if hint == language.ENGLISH else "hallo"
        inbound = Inbound(CHANNEL, address, greeting, language_hint=hint, message_id=str(update.update_id))
        keyboard = ReplyKeyboardMarkup(
            [[KeyboardButton(text("share_phone_button", "nl"), request_contact=True)]],
            one_time_keyboard=True, resize_keyboard=True,
        )
        async with self._locks.hold(address):
            with delivery.collect() as turn:
                outcome = await self.service.handle(inbound)
            if outcome.duplicate:
                log.info("telegram update %s: duplicate, nothing sent", update.update_id)
                return
            welcome = BotMessage(text("welcome", "nl"))
            if self._outbound(address, [welcome], what=f"welcome {update.update_id}",
                              send=lambda _batch: self.sender.send_text(int(address), welcome.text, keyboard)):
                self._reply(address, outcome, turn, update.update_id)
                return
            try:
                await self.sender.send_text(int(address), text("welcome", "nl"), keyboard)
                await self.sender.send(address, outcome.replies)
            except DeliveryError as exc:
                log.warning("telegram update %s: reply to user %s not delivered: %s", update.update_id, address, exc)

    def _outbound(self, address: str, messages: list[BotMessage], **job: Any) -> bool:
        """Queue on the gateway's delivery queue (in order per customer, retried, transcript
        marked); False when the service has none (then the caller sends directly)."""
        outbound = getattr(self.service, "outbound", None)
        if outbound is None:
            return False
        outbound.submit(CHANNEL, address, messages, **job)
        return True

    def _reply(self, address: str, outcome: Outcome, turn: delivery.Collected, update_id: Any) -> None:
        if outcome.replies:
            self._outbound(address, outcome.replies, rows=turn.rows_for(outcome.replies, CHANNEL),
                           conversation=outcome.conversation, what=f"reply to update {update_id}")

    async def _handle(self, inbound: Inbound) -> Outcome:
        async with self._locks.hold(inbound.address):
            with delivery.collect() as turn:
                outcome = await self.service.handle(inbound)
            if outcome.duplicate:
                log.info("telegram update %s: duplicate, nothing sent", inbound.message_id)
                return outcome
            if getattr(self.service, "outbound", None) is not None:
                self._reply(inbound.address, outcome, turn, inbound.message_id)
                return outcome
            try:
                await self.sender.send(inbound.address, outcome.replies)
            except DeliveryError as exc:
                log.warning("telegram update %s: reply to user %s not delivered: %s",
                            inbound.message_id, inbound.address, exc)
            return outcome

    async def _language(self, address: str, hint: str | None) -> str:
        """The conversation's language, else Telegram's app language, else the default."""
        key = await self.service.conversation_for(CHANNEL, address)
        conv = await self.service.store.get(key)
        lang = conv.get("language") or hint or language.DEFAULT_LANGUAGE
        return lang if lang in language.SUPPORTED else language.DEFAULT_LANGUAGE

    async def _say(self, address: str, key: str, hint: str | None) -> None:
        lang = await self._language(address, hint)
        notice = BotMessage(text(key, lang))
        if self._outbound(address, [notice], what=f"notice {key}"):
            return
        try:
            await self.sender.send_text(int(address), text(key, lang))
        except DeliveryError as exc:
            log.warning("telegram: notice to user %s not delivered: %s", address, exc)




async def _webhook(request: web.Request) -> web.Response:
    adapter = request.app.get(TELEGRAM)
    if adapter is None:
        return web.Response(status=503, text="telegram is not configured")
    async with adapter.tasks.admit("telegram webhook") as admitted:
        if not admitted:  # WEBHOOK_CONCURRENCY updates being handled: Telegram sends it again
            return web.Response(status=503, text="busy, try again")
        return await adapter.webhook(request)


def add_routes(app: web.Application) -> None:
    """POST /webhooks/telegram; answers 503 until `setup` has stored an adapter."""
    app.router.add_post(WEBHOOK_PATH, _webhook)


def create_bot(settings: Settings) -> tuple[telegram.Bot, tuple[HTTPXRequest, ...]]:
    """A PTB Bot on settings.telegram_api_url; makes no network call."""
    request = HTTPXRequest(connect_timeout=5, read_timeout=10, write_timeout=10, pool_timeout=5)
    updates_request = HTTPXRequest(connection_pool_size=1, connect_timeout=5, read_timeout=10,
                                   write_timeout=10, pool_timeout=5)
    bot = telegram.Bot(
        settings.telegram_bot_token,
        base_url=f"{settings.telegram_api_url}/bot",
        base_file_url=f"{settings.telegram_api_url}/file/bot",
        request=request,
        get_updates_request=updates_request,
    )
    return bot, (request, updates_request)


def setup(app: web.Application, service: ConversationService, settings: Settings,
          http_unused: Any, tasks: BackgroundTasks, redis: Redis) -> TelegramSender | None:
    """Create the bot and the adapter (no network call); None when Telegram is not configured.

    The caller awaits `TelegramSender.close()` on shutdown (after draining `tasks`).
    """
    if not settings.telegram_enabled:
        log.info("telegram: not configured (TELEGRAM_BOT_TOKEN and TELEGRAM_WEBHOOK_SECRET)")
        return None
    # httpx logs every request URL at INFO, and a Bot API URL contains the bot token.
    logging.getLogger("httpx").setLevel(max(logging.getLogger("httpx").getEffectiveLevel(), logging.WARNING))
    bot, requests = create_bot(settings)
    sender = TelegramSender(bot, redis, settings.key_prefix, requests, settings.telegram_bot_username)
    app[TELEGRAM] = TelegramWebhook(sender, service, settings.telegram_webhook_secret, tasks)
    return sender


# -- the adapter (channels/registry.py) -----------------------------------------------------------

TELEGRAM_CHANNEL = Channel(
    CHANNEL, {"nl": "Telegram", "en": "Telegram"},
    # no reply window: a bot may write to anyone who started it, at any time
    Capabilities(identifies_sender=True, max_length=TEXT_LIMIT),
    address_field="telegram_user_id",
)


class TelegramAdapter(ChannelAdapter):
    """Telegram through a bot's webhook. Settings: TELEGRAM_BOT_TOKEN and TELEGRAM_WEBHOOK_SECRET
    (TELEGRAM_BOT_USERNAME for t.me links, TELEGRAM_API_URL)."""

    channels = (TELEGRAM_CHANNEL,)
    needs = "TELEGRAM_BOT_TOKEN, TELEGRAM_WEBHOOK_SECRET, PUBLIC_BASE_URL"
    webhook = WEBHOOK_PATH

    def __init__(self, inbound: TelegramWebhook) -> None:
        self.inbound = inbound

    @classmethod
    def enabled(cls, settings: Settings) -> bool:
        return settings.telegram_enabled

    @classmethod
    def add_routes(cls, app: web.Application) -> None:
        add_routes(app)

    @classmethod
    async def start(cls, context: ChannelContext) -> "TelegramAdapter":
        setup(context.app, context.service, context.settings, context.http, context.tasks, context.redis)
        return cls(context.app[TELEGRAM])

    def senders(self) -> dict[str, TelegramSender]:
        return {CHANNEL: self.inbound.sender}

    def use(self, inbox) -> None:
        self.inbound.use(inbox)

    async def close(self) -> None:
        await self.inbound.sender.close()
