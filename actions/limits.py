"""Rate limits on proving who you are, in the Redis every process shares.

Counters are fixed windows (`INCR` + `EXPIRE` in one transaction), keyed by a one-way reference of
the conversation, the client address or the customer, so the keys hold no personal data:
  <prefix>:idlimit:<kind>:<ref>   -> attempts in the current window
Without REDIS_URL (a unit test of one action) the counters live in this process.
"""

from __future__ import annotations

import os
import time
from functools import lru_cache

from redis.asyncio import Redis

from bot.policy.identity import Limit, client_ref


@lru_cache(maxsize=1)
def _redis() -> Redis | None:
    url = os.environ.get("REDIS_URL")
    if not url:
        return None
    return Redis.from_url(url, decode_responses=True, socket_timeout=5, socket_connect_timeout=5)


_local: dict[str, tuple[int, float]] = {}


def _key(kind: str, ref: str) -> str:
    return f"{os.environ.get('KEY_PREFIX', 'kb')}:idlimit:{kind}:{client_ref(ref)}"


async def hit(kind: str, ref: str, limit: Limit) -> int:
    """Count one attempt; return 0 when still allowed, else the seconds until it is again."""
    key = _key(kind, ref)
    redis = _redis()
    if redis is None:
        count, until = _local.get(key, (0, 0.0))
        if until < time.time():
            count, until = 0, time.time() + limit.seconds
        _local[key] = (count + 1, until)
        return 0 if count + 1 <= limit.attempts else max(1, int(until - time.time()))
    async with redis.pipeline(transaction=True) as pipe:
        pipe.set(key, 0, ex=limit.seconds, nx=True)  # the window starts (EXPIRE NX needs Redis 7)
        pipe.incr(key)
        pipe.ttl(key)
        _, count, ttl = await pipe.execute()
    return 0 if int(count) <= limit.attempts else max(1, int(ttl))


async def blocked(kind: str, ref: str, limit: Limit) -> int:
    """Seconds until `ref` may try again (0: it may now), without counting an attempt."""
    key = _key(kind, ref)
    redis = _redis()
    if redis is None:
        count, until = _local.get(key, (0, 0.0))
        return max(1, int(until - time.time())) if until > time.time() and count >= limit.attempts else 0
    count, ttl = await redis.get(key), await redis.ttl(key)
    return max(1, int(ttl)) if count and int(count) >= limit.attempts else 0
