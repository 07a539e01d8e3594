"""The inbox on real databases (SQLite and PostgreSQL, migrated) and the real Redis: storing,
de-duplication, the Redis fallback while the database is away, atomic claims between two
"processes", order per sender, retries with backoff, and a crashed process's lease running out."""

from __future__ import annotations

import asyncio
import os
import secrets
import time

import pytest
from redis.asyncio import Redis

from bot.pipeline import inbox as inbox_module
from bot.shared.db import create_engine
from bot.pipeline.inbox import Deferred, Inbox, Stored, current_turn, pending
from bot.records.models import InboxMessage

REDIS_URL = os.environ.get("TEST_INBOX_REDIS_URL", "redis://127.0.0.1:6379/13")


@pytest.fixture
async def redis():
    client = Redis.from_url(REDIS_URL, decode_responses=True, socket_timeout=5, socket_connect_timeout=5)
    client.test_prefix = "ib" + secrets.token_hex(4)
    yield client
    async for key in client.scan_iter(match=f"{client.test_prefix}:*", count=1000):
        await client.delete(key)
    await client.close(close_connection_pool=True)


@pytest.fixture
async def db(engine):
    yield engine


@pytest.fixture(autouse=True)
def _fast(monkeypatch):
    monkeypatch.setattr(inbox_module, "POLL_SECONDS", 0.1)
    monkeypatch.setattr(inbox_module, "MAX_BACKOFF", 0.3)


class Recorder:
    def __init__(self, fail: int = 0, error: Exception | None = None, delay: float = 0.0):
        self.seen: list[tuple[str, int]] = []
        self.notices: list[tuple[str, str]] = []
        self.fail, self.error, self.delay = fail, error, delay
        self.turns: list[int] = []

    async def process(self, payload: dict) -> None:
        self.turns.append(current_turn().attempt)
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.fail:
            self.fail -= 1
            raise self.error or ConnectionError("down")
        self.seen.append((payload["text"], current_turn().attempt))

    async def notify(self, address: str, payload: dict, text: str, lang: str) -> None:
        self.notices.append((address, text))


async def run_until(inboxes, condition, timeout: float = 10) -> None:
    stop = asyncio.Event()
    tasks = [asyncio.create_task(i.run(stop)) for i in inboxes]
    deadline = time.monotonic() + timeout
    try:
        while not condition():
            assert time.monotonic() < deadline, "inbox did not get there in time"
            await asyncio.sleep(0.05)
    finally:
        stop.set()
        await asyncio.gather(*tasks)


async def rows(engine):
    from sqlalchemy import select

    async with engine.connect() as conn:
        return (await conn.execute(select(InboxMessage.__table__).order_by(InboxMessage.id))).mappings().all()


async def test_stored_once_processed_once_in_order_by_exactly_one_of_two_processes(db, redis):
    a, b = Inbox(db, redis, redis.test_prefix), Inbox(db, redis, redis.test_prefix)
    seen = Recorder(delay=0.05)
    for box in (a, b):
        box.register("sms", seen.process, seen.notify)
    for i in range(6):
        assert await a.store("sms", f"SM{i}", "+31600000001", {"text": f"m{i}"}) is Stored.STORED
        assert await b.store("sms", f"SMx{i}", "+31600000002", {"text": f"x{i}"}) is Stored.STORED
    # a webhook retry of the same MessageSid is not stored again, on either process
    assert await b.store("sms", "SM3", "+31600000001", {"text": "m3"}) is Stored.DUPLICATE
    assert await a.store("sms", "SM3", "+31600000001", {"text": "m3"}) is Stored.DUPLICATE

    await run_until([a, b], lambda: len(seen.seen) == 12)
    texts = [t for t, _ in seen.seen]
    assert sorted(texts) == sorted([f"m{i}" for i in range(6)] + [f"x{i}" for i in range(6)])  # each once
    assert [t for t in texts if t.startswith("m")] == [f"m{i}" for i in range(6)]  # in order per sender
    assert [t for t in texts if t.startswith("x")] == [f"x{i}" for i in range(6)]
    stored = await rows(db)
    assert len(stored) == 12 and {r["status"] for r in stored} == {"done"}
    assert all(r["payload"] == {} for r in stored)  # the message text is not kept once answered
    assert (await pending(db)).count == 0


async def test_a_claim_is_exclusive_and_waits_for_the_senders_earlier_message(db, redis):
    a, b = Inbox(db, redis, redis.test_prefix), Inbox(db, redis, redis.test_prefix)
    await a.store("telegram", "1", "42", {"text": "first"})
    await a.store("telegram", "2", "42", {"text": "second"})
    first, second = [r["id"] for r in await rows(db)]
    assert not await a.claim(second)            # the sender's first message is still waiting
    assert await a.claim(first)
    assert not await b.claim(first)             # leased by a
    assert not await b.claim(second)            # still behind the first
    # a crashed process: its lease runs out and another takes the message over
    assert await b.claim(first, now=time.time() + inbox_module.LEASE_SECONDS + 1)


async def test_failures_are_retried_with_backoff_until_answered(db, redis):
    box = Inbox(db, redis, redis.test_prefix)
    seen = Recorder(fail=3)
    box.register("webchat", seen.process, seen.notify)
    await box.store("webchat", "w1", "session1", {"text": "hallo", "session_id": "session1"})
    await run_until([box], lambda: seen.seen)
    assert seen.seen == [("hallo", 4)] and seen.turns == [1, 2, 3, 4]
    assert seen.notices == []


