"""The durable scheduler of promises, on arq (https://arq-docs.helpmanual.io) and the Redis the
project already runs.

Why arq: jobs live in Redis (a sorted set per queue), so they survive a gateway restart and every
gateway process sees the same ones; a job is claimed atomically (an in-progress key set with NX),
so several gateways never run one twice; a job id makes enqueueing idempotent (the sweep may ask
for the same renewal many times, it runs once); retries with a delay are built in (`Retry`); cron
jobs are unique per tick across workers. saq does the same but brings its own web UI and more
dependencies; APScheduler 3 (already here for the daily purge) does not coordinate several
processes. arq is small (one module and redis-py), maintained by the author of pydantic.

Every gateway runs a worker inside its own event loop (no extra process to deploy):
- `sweep` (cron, every `watch.every_seconds`): bot/promises/watch.py `PromiseWatch.sweep`;
- `renew` (one job per promise, job id `<prefix>:promise:<id>:<created>:renew`): `PromiseWatch.renew`, retried
  after `watch.retry_seconds` while the new time could not be delivered; a renewal due before the
  next sweep is deferred to its exact moment (arq `_defer_by`);
- `remind` (a callback's reminder, one per promise): `PromiseWatch.remind`, retried the same way;
- `care` (cron, every `every_minutes` of config/proactive.yml): bot/promises/proactive.py;
- `surveys` (cron, every minute): bot/feedback/survey.py `Surveys.sweep` (quiet trigger, reminder, expiry).
The database stays the source of truth: a state changes only with a conditional UPDATE, so even
a job that ran twice could not tell a customer twice.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import Any

from arq import Retry, cron
from arq.connections import ArqRedis
from arq.worker import Worker, func
from redis.asyncio import ConnectionPool

from bot.promises import watch as watching
from bot.promises.watch import PromiseWatch

log = logging.getLogger(__name__)


def queue_name(prefix: str) -> str:
    return f"{prefix}:promises"


def job_id(prefix: str, what: str, promise_id: int, created: float) -> str:
    """arq's job keys are global in Redis: the project's prefix, and the promise's creation time
    (a database started again from scratch counts its ids from 1 again)."""
    return f"{prefix}:promise:{promise_id}:{int(created)}:{what}"


async def sweep(ctx: dict[str, Any]) -> dict[str, Any]:
    scheduler: PromiseScheduler = ctx["scheduler"]
    result = await scheduler.watch.sweep()
    for promise_id, created, after in result.renew_due or []:
        await scheduler.enqueue_renewal(promise_id, created, after)
    for promise_id, created in result.remind_due or []:
        await scheduler.enqueue("remind", promise_id, created)
    return result.as_dict()


async def run_care(ctx: dict[str, Any]) -> dict[str, int]:
    scheduler: PromiseScheduler = ctx["scheduler"]
    return await scheduler.care.run() if scheduler.care is not None else {}


async def run_surveys(ctx: dict[str, Any]) -> dict[str, int]:
    """The post-chat surveys' timers (bot/feedback/survey.py): quiet conversations, reminders, expiry."""
    scheduler: PromiseScheduler = ctx["scheduler"]
    return await scheduler.surveys.sweep() if scheduler.surveys is not None else {}


async def _retried(outcome: str, scheduler: "PromiseScheduler") -> str:
    """Not delivered while there is time left: arq tries the job again after `retry_seconds`."""
    if outcome == watching.RETRY:
        raise Retry(defer=scheduler.watch.config.retry_seconds)
    return outcome


async def remind(ctx: dict[str, Any], promise_id: int) -> str:
    return await _retried(await ctx["scheduler"].watch.remind(promise_id), ctx["scheduler"])


async def renew(ctx: dict[str, Any], promise_id: int) -> str:
    return await _retried(await ctx["scheduler"].watch.renew(promise_id), ctx["scheduler"])


