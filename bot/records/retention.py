"""Retention: old transcripts and old anonymous conversations are deleted on a schedule.

- Transcript rows older than TRANSCRIPT_RETENTION_DAYS (default 365) are deleted, whoever they
  belong to.
- Anonymous provisional conversations (a conversation hash without `customer_id` that is no
  customer's conversation: a visitor who never identified, or the empty shell a provisional
  conversation leaves behind when it joins the customer's) idle for more than
  PROVISIONAL_RETENTION_DAYS (default 30) are deleted: their hash, bindings, buttons, handoff
  item, Rasa tracker and lock, and their transcript rows without a customer. Idle = no transcript
  row and no start newer than the cut-off. Conversations waiting for or with a person are kept.
- Rasa's trackers (which hold every message too) lose their sessions that ended before the
  transcript cut-off; the current session always stays.

The gateway runs `RetentionJob` with APScheduler (AsyncIOScheduler, a cron trigger: daily at
RETENTION_RUN_AT, default 03:30 in the zone of config/service_levels.yml); with several gateway processes a Redis lock
lets one of them run it. `python -m bot.records purge` runs it by hand. The clock is injectable
(`now=` / `clock=`) for tests.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Callable

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.people import state_of as handoff_state
from bot.policy.clock import local_zone
from bot.records.models import Promise, TranscriptEntry

log = logging.getLogger(__name__)

LOCK_SECONDS = 3600


def _days(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SystemExit(f"{name} must be a whole number of days, got {raw!r}") from None
    if value < 1:
        raise SystemExit(f"{name} must be at least 1, got {value}")
    return value


@dataclass(frozen=True)
class RetentionConfig:
    transcript_days: int = 365
    provisional_days: int = 30
    run_at: str = "03:30"             # HH:MM, daily
    timezone: str = field(default_factory=lambda: str(local_zone()))  # config/service_levels.yml

    @classmethod
    def from_env(cls) -> "RetentionConfig":
        run_at = os.environ.get("RETENTION_RUN_AT", "03:30")
        try:
            hour, minute = (int(x) for x in run_at.split(":"))
            if not (0 <= hour < 24 and 0 <= minute < 60):
                raise ValueError
        except ValueError:
            raise SystemExit(f"RETENTION_RUN_AT must be HH:MM, got {run_at!r}") from None
        return cls(_days("TRANSCRIPT_RETENTION_DAYS", 365), _days("PROVISIONAL_RETENTION_DAYS", 30), run_at)


def _utc(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


async def purge_transcripts(engine: AsyncEngine, now: datetime, days: int) -> int:
    cutoff = (now - timedelta(days=days)).astimezone(timezone.utc)
    async with engine.begin() as conn:
        result = await conn.execute(delete(TranscriptEntry.__table__).where(TranscriptEntry.created_at < cutoff))
    return result.rowcount


async def purge_provisional(engine: AsyncEngine, redis, prefix: str, now: datetime, days: int) -> dict[str, int]:
    """Delete anonymous conversations idle for more than `days`."""
    cutoff = (now - timedelta(days=days)).astimezone(timezone.utc)
    k = lambda *parts: ":".join((prefix, *parts))  # noqa: E731
    owned: set[str] = set()
    async for key in redis.scan_iter(match=k("customer", "*"), count=1000):
        value = await redis.get(key)
        if value:
            owned.add(value)
    candidates: dict[str, float] = {}
    async for key in redis.scan_iter(match=k("conv", "*"), count=1000):
        conv = key[len(k("conv", "")):]
        fields = await redis.hgetall(key)
        if not fields or fields.get("customer_id") or conv in owned:
            continue
        if await handoff_state(redis, prefix, conv) in ("waiting", "with_agent"):
            continue
        try:
            started = float(fields.get("created") or 0)
        except ValueError:
            started = 0.0
        if started >= cutoff.timestamp():
            continue
        candidates[conv] = started
    if candidates:  # a transcript row newer than the cut-off: still in use
        async with engine.connect() as conn:
            rows = await conn.execute(
                select(TranscriptEntry.conversation, func.max(TranscriptEntry.created_at))
                .where(TranscriptEntry.conversation.in_(sorted(candidates)))
                .group_by(TranscriptEntry.conversation))
            for conv, last in rows:
                last = _utc(last)
                if last is not None and last >= cutoff:
                    candidates.pop(conv, None)
    counts = {"conversations": len(candidates), "keys": 0, "transcript": 0, "promises": 0}
    if not candidates:
        return counts
    doomed = set(candidates)
    keys: list[str] = []
    async for key in redis.scan_iter(match=k("identity", "*"), count=1000):
        if await redis.get(key) in doomed:
            keys.append(key)
    for conv in sorted(doomed):
        keys += [k("conv", conv), k("tracker", conv), k("lock", conv), k("transcript", conv), k("handoff", conv),
                 k("desk", "deciding", conv)]
        async for key in redis.scan_iter(match=k("buttons", conv, "*"), count=1000):
            keys.append(key)
    for i in range(0, len(keys), 500):
        counts["keys"] += await redis.delete(*keys[i:i + 500])
    await redis.zrem(k("handoff", "waiting"), *sorted(doomed))
    async with engine.begin() as conn:
        for model, name in ((TranscriptEntry, "transcript"), (Promise, "promises")):
            table = model.__table__
            result = await conn.execute(delete(table).where(table.c.conversation.in_(sorted(doomed)),
                                                            table.c.customer_id.is_(None)))
            counts[name] = result.rowcount
    return counts


async def purge_trackers(redis, prefix: str, now: datetime, days: int) -> dict[str, int]:
    """Rasa's trackers hold every message too: drop their sessions that ended before the cut-off.
    The current (last) session always stays, so Rasa's dialogue state is untouched (Rasa loads only
    the last session; slots carry over into each new session, domain.yml session_config)."""
    from redis.exceptions import WatchError

    cutoff = (now - timedelta(days=days)).timestamp()
    counts = {"trackers": 0, "events": 0}
    async for key in redis.scan_iter(match=f"{prefix}:tracker:*", count=500):
        async with redis.pipeline(transaction=True) as pipe:
            try:
                await pipe.watch(key)  # Rasa saving meanwhile wins; tried again on the next run
                raw = await pipe.get(key)
                try:
                    data = json.loads(raw) if raw else None
                except ValueError:
                    data = None
                events = data.get("events") if isinstance(data, dict) else None
                if not isinstance(events, list):
                    continue
                starts = [i for i, e in enumerate(events) if isinstance(e, dict) and e.get("event") == "action"
                          and e.get("name") == "action_session_start"]
                if len(starts) < 2:
                    continue
                keep_from = starts[-1]
                for j, start in enumerate(starts[:-1]):
                    session = events[start:starts[j + 1]]
                    if max(float(e.get("timestamp") or 0) for e in session if isinstance(e, dict)) >= cutoff:
                        keep_from = start
                        break
                if keep_from == 0:
                    continue
                data["events"] = events[keep_from:]
                pipe.multi()
                pipe.set(key, json.dumps(data), keepttl=True)
                await pipe.execute()
                counts["trackers"] += 1
                counts["events"] += keep_from
            except WatchError:
                continue
    return counts


async def purge(engine: AsyncEngine, redis, prefix: str, config: RetentionConfig | None = None,
                now: datetime | None = None) -> dict[str, Any]:
    """One retention run. Without `redis` only the transcript part is done."""
    config = config or RetentionConfig.from_env()
    now = now or datetime.now(timezone.utc)
    result: dict[str, Any] = {"transcript": await purge_transcripts(engine, now, config.transcript_days)}
    if redis is not None:
        result["provisional"] = await purge_provisional(engine, redis, prefix, now, config.provisional_days)
        result["trackers"] = await purge_trackers(redis, prefix, now, config.transcript_days)
    log.info("retention at %s: %s", now.isoformat(), result)
    return result


class RetentionJob:
    """The daily run inside the gateway (APScheduler), one process at a time (Redis lock)."""

    def __init__(self, engine: AsyncEngine, redis, prefix: str, config: RetentionConfig | None = None,
                 clock: Callable[[], datetime] | None = None) -> None:
        self.engine, self.redis, self.prefix = engine, redis, prefix
        self.config = config or RetentionConfig.from_env()
        self.clock = clock or (lambda: datetime.now(timezone.utc))
        self.scheduler = None
        self.last: dict[str, Any] | None = None

    async def run(self) -> dict[str, Any] | None:
        now = self.clock()
        lock = f"{self.prefix}:retention:lock"
        if not await self.redis.set(lock, now.isoformat(), nx=True, ex=LOCK_SECONDS):
            log.info("retention: another process runs it")
            return None
        try:
            self.last = await purge(self.engine, self.redis, self.prefix, self.config, now)
            return self.last
        except Exception as exc:  # noqa: BLE001 - tried again tomorrow; the type only (no data in logs)
            log.error("retention run failed: %s", type(exc).__name__)
            return None

    def start(self):
        from apscheduler.schedulers.asyncio import AsyncIOScheduler
        from apscheduler.triggers.cron import CronTrigger

        hour, minute = (int(x) for x in self.config.run_at.split(":"))
        self.scheduler = AsyncIOScheduler(timezone=self.config.timezone)
        self.scheduler.add_job(self.run, CronTrigger(hour=hour, minute=minute, timezone=self.config.timezone),
                               id="retention", coalesce=True, max_instances=1, misfire_grace_time=3600)
        self.scheduler.start()
        log.info("retention: daily at %s %s (transcripts %s days, anonymous conversations %s days)",
                 self.config.run_at, self.config.timezone, self.config.transcript_days, self.config.provisional_days)
        return self.scheduler

    def stop(self) -> None:
        if self.scheduler is not None and self.scheduler.running:
            self.scheduler.shutdown(wait=False)


