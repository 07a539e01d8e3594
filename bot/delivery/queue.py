"""Outbound delivery on SMS, WhatsApp and Telegram: in order, retried for a bounded time, and
honest in the transcript.

Every reply, agent message or notice for a channel whose service can fail goes through
`Delivery.submit`. Per (channel, address) there is one FIFO queue with one worker, so a later
message to the same customer waits for the earlier one, also while the provider hangs (each
call has its own timeout; the queue never lets a later message overtake). Different customers
and different channels never wait for each other.

A message that cannot be delivered (5xx, 429, timeouts, connection refused: `DeliveryError` with
`final=False`) is tried again with backoff (1, 2, 4 ... at most 30 s) until `retry_for` seconds
(DELIVERY_RETRY_SECONDS, default 120) after it was queued; a refusal that is final (4xx such as
an invalid number, a blocked bot, no template outside the WhatsApp window: `final=True`) fails at
once. Its transcript rows say so in their data: `delivery` is "pending" while queued or
retrying, "sent" once the provider accepted it, "failed" with `delivery_error` (the reason, no
phone number or text) when it was given up. A row is never left looking sent when it was not.

Which transcript rows a turn's replies are: the service writes them (`ConversationService._log`)
while the channel adapter waits for `service.handle`; `collect()` around that call gathers the
row ids, and `Collected.rows_for(replies, channel)` pairs them with the replies.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import os
import time
from collections import deque
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Iterator, Sequence

from bot.delivery.errors import DeliveryError

if TYPE_CHECKING:
    from bot.records.repository import Records
    from bot.pipeline.types import BotMessage

log = logging.getLogger(__name__)

RETRY_FOR = 120.0
BACKOFF = (1.0, 2.0, 4.0, 8.0, 16.0, 30.0)
WAIT_FOR_AGENT = 4.0   # how long a desk action waits to learn whether its message went out

PENDING, SENT, FAILED = "pending", "sent", "failed"


def retry_for_from_env() -> float:
    raw = os.environ.get("DELIVERY_RETRY_SECONDS", "")
    try:
        return float(raw) if raw else RETRY_FOR
    except ValueError as exc:
        raise SystemExit(f"DELIVERY_RETRY_SECONDS must be a number, got {raw!r}") from exc


# -- which transcript rows a turn wrote ------------------------------------------------------------

@dataclass
class Noted:
    row: int
    sender: str
    channel: str
    text: str


class Collected:
    def __init__(self) -> None:
        self.noted: list[Noted] = []

    def rows_for(self, replies: Sequence["BotMessage"], channel: str) -> list[int | None]:
        """The transcript row of each reply (None for a reply that has none, e.g. an error notice)."""
        free = [n for n in self.noted if n.channel == channel and n.sender in ("bot", "agent")]
        out: list[int | None] = []
        for reply in replies:
            match = next((n for n in free if n.text == (reply.text or "")), None)
            if match is not None:
                free.remove(match)
            out.append(match.row if match else None)
        return out


_COLLECTING: contextvars.ContextVar[Collected | None] = contextvars.ContextVar("transcript_rows", default=None)


@contextmanager
def collect() -> Iterator[Collected]:
    collected = Collected()
    token = _COLLECTING.set(collected)
    try:
        yield collected
    finally:
        _COLLECTING.reset(token)


def note(row: int | None, sender: str, channel: str, text: str) -> None:
    """Called by the service for every transcript row it writes."""
    collected = _COLLECTING.get()
    if collected is not None and row is not None:
        collected.noted.append(Noted(row, sender, channel, text or ""))


# -- the queue ---------------------------------------------------------------------------------------

@dataclass
class Result:
    status: str            # sent, failed (pending: not known within the wait)
    reason: str = ""


Send = Callable[[list["BotMessage"]], Awaitable[None]]


@dataclass
class Job:
    channel: str
    address: str
    messages: list["BotMessage"]
    rows: list[int | None]
    send: Send
    conversation: str | None
    what: str
    queued: float = field(default_factory=time.monotonic)
    future: asyncio.Future = field(default_factory=lambda: asyncio.get_running_loop().create_future())
    pending: asyncio.Task | None = None


class Delivery:
    def __init__(self, senders: dict[str, Any], records: "Records | None" = None, *,
                 retry_for: float = RETRY_FOR, backoff: Sequence[float] = BACKOFF,
                 on_change: Callable[[str], Awaitable[None]] | None = None) -> None:
        self.senders = senders
        self.records = records
        self.retry_for = retry_for
        self.backoff = tuple(backoff)
        self.on_change = on_change
        self._queues: dict[tuple[str, str], deque[Job]] = {}
        self._workers: dict[tuple[str, str], asyncio.Task] = {}

    def submit(self, channel: str, address: str, messages: list["BotMessage"], *,
               rows: Sequence[int | None] = (), proactive: bool = False, conversation: str | None = None,
               send: Send | None = None, what: str = "reply") -> asyncio.Future:
        """Queue `messages` for (channel, address) behind everything queued there before; returns
        a future with the `Result`. Synchronous on purpose: the order is fixed by this call."""
        if send is None:
            sender = self.senders[channel]

            async def send(batch: list["BotMessage"]) -> None:
                await sender.send(address, batch, proactive=proactive)

        rows = list(rows) + [None] * (len(messages) - len(rows))
        job = Job(channel, address, list(messages), rows, send, conversation, what)
        if any(r is not None for r in rows) and self.records is not None:
            job.pending = asyncio.create_task(self._mark([r for r in rows if r is not None], PENDING))
        key = (channel, address)
        self._queues.setdefault(key, deque()).append(job)
        if key not in self._workers:
            self._workers[key] = asyncio.create_task(self._work(key))
        return job.future

    async def wait(self, future: asyncio.Future, timeout: float = WAIT_FOR_AGENT) -> Result:
        """The result if known within `timeout`, else Result("pending") (delivery goes on)."""
        try:
            return await asyncio.wait_for(asyncio.shield(future), timeout)
        except asyncio.TimeoutError:
            return Result(PENDING)

    @property
    def busy(self) -> int:
        return sum(len(q) for q in self._queues.values())

    async def drain(self, timeout: float) -> int:
        """Wait at most `timeout` s for every queued message; then stop. Returns how many were left
        (their rows stay "pending": not sent, and not claimed to be)."""
        workers = set(self._workers.values())
        if workers:
            await asyncio.wait(workers, timeout=max(0.0, timeout))
        left = self.busy
        for task in list(self._workers.values()):
            task.cancel()
        for task in list(self._workers.values()):
            try:
                await task
            except (asyncio.CancelledError, Exception):
                pass
        if left:
            log.warning("shutdown: %d outbound message(s) not delivered in time; their transcript rows stay pending",
                        left)
        return left

    # -- the worker ------------------------------------------------------------------------------
    async def _work(self, key: tuple[str, str]) -> None:
        queue = self._queues[key]
        try:
            while queue:
                job = queue[0]
                try:
                    result = await self._deliver(job)
                except asyncio.CancelledError:
                    if not job.future.done():
                        job.future.set_result(Result(PENDING, "gateway stopped"))
                    raise
                except Exception as exc:  # a bug or the database: never stop the queue for it
                    log.exception("delivery of a %s on %s failed unexpectedly", job.what, job.channel)
                    result = Result(FAILED, type(exc).__name__)
                queue.popleft()
                if not job.future.done():
                    job.future.set_result(result)
        finally:
            self._workers.pop(key, None)
            if not queue:
                self._queues.pop(key, None)

    async def _deliver(self, job: Job) -> Result:
        remaining = list(zip(job.messages, job.rows))
        deadline = job.queued + self.retry_for
        attempt = 0
        retried = False
        while remaining:
            attempt += 1
            try:
                await job.send([m for m, _ in remaining])
                await self._settle(job, [r for _, r in remaining], SENT, notify=retried)
                return Result(SENT)
            except DeliveryError as exc:  # the service refused or is down: the sender says which
                done = min(int(getattr(exc, "delivered", 0) or 0), len(remaining))
                if done:
                    await self._settle(job, [r for _, r in remaining[:done]], SENT)
                    remaining = remaining[done:]
                reason = str(exc) or type(exc).__name__
                final = bool(getattr(exc, "final", False))
                delay = self.backoff[min(attempt, len(self.backoff)) - 1]
                if final or time.monotonic() + delay > deadline:
                    waited = time.monotonic() - job.queued
                    why = reason if final else f"given up after {attempt} attempts in {waited:.0f} s: {reason}"
                    log.error("%s on %s not delivered (%s)", job.what, job.channel, why)
                    await self._settle(job, [r for _, r in remaining], FAILED, why, notify=True)
                    return Result(FAILED, why)
                log.warning("%s on %s: attempt %d failed (%s); again in %.0f s", job.what, job.channel,
                            attempt, reason, delay)
                retried = True
                await asyncio.sleep(delay)
            except Exception as exc:  # a bug in a sender, not the service: never tried again
                log.exception("%s on %s: the sender failed", job.what, job.channel)
                why = f"sender failed: {type(exc).__name__}"
                await self._settle(job, [r for _, r in remaining], FAILED, why, notify=True)
                return Result(FAILED, why)
        return Result(SENT)

    async def _settle(self, job: Job, rows: list[int | None], status: str, reason: str = "",
                      notify: bool = False) -> None:
        ids = [r for r in rows if r is not None]
        if job.pending is not None:
            await asyncio.gather(job.pending, return_exceptions=True)
        if ids and self.records is not None:
            await self._mark(ids, status, reason)
        if notify and job.conversation and self.on_change is not None:
            try:
                await self.on_change(job.conversation)
            except Exception as exc:  # the desk learns it on its next refresh
                log.warning("delivery: telling the desk failed: %s", type(exc).__name__)

    async def _mark(self, ids: list[int], status: str, reason: str = "") -> None:
        try:
            await self.records.mark_delivery(ids, status, reason)
        except Exception as exc:
            log.error("delivery: transcript rows %s not marked %s: %s", ids, status, type(exc).__name__)
