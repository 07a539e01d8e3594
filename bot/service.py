"""The channel-independent path of one customer message.

A channel adapter hands `ConversationService.handle` an `Inbound` message and renders the
`BotMessage`s it gets back for its own channel. Everything in between (identity, language,
validation, ordering, transcript, Rasa) lives here, so every channel behaves the same.
"""

from __future__ import annotations

import asyncio
import logging
import unicodedata
from collections import defaultdict
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, AsyncIterator

from bot import language, messages
from bot.conversations import ConversationStore
from bot.rasa_client import RasaClient, RasaUnavailable

if TYPE_CHECKING:
    from bot.records.repository import Records

log = logging.getLogger(__name__)

IDENTIFYING_CHANNELS = ("sms", "whatsapp", "telegram")
NUMBERED_CHANNELS = ("sms", "whatsapp")
# Slots that travel with the customer when a provisional conversation joins theirs.
CARRIED_SLOTS = ("customer_id", "customer_name", "order_number", "language", "verified_until")
QUESTION_SLOTS = ("topic", "requested_slot", "amount", "instalments", "details", "preference", "retention_offer")

# Emoji-only messages that carry a clear answer.
_EMOJI_INTENTS = {"👍": "/affirm", "👌": "/affirm", "✅": "/affirm", "👎": "/deny", "❌": "/deny"}


@dataclass
class Button:
    title: str
    payload: str


@dataclass
class BotMessage:
    text: str = ""
    buttons: list[Button] = field(default_factory=list)
    image: str | None = None
    is_error: bool = False

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"text": self.text}
        if self.buttons:
            data["buttons"] = [{"title": b.title, "payload": b.payload} for b in self.buttons]
        if self.image:
            data["image"] = self.image
        return data


@dataclass
class Inbound:
    channel: str          # webchat, sms, whatsapp, telegram
    address: str          # session id, E.164 phone number, Telegram user id
    text: Any
    language_hint: str | None = None
    message_id: str | None = None      # the channel's id: retries with the same id are ignored
    media: list[str] = field(default_factory=list)  # URLs of images, voice notes, ...
    contact_phone: str | None = None   # a phone number the sender proved is theirs (Telegram contact)


@dataclass
class Outcome:
    conversation: str
    language: str
    replies: list[BotMessage]
    duplicate: bool = False


class KeyedLocks:
    """One asyncio lock per key, dropped again when nobody holds or waits for it."""

    def __init__(self) -> None:
        self._locks: dict[str, asyncio.Lock] = {}
        self._users: defaultdict[str, int] = defaultdict(int)

    @asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        lock = self._locks.setdefault(key, asyncio.Lock())
        self._users[key] += 1
        try:
            async with lock:
                yield
        finally:
            self._users[key] -= 1
            if not self._users[key]:
                del self._users[key]
                del self._locks[key]


def _is_emoji_only(text: str) -> bool:
    return not any(unicodedata.category(ch)[0] in "LN" for ch in text)


