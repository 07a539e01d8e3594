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
from typing import Any, AsyncIterator

from bot import language, messages
from bot.conversations import ConversationStore
from bot.rasa_client import RasaClient, RasaUnavailable

log = logging.getLogger(__name__)

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
    channel: str
    address: str
    text: Any
    language_hint: str | None = None
    message_id: str | None = None


@dataclass
class Outcome:
    conversation: str
    language: str
    replies: list[BotMessage]


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
    def __init__(self, store: ConversationStore, rasa: RasaClient, max_bytes: int = 4096) -> None:
        self.store = store
        self.rasa = rasa
        self.max_bytes = max_bytes
        # Keeps one conversation's messages in order within this process; Rasa's Redis lock
        # store does the same across processes.
        self._locks = KeyedLocks()

    async def conversation_for(self, channel: str, address: str) -> str:
        return await self.store.key_for(channel, address)

    async def handle(self, inbound: Inbound) -> Outcome:
        key = await self.store.key_for(inbound.channel, inbound.address)
        async with self._locks.hold(key):
            return await self._handle(key, inbound)

    async def _handle(self, key: str, inbound: Inbound) -> Outcome:
        conv = await self.store.get(key)
        current = conv.get("language") or inbound.language_hint or language.DEFAULT_LANGUAGE
        if current not in language.SUPPORTED:
            current = language.DEFAULT_LANGUAGE

        def refuse(reason: str, lang: str = current, **values: object) -> Outcome:
            log.info("refused message for %s on %s: %s", key, inbound.channel, reason)
            return Outcome(key, lang, [BotMessage(messages.text(reason, lang, **values), is_error=True)])

        if not isinstance(inbound.text, str):
            return refuse("not_text")
        text = inbound.text.replace("\x00", "").strip()
        if not text:
            return refuse("empty")
        if len(text.encode("utf-8")) > self.max_bytes:
            return refuse("too_long", limit=self.max_bytes)

        lang = language.choose(text, current)
        to_rasa = text
        if _is_emoji_only(text):
            to_rasa = _EMOJI_INTENTS.get(text)
        await self.store.append(key, "user", text, inbound.channel, message_id=inbound.message_id)
        await self.store.update(key, language=lang, last_channel=inbound.channel)
        if to_rasa is None:
            reply = BotMessage(messages.text("emoji_only", lang))
            await self.store.append(key, "bot", reply.text, inbound.channel)
            return Outcome(key, lang, [reply])

        metadata = {"channel": inbound.channel, "language": lang}
        try:
            raw = await self.rasa.send(key, to_rasa, metadata)
        except RasaUnavailable as exc:
            log.error("rasa unavailable for %s: %s", key, exc)
            return Outcome(key, lang, [BotMessage(messages.text("bot_unavailable", lang), is_error=True)])

        replies: list[BotMessage] = []
        for item in raw:
            custom = item.get("custom") or {}
            if custom.get("set_language") in language.SUPPORTED:
                lang = custom["set_language"]
                await self.store.update(key, language=lang)
            message = BotMessage(
                text=item.get("text") or "",
                buttons=[Button(str(b.get("title", "")), str(b.get("payload", ""))) for b in item.get("buttons") or []],
                image=item.get("image"),
            )
            if not (message.text or message.buttons or message.image):
                continue
            replies.append(message)
            await self.store.append(
                key, "bot", message.text, inbound.channel,
                buttons=[b.__dict__ for b in message.buttons], image=message.image,
            )
        return Outcome(key, lang, replies)
