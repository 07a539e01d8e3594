"""Shared fixtures: the real stack (Redis, action server, Rasa with the trained model, gateway).

Tests use the Redis at 127.0.0.1:6379 (TEST_REDIS_URL to change), on their own database
number and key prefix, and delete their keys afterwards.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
import uuid
from pathlib import Path

import pytest
import redis as redis_sync
import socketio

from bot.launch.run import Stack, free_port
from bot.launch.train import ensure_model

TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/13")


@pytest.fixture(autouse=True, scope="session")
def _no_internet():
    """Fail loudly if anything tries to reach beyond this machine."""
    real_connect = socket.socket.connect

    def guarded(self, address):
        host = address[0] if isinstance(address, tuple) else address
        if isinstance(host, str) and self.family in (socket.AF_INET, socket.AF_INET6):
            if not (host.startswith("127.") or host in ("localhost", "::1")):
                raise RuntimeError(f"test tried to reach {host}: no internet in tests")
        return real_connect(self, address)

    socket.socket.connect = guarded
    yield
    socket.socket.connect = real_connect


@pytest.fixture(scope="session")
def redis_url() -> str:
    client = redis_sync.Redis.from_url(TEST_REDIS_URL)
    client.ping()
    client.close()
    return TEST_REDIS_URL


@pytest.fixture(scope="session")
def model() -> Path:
    return ensure_model()


def _delete_prefix(url: str, prefix: str) -> None:
    client = redis_sync.Redis.from_url(url)
    for key in client.scan_iter(match=f"{prefix}:*", count=1000):
        client.delete(key)
    for key in client.scan_iter(match=f"*{prefix}*", count=1000):
        client.delete(key)
    client.close()


def demo_shop_db(directory: Path) -> str:
    """A migrated SQLite database with the demo web shop, in `directory`."""
    from bot.records.demo import demo_database

    return demo_database(directory / "shop.db")


@pytest.fixture(scope="session")
def stack_db(tmp_path_factory) -> str:
    """The records database of the running stack: SQLite with the demo web shop."""
    return demo_shop_db(tmp_path_factory.mktemp("stackdb"))


@pytest.fixture(scope="session")
def twilio_server():
    """Twilio's REST API on loopback, recording every message a customer would receive."""
    from tests.fake_twilio import FakeTwilio

    fake = FakeTwilio(account_sid=FAKE_TWILIO["TWILIO_ACCOUNT_SID"], auth_token=FAKE_TWILIO["TWILIO_AUTH_TOKEN"])
    url = fake.start()
    yield fake, url
    fake.stop()


@pytest.fixture(scope="session")
def telegram_server():
    """Telegram's Bot API on loopback, recording every call."""
    from tests.fake_telegram import FakeTelegram

    fake = FakeTelegram(token=FAKE_TELEGRAM["TELEGRAM_BOT_TOKEN"])
    url = fake.start()
    yield fake, url
    fake.stop()


@pytest.fixture(scope="session")
def smtp_server():
    """An SMTP server on loopback, recording every e-mail a customer would receive."""
    from tests.fake_smtp import FakeSMTP

    fake = FakeSMTP().start()
    yield fake
    fake.stop()


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


def print_tracebacks(stack: Stack) -> None:
    """After a stack stopped: the last lines of every process log that has a traceback."""
    for log in sorted(stack.log_dir.glob("*.log")):
        text = log.read_text(errors="replace")
        if "Traceback" in text:
            print(f"\n--- {log.name} (last lines) ---\n" + "\n".join(text.splitlines()[-40:]))


@pytest.fixture(scope="session")
def stack(redis_url, model, stack_db, twilio_server, telegram_server, smtp_server, tmp_path_factory):
    prefix = "t" + secrets.token_hex(4)
    s = Stack(
        gateway_port=free_port(), rasa_port=free_port(), action_port=free_port(),
        redis_url=redis_url, database_url=stack_db, key_prefix=prefix, model=model,
        log_dir=tmp_path_factory.mktemp("logs"),
        extra_env={**FAKE_TWILIO, **FAKE_TELEGRAM, "TWILIO_API_URL": twilio_server[1],
                   "TELEGRAM_API_URL": telegram_server[1], **smtp_server.env()},
    )
    s.extra_env["PUBLIC_BASE_URL"] = f"http://127.0.0.1:{s.gateway_port}"
    s.start()
    yield s
    s.stop()
    print_tracebacks(s)
    _delete_prefix(redis_url, prefix)


