"""The inbox: every inbound message is durable before its webhook is answered, and processed
from here, in order per sender, by exactly one gateway process, with retries.

Storing (`Inbox.store`, called by each channel's webhook before it answers):
1. a row in the SQL `inbox` table (unique on channel + message id: a webhook retry is not stored
   twice); when the database does not answer within `STORE_TIMEOUT`,
2. a field in one Redis hash (`<prefix>:inbox:fallback`, HSETNX on channel + message id), which
   every gateway moves into the table once the database answers again (production Redis runs
   with append-only persistence, so an acknowledged write survives a Redis restart);
3. when neither can store it: `Stored.FAILED`, and the webhook answers 503 (Twilio and Telegram
   send it again later; the web chat tells the customer to send it again).

Processing (`Inbox.run`, in every gateway process): a pending message is claimed with one
conditional UPDATE (a lease with an expiry, renewed while the message is worked on), and only
when no earlier message of the same sender (channel + address) is still pending, so the
messages of one sender are handled one after the other, in the order they came in, by one
process at a time. A failure puts the message back with a backoff; a crashed process's lease
runs out and another process (or the restarted one) takes the message over. A message that
cannot be processed for `GIVE_UP_SECONDS` (or that keeps failing on an error that is not an
outage) is marked failed and the customer is told to send it again.

Rasa or the action server unavailable: the turn raises `Deferred`, the customer hears within
seconds that the message is kept and when to expect an answer (`inbox_kept`, at most once per
sender per `INTERIM_EVERY`), and the message is tried again until the service is back.
`TURN` (a context variable) tells the conversation service that it runs a stored message,
which attempt this is, and whom to tell when Rasa is slow.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import re
import logging
import os
import time
import uuid
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Awaitable, Callable

from redis.asyncio import Redis
from sqlalchemy import and_, delete, func, insert, or_, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.texts import messages
from bot.records.models import InboxMessage

log = logging.getLogger(__name__)

TABLE = InboxMessage.__table__
STORE_TIMEOUT = 3.0          # seconds the database may take to store a message at the webhook
LEASE_SECONDS = 10.0         # a claim's lease; renewed every third of it while the message is worked on
POLL_SECONDS = 1.0           # how often every process looks for work (a new message wakes it at once)
MAX_BACKOFF = 10.0           # the longest wait between two attempts at one message
MAX_RUNNING = 64             # messages worked on at once in one process
GIVE_UP_SECONDS = float(os.environ.get("INBOX_GIVE_UP_SECONDS", "3600"))  # then: failed, customer told
MAX_BUG_ATTEMPTS = 5         # attempts at a message failing on something that is not an outage
INTERIM_AFTER = 4.0          # seconds after receipt before a slow answer gets an interim message (BUSY_NOTE_SECONDS)


def interim_after() -> float:
    """BUSY_NOTE_SECONDS, else INTERIM_AFTER: a turn not answered by then gets one "it takes a bit
    longer, your message is kept" note (within the issue's 5 s)."""
    raw = os.environ.get("BUSY_NOTE_SECONDS", "")
    try:
        return max(0.0, float(raw)) if raw else INTERIM_AFTER
    except ValueError:
        return INTERIM_AFTER
INTERIM_EVERY = 300.0        # a sender is told "kept" at most once in this many seconds
KEEP_DONE_SECONDS = 2 * 24 * 3600  # done rows stay this long (they de-duplicate webhook retries)


class Stored(Enum):
    STORED = "stored"
    FALLBACK = "fallback"     # in Redis until the database answers again
    DUPLICATE = "duplicate"   # a retry of a message already stored
    FAILED = "failed"         # nowhere: answer 503

    @property
    def ok(self) -> bool:
        return self is not Stored.FAILED


class Deferred(Exception):
    """Rasa or the action server cannot take the turn now: keep the message, tell the customer."""

    def __init__(self, lang: str, reason: str) -> None:
        super().__init__(reason)
        self.lang = lang
        self.reason = reason


@dataclass
class Turn:
    """What the conversation service knows about the stored message it is handling."""

    attempt: int
    received: float
    on_delay: Callable[[str], Awaitable[None]] | None = None

    @property
    def retry(self) -> bool:
        return self.attempt > 1


