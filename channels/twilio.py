"""SMS and WhatsApp through Twilio's Programmable Messaging API.

Inbound: Twilio posts each message form-encoded to POST /webhooks/twilio (From, To, Body,
MessageSid, NumMedia, MediaUrl0.., WhatsApp numbers carry a `whatsapp:` prefix). The webhook is
checked at the edge (size 413, content type 415, X-Twilio-Signature 403, fields 400), answered at
once with an empty TwiML response, and handed to `ConversationService.handle` in the background;
the replies go back through the REST API. In the gateway the message is first stored in the inbox
(bot/pipeline/inbox.py) and handled from there; when it cannot be stored the webhook answers 503, so
Twilio may send it again.

Outbound: `TwilioSender.send` renders per channel: SMS puts a whole turn into one message
(buttons as one numbered list), WhatsApp sends each bot message on its own. Twilio accepts at
most 1600 characters of Body on both. WhatsApp allows free-form messages only within 24 hours
of the customer's last message; a proactive message outside that window goes out as the
configured Content template, its text in variable {{1}}.

Phone numbers and message texts are personal data: they never go into the logs, only the
MessageSid does.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from typing import TYPE_CHECKING, Awaitable, Callable
from urllib.parse import parse_qsl

import aiohttp
from aiohttp import web
from multidict import MultiDict
from redis.asyncio import Redis
from redis.exceptions import RedisError
from twilio.request_validator import RequestValidator

from bot.delivery import queue as delivery
from bot.gateway.keys import TWILIO
from bot.pipeline.types import BotMessage, Inbound
from bot.shared.settings import Settings
from channels.base import (
    BackgroundTasks, Capabilities, Channel, ChannelAdapter, ChannelContext, DeliveryError, render_numbered,
)

if TYPE_CHECKING:
    from bot.pipeline.service import ConversationService

log = logging.getLogger(__name__)

PATH = "/webhooks/twilio"
CHANNELS = ("sms", "whatsapp")
WHATSAPP_PREFIX = "whatsapp:"
MAX_BODY = 64 * 1024
SMS_LIMIT = 1600
WHATSAPP_LIMIT = 1600        # Twilio refuses a longer Body (error 21617), on WhatsApp too
TEMPLATE_LIMIT = 1024        # a WhatsApp template body holds at most 1024 characters
WINDOW_SECONDS = 24 * 3600
WINDOW_KEY_TTL = 7 * 24 * 3600
MAX_MEDIA = 10               # Twilio delivers at most 10 media items per message
ATTEMPTS = 3
BACKOFF = (0.5, 1.0)
TIMEOUT = aiohttp.ClientTimeout(total=10)
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'
FORM = "application/x-www-form-urlencoded"

_E164 = re.compile(r"\+[1-9][0-9]{6,14}")       # fullmatch: "$" would let a final newline in
_SID = re.compile(r"[A-Za-z0-9]{2,64}")          # Twilio's SIDs: "SM" or "MM" and 32 hex digits
_MEDIA_URL = re.compile(r"https?://[^\x00-\x20\x7f]{1,2040}")
_SID_CHARS = re.compile(r"[^A-Za-z0-9]")

LastInbound = Callable[[str], Awaitable["float | None"]]


def is_e164(number: str) -> bool:
    return isinstance(number, str) and bool(_E164.fullmatch(number))


def _loggable_sid(sid: object) -> str:
    """The MessageSid as it may go into a log line (it is unverified input before the signature check)."""
    cleaned = _SID_CHARS.sub("", str(sid or ""))[:40]
    return cleaned or "-"


class WhatsAppWindow:
    """When each customer last wrote on WhatsApp, in Redis: decides free-form versus template."""

    def __init__(self, redis: Redis, key_prefix: str, ttl: int = WINDOW_KEY_TTL) -> None:
        self.redis = redis
        self.key_prefix = key_prefix
        self.ttl = ttl

    def key(self, address: str) -> str:
        return f"{self.key_prefix}:wa_inbound:{address}"

    async def record(self, address: str, when: float | None = None) -> None:
        await self.redis.set(self.key(address), repr(time.time() if when is None else when), ex=self.ttl)

    async def last_inbound(self, address: str) -> float | None:
        """Seconds since the epoch of the last inbound message; None when unknown or Redis is down
        (then only a template may be sent, which is always allowed)."""
        try:
            raw = await self.redis.get(self.key(address))
        except RedisError as exc:
            log.warning("whatsapp window unknown, Redis failed: %s", type(exc).__name__)
            return None
        return float(raw) if raw is not None else None


class TwilioSender:
    """One client for both channels; `view("sms")` and `view("whatsapp")` are the `Sender`s."""

    def __init__(
        self,
        http: aiohttp.ClientSession,
        settings: Settings,
        last_inbound: LastInbound,
        *,
        backoff: tuple[float, ...] = BACKOFF,
        timeout: aiohttp.ClientTimeout = TIMEOUT,
    ) -> None:
        self.timeout = timeout
        self.http = http
        self.settings = settings
        self.last_inbound = last_inbound
        self.backoff = backoff
        self.url = (f"{settings.twilio_api_url.rstrip('/')}/2010-04-01/Accounts/"
                    f"{settings.twilio_account_sid}/Messages.json")
        self._auth = aiohttp.BasicAuth(settings.twilio_account_sid, settings.twilio_auth_token)
        self._numbers = {
            "sms": settings.twilio_sms_number,
            "whatsapp": settings.twilio_whatsapp_number.removeprefix(WHATSAPP_PREFIX),
        }

    def configured(self, channel: str) -> bool:
        return bool(self._numbers.get(channel))

    def view(self, channel: str) -> "TwilioChannelSender":
        if channel not in CHANNELS:
            raise ValueError(f"unknown Twilio channel {channel!r}")
        return TwilioChannelSender(self, channel)

    async def send(
        self, address: str, messages: list[BotMessage], *, proactive: bool = False, channel: str = "sms"
    ) -> None:
        if channel not in CHANNELS:
            raise ValueError(f"unknown Twilio channel {channel!r}")
        number = self._numbers[channel]
        if not number:
            raise DeliveryError(f"no Twilio {channel} number configured", final=True)
        address = address.removeprefix(WHATSAPP_PREFIX)
        if not is_e164(address):
            raise DeliveryError(f"{channel} address is not an E.164 phone number", final=True)

        if channel == "sms":
            body = render_numbered(messages, SMS_LIMIT)
            if body:
                await self._post(channel, {"To": address, "From": number, "Body": body})
            return

        to, sender = WHATSAPP_PREFIX + address, WHATSAPP_PREFIX + number
        if proactive and not await self.in_window(address):
            template = self.settings.twilio_whatsapp_template_sid
            if not template:
                raise DeliveryError("outside the WhatsApp 24-hour window and no template configured", final=True)
            # A template variable may hold no newlines, tabs or runs of spaces.
            text = " ".join(render_numbered(messages, TEMPLATE_LIMIT).split())
            if text:
                await self._post(channel, {
                    "To": to, "From": sender, "ContentSid": template,
                    "ContentVariables": json.dumps({"1": text}, ensure_ascii=False),
                })
            return
        for done, message in enumerate(messages):
            body = render_numbered([message], WHATSAPP_LIMIT)
            if body:
                try:
                    await self._post(channel, {"To": to, "From": sender, "Body": body})
                except DeliveryError as exc:
                    exc.delivered = done  # the ones before went out: never send them twice
                    raise

    async def in_window(self, address: str) -> bool:
        last = await self.last_inbound(address)
        return last is not None and time.time() - last < WINDOW_SECONDS

    async def _post(self, channel: str, form: dict[str, str]) -> None:
        """POST one message; retry connection errors, timeouts, 429 and 5xx; refuse other 4xx at once."""
        reason = ""
        for attempt in range(1, ATTEMPTS + 1):
            try:
                async with self.http.post(self.url, data=form, auth=self._auth, timeout=self.timeout) as resp:
                    if resp.status < 300:
                        return
                    code = await _error_code(resp)
                    reason = f"HTTP {resp.status}, Twilio error {code}"
                    if resp.status != 429 and resp.status < 500:
                        raise DeliveryError(f"Twilio refused the {channel} message: {reason}", final=True)
            except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                reason = f"{type(exc).__name__} {exc}".strip()
            if attempt < ATTEMPTS:
                delay = self.backoff[min(attempt, len(self.backoff)) - 1]
                log.warning("twilio %s send attempt %d/%d failed (%s), retrying in %.1f s",
                            channel, attempt, ATTEMPTS, reason, delay)
                await asyncio.sleep(delay)
        raise DeliveryError(f"Twilio did not accept the {channel} message after {ATTEMPTS} attempts: {reason}")


async def _error_code(resp: aiohttp.ClientResponse) -> int | str | None:
    """Twilio's error code from an error response ({"code": 21610, "message": ..., "status": 400})."""
    try:
        payload = await resp.json(content_type=None)
    except (ValueError, aiohttp.ClientError):
        return None
    return payload.get("code") if isinstance(payload, dict) else None


