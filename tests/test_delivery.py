"""Outbound delivery (bot/delivery/queue.py) against the fake Twilio and Telegram servers: bounded
retries, failures marked in the real transcript (SQLite records), order kept per customer also
while the provider hangs, nothing sent twice. No Rasa needed."""

from __future__ import annotations

import asyncio
import os
import secrets
import time

import aiohttp
import pytest
from aiohttp import web
from redis.asyncio import Redis

from bot.shared.db import create_engine
from bot.delivery.queue import FAILED, PENDING, SENT, Delivery
from bot.records.repository import Records
from bot.pipeline.types import BotMessage
from bot.shared.settings import Settings
from channels import telegram as tg
from channels.base import BackgroundTasks
from channels.twilio import TwilioSender, WhatsAppWindow
from tests.support.fake_telegram import FakeTelegram
from tests.support.fake_twilio import FakeTwilio
from tests.support.stack import demo_shop_db
from tests.support.wait import until

REDIS_URL = os.environ.get("TEST_TWILIO_REDIS_URL", "redis://127.0.0.1:6379/12")


def phone() -> str:
    return f"+316{secrets.randbelow(10**8):08d}"


@pytest.fixture(scope="module")
def fake():
    twilio = FakeTwilio()
    twilio.start()
    yield twilio
    twilio.stop()


@pytest.fixture(scope="module")
def fake_tg():
    server = FakeTelegram()
    server.start()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def _fresh(fake, fake_tg):
    fake.clear()
    fake_tg.clear()


@pytest.fixture
async def redis():
    client = Redis.from_url(REDIS_URL, decode_responses=True, socket_timeout=5)
    client.test_prefix = "dl" + secrets.token_hex(4)
    yield client
    async for key in client.scan_iter(match=f"{client.test_prefix}:*"):
        await client.delete(key)
    await client.close(close_connection_pool=True)


@pytest.fixture(scope="module")
def shop_url(tmp_path_factory) -> str:
    return demo_shop_db(tmp_path_factory.mktemp("delivery"))


@pytest.fixture
async def records(shop_url):
    engine = create_engine(shop_url)
    yield Records(engine)
    await engine.dispose()


@pytest.fixture
async def http():
    session = aiohttp.ClientSession()
    yield session
    await session.close()


@pytest.fixture
def twilio(http, fake, redis) -> TwilioSender:
    settings = Settings(redis_url=REDIS_URL, key_prefix=redis.test_prefix, public_base_url="https://bot.example.com",
                        twilio_account_sid=fake.account_sid, twilio_auth_token=fake.auth_token,
                        twilio_sms_number="+3197010000001", twilio_whatsapp_number="+14155238886",
                        twilio_api_url=fake.base_url)
    window = WhatsAppWindow(redis, redis.test_prefix)
    # quick inner retries and a short call timeout, so a hang costs the test half a second a call
    return TwilioSender(http, settings, window.last_inbound, backoff=(0.01, 0.01),
                        timeout=aiohttp.ClientTimeout(total=0.5))


def whatsapp(sender: TwilioSender):
    return {"whatsapp": sender.view("whatsapp"), "sms": sender.view("sms")}


async def rows(records: Records, conversation: str, *texts: str) -> list[int]:
    return [await records.add_transcript(conversation, None, "bot", "whatsapp", t, {}) for t in texts]


async def flags(records: Records, conversation: str) -> list[tuple[str, str | None, str | None]]:
    return [(e["text"], e.get("delivery"), e.get("delivery_error")) for e in await records.transcript(conversation)]


async def test_an_outage_is_retried_with_backoff_until_twilio_takes_it(twilio, fake, records):
    to, conv = phone(), "c" + secrets.token_hex(6)
    [row] = await rows(records, conv, "Je pakket komt morgen.")
    delivery = Delivery(whatsapp(twilio), records, retry_for=30, backoff=(0.3,))
    fake.fail_next(5, status=503)
    result = await asyncio.wait_for(delivery.submit("whatsapp", to, [BotMessage("Je pakket komt morgen.")],
                                                    rows=[row]), 20)
    assert result.status == SENT
    assert [r["status"] for r in fake.requests] == [503, 503, 503, 503, 503, 201]
    assert [m["Body"] for m in fake.messages] == ["Je pakket komt morgen."]
    assert await flags(records, conv) == [("Je pakket komt morgen.", SENT, None)]


