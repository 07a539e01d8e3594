"""Conversations in shared storage (Redis), so any gateway process can serve any of them.

Keys, all under the configured prefix:
  <p>:identity:<channel>:<address>  -> conversation key (one per customer across channels)
  <p>:conv:<key>                    -> hash: created, language, last_channel, last_address, customer_id,
                                       level, verified_by, away, ack_at (written only here; the handoff
                                       state is bot/people/queue.py's, in <p>:handoff:<key>)
  <p>:customer:<id>                 -> the customer's one conversation key
  <p>:seen:<channel>:<message id>   -> set once per channel message (webhook retries), 2 days
  <p>:buttons:<key>:<channel>       -> the buttons last offered (numbered replies on SMS/WhatsApp)
  <p>:link-code:<code>              -> customer id, for one Telegram link (`/start <code>`), 15 minutes
  <p>:webverified:<session id>      -> customer id a web chat session proved to be (code or signed
                                       login), for config/identity.yml verified.web_session_hours
"""

from __future__ import annotations

import json
import secrets
import time
import uuid


from redis.asyncio import Redis

LINK_CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: people may type it over
LINK_CODE_LENGTH = 8  # 40 bits
LINK_CODE_SECONDS = 15 * 60


class ConversationStore:
    def __init__(self, redis: Redis, prefix: str) -> None:
        self._redis = redis
        self._prefix = prefix

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
                mapping={"created": f"{time.time():.3f}", "last_channel": channel},
            )
            return candidate
        return await self._redis.get(identity)  # another process created it first

    async def identity(self, channel: str, address: str) -> str | None:
        return await self._redis.get(self._k("identity", channel, address))

    async def bind(self, channel: str, address: str, key: str) -> None:
        await self._redis.set(self._k("identity", channel, address), key)

    async def unbind(self, channel: str, address: str) -> None:
        await self._redis.delete(self._k("identity", channel, address))

    async def web_verify(self, session_id: str, customer_id: int, seconds: int) -> None:
        await self._redis.set(self._k("webverified", session_id), str(customer_id), ex=seconds)

    async def web_verified(self, session_id: str) -> str | None:
        return await self._redis.get(self._k("webverified", session_id))

    async def customer_conversation(self, customer_id: int) -> str | None:
        return await self._redis.get(self._k("customer", str(customer_id)))

    async def claim_customer(self, customer_id: int, key: str) -> str:
        """Make `key` the customer's conversation unless they have one; return theirs."""
        name = self._k("customer", str(customer_id))
        if await self._redis.set(name, key, nx=True):
            return key
        return await self._redis.get(name)

    async def first_time(self, channel: str, message_id: str) -> bool:
        return bool(await self._redis.set(self._k("seen", channel, message_id), "1", nx=True, ex=2 * 24 * 3600))

    async def issue_link_code(self, customer_id: int) -> str:
        """A one-time code that links another channel's account to this customer."""
        while True:
            code = "".join(secrets.choice(LINK_CODE_ALPHABET) for _ in range(LINK_CODE_LENGTH))
            if await self._redis.set(self._k("link-code", code), str(customer_id), nx=True, ex=LINK_CODE_SECONDS):
                return code

    async def take_link_code(self, code: str) -> int | None:
        """The customer a code was issued for, once: the code is gone after this (GETDEL)."""
        code = code.strip().upper()
        if len(code) != LINK_CODE_LENGTH or any(c not in LINK_CODE_ALPHABET for c in code):
            return None
        customer_id = await self._redis.getdel(self._k("link-code", code))
        return int(customer_id) if customer_id else None

    async def remember_buttons(self, key: str, channel: str, buttons: list) -> None:
        name = self._k("buttons", key, channel)
        if buttons:
            await self._redis.set(name, json.dumps([b.__dict__ for b in buttons]), ex=24 * 3600)
        else:
            await self._redis.delete(name)

    async def last_buttons(self, key: str, channel: str) -> list[dict[str, str]]:
        raw = await self._redis.get(self._k("buttons", key, channel))
        return json.loads(raw) if raw else []

    async def get(self, key: str) -> dict[str, str]:
        return await self._redis.hgetall(self._k("conv", key))

    async def update(self, key: str, **fields: str) -> None:
        if fields:
            await self._redis.hset(self._k("conv", key), mapping=fields)

    async def customer_id(self, key: str) -> int | None:
        """The verified customer of the conversation, if any."""
        raw = await self._redis.hget(self._k("conv", key), "customer_id")
        return int(raw) if raw and raw.isdigit() else None

    async def language(self, key: str, supported: tuple[str, ...], default: str) -> str:
        raw = await self._redis.hget(self._k("conv", key), "language")
        return raw if raw in supported else default