class TwilioChannelSender:
    """The `Sender` for one Twilio channel ("sms" or "whatsapp")."""

    def __init__(self, sender: TwilioSender, name: str) -> None:
        self.sender = sender
        self.name = name

    async def send(self, address: str, messages: list[BotMessage], *, proactive: bool = False) -> None:
        await self.sender.send(address, messages, proactive=proactive, channel=self.name)


class TwilioWebhook:
    """Receives Twilio's inbound-message webhook and answers through the sender."""

    def __init__(
        self,
        service: ConversationService,
        settings: Settings,
        sender: TwilioSender,
        window: WhatsAppWindow,
        tasks: BackgroundTasks,
    ) -> None:
        self.service = service
        self.settings = settings
        self.sender = sender
        self.window = window
        self.tasks = tasks
        self.validator = RequestValidator(settings.twilio_auth_token)
        self.inbox = None  # bot.pipeline.inbox.Inbox, see `use`

    def use(self, inbox) -> None:
        """Store every message in the inbox before answering; handle it from there."""
        self.inbox = inbox
        for channel in CHANNELS:
            if self.sender.configured(channel):
                inbox.register(channel, self.process_stored, self.notify)

    async def process_stored(self, payload: dict) -> None:
        inbound = Inbound(payload["channel"], payload["address"], payload.get("text", ""),
                          message_id=payload["message_id"], media=list(payload.get("media") or []))
        await self.process(inbound, float(payload["received"]))

    async def notify(self, address: str, payload: dict, text: str, lang: str) -> None:
        await self.sender.send(address, [BotMessage(text)], channel=payload["channel"])

    async def handle(self, request: web.Request) -> web.Response:
        if request.content_length is not None and request.content_length > MAX_BODY:
            return _refuse(413, "body too large")
        if request.content_type != FORM:
            return _refuse(415, f"expected {FORM}")
        raw = await _read_limited(request, MAX_BODY)
        if raw is None:
            return _refuse(413, "body too large")
        try:
            params = MultiDict(parse_qsl(raw.decode("utf-8"), keep_blank_values=True))
        except UnicodeDecodeError:
            return _refuse(400, "body is not UTF-8")
        sid = params.get("MessageSid", "")

        signature = request.headers.get("X-Twilio-Signature", "")
        url = self.settings.public_base_url.rstrip("/") + request.path_qs
        if not signature or not self.validator.validate(url, params, signature):
            return _refuse(403, "missing or invalid signature", sid)

        sender = params.get("From", "")
        if not sender or not sid:
            return _refuse(400, "From or MessageSid missing", sid)
        channel = "whatsapp" if sender.startswith(WHATSAPP_PREFIX) else "sms"
        address = sender.removeprefix(WHATSAPP_PREFIX)
        if not is_e164(address):
            return _refuse(400, "From is not an E.164 phone number", sid)
        if not _SID.fullmatch(sid):
            return _refuse(400, "MessageSid is not a Twilio SID", sid)
        to = params.get("To")
        if to is not None and not is_e164(to.removeprefix(WHATSAPP_PREFIX)):
            return _refuse(400, "To is not an E.164 phone number", sid)
        if not self.sender.configured(channel):
            return _refuse(503, f"channel {channel} not configured", sid)

        inbound = Inbound(channel, address, params.get("Body", ""), message_id=sid, media=_media(params))
        if self.inbox is not None:
            stored = await self.inbox.store(channel, sid, address, {
                "channel": channel, "address": address, "text": inbound.text, "message_id": sid,
                "media": inbound.media, "received": time.time()})
            if not stored.ok:
                return _refuse(503, "message not stored, send it again", sid)
            return web.Response(text=EMPTY_TWIML, content_type="text/xml")
        if not self.tasks.spawn(self.process(inbound, time.time()), f"twilio {channel} message {_loggable_sid(sid)}"):
            return _refuse(503, "busy, send it again", sid)
        return web.Response(text=EMPTY_TWIML, content_type="text/xml")

    async def process(self, inbound: Inbound, received: float) -> None:
        if inbound.channel == "whatsapp":
            try:
                await self.window.record(inbound.address, received)
            except RedisError as exc:  # the message still gets its answer; only the window is unknown
                log.error("whatsapp message %s: window not recorded: %s",
                          _loggable_sid(inbound.message_id), type(exc).__name__)
        with delivery.collect() as turn:
            outcome = await self.service.handle(inbound)
        if outcome.duplicate or not outcome.replies:
            return
        outbound = getattr(self.service, "outbound", None)
        if outbound is not None:  # in order per customer, retried, the transcript rows marked
            address, channel = inbound.address, inbound.channel
            outbound.submit(channel, address, outcome.replies, rows=turn.rows_for(outcome.replies, channel),
                            conversation=outcome.conversation, what=f"reply to {_loggable_sid(inbound.message_id)}",
                            send=lambda batch: self.sender.send(address, batch, channel=channel))
            return
        try:
            await self.sender.send(inbound.address, outcome.replies, channel=inbound.channel)
        except DeliveryError as exc:
            log.error("%s reply to message %s not delivered: %s",
                      inbound.channel, _loggable_sid(inbound.message_id), exc)