async def test_an_outage_longer_than_the_retry_time_marks_the_row_failed_with_the_reason(twilio, fake, records):
    to, conv = phone(), "c" + secrets.token_hex(6)
    [row] = await rows(records, conv, "Je pakket komt morgen.")
    delivery = Delivery(whatsapp(twilio), records, retry_for=1.5, backoff=(0.3,))
    fake.fail_next(1000, status=503)
    started = time.monotonic()
    future = delivery.submit("whatsapp", to, [BotMessage("Je pakket komt morgen.")], rows=[row])
    await until(lambda: fake.requests, what="a first attempt")
    assert (await flags(records, conv))[0][1] == PENDING  # while retrying: not claimed to be sent
    result = await asyncio.wait_for(future, 10)
    assert result.status == FAILED and time.monotonic() - started < 3
    assert fake.messages == [] and len(fake.requests) >= 6  # retried, never accepted
    [(text, status, reason)] = await flags(records, conv)
    assert (text, status) == ("Je pakket komt morgen.", FAILED)
    assert reason.startswith("given up after ") and "HTTP 503" in reason and to not in reason


async def test_a_final_refusal_fails_at_once(twilio, fake, records):
    to, conv = phone(), "c" + secrets.token_hex(6)
    [row] = await rows(records, conv, "Hoi")
    delivery = Delivery(whatsapp(twilio), records, retry_for=60, backoff=(0.3,))
    fake.fail_next(1, status=400, code=21211)  # invalid 'To' number
    started = time.monotonic()
    result = await asyncio.wait_for(delivery.submit("whatsapp", to, [BotMessage("Hoi")], rows=[row]), 10)
    assert result.status == FAILED and time.monotonic() - started < 1
    assert [r["status"] for r in fake.requests] == [400]
    assert await flags(records, conv) == [("Hoi", FAILED, "Twilio refused the whatsapp message: HTTP 400, Twilio error 21211")]


async def test_a_hanging_twilio_never_lets_a_later_reply_overtake(twilio, fake, records):
    """Every call to the first customer hangs for a while (each attempt times out after 0.5 s):
    their second reply waits for the first; another customer is not held up."""
    first, other, conv = phone(), phone(), "c" + secrets.token_hex(6)
    ids = await rows(records, conv, "Antwoord 1", "Antwoord 2")
    delivery = Delivery(whatsapp(twilio), records, retry_for=30, backoff=(0.2,))
    fake.hang_next(4, seconds=1.0, to=f"whatsapp:{first}")
    one = delivery.submit("whatsapp", first, [BotMessage("Antwoord 1")], rows=[ids[0]])
    two = delivery.submit("whatsapp", first, [BotMessage("Antwoord 2")], rows=[ids[1]])
    three = delivery.submit("whatsapp", other, [BotMessage("Voor een ander")])
    assert (await asyncio.wait_for(three, 5)).status == SENT
    assert [m["Body"] for m in fake.messages] == ["Voor een ander"]  # while the first still hangs
    results = await asyncio.wait_for(asyncio.gather(one, two), 20)
    assert [r.status for r in results] == [SENT, SENT]
    to_first = [m["Body"] for m in fake.messages if m["To"] == f"whatsapp:{first}"]
    assert to_first == ["Antwoord 1", "Antwoord 2"]
    arrived = [r["Body"] for r in fake.arrived if r["To"] == f"whatsapp:{first}"]
    assert arrived == ["Antwoord 1"] * 5 + ["Antwoord 2"]  # 4 hangs, then accepted; only then the 2nd
    assert [f[1] for f in await flags(records, conv)] == [SENT, SENT]


