"""The channel adapter interface: what every channel (channels/<name>.py) provides, and what the
rest of the system may ask about a channel.

A channel is described by a `Channel`: its name ("sms"), its display names in Dutch and English,
its `Capabilities` (does the address prove who writes, are buttons a numbered list, how long may
a message be, is there a reply window such as WhatsApp's 24 hours) and which field of a customer's
record is their address on it (`address_of`). Nothing in a description needs the gateway, so the
action server and the records ask channels/registry.py about channels without starting any.

A `ChannelAdapter` brings one provider's channels into the gateway (Twilio serves sms and
whatsapp through one webhook; most adapters serve one channel). bot/gateway/app.py loops over
channels/registry.py and, for every adapter:
1. `add_routes(app)` when the app is created: its webhooks, which answer 503 until it started;
2. `enabled(settings)`: are its settings there? Without them the channel is off (no routes
   answer, no sender); `start(context)` otherwise, in the gateway's cleanup context;
3. `use(inbox)`: every inbound message is stored in the inbox (bot/pipeline/inbox.py) before its
   webhook is answered (413/415/403/400 at the edge for what is too large, of the wrong type,
   unsigned or malformed), and handled from there;
4. `senders()`: one `Sender` per configured channel, for everything the gateway sends first
   (proactive messages, codes from the outbox, a person's answers). `send` raises `DeliveryError`
   and nothing else when the channel's service refuses or cannot be reached;
5. `close()` on shutdown, after the work in flight.

Adding a channel: one file with its adapter (and its settings in bot/shared/settings.py), and one
line in channels/registry.py.
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, AsyncIterator, ClassVar, Mapping, Protocol

from bot.delivery import errors as _errors

if TYPE_CHECKING:
    import aiohttp
    from aiohttp import web
    from redis.asyncio import Redis

    from bot.pipeline.service import ConversationService
    from bot.pipeline.types import BotMessage
    from bot.records.repository import Records
    from bot.shared.settings import Settings

log = logging.getLogger(__name__)

WEBHOOK_CONCURRENCY = 64   # webhook requests handled at once, and as many handed on
ADMIT_WAIT = 0.5           # seconds a webhook waits for a free slot before it answers 503


# -- what a channel is -----------------------------------------------------------------------------

@dataclass(frozen=True)
class Capabilities:
    # The inbound address proves who writes (a phone number Twilio saw, a Telegram account), so
    # a known address identifies the customer at once. A web chat session or a From: header
    # proves nothing.
    identifies_sender: bool = False
    # Buttons are shown as a numbered list ("1. Ja"), and a reply "2" means the second button.
    numbered_buttons: bool = False
    # Characters of one message the channel's service accepts (None: no limit worth naming).
    max_length: int | None = None
    # Seconds after the customer's last message within which free-form messages may be sent
    # (WhatsApp: 24 hours); outside it a proactive message must be a template. None: any time.
    reply_window: float | None = None


@dataclass(frozen=True)
class Channel:
    name: str
    display: Mapping[str, str]                 # {"nl": ..., "en": ...}: how customers and agents read it
    capabilities: Capabilities = Capabilities()
    # The customer's field that is their address on this channel ("phone", "email",
    # "telegram_user_id"): where we can write to them first. None: we cannot (web chat).
    address_field: str | None = None
    # The record field whose value identifies the customer on this channel in the contact
    # identities (imports, preference changes); defaults to `address_field`. The web chat's is
    # the business's web login, which identifies but is no address to write to.
    identity_field: str | None = None

    @property
    def identified_by(self) -> str | None:
        return self.identity_field or self.address_field

    def address_of(self, customer: Any) -> str | None:
        """Where to reach `customer` (a records Customer) on this channel; None when we cannot."""
        if customer is None or not self.address_field:
            return None
        return getattr(customer, self.address_field, None) or None

    def label(self, language: str) -> str:
        return self.display.get("en" if language == "en" else "nl") or self.name


class Sender(Protocol):
    name: str

    async def send(self, address: str, messages: list[BotMessage], *, proactive: bool = False) -> None:
        """Deliver messages to `address`; raise DeliveryError when the service refuses or is down."""


DeliveryError = _errors.DeliveryError  # every sender raises it (bot/delivery/errors.py)


# -- what an adapter does in the gateway -------------------------------------------------------------

@dataclass
class ChannelContext:
    """What the gateway hands an adapter when it starts it (bot/gateway/app.py)."""

    app: web.Application
    settings: Settings
    service: ConversationService
    http: aiohttp.ClientSession      # the shared client: default timeout and connection limit
    redis: Redis
    records: Records
    tasks: BackgroundTasks           # bounded: work handed on after a webhook was answered


class ChannelAdapter:
    """One provider's channels in the gateway. Subclasses set `channels` and override what
    they do; the defaults are an adapter that is never enabled."""

    channels: ClassVar[tuple[Channel, ...]] = ()
    needs: ClassVar[str] = ""              # the settings that switch it on (for `make run`)
    webhook: ClassVar[str | None] = None   # the path its service calls, if any

    @classmethod
    def enabled(cls, settings: Settings) -> bool:
        """Its settings are there. False: the gateway does not start it (the channel is off)."""
        return False

    @classmethod
    def summary(cls, settings: Settings) -> list[str]:
        """One line per channel for `make run`: on (and its webhook), or what to set."""
        if not cls.enabled(settings):
            return [f"{c.display['en']}: off (set {cls.needs})" for c in cls.channels]
        on = f"on (webhook: $PUBLIC_BASE_URL{cls.webhook})" if cls.webhook else "on"
        return [f"{c.display['en']}: {on}" for c in cls.channels]

    @classmethod
    def add_routes(cls, app: web.Application) -> None:
        """Its inbound routes, added when the app is created (routes cannot be added once it has
        started): they answer 503 until `start` ran, and for good when it is not enabled."""

    @classmethod
    async def start(cls, context: ChannelContext) -> "ChannelAdapter":
        """Build the adapter once the gateway's resources are open (no network call needed)."""
        raise NotImplementedError

    def senders(self) -> dict[str, Sender]:
        """The outbound sender of each of its channels that is configured, by channel name."""
        return {}

    def use(self, inbox: Any) -> None:
        """Store every inbound message in the inbox before answering; handle it from there."""

    async def close(self) -> None:
        """Release what `start` opened; called on shutdown after the work in flight."""