def _media(params: MultiDict) -> list[str]:
    try:
        count = min(int(params.get("NumMedia", "0") or 0), MAX_MEDIA)
    except ValueError:
        count = 0
    return [params[f"MediaUrl{i}"] for i in range(count) if _MEDIA_URL.fullmatch(params.get(f"MediaUrl{i}", ""))]


async def _read_limited(request: web.Request, limit: int) -> bytes | None:
    """The request body, or None once it grows beyond `limit` bytes (chunked bodies included)."""
    body = bytearray()
    async for chunk in request.content.iter_any():
        body += chunk
        if len(body) > limit:
            return None
    return bytes(body)


def _refuse(status: int, reason: str, sid: str = "") -> web.Response:
    log.info("twilio webhook refused (%d %s), MessageSid %s", status, reason, _loggable_sid(sid))
    return web.Response(status=status, text=reason)




async def webhook(request: web.Request) -> web.Response:
    adapter = request.app.get(TWILIO)
    if adapter is None:
        return web.Response(status=503, text="channel not configured")
    async with adapter.tasks.admit("twilio webhook") as admitted:
        if not admitted:  # WEBHOOK_CONCURRENCY requests being handled: Twilio may send it again
            return _refuse(503, "busy, send it again")
        return await adapter.handle(request)


