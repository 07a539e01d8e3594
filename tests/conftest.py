"""Fixtures and hooks only; what tests share besides fixtures is in tests/support/.

The real stack (Redis, action server, Rasa with the trained model, gateway) is the session
fixture `stack`. Every test that uses it, or the trained `model`, is marked `stack` here
(`pytest_collection_modifyitems`), so `pytest -m "not stack"` runs everything that needs no
model: `make test` runs those first, before training.
"""

from __future__ import annotations

import asyncio
import secrets
import socket
import uuid
from pathlib import Path

import pytest
import redis as redis_sync

from bot.launch.run import Stack, free_port
from bot.launch.train import ensure_model
from tests.support.chat import ChatClient
from tests.support.stack import (FAKE_TELEGRAM, FAKE_TWILIO, PG_ADMIN_URL, TEST_REDIS_URL, GatewayClock,
                                 delete_prefix, demo_shop_db, forget_fixed_presence, pg_admin, print_tracebacks)

# a test using one of these fixtures (directly or through another fixture) needs the trained model
STACK_FIXTURES = frozenset({"model", "stack"})


def pytest_collection_modifyitems(config, items):
    for item in items:
        if STACK_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.stack)


@pytest.fixture(autouse=True)
def _model_only_in_stack_tests(request, monkeypatch):
    """A test not marked `stack` that would train or load the model (a Stack it starts itself,
    say) fails at once with what to do, instead of training for minutes in the fast run."""
    if request.node.get_closest_marker("stack") is not None:
        return

    def refuse(*_args, **_kwargs):
        raise RuntimeError(f"{request.node.nodeid} needs the trained model: mark it with "
                           "pytest.mark.stack (or use the `stack` or `model` fixture)")

    monkeypatch.setattr("bot.launch.train.ensure_model", refuse)
    monkeypatch.setattr("bot.launch.run.ensure_model", refuse)


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


@pytest.fixture(scope="session")
def stack_db(tmp_path_factory) -> str:
    """The records database of the running stack: SQLite with the demo web shop."""
    return demo_shop_db(tmp_path_factory.mktemp("stackdb"))


@pytest.fixture(scope="session")
def twilio_server():
    """Twilio's REST API on loopback, recording every message a customer would receive."""
    from tests.support.fake_twilio import FakeTwilio

    fake = FakeTwilio(account_sid=FAKE_TWILIO["TWILIO_ACCOUNT_SID"], auth_token=FAKE_TWILIO["TWILIO_AUTH_TOKEN"])
    url = fake.start()
    yield fake, url
    fake.stop()


@pytest.fixture(scope="session")
def telegram_server():
    """Telegram's Bot API on loopback, recording every call."""
    from tests.support.fake_telegram import FakeTelegram

    fake = FakeTelegram(token=FAKE_TELEGRAM["TELEGRAM_BOT_TOKEN"])
    url = fake.start()
    yield fake, url
    fake.stop()


@pytest.fixture(scope="session")
def smtp_server():
    """An SMTP server on loopback, recording every e-mail a customer would receive."""
    from tests.support.fake_smtp import FakeSMTP

    fake = FakeSMTP().start()
    yield fake
    fake.stop()


@pytest.fixture(scope="session")
def stack(redis_url, model, stack_db, twilio_server, telegram_server, smtp_server, tmp_path_factory):
    prefix = "t" + secrets.token_hex(4)
    site_port = free_port()  # a business's own site (`third_party_site`): the one other origin allowed
    s = Stack(
        gateway_port=free_port(), rasa_port=free_port(), action_port=free_port(),
        redis_url=redis_url, database_url=stack_db, key_prefix=prefix, model=model,
        log_dir=tmp_path_factory.mktemp("logs"),
        extra_env={**FAKE_TWILIO, **FAKE_TELEGRAM, "TWILIO_API_URL": twilio_server[1],
                   "TELEGRAM_API_URL": telegram_server[1], **smtp_server.env(),
                   "WEBCHAT_ORIGINS": f"http://127.0.0.1:{site_port}"},
    )
    s.site_port = site_port
    s.extra_env["PUBLIC_BASE_URL"] = f"http://127.0.0.1:{s.gateway_port}"
    s.start()
    yield s
    s.stop()
    print_tracebacks(s)
    delete_prefix(redis_url, prefix)