class ConversationService:
    def __init__(
        self, store: ConversationStore, rasa: RasaClient, records: "Records | None" = None,
        max_bytes: int = 4096,
    ) -> None:
        self.store = store
        self.rasa = rasa
        self.records = records
        self.max_bytes = max_bytes
        self.senders: dict[str, Any] = {}  # channel name -> channels.base.Sender
        # Keeps one conversation's messages in order within this process; Rasa's Redis lock
        # store does the same across processes.
        self._locks = KeyedLocks()

    # -- identity -------------------------------------------------------------------------------
    async def conversation_for(self, channel: str, address: str) -> str:
        """The customer's one conversation when the address is known, else a provisional one."""
        known = await self.store.identity(channel, address)
        if known:
            return known
        customer_id = None
        if self.records is not None and channel in IDENTIFYING_CHANNELS:
            customer = await self.records.by_identity(channel, address)
            customer_id = customer.id if customer else None
        if customer_id is not None:
            key = await self.store.customer_conversation(customer_id) or await self.store.key_for(channel, address)
            key = await self.store.claim_customer(customer_id, key)  # two channels at once: one wins
            await self.store.bind(channel, address, key)
            await self.store.update(key, customer_id=str(customer_id))
            return key
        return await self.store.key_for(channel, address)

    async def link(self, key: str, customer_id: int, channel: str, address: str) -> str:
        """The conversation `key` turned out to be `customer_id`'s: join it to theirs."""
        canonical = await self.store.claim_customer(customer_id, key)
        await self.store.update(canonical, customer_id=str(customer_id))
        if canonical == key:
            return key
        await self.store.bind(channel, address, canonical)
        if self.records is not None:
            await self.records.move_transcript(key, canonical, customer_id)
        await self.rasa.carry_slots(key, canonical, CARRIED_SLOTS, QUESTION_SLOTS)
        log.info("conversation %s joined %s (customer %s)", key, canonical, customer_id)
        return canonical

    async def verified_login(self, channel: str, address: str, login_id: str) -> str | None:
        """A web chat visitor whose login the business's site signed: join the customer's
        conversation and tell Rasa who it is. None when the login belongs to no customer."""
        if self.records is None:
            return None
        customer = await self.records.by_identity(channel, login_id)
        if customer is None:
            return None
        key = await self.conversation_for(channel, address)
        if (await self.store.get(key)).get("customer_id") == str(customer.id):
            return key
        key = await self.link(key, customer.id, channel, address)
        await self.rasa.set_slots(key, {"customer_id": str(customer.id), "customer_name": customer.name.split()[0]})
        return key

    # -- messages ------------------------------------------------------------------------------
    async def handle(self, inbound: Inbound) -> Outcome:
        if inbound.message_id and not await self.store.first_time(inbound.channel, inbound.message_id):
            log.info("duplicate %s message %s ignored", inbound.channel, inbound.message_id)
            key = await self.store.identity(inbound.channel, inbound.address) or ""
            return Outcome(key, language.DEFAULT_LANGUAGE, [], duplicate=True)
        key = await self.conversation_for(inbound.channel, inbound.address)
        async with self._locks.hold(key):
            return await self._handle(key, inbound)

    async def _log(self, key: str, sender: str, text: str, channel: str, **data: Any) -> None:
        data = {k: v for k, v in data.items() if v}
        if self.records is not None:
            conv = await self.store.get(key)
            customer_id = int(conv["customer_id"]) if conv.get("customer_id") else None
            await self.records.add_transcript(key, customer_id, sender, channel, text, data)
        else:
            await self.store.append(key, sender, text, channel, **data)

    async def history(self, key: str, limit: int = 200) -> list[dict[str, Any]]:
        if self.records is not None:
            return await self.records.transcript(key, limit)
        return await self.store.history(key, limit)

    async def _handle(self, key: str, inbound: Inbound) -> Outcome:
        conv = await self.store.get(key)
        current = conv.get("language") or inbound.language_hint or language.DEFAULT_LANGUAGE
        if current not in language.SUPPORTED:
            current = language.DEFAULT_LANGUAGE

        def refuse(reason: str, lang: str = current, **values: object) -> Outcome:
            log.info("refused message for %s on %s: %s", key, inbound.channel, reason)
            return Outcome(key, lang, [BotMessage(messages.text(reason, lang, **values), is_error=True)])

        if inbound.contact_phone:
            return await self._shared_contact(key, inbound, current)
        if not isinstance(inbound.text, str):
            return refuse("not_text")
        text = inbound.text.replace("\x00", "").strip()
        if inbound.media and not text:
            await self._log(key, "customer", "", inbound.channel, media=inbound.media, message_id=inbound.message_id)
            reply = BotMessage(messages.text("text_only", current))
            await self._log(key, "bot", reply.text, inbound.channel)
            return Outcome(key, current, [reply])
        if not text:
            return refuse("empty")
        if len(text.encode("utf-8")) > self.max_bytes:
            return refuse("too_long", limit=self.max_bytes)

        lang = language.choose(text, current)
        to_rasa = await self._numbered_choice(key, inbound.channel, text) or text
        if _is_emoji_only(text):
            to_rasa = _EMOJI_INTENTS.get(text)
        await self._log(key, "customer", text, inbound.channel, media=inbound.media, message_id=inbound.message_id)
        await self.store.update(key, language=lang, last_channel=inbound.channel, last_address=inbound.address)
        if to_rasa is None:
            reply = BotMessage(messages.text("emoji_only", lang))
            await self._log(key, "bot", reply.text, inbound.channel)
            return Outcome(key, lang, [reply])
        return await self._ask_rasa(key, inbound, to_rasa, lang)

    async def _ask_rasa(self, key: str, inbound: Inbound, to_rasa: str, lang: str) -> Outcome:
        metadata: dict[str, Any] = {"channel": inbound.channel, "language": lang}
        if inbound.channel in IDENTIFYING_CHANNELS:
            metadata["address"] = inbound.address
        try:
            raw = await self.rasa.send(key, to_rasa, metadata)
        except RasaUnavailable as exc:
            log.error("rasa unavailable for %s: %s", key, exc)
            return Outcome(key, lang, [BotMessage(messages.text("bot_unavailable", lang), is_error=True)])

        replies: list[BotMessage] = []
        follow_ups: list[dict[str, Any]] = []
        for item in raw:
            custom = item.get("custom") or {}
            if custom.get("set_language") in language.SUPPORTED:
                lang = custom["set_language"]
                await self.store.update(key, language=lang)
            if custom.get("identified_customer"):
                key = await self.link(key, int(custom["identified_customer"]), inbound.channel, inbound.address)
            if custom.get("continue_on"):
                follow_ups.append(custom)
            message = BotMessage(
                text=item.get("text") or "",
                buttons=[Button(str(b.get("title", "")), str(b.get("payload", ""))) for b in item.get("buttons") or []],
                image=item.get("image"),
            )
            if not (message.text or message.buttons or message.image):
                continue
            replies.append(message)
            await self._log(key, "bot", message.text, inbound.channel,
                            buttons=[b.__dict__ for b in message.buttons], image=message.image)
        await self.store.remember_buttons(key, inbound.channel, [b for m in replies for b in m.buttons])
        for custom in follow_ups:
            replies.extend(await self._continue_on(key, custom["continue_on"], lang))
        return Outcome(key, lang, replies)

    async def _numbered_choice(self, key: str, channel: str, text: str) -> str | None:
        """On SMS and WhatsApp buttons are a numbered list: "2" means the second button."""
        if channel not in NUMBERED_CHANNELS or not text.isdigit():
            return None
        buttons = await self.store.last_buttons(key, channel)
        index = int(text) - 1
        return buttons[index]["payload"] if 0 <= index < len(buttons) else None

    async def _shared_contact(self, key: str, inbound: Inbound, lang: str) -> Outcome:
        """A phone number the sender proved is theirs (Telegram's contact button) links them."""
        customer = await self.records.by_phone(inbound.contact_phone) if self.records else None
        if customer is None:
            reply = BotMessage(messages.text("contact_unknown", lang))
            await self._log(key, "bot", reply.text, inbound.channel)
            return Outcome(key, lang, [reply])
        await self.records.add_identity(customer.id, inbound.channel, inbound.address)
        key = await self.link(key, customer.id, inbound.channel, inbound.address)
        lang = customer.language if customer.language in language.SUPPORTED else lang
        await self.store.update(key, language=lang)
        # Rasa learns who it is from the channel address on the next turn: say hello through it.
        return await self._ask_rasa(key, inbound, "/greet", lang)

    # -- writing first ---------------------------------------------------------------------------
    async def _continue_on(self, key: str, channel: str, lang: str) -> list[BotMessage]:
        conv = await self.store.get(key)
        customer = await self.records.customer(int(conv["customer_id"])) if conv.get("customer_id") and self.records else None
        address = address_on(customer, channel) if customer else None
        sender = self.senders.get(channel)
        if address is None or sender is None:
            return [BotMessage(messages.text("channel_unavailable", lang, channel=channel))]
        first_name = customer.name.split()[0]
        hello = BotMessage(messages.text("continue_here", lang, name=first_name))
        try:
            await sender.send(address, [hello], proactive=True)
        except Exception as exc:  # DeliveryError and anything the service throws back
            log.warning("continue on %s for %s failed: %s", channel, key, type(exc).__name__)
            return [BotMessage(messages.text("channel_unavailable", lang, channel=channel))]
        await self.store.bind(channel, address, key)
        await self._log(key, "bot", hello.text, channel)
        return []

    async def notify(self, customer_id: int, text_by_language: dict[str, str], channel: str | None = None) -> str:
        """Write first to a customer: their preferred channel (with consent) unless one is given.
        Returns the channel used; raises LookupError when none can be used."""
        customer = await self.records.customer(customer_id)
        if customer is None:
            raise LookupError("unknown customer")
        if channel is None and not customer.consent_proactive:
            raise LookupError("no consent for proactive messages")
        channel = channel or customer.preferred_channel
        address, sender = address_on(customer, channel), self.senders.get(channel)
        if address is None or sender is None:
            raise LookupError(f"cannot reach the customer on {channel}")
        lang = customer.language if customer.language in text_by_language else "nl"
        message = BotMessage(text_by_language[lang])
        await sender.send(address, [message], proactive=True)
        key = await self.store.customer_conversation(customer_id)
        if key:
            await self._log(key, "bot", message.text, channel)
        return channel


def address_on(customer: Any, channel: str) -> str | None:
    if channel in ("sms", "whatsapp"):
        return customer.phone or None
    if channel == "telegram":
        return customer.telegram_user_id or None
    if channel == "email":
        return customer.email or None
    return None