class ChatClient:
    """A web chat visitor: a socket.io client speaking the rasa-webchat protocol."""

    def __init__(self, url: str, session_id: str | None = None, language: str | None = None,
                 custom: dict | None = None):
        self.url = url
        self.session_id = session_id
        self.language = language
        self.custom = custom or {}
        self.sio = socketio.AsyncClient(reconnection=False)
        self.inbox: asyncio.Queue = asyncio.Queue()
        self.errors: asyncio.Queue = asyncio.Queue()
        self.history: asyncio.Queue = asyncio.Queue()
        self._confirmed: asyncio.Queue = asyncio.Queue()
        self.sio.on("bot_uttered", lambda data: self.inbox.put_nowait(data))
        self.sio.on("error_message", lambda data: self.errors.put_nowait(data))
        self.sio.on("history", lambda data: self.history.put_nowait(data))
        self.sio.on("session_confirm", lambda data: self._confirmed.put_nowait(data))

    async def connect(self) -> "ChatClient":
        await self.sio.connect(self.url, transports=["websocket"], wait_timeout=10)
        await self.sio.emit("session_request", {"session_id": self.session_id})
        confirmed = await asyncio.wait_for(self._confirmed.get(), 10)
        self.session_id = confirmed["session_id"] if isinstance(confirmed, dict) else confirmed
        return self

    async def say(self, text, timeout: float = 30) -> list[dict]:
        """Send a message; return the bot's messages for that turn."""
        custom = {**({"language": self.language} if self.language else {}), **self.custom}
        await self.sio.emit("user_uttered", {"message": text, "session_id": self.session_id, "customData": custom})
        return await self.replies(timeout)

    async def replies(self, timeout: float = 30, settle: float = 0.6) -> list[dict]:
        first = await asyncio.wait_for(self.inbox.get(), timeout)
        out = [first]
        while True:
            try:
                out.append(await asyncio.wait_for(self.inbox.get(), settle))
            except asyncio.TimeoutError:
                return out

    async def error(self, timeout: float = 10) -> dict:
        return await asyncio.wait_for(self.errors.get(), timeout)

    async def close(self) -> None:
        await self.sio.disconnect()


def texts(messages: list[dict]) -> str:
    return "\n".join(m.get("text", "") for m in messages)


CODE_PROMPT = {"nl": "Om je gegevens te beschermen bevestig je eerst met een code",
               "en": "To protect your details, please confirm with a code first"}


def stack_sql(stack, sql: str, *params) -> list[tuple]:
    """Read the running stack's records database (SQLite) directly."""
    import sqlite3

    with sqlite3.connect(stack.database_url.removeprefix("sqlite:///")) as conn:
        return conn.execute(sql, params).fetchall()


def _codes(stack, customer_number: str) -> list[tuple[int, str]]:
    import re

    rows = stack_sql(stack, "select o.id, o.body from outbox o join customers c on c.id = o.customer_id "
                            "where c.customer_number = ? and o.kind = 'one_time_code' order by o.id", customer_number)
    return [(row_id, re.search(r"\b(\d{4})\b", body).group(1)) for row_id, body in rows]


def latest_code(stack, customer_number: str) -> str | None:
    """The last one-time code the shop sent this customer (what arrives on their phone)."""
    codes = _codes(stack, customer_number)
    return codes[-1][1] if codes else None


async def verify_in_chat(c: "ChatClient", stack, claim: str, customer_number: str, lang: str = "nl") -> list[dict]:
    """Identify in the chat as the real customer would: say who you are, get the one-time code on
    the phone (the records' outbox), type it back. Returns the bot's answer to the code."""
    sent_before = len(_codes(stack, customer_number))
    asked = texts(await c.say(claim))
    assert CODE_PROMPT[lang] in asked, asked
    codes = _codes(stack, customer_number)
    assert len(codes) == sent_before + 1, "exactly one new code was sent"
    # wait until the outbox delivered it (SMS/WhatsApp reach the fake Twilio), so a test counting
    # the customer's phone messages afterwards does not count the code as a reply
    for _ in range(100):
        [(sent, channel)] = stack_sql(stack, "select sent_at, channel from outbox where id = ?", codes[-1][0])
        if sent or channel not in ("sms", "whatsapp", "telegram", "email"):
            break
        await asyncio.sleep(0.1)
    return await c.say(codes[-1][1])
    return await c.say(code)


