"""What every channel adapter shares.

An adapter (channels/<name>.py) does three things:
1. receives the channel's webhook, validates it at the edge (signature or secret: 403; body that
   does not parse or lacks fields: 400; too large: 413), answers at once, and hands an
   `Inbound` to `ConversationService.handle` in the background;
2. sends the `Outcome.replies` back to the address the message came from, rendered for its
   channel (`render_numbered` for SMS and WhatsApp, inline keyboards on Telegram, quick replies
   on web), within the channel's length limit;
3. implements `Sender.send` so the gateway can write first (proactive messages, promised answers)
   to a customer on that channel.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

from bot.pipeline.types import BotMessage

log = logging.getLogger(__name__)


class Sender(Protocol):
    name: str

    async def send(self, address: str, messages: list[BotMessage], *, proactive: bool = False) -> None:
        """Deliver messages to `address`; raise DeliveryError when the service refuses or is down."""


class DeliveryError(Exception):
    """The channel's service did not accept the message (after the sender's quick retries).

    `final`: trying again will not help (a 4xx such as an invalid number, a blocked bot, no
    template outside the WhatsApp window); otherwise bot/delivery/queue.py tries again later.
    `delivered`: how many of the messages handed to `send` went out before this one failed.
    """

    def __init__(self, message: str, *, final: bool = False, delivered: int = 0) -> None:
        super().__init__(message)
        self.final = final
        self.delivered = delivered


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


class BackgroundTasks:
    """Work handed on after a webhook was answered; awaited on shutdown so nothing is lost."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task] = set()

    def spawn(self, coro, what: str) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)

        def done(t: asyncio.Task) -> None:
            self._tasks.discard(t)
            if not t.cancelled() and t.exception() is not None:
                log.error("background task %s failed", what, exc_info=t.exception())

        task.add_done_callback(done)

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