class PromiseScheduler:
    """An arq worker for one gateway process, plus the pool it enqueues with."""

    def __init__(self, redis_url: str, prefix: str, watch: PromiseWatch, *, burst: bool = False,
                 poll_delay: float = 0.5, care: Any = None, surveys: Any = None) -> None:
        self.watch = watch
        self.care = care  # bot/promises/proactive.py ProactiveCare, or None
        self.surveys = surveys  # bot/feedback/survey.py Surveys, or None
        self.prefix = prefix
        # arq pickles its jobs: its own connections, without decode_responses
        self.pool = ArqRedis(connection_pool=ConnectionPool.from_url(
            redis_url, socket_timeout=5, socket_connect_timeout=5, client_name=f"{prefix}:promises"))
        every = max(1, int(watch.config.every_seconds))
        care_minutes = int(getattr(getattr(care, "config", None), "every_minutes", 15))
        seconds = set(range(0, 60, every)) if every < 60 else {0}
        self.worker = Worker(
            functions=[func(renew, name="renew", max_tries=1000, timeout=60),
                       func(remind, name="remind", max_tries=1000, timeout=60)],
            cron_jobs=[cron(sweep, name=f"{prefix}:sweep", second=seconds, microsecond=0, keep_result=60, timeout=120,
                            run_at_startup=True),
                       cron(run_care, name=f"{prefix}:care", minute=set(range(0, 60, max(1, min(59, care_minutes)))),
                            second=7, microsecond=0, keep_result=120, timeout=600),
                       cron(run_surveys, name=f"{prefix}:surveys", second=23, microsecond=0, keep_result=60,
                            timeout=300)],
            redis_pool=self.pool, queue_name=queue_name(prefix), ctx={"scheduler": self},
            handle_signals=False, burst=burst, poll_delay=poll_delay, max_jobs=4, keep_result=24 * 3600,
            log_results=False,
        )
        self._task: asyncio.Task | None = None

    async def enqueue(self, what: str, promise_id: int, created: float, after: float = 0.0) -> bool:
        """`renew` or `remind`, once per promise (`after` seconds from now; relative, since the
        watch's clock may be a test's): False when that job is already queued, running or done."""
        job = await self.pool.enqueue_job(what, promise_id, _job_id=job_id(self.prefix, what, promise_id, created),
                                          _queue_name=queue_name(self.prefix),
                                          _defer_by=timedelta(seconds=after) if after > 0 else None)
        return job is not None

    async def enqueue_renewal(self, promise_id: int, created: float, after: float = 0.0) -> bool:
        return await self.enqueue("renew", promise_id, created, after)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="promise-scheduler")

    async def _run(self, backoff: float = 5.0) -> None:
        """The worker's loop; when Redis goes away it stops with an error: started again after a
        pause (the jobs wait in Redis, the promises in the database)."""
        while True:
            try:
                await self.worker.async_run()
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - logged, then tried again
                log.warning("promise scheduler stopped (%s: %s); starting again in %.0f s",
                            type(exc).__name__, exc, backoff)
                await asyncio.sleep(backoff)

    async def run_burst(self) -> int:
        """Run what is due now and return (tests; burst workers only)."""
        return await self.worker.run_check()

    async def stop(self, grace: float = 20.0) -> None:
        """Stop taking jobs; a job running now may finish (within `grace` seconds, then it is
        cancelled and its claim released: the database says what was done)."""
        if self._task is not None:
            # the poll loop only (running jobs are tasks of their own). Cancelled until it is done:
            # redis-py 4 can swallow a cancellation that arrives in the middle of a command.
            for _ in range(100):
                if self._task.done():
                    break
                self._task.cancel()
                await asyncio.wait([self._task], timeout=0.2)
            self._task = None
        running = [t for t in self.worker.tasks.values() if not t.done()]
        if running:
            done, pending = await asyncio.wait(running, timeout=grace)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        await self.worker.close()
