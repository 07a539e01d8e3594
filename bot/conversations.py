"""Conversations in shared storage (Redis), so any gateway process can serve any of them.

Keys, all under the configured prefix:
  <p>:identity:<channel>:<address>  -> conversation key (one per customer across channels)
  <p>:conv:<key>                    -> hash: language, state, last_channel, created
  <p>:transcript:<key>              -> list of JSON entries {sender, text, channel, ts, ...}
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from redis.asyncio import Redis

STATES = ("bot", "waiting", "with_agent", "closed")


class ConversationStore:
    def __init__(self, redis: Redis, prefix: str, history_limit: int = 200) -> None:
        self._redis = redis
        self._prefix = prefix
        self._history_limit = history_limit

    def _k(self, *parts: str) -> str:
        return ":".join((self._prefix, *parts))

    async def key_for(self, channel: str, address: str) -> str:
        """The conversation key of (channel, address), created on first contact."""
        identity = self._k("identity", channel, address)
        existing = await self._redis.get(identity)
        if existing:
            return existing
        candidate = f"c{uuid.uuid4().hex}"
        if await self._redis.set(identity, candidate, nx=True):
            await self._redis.hset(
                self._k("conv", candidate),
                mapping={"state": "bot", "created": f"{time.time():.3f}", "last_channel": channel},
            )
            return candidate
        return await self._redis.get(identity)  # another process created it first

    async def get(self, key: str) -> dict[str, str]:
        return await self._redis.hgetall(self._k("conv", key))

    async def update(self, key: str, **fields: str) -> None:
        if fields:
            await self._redis.hset(self._k("conv", key), mapping=fields)

    async def append(self, key: str, sender: str, text: str, channel: str, **extra: Any) -> None:
        entry = {"sender": sender, "text": text, "channel": channel, "ts": round(time.time(), 3)}
        entry.update({k: v for k, v in extra.items() if v})
        await self._redis.rpush(self._k("transcript", key), json.dumps(entry, ensure_ascii=False))

    async def history(self, key: str, limit: int | None = None) -> list[dict[str, Any]]:
        n = limit or self._history_limit
        raw = await self._redis.lrange(self._k("transcript", key), -n, -1)
        return [json.loads(item) for item in raw]