async def test_a_turn_that_failed_halfway_sends_only_the_rest(twilio, fake, records):
    to, conv = phone(), "c" + secrets.token_hex(6)
    texts = ["Een", "Twee", "Drie"]
    ids = await rows(records, conv, *texts)
    delivery = Delivery(whatsapp(twilio), records, retry_for=30, backoff=(0.2,))
    fake.fail_next(4, status=503, after=1)  # the first goes out, then an outage
    result = await asyncio.wait_for(delivery.submit("whatsapp", to, [BotMessage(t) for t in texts], rows=ids), 20)
    assert result.status == SENT
    assert [m["Body"] for m in fake.messages] == texts  # "Een" once, not again with the retry
    assert [f[1] for f in await flags(records, conv)] == [SENT, SENT, SENT]


async def test_a_turn_refused_halfway_marks_only_the_undelivered_rows_failed(twilio, fake, records):
    to, conv = phone(), "c" + secrets.token_hex(6)
    texts = ["Een", "Twee", "Drie"]
    ids = await rows(records, conv, *texts)
    delivery = Delivery(whatsapp(twilio), records, retry_for=30, backoff=(0.2,))
    fake.fail_next(1, status=400, code=63016, after=1)
    result = await asyncio.wait_for(delivery.submit("whatsapp", to, [BotMessage(t) for t in texts], rows=ids), 10)
    assert result.status == FAILED
    assert [m["Body"] for m in fake.messages] == ["Een"]
    assert [f[1] for f in await flags(records, conv)] == [SENT, FAILED, FAILED]


async def test_drain_is_bounded_and_leaves_undelivered_rows_pending(twilio, fake, records):
    to, conv = phone(), "c" + secrets.token_hex(6)
    [row] = await rows(records, conv, "Hoi")
    delivery = Delivery(whatsapp(twilio), records, retry_for=60, backoff=(0.3,))
    fake.fail_next(1000, status=503)
    delivery.submit("whatsapp", to, [BotMessage("Hoi")], rows=[row])
    started = time.monotonic()
    assert await delivery.drain(1.0) == 1
    assert time.monotonic() - started < 2.5
    assert await flags(records, conv) == [("Hoi", PENDING, None)]


# -- Telegram ----------------------------------------------------------------------------------

@pytest.fixture
async def telegram_sender(fake_tg, redis):
    settings = Settings(redis_url=REDIS_URL, key_prefix=redis.test_prefix, telegram_bot_token=fake_tg.token,
                        telegram_webhook_secret="s" * 32, telegram_api_url=fake_tg.base_url)
    sender = tg.setup(web.Application(), None, settings, None, BackgroundTasks(), redis)
    yield sender
    await sender.close()


async def test_telegram_outage_is_retried_and_a_blocked_bot_fails_at_once(telegram_sender, fake_tg, records):
    conv = "c" + secrets.token_hex(6)
    ids = [await records.add_transcript(conv, None, "bot", "telegram", t, {}) for t in ("Hallo", "Hoi")]
    delivery = Delivery({"telegram": telegram_sender}, records, retry_for=30, backoff=(0.2,))
    fake_tg.fail_next(4, status=502)
    result = await asyncio.wait_for(delivery.submit("telegram", "777001", [BotMessage("Hallo")], rows=[ids[0]]), 20)
    assert result.status == SENT
    assert [p["text"] for p in fake_tg.calls_of("sendMessage", 777001)] == ["Hallo"] * 5
    fake_tg.block_user(777002)
    result = await asyncio.wait_for(delivery.submit("telegram", "777002", [BotMessage("Hoi")], rows=[ids[1]]), 10)
    assert result.status == FAILED and "forbidden" in result.reason
    assert len(fake_tg.calls_of("sendMessage", 777002)) == 1
    assert [(t, s) for t, s, _ in await flags(records, conv)] == [("Hallo", SENT), ("Hoi", FAILED)]