@pytest.fixture
async def chat(stack):
    clients: list[ChatClient] = []

    async def open_chat(session_id: str | None = None, language: str | None = None,
                        custom: dict | None = None) -> ChatClient:
        client = ChatClient(f"http://127.0.0.1:{stack.gateway_port}", session_id, language, custom)
        clients.append(client)
        return await client.connect()

    yield open_chat
    for client in clients:
        if client.sio.connected:
            await client.close()


@pytest.fixture
def fake_twilio(twilio_server):
    return twilio_server[0]


@pytest.fixture
def fake_telegram(telegram_server):
    return telegram_server[0]


@pytest.fixture
def fake_smtp(smtp_server):
    return smtp_server


@pytest.fixture
def new_session_id() -> str:
    return uuid.uuid4().hex


# -- records database: every records test runs on SQLite and on PostgreSQL ---------------------

PG_ADMIN_URL = os.environ.get("TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


async def _pg_admin(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(PG_ADMIN_URL.replace("postgresql+asyncpg://", "postgresql://"), timeout=10)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def database_url(request, tmp_path_factory):
    """A migrated, empty records database (the schema comes from the alembic migrations)."""
    from bot.records.migrate import upgrade

    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'records.db'}"
        upgrade(url)
        yield url
        return
    name = "kbtest_" + secrets.token_hex(4)
    asyncio.run(_pg_admin(f'CREATE DATABASE "{name}"'))
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    url = f"{base}/{name}"
    upgrade(url)
    yield url
    asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
async def engine(database_url):
    """An engine on an emptied records database."""
    from bot.shared.db import create_engine
    from bot.records.models import Base

    eng = create_engine(database_url)
    async with eng.begin() as conn:
        for table in reversed(Base.metadata.sorted_tables):
            await conn.execute(table.delete())
    yield eng
    await eng.dispose()


@pytest.fixture
async def shop(engine, database_url, monkeypatch):
    """The demo web shop loaded into an emptied database, and the actions pointed at it."""
    from actions import deps
    from bot.records.demo import load_demo

    await load_demo(engine)
    monkeypatch.setenv("DATABASE_URL", database_url)
    deps.records.cache_clear()
    yield engine
    await deps.records().engine.dispose()
    deps.records.cache_clear()


# -- people: the handoff queue of the running stack --------------------------------------------

@pytest.fixture
async def people(stack):
    """The stack's handoff queue (the same Redis keys the gateway uses)."""
    from redis.asyncio import Redis

    from bot.people.handoff import HandoffConfig, Handoffs

    redis = Redis.from_url(stack.redis_url, decode_responses=True)
    yield Handoffs(redis, stack.key_prefix, HandoffConfig.load())
    await redis.close(close_connection_pool=True)


@pytest.fixture(autouse=True)
async def _nobody_left_waiting(request):
    """Tests share the demo customers: a conversation a test handed to people is back with the
    bot before the next test starts (as if an agent closed it), and the identification limits
    (config/identity.yml) start afresh."""
    yield
    if "stack" not in request.fixturenames:
        return
    from redis.asyncio import Redis

    from bot.people.handoff import HandoffConfig, Handoffs

    stack = request.getfixturevalue("stack")
    redis = Redis.from_url(stack.redis_url, decode_responses=True)
    try:
        # every test starts with fresh identification limits (they all come from 127.0.0.1)
        async for key in redis.scan_iter(f"{stack.key_prefix}:idlimit:*"):
            await redis.delete(key)
        store = Handoffs(redis, stack.key_prefix, HandoffConfig.load())
        async for key in redis.scan_iter(f"{stack.key_prefix}:handoff:c*"):
            item = await store.get(key.rsplit(":", 1)[1])
            if item and item.get("state") in ("waiting", "with_agent"):
                if item.get("claimed_by"):
                    await redis.srem(f"{stack.key_prefix}:handoff:agent:{item['claimed_by']}", item["conversation"])
                await store.finish(item["conversation"], None, "closed")
    finally:
        await redis.close(close_connection_pool=True)
