"""The app factory (bot/gateway/app.py) without Rasa: one cleanup context per resource, so a start
that fails half-way closes what it had opened and says why; the channels come from the registry;
webhook work is bounded (503 when full) and the shared HTTP client has a timeout and a limit.
"""

from __future__ import annotations

import asyncio
import secrets

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from redis.asyncio import Redis

from bot.gateway.app import HTTP_TIMEOUT, create_app
from bot.gateway.keys import CHANNELS, HTTP, OUTBOUND, RASA, REDIS, SERVICE, TELEGRAM, TWILIO
from bot.launch.run import free_port
from bot.pipeline import rasa_client
from bot.shared.settings import Settings
from channels import registry
from channels.base import BackgroundTasks
from channels.email import EmailAdapter
from channels.twilio import TwilioAdapter
from channels.webchat import WebChatAdapter
from tests.support.stack import demo_shop_db


@pytest.fixture(scope="module")
def shop_db(tmp_path_factory) -> str:
    return demo_shop_db(tmp_path_factory.mktemp("appdb"))


@pytest.fixture
def settings(redis_url, shop_db, monkeypatch) -> Settings:
    monkeypatch.setenv("DATABASE_URL", shop_db)  # read by create_engine() in the records context
    return Settings(redis_url=redis_url, key_prefix="app" + secrets.token_hex(4), rasa_url="http://127.0.0.1:9")


async def gateway_clients(redis_url: str, name: str) -> list[dict]:
    redis = Redis.from_url(redis_url, decode_responses=True)
    try:
        return [c for c in await redis.client_list() if c.get("name") == name]
    finally:
        await redis.close(close_connection_pool=True)


async def test_an_unreachable_redis_stops_the_start_with_a_clear_error_and_closes_the_http_client(settings):
    app = create_app(Settings(redis_url=f"redis://:geheim@127.0.0.1:{free_port()}/3", key_prefix=settings.key_prefix,
                              rasa_url=settings.rasa_url))
    runner = web.AppRunner(app)
    with pytest.raises(SystemExit) as stopped:
        await runner.setup()
    assert str(stopped.value).startswith("gateway: Redis at 127.0.0.1:")
    assert "/3 cannot be reached (ConnectionError" in str(stopped.value) and "geheim" not in str(stopped.value)
    http = app[HTTP]  # opened before Redis, still open until the runner cleans up (run_app does)
    assert not http.closed and REDIS not in app
    await runner.cleanup()
    assert http.closed


async def test_a_bad_setting_half_way_closes_redis_rasa_and_the_http_client(settings, redis_url, tmp_path, monkeypatch):
    bad = tmp_path / "identity.yml"
    bad.write_text("verified:\n  code_minutes: 0\n")
    monkeypatch.setenv("IDENTITY_FILE", str(bad))  # read when the conversation service is built
    app = create_app(settings)
    runner = web.AppRunner(app)
    with pytest.raises(ValueError, match=r"identity.yml: verified.code_minutes: must be a whole number of at least 1"):
        await runner.setup()
    # Redis, the records and the Rasa client were opened before it; nothing after it was
    assert len(await gateway_clients(redis_url, f"{settings.key_prefix}:gateway")) == 1
    assert SERVICE not in app and CHANNELS not in app
    http, rasa_session = app[HTTP], app[RASA]._session
    await runner.cleanup()
    assert http.closed and rasa_session.closed
    assert await gateway_clients(redis_url, f"{settings.key_prefix}:gateway") == []


async def test_the_channels_come_from_the_registry_and_close_on_shutdown(settings, redis_url):
    app = create_app(settings)
    # every adapter's routes are there from the start; a channel that is off answers 503
    paths = {getattr(r, "canonical", "") for r in app.router.resources()}
    assert {"/webhooks/twilio", "/webhooks/telegram", "/socket.io/"} <= paths
    client = TestClient(TestServer(app))
    await client.start_server()
    try:
        started = [type(a) for a in app[CHANNELS]]
        assert started == [WebChatAdapter]  # Twilio, Telegram and e-mail have no settings here
        assert list(app[OUTBOUND].senders) == ["webchat"]  # web chat is a sender like the others
        assert TWILIO not in app and TELEGRAM not in app
        async with client.post("/webhooks/twilio", data={"From": "+31612345678"}) as resp:
            assert (resp.status, await resp.text()) == (503, "channel not configured")
        http = app[HTTP]
        assert (http.timeout.total, http.timeout.sock_connect) == (HTTP_TIMEOUT.total, 5)
        assert http.connector.limit == 2 * rasa_client.pool_size_from_env()
        assert len(await gateway_clients(redis_url, f"{settings.key_prefix}:gateway")) >= 1
    finally:
        await client.close()
    assert http.closed
    assert await gateway_clients(redis_url, f"{settings.key_prefix}:gateway") == []


async def test_a_configured_channel_gets_its_sender(settings, monkeypatch):
    from dataclasses import replace

    app = create_app(replace(settings, smtp_host="127.0.0.1", smtp_port=free_port(), smtp_from="bot@webwinkel.example"))
    client = TestClient(TestServer(app))
    await client.start_server()
    try:
        assert [type(a) for a in app[CHANNELS]] == [WebChatAdapter, EmailAdapter]
        assert list(app[OUTBOUND].senders) == ["webchat", "email"]
        assert app[OUTBOUND].senders["email"] is app[CHANNELS][1].sender
    finally:
        await client.close()