def add_routes(app: web.Application) -> None:
    """Call when creating the app (routes cannot be added once it has started)."""
    app.router.add_post(PATH, webhook)


def setup(
    app: web.Application,
    service: ConversationService,
    settings: Settings,
    http: aiohttp.ClientSession,
    tasks: BackgroundTasks,
    redis: Redis,
) -> dict[str, TwilioChannelSender] | None:
    """Build the adapter (from the app's cleanup_ctx); the senders of the configured channels,
    {"sms": ..., "whatsapp": ...}, or None when Twilio is not configured."""
    if not settings.twilio_enabled:
        return None
    window = WhatsAppWindow(redis, settings.key_prefix)
    sender = TwilioSender(http, settings, window.last_inbound)
    app[TWILIO] = TwilioWebhook(service, settings, sender, window, tasks)
    return {name: sender.view(name) for name in CHANNELS if sender.configured(name)}


# -- the adapter (channels/registry.py) -----------------------------------------------------------

SMS = Channel(
    "sms", {"nl": "sms", "en": "SMS"},
    Capabilities(identifies_sender=True, numbered_buttons=True, max_length=SMS_LIMIT),
    address_field="phone",
)
WHATSAPP = Channel(
    "whatsapp", {"nl": "WhatsApp", "en": "WhatsApp"},
    Capabilities(identifies_sender=True, numbered_buttons=True, max_length=WHATSAPP_LIMIT,
                 reply_window=WINDOW_SECONDS),
    address_field="phone",
)


class TwilioAdapter(ChannelAdapter):
    """SMS and WhatsApp through one Twilio account and one webhook. Settings: TWILIO_ACCOUNT_SID,
    TWILIO_AUTH_TOKEN, PUBLIC_BASE_URL and a number per channel (TWILIO_SMS_NUMBER,
    TWILIO_WHATSAPP_NUMBER); a channel without its number is off."""

    channels = (SMS, WHATSAPP)
    webhook = PATH

    @classmethod
    def summary(cls, settings: Settings) -> list[str]:
        lines = []
        for channel, number, variable in ((SMS, settings.twilio_sms_number, "TWILIO_SMS_NUMBER"),
                                          (WHATSAPP, settings.twilio_whatsapp_number, "TWILIO_WHATSAPP_NUMBER")):
            on = cls.enabled(settings) and number
            lines.append(f"{channel.display['en']}: " + (f"on (webhook: $PUBLIC_BASE_URL{PATH})" if on else
                         f"off (set TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN, {variable}, PUBLIC_BASE_URL)"))
        return lines

    def __init__(self, webhook: TwilioWebhook, senders: dict[str, TwilioChannelSender]) -> None:
        self.inbound = webhook
        self._senders = senders

    @classmethod
    def enabled(cls, settings: Settings) -> bool:
        return settings.twilio_enabled

    @classmethod
    def add_routes(cls, app: web.Application) -> None:
        add_routes(app)

    @classmethod
    async def start(cls, context: ChannelContext) -> "TwilioAdapter":
        senders = setup(context.app, context.service, context.settings, context.http, context.tasks, context.redis)
        return cls(context.app[TWILIO], senders or {})

    def senders(self) -> dict[str, TwilioChannelSender]:
        return dict(self._senders)

    def use(self, inbox) -> None:
        self.inbound.use(inbox)
