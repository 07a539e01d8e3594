"""The services the tests use and what the stack fixtures need around them.

Tests use the Redis at 127.0.0.1:6379 (TEST_REDIS_URL to change) and the PostgreSQL at
127.0.0.1:5432 (TEST_PG_ADMIN_URL), on their own database number, key prefix or database, and
delete what they made afterwards.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import time
from datetime import datetime
from pathlib import Path

import redis as redis_sync

TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/13")
PG_ADMIN_URL = os.environ.get("TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")

# the fake Twilio and Telegram on loopback check these, and the stack gets them as its settings
FAKE_TWILIO = {
    "TWILIO_ACCOUNT_SID": "AC" + "0" * 32, "TWILIO_AUTH_TOKEN": "test-auth-token-" + secrets.token_hex(8),
    "TWILIO_SMS_NUMBER": "+3197010000001", "TWILIO_WHATSAPP_NUMBER": "+3197010000002",
    "TWILIO_WHATSAPP_TEMPLATE_SID": "HX" + "1" * 32,
}
FAKE_TELEGRAM = {
    "TELEGRAM_BOT_TOKEN": "123456:TEST-" + secrets.token_hex(8), "TELEGRAM_WEBHOOK_SECRET": secrets.token_hex(16),
    "TELEGRAM_BOT_USERNAME": "DeWebwinkelTestBot",
    "WEBCHAT_IDENTITY_SECRET": secrets.token_hex(16),
}


def delete_prefix(url: str, prefix: str) -> None:
    """Delete every Redis key a test made under `prefix`."""
    client = redis_sync.Redis.from_url(url)
    for key in client.scan_iter(match=f"{prefix}:*", count=1000):
        client.delete(key)
    for key in client.scan_iter(match=f"*{prefix}*", count=1000):
        client.delete(key)
    client.close()


async def pg_admin(sql: str) -> None:
    """One statement as PostgreSQL's administrator (CREATE / DROP DATABASE)."""
    import asyncpg

    conn = await asyncpg.connect(PG_ADMIN_URL.replace("postgresql+asyncpg://", "postgresql://"), timeout=10)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def demo_shop_db(directory: Path) -> str:
    """A migrated SQLite database with the demo web shop, in `directory`."""
    from bot.records.demo import demo_database

    return demo_database(directory / "shop.db")


def stack_sql(stack, sql: str, *params) -> list[tuple]:
    """Read the running stack's records database (SQLite) directly."""
    import sqlite3

    with sqlite3.connect(stack.database_url.removeprefix("sqlite:///")) as conn:
        return conn.execute(sql, params).fetchall()


def print_tracebacks(stack) -> None:
    """After a stack stopped: the last lines of every process log that has a traceback."""
    for log in sorted(stack.log_dir.glob("*.log")):
        text = log.read_text(errors="replace")
        if "Traceback" in text:
            print(f"\n--- {log.name} (last lines) ---\n" + "\n".join(text.splitlines()[-40:]))


class GatewayClock:
    """The stack's gateway with its clock fixed: `await gateway_clock.at(moment)` restarts it
    with BOT_FIXED_NOW at `moment` (bot/policy/clock.py; nothing happens when it already runs at
    that moment), `at(None)` puts it back on the system clock. The handoff queue, the wait it
    promises, desk presence and the desk's decisions then run at that moment.

    Only the gateway: Rasa and the action server keep the real time (the demo data is dated by it).
    The fixed-clock gateway takes the stack's port, so the web chat, the webhooks and the desk reach
    it as they reach the stack; and the stack's own gateway does not run beside it: every gateway
    takes stored messages from the shared inbox, so one on the real clock could answer a message
    at the real time."""

    def __init__(self, stack) -> None:
        self.stack = stack
        self.moment: datetime | None = None

    def set(self, moment: datetime | None) -> None:
        from bot.policy.clock import FIXED_NOW_ENV

        if moment == self.moment:
            return
        self.stack.stop_process("gateway")
        self.moment = None
        if moment is not None:
            self.stack.extra_env[FIXED_NOW_ENV] = moment.isoformat()
        try:  # the gateway's environment only: a process started later gets the real time
            self.stack.start_gateway()
        finally:
            self.stack.extra_env.pop(FIXED_NOW_ENV, None)
        self.moment = moment

    async def at(self, moment: datetime | None) -> None:
        await asyncio.to_thread(self.set, moment)


async def forget_fixed_presence(redis, prefix: str) -> None:
    """Desk agents marked online by a gateway whose clock stands in the future are offline again
    (their presence would never run out by that clock, and would count on the real one)."""
    from bot.people.queue import PRESENCE_SECONDS

    await redis.zremrangebyscore(f"{prefix}:desk:online", time.time() + PRESENCE_SECONDS + 1, "+inf")