@pytest.fixture(scope="session")
async def third_party_site(stack):
    """A business's web site on another origin (the one WEBCHAT_ORIGINS allows), embedding the
    web chat: rasa-webchat's widget and our one script tag (tests/support/site.py)."""
    from tests.support.site import ThirdPartySite

    site = await ThirdPartySite(f"http://127.0.0.1:{stack.gateway_port}", stack.site_port).start()
    yield site
    await site.stop()


@pytest.fixture(scope="module")
def gateway_clock(stack):
    """The stack's gateway at a fixed moment, for the tests of one module: a test says when it
    runs with `await gateway_clock.at(moment)` (tests/support/clock.py has the moments); the
    gateway is restarted only when the moment changes, and runs on the real clock again after
    the module (see GatewayClock)."""
    clock = GatewayClock(stack)
    yield clock
    clock.set(None)


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
    asyncio.run(pg_admin(f'CREATE DATABASE "{name}"'))
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    url = f"{base}/{name}"
    upgrade(url)
    yield url
    asyncio.run(pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


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
def clock():
    """The clock of a unit test: the system clock. The demo shop (`shop`) is dated by its today.
    A test fixes the time by parametrizing this fixture,
    `@pytest.mark.parametrize("clock", [FixedClock(moment)])`, and hands it to what it runs
    (`ActionTopic(clock=clock)`)."""
    from bot.policy.clock import Clock

    return Clock()


@pytest.fixture
async def shop(engine, database_url, monkeypatch, clock):
    """The demo web shop, dated by `clock`'s today, loaded into an emptied database, and the
    actions pointed at it."""
    from actions import deps
    from bot.records.demo import load_demo

    await load_demo(engine, today=clock.today())
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

    from bot.people import HandoffConfig, Handoffs

    redis = Redis.from_url(stack.redis_url, decode_responses=True)
    yield Handoffs(redis, stack.key_prefix, HandoffConfig.load())
    await redis.close(close_connection_pool=True)


@pytest.fixture(autouse=True)
async def _nobody_left_waiting(request):
    """Tests share the demo customers: a conversation a test handed to people is back with the
    bot before the next test starts (as if an agent closed it), the identification limits
    (config/identity.yml) start afresh, and no desk agent a gateway with a fixed clock saw
    online still counts (`gateway_clock`)."""
    yield
    if "stack" not in request.fixturenames:
        return
    from redis.asyncio import Redis

    from bot.people import HandoffConfig, Handoffs

    stack = request.getfixturevalue("stack")
    redis = Redis.from_url(stack.redis_url, decode_responses=True)
    try:
        # every test starts with fresh identification limits (they all come from 127.0.0.1)
        async for key in redis.scan_iter(f"{stack.key_prefix}:idlimit:*"):
            await redis.delete(key)
        await forget_fixed_presence(redis, stack.key_prefix)
        store = Handoffs(redis, stack.key_prefix, HandoffConfig.load())
        async for key in redis.scan_iter(f"{stack.key_prefix}:handoff:c*"):
            item = await store.get(key.rsplit(":", 1)[1])
            if item and item.get("state") in ("waiting", "with_agent"):
                if item.get("claimed_by"):
                    await redis.srem(f"{stack.key_prefix}:handoff:agent:{item['claimed_by']}", item["conversation"])
                await store.finish(item["conversation"], None, "closed")
    finally:
        await redis.close(close_connection_pool=True)


@pytest.fixture(scope="module")
async def browser():
    """Debian's Chromium, headless, driven by Playwright: one per test module (the browser tests)."""
    from playwright.async_api import async_playwright

    from tests.support.desk_helpers import CHROMIUM, CHROMIUM_ARGS

    p = await async_playwright().start()
    b = await p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
    yield b
    await b.close()
    await p.stop()