TURN: contextvars.ContextVar[Turn | None] = contextvars.ContextVar("inbox_turn", default=None)


def current_turn() -> Turn | None:
    return TURN.get()


Process = Callable[[dict[str, Any]], Awaitable[None]]
Notify = Callable[[str, dict[str, Any], str, str], Awaitable[None]]  # (address, payload, text, lang)


@dataclass
class Handler:
    process: Process     # handles the stored payload: the turn and its replies
    notify: Notify       # tells the sender something from the gateway (kept, failed)


_SURROGATES = re.compile("[\ud800-\udfff]")
_KEPT_SURROGATES = re.compile("[\U000f0000-\U000f07ff]")  # plane-15 private use: never typed by customers


def _clean(value: Any) -> Any:
    """Strings a database takes: no NUL characters, and lone UTF-16 surrogates (which have no
    UTF-8) kept as private-use characters, so `_restore` gives the handler the message as it came
    and the service can tell the customer it cannot read it."""
    if isinstance(value, str):
        value = value.replace("\x00", "")
        return _SURROGATES.sub(lambda m: chr(0xF0000 + ord(m.group()) - 0xD800), value)
    if isinstance(value, dict):
        return {_clean(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def _restore(value: Any) -> Any:
    if isinstance(value, str):
        return _KEPT_SURROGATES.sub(lambda m: chr(0xD800 + ord(m.group()) - 0xF0000), value)
    if isinstance(value, dict):
        return {_restore(k): _restore(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_restore(v) for v in value]
    return value


def _outage(exc: BaseException) -> bool:
    """An error that passes when a service comes back (worth retrying until GIVE_UP_SECONDS)."""
    from redis.exceptions import RedisError
    from sqlalchemy.exc import DBAPIError, OperationalError, TimeoutError as PoolTimeout

    import aiohttp

    from bot.pipeline.rasa_client import RasaUnavailable

    outages = (RedisError, DBAPIError, OperationalError, PoolTimeout, OSError, asyncio.TimeoutError,
               aiohttp.ClientError, RasaUnavailable, Deferred, ConnectionError)
    return isinstance(exc, outages)


class Inbox:
    def __init__(self, engine: AsyncEngine, redis: Redis, key_prefix: str,
                 language_of: Callable[[str, str, dict], Awaitable[str]] | None = None) -> None:
        self.engine = engine
        self.redis = redis
        self.fallback_key = f"{key_prefix}:inbox:fallback"
        self.done_prefix = f"{key_prefix}:inbox:done:"
        self.owner = f"{os.getpid()}-{uuid.uuid4().hex[:12]}"
        self.handlers: dict[str, Handler] = {}
        self.language_of = language_of
        self._wake = asyncio.Event()
        self._running: dict[int, asyncio.Task] = {}
        self._streams: set[tuple[str, str]] = set()
        self._storing: dict[tuple[str, str], list] = {}  # sender -> [lock, users]: one store at a time
        self._held: set[tuple[str, str]] = set()  # senders with a message still in the Redis fallback
        self._last_cleanup = 0.0

    def register(self, channel: str, process: Process, notify: Notify) -> None:
        self.handlers[channel] = Handler(process, notify)

    # -- storing ----------------------------------------------------------------------------------
    async def store(self, channel: str, message_id: str, address: str, payload: dict[str, Any]) -> Stored:
        """Make the message durable; only then may the webhook answer 2xx. One sender's messages
        are stored one after another, so a later one never overtakes an earlier one that is still
        on its way into the database or (when that is slow) into Redis."""
        sender = (channel, _clean(str(address))[:80])
        entry = self._storing.setdefault(sender, [asyncio.Lock(), 0])
        entry[1] += 1
        try:
            async with entry[0]:
                return await self._store(channel, message_id, address, payload)
        finally:
            entry[1] -= 1
            if not entry[1]:
                self._storing.pop(sender, None)

    async def _store(self, channel: str, message_id: str, address: str, payload: dict[str, Any]) -> Stored:
        row = {"channel": channel, "message_id": _clean(str(message_id))[:80], "address": _clean(str(address))[:80],
               "payload": _clean(payload), "received_at": time.time(), "status": "pending", "attempts": 0}
        try:
            await asyncio.wait_for(self._insert(row), STORE_TIMEOUT)
            self._wake.set()
            return Stored.STORED
        except IntegrityError:
            log.info("inbox: %s message %s is a retry of one already stored", channel, row["message_id"])
            return Stored.DUPLICATE
        except Exception as exc:  # the database is down, slow or refusing: Redis instead
            log.warning("inbox: database did not store %s message %s (%s), trying Redis",
                        channel, row["message_id"], type(exc).__name__)
        try:
            field_name = f"{channel}:{row['message_id']}"
            added = await asyncio.wait_for(
                self.redis.hsetnx(self.fallback_key, field_name, json.dumps(row, ensure_ascii=False)),
                STORE_TIMEOUT)
            if not added:
                return Stored.DUPLICATE
            return Stored.FALLBACK
        except Exception as exc:
            log.error("inbox: %s message %s could not be stored anywhere (%s)", channel, row["message_id"],
                      type(exc).__name__)
            return Stored.FAILED

    async def _insert(self, row: dict[str, Any]) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(insert(TABLE).values(**row))

    async def move_fallback(self) -> int:
        """Messages Redis kept while the database was down go into the table (retries dropped)."""
        try:
            kept = await self.redis.hgetall(self.fallback_key)
        except Exception:
            return 0
        moved = 0
        remaining = dict(kept)
        for field_name, raw in sorted(kept.items(), key=lambda item: json.loads(item[1])["received_at"]):
            row = json.loads(raw)
            try:
                await self._insert(row)
                moved += 1
            except IntegrityError:
                # stored already (a webhook retry reached the database, or another process moved
                # it): it keeps its place in the sender's order, that of its first arrival
                try:
                    await self._keep_place(row)
                except Exception:
                    break
            except (OperationalError, InterfaceError, OSError, asyncio.TimeoutError, PoolTimeout):
                break  # the database is still away: next round
            except DBAPIError as exc:
                if exc.connection_invalidated:
                    break
                log.error("inbox: message %s could not be moved into the database: %s", field_name,
                          type(exc).__name__)
                continue  # stays in Redis; the others go on
            await self.redis.hdel(self.fallback_key, field_name)
            remaining.pop(field_name, None)
        # a sender with a message still in Redis waits: a later one of theirs must not go first
        self._held = {(r["channel"], r["address"]) for r in map(json.loads, remaining.values())}
        if moved:
            log.info("inbox: moved %d message(s) from Redis into the database", moved)
            self._wake.set()
        return moved

    async def _keep_place(self, row: dict[str, Any]) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(update(TABLE).where(
                TABLE.c.channel == row["channel"], TABLE.c.message_id == row["message_id"],
                TABLE.c.status == "pending", TABLE.c.attempts == 0, TABLE.c.received_at > row["received_at"],
            ).values(received_at=row["received_at"]))

    # -- claiming ---------------------------------------------------------------------------------
    async def _candidates(self, now: float) -> list[tuple[int, str, str]]:
        query = (select(TABLE.c.id, TABLE.c.channel, TABLE.c.address)
                 .where(TABLE.c.status == "pending",
                        or_(TABLE.c.lease_until.is_(None), TABLE.c.lease_until < now))
                 .order_by(TABLE.c.received_at, TABLE.c.id).limit(200))
        async with self.engine.connect() as conn:
            return [tuple(r) for r in (await conn.execute(query)).all()]

    async def claim(self, message: int, now: float | None = None) -> bool:
        """Atomically lease one message, unless it is leased or an earlier one of its sender waits."""
        now = time.time() if now is None else now
        earlier = TABLE.alias("earlier")
        waiting = (select(earlier.c.id)
                   .where(earlier.c.channel == TABLE.c.channel, earlier.c.address == TABLE.c.address,
                          earlier.c.status == "pending",
                          or_(earlier.c.received_at < TABLE.c.received_at,
                              and_(earlier.c.received_at == TABLE.c.received_at, earlier.c.id < TABLE.c.id)))
                   .exists())
        statement = (update(TABLE)
                     .where(TABLE.c.id == message, TABLE.c.status == "pending",
                            or_(TABLE.c.lease_until.is_(None), TABLE.c.lease_until < now), ~waiting)
                     .values(lease_owner=self.owner, lease_until=now + LEASE_SECONDS,
                             attempts=TABLE.c.attempts + 1))
        async with self.engine.begin() as conn:
            result = await conn.execute(statement)
        return result.rowcount == 1

    async def _renew(self, message: int) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(update(TABLE).where(TABLE.c.id == message, TABLE.c.lease_owner == self.owner,
                                                   TABLE.c.status == "pending")
                               .values(lease_until=time.time() + LEASE_SECONDS))

    async def _finish(self, message: int, status: str, error: str | None = None) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(update(TABLE).where(TABLE.c.id == message)
                               .values(status=status, payload={}, lease_until=None, lease_owner=None,
                                       done_at=time.time(), last_error=error))

    async def _release(self, message: int, delay: float, error: str) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(update(TABLE).where(TABLE.c.id == message, TABLE.c.lease_owner == self.owner)
                               .values(lease_owner=None, lease_until=time.time() + delay, last_error=error[:200]))

    # -- running ----------------------------------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> None:
        """Every gateway process: pick up stored messages (on start too) until `stop` is set."""
        while not stop.is_set():
            try:
                await self.round()
            except Exception as exc:  # the database or Redis is down: the next round tries again
                log.warning("inbox round failed: %s", type(exc).__name__)
            self._wake.clear()
            waiter = asyncio.ensure_future(self._wake.wait())
            stopper = asyncio.ensure_future(stop.wait())
            await asyncio.wait({waiter, stopper}, timeout=POLL_SECONDS, return_when=asyncio.FIRST_COMPLETED)
            waiter.cancel()
            stopper.cancel()
        await self.drain(10)

    async def drain(self, timeout: float) -> None:
        if self._running:
            await asyncio.wait(set(self._running.values()), timeout=timeout)

    async def round(self) -> None:
        await self.move_fallback()
        now = time.time()
        for message, channel, address in await self._candidates(now):
            if len(self._running) >= MAX_RUNNING:
                break
            if message in self._running or (channel, address) in self._streams or channel not in self.handlers:
                continue
            if (channel, address) in self._held:
                continue
            if not await self.claim(message, now):
                continue
            self._streams.add((channel, address))
            task = asyncio.create_task(self._work(message))
            self._running[message] = task

            def done(t: asyncio.Task, message=message, stream=(channel, address)) -> None:
                self._running.pop(message, None)
                self._streams.discard(stream)
                self._wake.set()  # the sender's next message may go now

            task.add_done_callback(done)
        if now - self._last_cleanup > 600:
            self._last_cleanup = now
            async with self.engine.begin() as conn:
                await conn.execute(delete(TABLE).where(TABLE.c.status != "pending",
                                                       TABLE.c.done_at < now - KEEP_DONE_SECONDS))

    async def _work(self, message: int) -> None:
        try:
            async with self.engine.connect() as conn:
                row = dict((await conn.execute(select(TABLE).where(TABLE.c.id == message))).mappings().one())
            if row["attempts"] > 1 and await self._was_done(message):
                await self._finish(message, "done")  # answered, but the database missed it then
                return
        except Exception as exc:  # the database or Redis went away: the lease runs out, then again
            log.warning("inbox: message %s not started: %s", message, type(exc).__name__)
            return
        handler = self.handlers[row["channel"]]
        payload = dict(row["payload"] or {})
        keeper = asyncio.create_task(self._keep_lease(message))
        turn = Turn(row["attempts"], row["received_at"],
                    on_delay=lambda lang: self._tell_kept(row, payload, lang, "inbox_slow"))
        token = TURN.set(turn)
        try:
            await handler.process(_restore(payload))
        except Exception as exc:
            keeper.cancel()
            try:
                await self._failed_attempt(row, payload, exc)
            except Exception as again:  # the database is away too: the lease runs out by itself
                log.warning("inbox: message %s attempt not recorded: %s", message, type(again).__name__)
            return
        finally:
            TURN.reset(token)
            keeper.cancel()
        await self._done(message)

    async def _keep_lease(self, message: int) -> None:
        while True:
            await asyncio.sleep(LEASE_SECONDS / 3)
            try:
                await self._renew(message)
            except Exception as exc:
                log.warning("inbox: lease of message %s not renewed: %s", message, type(exc).__name__)

    async def _was_done(self, message: int) -> bool:
        return bool(await self.redis.exists(f"{self.done_prefix}{message}"))

    async def _done(self, message: int) -> None:
        """Answered: record it, in Redis first (a database cut now must not make it run again)."""
        try:
            await self.redis.set(f"{self.done_prefix}{message}", "1", ex=KEEP_DONE_SECONDS)
        except Exception as exc:
            log.warning("inbox: done marker of message %s not set: %s", message, type(exc).__name__)
        delay = 0.5
        deadline = time.monotonic() + 300
        while True:
            try:
                await self._finish(message, "done")
                return
            except Exception as exc:
                if time.monotonic() > deadline:
                    log.error("inbox: message %s answered but not marked done: %s", message, type(exc).__name__)
                    return
                await asyncio.sleep(delay)
                delay = min(delay * 2, MAX_BACKOFF)

    async def _failed_attempt(self, row: dict, payload: dict, exc: Exception) -> None:
        message, attempts = row["id"], row["attempts"]
        reason = f"{type(exc).__name__}: {getattr(exc, 'reason', '')}".rstrip(": ")
        if isinstance(exc, Deferred):
            await self._tell_kept(row, payload, exc.lang, "inbox_kept")
        age = time.time() - row["received_at"]
        bug = not _outage(exc)
        if age > GIVE_UP_SECONDS or (bug and attempts >= MAX_BUG_ATTEMPTS):
            log.error("inbox: %s message %s given up after %d attempts (%s)", row["channel"], row["message_id"],
                      attempts, reason)
            await self._finish(message, "failed", reason[:200])
            await self._notify(row, payload, "inbox_failed", None)
            return
        delay = min(0.5 * 2 ** (attempts - 1), MAX_BACKOFF)
        if bug:
            log.error("inbox: %s message %s attempt %d failed", row["channel"], row["message_id"], attempts,
                      exc_info=exc)
        else:
            log.warning("inbox: %s message %s attempt %d: %s, again in %.1f s", row["channel"], row["message_id"],
                        attempts, reason, delay)
        try:
            await self._release(message, delay, reason)
        except Exception:
            pass  # the database is down: the lease runs out by itself

    async def _tell_kept(self, row: dict, payload: dict, lang: str, key: str) -> None:
        """Tell the sender their message is kept (once per INTERIM_EVERY per sender)."""
        now = time.time()
        try:
            async with self.engine.begin() as conn:
                last = (await conn.execute(select(func.max(TABLE.c.interim_at))
                                           .where(TABLE.c.channel == row["channel"],
                                                  TABLE.c.address == row["address"]))).scalar()
                if last is not None and now - last < INTERIM_EVERY:
                    return
                await conn.execute(update(TABLE).where(TABLE.c.id == row["id"]).values(interim_at=now))
        except Exception as exc:
            log.warning("inbox: interim for message %s not recorded: %s", row["id"], type(exc).__name__)
            return
        await self._notify(row, payload, key, lang)

    async def _notify(self, row: dict, payload: dict, key: str, lang: str | None) -> None:
        if lang is None:
            lang = await self._language(row, payload)
        try:
            await self.handlers[row["channel"]].notify(row["address"], payload, messages.text(key, lang), lang)
        except Exception as exc:
            log.warning("inbox: %s notice for %s message %s not delivered: %s", key, row["channel"],
                        row["message_id"], type(exc).__name__)

    async def _language(self, row: dict, payload: dict) -> str:
        if self.language_of is not None:
            try:
                return await self.language_of(row["channel"], row["address"], payload)
            except Exception:
                pass
        return payload.get("language_hint") or "nl"


@dataclass
class Pending:
    """For tests and the desk: how many messages wait, and how old the oldest is."""

    count: int = 0
    oldest: float | None = None
    by_channel: dict[str, int] = field(default_factory=dict)


async def pending(engine: AsyncEngine) -> Pending:
    async with engine.connect() as conn:
        rows = (await conn.execute(select(TABLE.c.channel, func.count(), func.min(TABLE.c.received_at))
                                   .where(TABLE.c.status == "pending").group_by(TABLE.c.channel))).all()
    result = Pending()
    for channel, count, oldest in rows:
        result.count += count
        result.by_channel[channel] = count
        result.oldest = oldest if result.oldest is None else min(result.oldest, oldest)
    return result