# -- shared by the adapters ------------------------------------------------------------------------

def render_numbered(messages: list[BotMessage], limit: int, separator: str = "\n\n") -> str:
    """Messages as one text, buttons as one numbered list ("1. Ja"), cut to `limit` characters."""
    parts = []
    for message in messages:
        part = message.text or ""
        if message.buttons:
            listed = "\n".join(f"{i}. {b.title}" for i, b in enumerate(message.buttons, 1))
            part = f"{part}\n{listed}" if part else listed
        if message.image:
            part = f"{part}\n{message.image}" if part else message.image
        if part:
            parts.append(part)
    text = separator.join(parts)
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


@dataclass
class BackgroundTasks:
    """Webhook work, bounded. At most `limit` webhook requests are handled at once (`admit`: a
    request waits up to `wait` seconds for a slot, else its webhook answers 503 and the channel
    sends it again), and at most `limit` tasks run after their webhook was answered (`spawn`
    returns False when full: 503 too). Awaited on shutdown (`drain`) so nothing is lost."""

    limit: int = WEBHOOK_CONCURRENCY       # the gateway's: WEBHOOK_CONCURRENCY (bot/shared/settings.py)
    wait: float = ADMIT_WAIT
    _tasks: set = field(default_factory=set, init=False, repr=False)
    _handling: int = field(default=0, init=False, repr=False)
    _freed: asyncio.Condition | None = field(default=None, init=False, repr=False)

    def spawn(self, coro, what: str) -> bool:
        """Run `coro` in the background; False (and `coro` closed, never run) when `limit` tasks
        are running already."""
        if len(self._tasks) >= self.limit:
            coro.close()
            log.warning("background work full (%d running): %s refused", len(self._tasks), what)
            return False
        task = asyncio.create_task(coro)
        self._tasks.add(task)

        def done(t: asyncio.Task) -> None:
            self._tasks.discard(t)
            if not t.cancelled() and t.exception() is not None:
                log.error("background task %s failed", what, exc_info=t.exception())

        task.add_done_callback(done)
        return True

    @asynccontextmanager
    async def admit(self, what: str = "webhook") -> AsyncIterator[bool]:
        """A slot for handling one webhook request: yields False when none came free in time."""
        if self._freed is None:
            self._freed = asyncio.Condition()
        admitted = False
        async with self._freed:
            if self._handling >= self.limit:
                try:
                    await asyncio.wait_for(self._freed.wait_for(lambda: self._handling < self.limit), self.wait)
                except asyncio.TimeoutError:
                    pass
            if self._handling < self.limit:
                self._handling += 1
                admitted = True
        if not admitted:
            log.warning("%s refused with 503: %d requests being handled", what, self._handling)
            yield False
            return
        try:
            yield True
        finally:
            async with self._freed:
                self._handling -= 1
                self._freed.notify()

    @property
    def handling(self) -> int:
        return self._handling

    def __len__(self) -> int:
        return len(self._tasks)

    async def drain(self, timeout: float = 30) -> int:
        """Wait at most `timeout` s for the work in flight; cancel what is left. Returns how many
        tasks were cancelled."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=max(0.0, timeout))
        left = list(self._tasks)
        for task in left:
            task.cancel()
        if left:
            log.warning("shutdown: %d background task(s) cancelled after %.0f s", len(left), timeout)
            await asyncio.wait(left, timeout=1)
        return len(left)