async def test_deferred_turn_tells_the_sender_once_then_answers(db, redis):
    box = Inbox(db, redis, redis.test_prefix)
    seen = Recorder(fail=4, error=Deferred("en", "actions"))
    box.register("webchat", seen.process, seen.notify)
    await box.store("webchat", "w1", "s1", {"text": "hello"})
    await run_until([box], lambda: seen.seen)
    assert seen.notices == [("s1", inbox_module.messages.text("inbox_kept", "en"))]
    assert seen.seen == [("hello", 5)]


async def test_a_message_that_keeps_failing_on_a_bug_is_given_up_with_a_clear_message(db, redis):
    box = Inbox(db, redis, redis.test_prefix)
    seen = Recorder(fail=99, error=KeyError("bug"))
    box.register("sms", seen.process, seen.notify)
    await box.store("sms", "SM1", "+31600000009", {"text": "x", "language_hint": "en"})
    await run_until([box], lambda: seen.notices)
    assert seen.notices == [("+31600000009", inbox_module.messages.text("inbox_failed", "en"))]
    assert len(seen.turns) == inbox_module.MAX_BUG_ATTEMPTS
    assert [r["status"] for r in await rows(db)] == ["failed"]


async def test_database_away_redis_keeps_it_and_it_is_moved_back_once(db, redis, tmp_path):
    down = create_engine("postgresql://postgres@127.0.0.1:1/nothing")  # nothing listens there
    away = Inbox(down, redis, redis.test_prefix)
    try:
        assert await away.store("sms", "SM7", "+31600000003", {"text": "eerste"}) is Stored.FALLBACK
        assert await away.store("sms", "SM7", "+31600000003", {"text": "eerste"}) is Stored.DUPLICATE
        assert await away.store("sms", "SM8", "+31600000003", {"text": "tweede"}) is Stored.FALLBACK
    finally:
        await down.dispose()
    back = Inbox(db, redis, redis.test_prefix)
    seen = Recorder()
    back.register("sms", seen.process, seen.notify)
    # a webhook retry that reached the database first is not stored a second time by the move
    assert await back.store("sms", "SM7", "+31600000003", {"text": "eerste"}) is Stored.STORED
    await run_until([back], lambda: len(seen.seen) == 2)
    await asyncio.sleep(0.3)
    assert [t for t, _ in seen.seen] == ["eerste", "tweede"]
    assert await redis.hlen(back.fallback_key) == 0


async def test_nothing_can_store_it(redis):
    down = create_engine("postgresql://postgres@127.0.0.1:1/nothing")
    dead_redis = Redis.from_url("redis://127.0.0.1:1/0", socket_timeout=1, socket_connect_timeout=1)
    try:
        box = Inbox(down, dead_redis, "x")
        assert await box.store("telegram", "5", "42", {"text": "hoi"}) is Stored.FAILED
        assert not Stored.FAILED.ok and Stored.FALLBACK.ok and Stored.DUPLICATE.ok
    finally:
        await down.dispose()
        await dead_redis.close(close_connection_pool=True)


async def test_a_later_message_never_overtakes_one_still_in_the_redis_fallback(db, redis, monkeypatch):
    """Under load the database can be slow rather than down: the first message of a sender goes to
    Redis, the second into the database. The second waits until the first is back in the table."""
    box = Inbox(db, redis, redis.test_prefix)
    seen = Recorder()
    box.register("webchat", seen.process, seen.notify)
    real_insert = box._insert
    slow = {"first"}

    async def insert(row):  # the first store finds the database too slow (the webhook's 3 s pass)
        if row["payload"].get("text") in slow:
            slow.clear()
            raise asyncio.TimeoutError
        await real_insert(row)

    monkeypatch.setattr(box, "_insert", insert)
    assert await box.store("webchat", "w1", "session-a", {"text": "first"}) is Stored.FALLBACK
    assert await box.store("webchat", "w2", "session-a", {"text": "second"}) is Stored.STORED
    # the database refuses the move back for now: the sender is held, the second message waits
    monkeypatch.setattr(box, "_insert", lambda row: (_ for _ in ()).throw(OSError("busy")))
    await box.round()
    await asyncio.sleep(0.3)
    assert seen.seen == [] and box._held == {("webchat", "session-a")}
    monkeypatch.setattr(box, "_insert", real_insert)
    await run_until([box], lambda: len(seen.seen) == 2)
    assert [t for t, _ in seen.seen] == ["first", "second"]


async def test_one_senders_messages_are_stored_one_after_another(db, redis, monkeypatch):
    box = Inbox(db, redis, redis.test_prefix)
    real_insert, order = box._insert, []

    async def insert(row):
        order.append(("start", row["payload"]["text"]))
        await asyncio.sleep(0.2 if row["payload"]["text"] == "a" else 0)
        await real_insert(row)
        order.append(("end", row["payload"]["text"]))

    monkeypatch.setattr(box, "_insert", insert)
    await asyncio.gather(box.store("sms", "S1", "+31600000009", {"text": "a"}),
                         box.store("sms", "S2", "+31600000009", {"text": "b"}))
    assert order == [("start", "a"), ("end", "a"), ("start", "b"), ("end", "b")]
    assert box._storing == {}