def test_every_channel_is_in_the_registry_once_with_both_languages():
    assert registry.names() == ("webchat", "sms", "whatsapp", "telegram", "email")
    assert registry.identifying() == ("sms", "whatsapp", "telegram")
    assert [n for n in registry.names() if registry.numbered_buttons(n)] == ["sms", "whatsapp"]
    assert TwilioAdapter.channels == (registry.channel("sms"), registry.channel("whatsapp"))
    assert registry.channel("whatsapp").capabilities.reply_window == 24 * 3600
    assert {n: registry.label(n, "nl") for n in registry.names()} == {
        "webchat": "de chat op de website", "sms": "sms", "whatsapp": "WhatsApp", "telegram": "Telegram",
        "email": "e-mail"}
    assert {n: registry.label(n, "en") for n in registry.names()} == {
        "webchat": "the chat on our website", "sms": "SMS", "whatsapp": "WhatsApp", "telegram": "Telegram",
        "email": "email"}
    assert registry.label("phone", "nl") == "phone"  # not a channel: its name as it is
    # the records' channel columns hold 16 characters
    assert all(len(n) <= 16 for n in registry.names())


# -- bounded webhook work ----------------------------------------------------------------------------

async def test_background_work_beyond_the_limit_is_refused_and_never_started():
    tasks = BackgroundTasks(limit=2)
    release = asyncio.Event()
    ran: list[int] = []

    async def work(i: int) -> None:
        ran.append(i)
        await release.wait()

    assert tasks.spawn(work(1), "one") and tasks.spawn(work(2), "two")
    third = work(3)
    assert tasks.spawn(third, "three") is False
    assert third.cr_frame is None  # closed: it never runs
    await asyncio.sleep(0)
    assert ran == [1, 2] and len(tasks) == 2
    release.set()
    assert await tasks.drain(1) == 0
    assert tasks.spawn(work(4), "four")  # room again
    assert await tasks.drain(1) == 0 and ran == [1, 2, 4]


async def test_a_webhook_beyond_the_limit_waits_briefly_then_answers_503():
    """The Twilio route with an adapter whose handling blocks: WEBHOOK_CONCURRENCY=1."""
    from channels import twilio

    entered, release = asyncio.Event(), asyncio.Event()

    class SlowWebhook:
        tasks = BackgroundTasks(limit=1, wait=0.3)

        async def handle(self, request: web.Request) -> web.Response:
            entered.set()
            await release.wait()
            return web.Response(text="ok")

    app = web.Application()
    twilio.add_routes(app)
    app[TWILIO] = SlowWebhook()
    client = TestClient(TestServer(app))
    await client.start_server()
    try:
        first = asyncio.ensure_future(client.post("/webhooks/twilio", data={}))
        await asyncio.wait_for(entered.wait(), 5)
        started = asyncio.get_running_loop().time()
        async with client.post("/webhooks/twilio", data={}) as resp:
            assert (resp.status, await resp.text()) == (503, "busy, send it again")
        assert 0.25 < asyncio.get_running_loop().time() - started < 2
        # a slot that comes free within the wait is taken
        second = asyncio.ensure_future(client.post("/webhooks/twilio", data={}))
        await asyncio.sleep(0.1)
        release.set()
        for pending in (first, second):
            resp = await pending
            assert (resp.status, await resp.text()) == (200, "ok")
            resp.release()
        assert SlowWebhook.tasks.handling == 0
    finally:
        await client.close()


def test_make_run_lists_every_channel_from_the_registry():
    from bot.launch.run import channel_summary

    assert channel_summary({}).splitlines() == [
        "channels:",
        "  web chat: on",
        "  SMS: off (set TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN, TWILIO_SMS_NUMBER, PUBLIC_BASE_URL)",
        "  WhatsApp: off (set TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN, TWILIO_WHATSAPP_NUMBER, PUBLIC_BASE_URL)",
        "  Telegram: off (set TELEGRAM_BOT_TOKEN, TELEGRAM_WEBHOOK_SECRET, PUBLIC_BASE_URL)",
        "  email: off (set SMTP_HOST, SMTP_FROM)",
    ]
    on = {"TWILIO_ACCOUNT_SID": "AC1", "TWILIO_AUTH_TOKEN": "t", "PUBLIC_BASE_URL": "https://bot.example.com",
          "TWILIO_WHATSAPP_NUMBER": "+3197010000002", "SMTP_HOST": "smtp.example.nl", "SMTP_FROM": "bot@example.nl"}
    assert channel_summary(on).splitlines()[2:] == [
        "  SMS: off (set TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN, TWILIO_SMS_NUMBER, PUBLIC_BASE_URL)",
        "  WhatsApp: on (webhook: $PUBLIC_BASE_URL/webhooks/twilio)",
        "  Telegram: off (set TELEGRAM_BOT_TOKEN, TELEGRAM_WEBHOOK_SECRET, PUBLIC_BASE_URL)",
        "  email: on",
    ]
