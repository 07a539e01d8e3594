"""The Twilio adapter without Rasa: the sender against the fake Twilio API, the webhook edge in a
small aiohttp app (routes added at creation, adapter built in cleanup_ctx as the gateway does).

The webhook tests stand a recording stub in for `ConversationService` (the edge is under test,
not the conversation); Redis is real (database 12, a key prefix of its own, deleted afterwards).
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import socket
import time
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from redis.asyncio import Redis

from bot.pipeline.types import BotMessage, Button, Inbound, Outcome
from bot.shared.settings import Settings
from channels.base import BackgroundTasks, DeliveryError
from channels.twilio import (
    EMPTY_TWIML, PATH, TwilioChannelSender, TwilioSender, WhatsAppWindow, add_routes, setup,
)
from tests.support.fake_twilio import FakeTwilio, inbound_params, signed_post_args

REDIS_URL = os.environ.get("TEST_TWILIO_REDIS_URL", "redis://127.0.0.1:6379/12")
PUBLIC = "https://bot.example.com"
SMS_NUMBER = "+3197010000001"
WA_NUMBER = "+14155238886"
TEMPLATE = "HX" + "1" * 32
WA_SENDER = f"whatsapp:{WA_NUMBER}"


def phone() -> str:
    """A fresh Dutch mobile number, so tests never share a WhatsApp window."""
    return f"+316{secrets.randbelow(10**8):08d}"


def message_sid() -> str:
    return "SM" + secrets.token_hex(16)


# -- fixtures ------------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def fake():
    twilio = FakeTwilio()
    twilio.start()
    yield twilio
    twilio.stop()


@pytest.fixture(autouse=True)
def _fresh_fake(fake):
    fake.clear()


@pytest.fixture(scope="session")
def prefix() -> str:
    return "tw" + secrets.token_hex(4)


@pytest.fixture(scope="session")
async def redis(prefix):
    client = Redis.from_url(REDIS_URL, decode_responses=True, socket_timeout=5, socket_connect_timeout=5)
    await client.ping()
    yield client
    async for key in client.scan_iter(match=f"{prefix}:*", count=1000):
        await client.delete(key)
    await client.close(close_connection_pool=True)  # from_url clients keep their pool otherwise (redis 4.6)


def make_settings(fake: FakeTwilio, prefix: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = dict(
        redis_url=REDIS_URL, key_prefix=prefix, public_base_url=PUBLIC,
        twilio_account_sid=fake.account_sid, twilio_auth_token=fake.auth_token,
        twilio_sms_number=SMS_NUMBER, twilio_whatsapp_number=WA_NUMBER,
        twilio_whatsapp_template_sid=TEMPLATE, twilio_api_url=fake.base_url,
    )
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def settings(fake, prefix) -> Settings:
    return make_settings(fake, prefix)


@pytest.fixture
async def http():
    session = aiohttp.ClientSession()
    yield session
    await session.close()


@pytest.fixture
def window(redis, prefix) -> WhatsAppWindow:
    return WhatsAppWindow(redis, prefix)


@pytest.fixture
def sender(http, settings, window) -> TwilioSender:
    return TwilioSender(http, settings, window.last_inbound)


class StubService:
    """Stands in for ConversationService at the edge: records the Inbound, returns `outcome`."""

    def __init__(self) -> None:
        self.inbounds: list[Inbound] = []
        self.outcome = Outcome("conv", "nl", [
            BotMessage("Hoi! Waarmee kan ik je helpen?",
                       [Button("Waar is mijn bestelling?", "/order"), Button("Een medewerker", "/human")]),
        ])

    async def handle(self, inbound: Inbound) -> Outcome:
        self.inbounds.append(inbound)
        return self.outcome


@dataclass
class Gateway:
    client: TestClient
    service: StubService
    tasks: BackgroundTasks
    settings: Settings
    senders: dict | None

    async def post(self, params: dict, *, token: str | None = None, path: str = PATH,
                   signed_url: str | None = None, headers: dict | None = None) -> tuple[int, str, str]:
        signed = signed_post_args(token or self.settings.twilio_auth_token, signed_url or PUBLIC + path, params)
        async with self.client.post(path, data=params, headers={**signed, **(headers or {})}) as resp:
            return resp.status, await resp.text(), resp.headers.get("Content-Type", "")


@pytest.fixture
async def make_gateway(redis):
    made: list[Gateway] = []

    async def make(settings: Settings, *, configure: bool = True) -> Gateway:
        service, tasks, result = StubService(), BackgroundTasks(), {}
        app = web.Application()
        add_routes(app)
        if configure:
            async def resources(app: web.Application):
                http = aiohttp.ClientSession()
                result["senders"] = setup(app, service, settings, http, tasks, redis)
                yield
                await tasks.drain()
                await http.close()

            app.cleanup_ctx.append(resources)
        client = TestClient(TestServer(app))
        await client.start_server()
        gateway = Gateway(client, service, tasks, settings, result.get("senders"))
        made.append(gateway)
        return gateway

    yield make
    for gateway in made:
        await gateway.client.close()


@pytest.fixture
async def gateway(make_gateway, settings) -> Gateway:
    return await make_gateway(settings)


# -- the sender ------------------------------------------------------------------------------------

TURN = [
    BotMessage("Ik zie je bestelling 104233."),
    BotMessage("Wil je hem volgen?", [Button("Ja", "/affirm"), Button("Nee", "/deny")]),
]


async def test_sms_sends_a_whole_turn_as_one_message_with_numbered_buttons(sender, fake):
    to = phone()
    await sender.send(to, TURN, channel="sms")
    [sms] = await fake.wait_for(to)
    assert sms["Body"] == "Ik zie je bestelling 104233.\n\nWil je hem volgen?\n1. Ja\n2. Nee"
    assert sms["From"] == SMS_NUMBER
    assert sms["account_sid"] == sms["auth_user"] == fake.account_sid
    assert sms["ContentSid"] is None


async def test_sms_is_cut_at_1600_characters(sender, fake):
    to = phone()
    await sender.send(to, [BotMessage("a" * 1000), BotMessage("b" * 1000)], channel="sms")
    [sms] = await fake.wait_for(to)
    assert len(sms["Body"]) == 1600 and sms["Body"].endswith("…")


async def test_whatsapp_sends_each_bot_message_on_its_own(sender, fake):
    to = phone()
    await sender.send(to, TURN, channel="whatsapp")
    first, second = await fake.wait_for(f"whatsapp:{to}", count=2)
    assert first["Body"] == "Ik zie je bestelling 104233."
    assert second["Body"] == "Wil je hem volgen?\n1. Ja\n2. Nee"
    assert first["From"] == second["From"] == WA_SENDER
    assert len(fake.requests) == 2


async def test_whatsapp_message_is_cut_to_what_twilio_accepts(sender, fake):
    to = phone()
    await sender.send(to, [BotMessage("x" * 3000)], channel="whatsapp")
    [message] = await fake.wait_for(f"whatsapp:{to}")
    assert len(message["Body"]) == 1600


async def test_channel_views_are_senders_named_after_their_channel(sender, fake):
    to = phone()
    sms, whatsapp = sender.view("sms"), sender.view("whatsapp")
    assert isinstance(sms, TwilioChannelSender) and (sms.name, whatsapp.name) == ("sms", "whatsapp")
    await whatsapp.send(to, [BotMessage("Hoi")])
    await sms.send(to, [BotMessage("Hoi")])
    assert [m["To"] for m in fake.messages] == [f"whatsapp:{to}", to]


async def test_proactive_whatsapp_within_24_hours_is_a_normal_message(sender, window, fake):
    to = phone()
    await window.record(to, time.time() - 23 * 3600)
    await sender.send(to, [BotMessage("Je pakket is onderweg.")], proactive=True, channel="whatsapp")
    [message] = await fake.wait_for(f"whatsapp:{to}")
    assert message["Body"] == "Je pakket is onderweg." and message["ContentSid"] is None


@pytest.mark.parametrize("last_wrote", [25 * 3600, None], ids=["25-hours-ago", "never"])
async def test_proactive_whatsapp_outside_24_hours_is_a_template(sender, window, fake, last_wrote):
    to = phone()
    if last_wrote is not None:
        await window.record(to, time.time() - last_wrote)
    await sender.send(to, TURN, proactive=True, channel="whatsapp")
    [message] = await fake.wait_for(f"whatsapp:{to}")
    assert message["Body"] is None
    assert message["ContentSid"] == TEMPLATE
    # One template for the turn; a template variable may hold no newlines.
    assert json.loads(message["ContentVariables"]) == {
        "1": "Ik zie je bestelling 104233. Wil je hem volgen? 1. Ja 2. Nee"
    }


async def test_replies_on_whatsapp_need_no_template(sender, fake):
    to = phone()  # never recorded, but a reply answers a message that just came in
    await sender.send(to, [BotMessage("Graag gedaan!")], channel="whatsapp")
    [message] = await fake.wait_for(f"whatsapp:{to}")
    assert message["Body"] == "Graag gedaan!"


async def test_proactive_whatsapp_outside_window_without_template_is_a_delivery_error(http, fake, prefix, window):
    sender = TwilioSender(http, make_settings(fake, prefix, twilio_whatsapp_template_sid=""), window.last_inbound)
    with pytest.raises(DeliveryError, match="24-hour window and no template"):
        await sender.send(phone(), [BotMessage("Hoi")], proactive=True, channel="whatsapp")
    assert fake.requests == []


async def test_outage_is_retried_with_backoff_then_delivered(sender, fake):
    to = phone()
    fake.fail_next(2, status=503)
    started = time.monotonic()
    await sender.send(to, [BotMessage("Hoi")], channel="sms")
    assert time.monotonic() - started >= 1.4  # 0.5 s + 1 s
    assert [r["status"] for r in fake.requests] == [503, 503, 201]
    assert len(await fake.wait_for(to)) == 1


async def test_rate_limit_is_retried(sender, fake):
    to = phone()
    fake.fail_next(1, status=429)
    await sender.send(to, [BotMessage("Hoi")], channel="sms")
    assert [r["status"] for r in fake.requests] == [429, 201]


async def test_three_failures_are_a_delivery_error(http, settings, window, fake):
    sender = TwilioSender(http, settings, window.last_inbound, backoff=(0.01, 0.01))
    fake.fail_next(3, status=500)
    with pytest.raises(DeliveryError, match="after 3 attempts: HTTP 500"):
        await sender.send(phone(), [BotMessage("Hoi")], channel="sms")
    assert [r["status"] for r in fake.requests] == [500, 500, 500]


async def test_connection_errors_are_retried_then_a_delivery_error(http, fake, prefix, window):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed_port = s.getsockname()[1]
    settings = make_settings(fake, prefix, twilio_api_url=f"http://127.0.0.1:{closed_port}")
    sender = TwilioSender(http, settings, window.last_inbound, backoff=(0.01, 0.01))
    with pytest.raises(DeliveryError, match="after 3 attempts: ClientConnectorError"):
        await sender.send(phone(), [BotMessage("Hoi")], channel="sms")


async def test_client_error_is_a_delivery_error_at_once_with_twilios_code(sender, fake, caplog):
    to = phone()
    fake.fail_next(1, status=400, code=21610)  # the customer texted STOP
    with caplog.at_level(logging.DEBUG, logger="channels.twilio"):
        with pytest.raises(DeliveryError, match="HTTP 400, Twilio error 21610") as failure:
            await sender.send(to, [BotMessage("Geheime tekst")], channel="sms")
    assert len(fake.requests) == 1
    assert to not in str(failure.value) and "Geheime" not in str(failure.value)


async def test_wrong_credentials_are_refused(http, fake, prefix, window):
    settings = make_settings(fake, prefix, twilio_auth_token="not-the-token")
    sender = TwilioSender(http, settings, window.last_inbound)
    with pytest.raises(DeliveryError, match="HTTP 401, Twilio error 20003"):
        await sender.send(phone(), [BotMessage("Hoi")], channel="sms")
    assert [r["status"] for r in fake.requests] == [401]
    assert fake.messages == []


async def test_address_must_be_a_phone_number(sender, fake):
    with pytest.raises(DeliveryError, match="E.164"):
        await sender.send("0612345678", [BotMessage("Hoi")], channel="sms")
    assert fake.requests == []


async def test_channel_without_a_number_is_a_delivery_error(http, fake, prefix, window):
    sender = TwilioSender(http, make_settings(fake, prefix, twilio_whatsapp_number=""), window.last_inbound)
    assert not sender.configured("whatsapp")
    with pytest.raises(DeliveryError, match="no Twilio whatsapp number"):
        await sender.send(phone(), [BotMessage("Hoi")], channel="whatsapp")


async def test_retries_log_neither_numbers_nor_text(sender, fake, caplog):
    to = phone()
    fake.fail_next(1, status=503)
    with caplog.at_level(logging.DEBUG, logger="channels.twilio"):
        await sender.send(to, [BotMessage("Geheime tekst")], channel="sms")
    assert "503" in caplog.text
    assert to not in caplog.text and to[1:] not in caplog.text and "Geheime" not in caplog.text


# -- setup -----------------------------------------------------------------------------------------

async def test_setup_returns_the_configured_channels(make_gateway, fake, prefix):
    both = await make_gateway(make_settings(fake, prefix))
    assert sorted(both.senders) == ["sms", "whatsapp"]
    assert [s.name for s in both.senders.values()] == ["sms", "whatsapp"]
    sms_only = await make_gateway(make_settings(fake, prefix, twilio_whatsapp_number=""))
    assert list(sms_only.senders) == ["sms"]
    whatsapp_only = await make_gateway(make_settings(fake, prefix, twilio_sms_number=""))
    assert list(whatsapp_only.senders) == ["whatsapp"]


async def test_not_configured_answers_503(make_gateway, fake, prefix):
    disabled = await make_gateway(make_settings(fake, prefix, twilio_auth_token=""))
    assert disabled.senders is None
    status, text, _ = await disabled.post(inbound_params(phone(), "hoi", SMS_NUMBER))
    assert (status, text) == (503, "channel not configured")
    routes_only = await make_gateway(make_settings(fake, prefix), configure=False)
    assert (await routes_only.post(inbound_params(phone(), "hoi", SMS_NUMBER)))[0] == 503


# -- the webhook edge ------------------------------------------------------------------------------

async def test_valid_sms_is_answered_with_empty_twiml_and_handled(gateway, fake):
    customer, sid = phone(), message_sid()
    status, text, content_type = await gateway.post(inbound_params(customer, "Hallo", SMS_NUMBER, sid=sid))
    assert status == 200 and text == EMPTY_TWIML and content_type.startswith("text/xml")
    await gateway.tasks.drain()
    assert gateway.service.inbounds == [Inbound("sms", customer, "Hallo", message_id=sid, media=[])]
    [reply] = await fake.wait_for(customer)
    assert reply["From"] == SMS_NUMBER
    assert reply["Body"] == "Hoi! Waarmee kan ik je helpen?\n1. Waar is mijn bestelling?\n2. Een medewerker"


async def test_whatsapp_message_with_media(gateway, fake, window):
    customer, sid = phone(), message_sid()
    media = ["https://api.twilio.com/media/ME1", ("https://api.twilio.com/media/ME2", "audio/ogg")]
    gateway.service.outcome = Outcome("conv", "nl", [BotMessage("Ik kan alleen tekst lezen."),
                                                     BotMessage("Wil je je vraag typen?")])
    params = inbound_params(f"whatsapp:{customer}", "kijk", WA_SENDER, sid=sid, media=media)
    assert (await gateway.post(params))[0] == 200
    await gateway.tasks.drain()
    assert gateway.service.inbounds == [Inbound(
        "whatsapp", customer, "kijk", message_id=sid,
        media=["https://api.twilio.com/media/ME1", "https://api.twilio.com/media/ME2"],
    )]
    first, second = await fake.wait_for(f"whatsapp:{customer}", count=2)
    assert (first["Body"], second["Body"]) == ("Ik kan alleen tekst lezen.", "Wil je je vraag typen?")
    assert first["From"] == second["From"] == WA_SENDER
    # The 24-hour window starts now.
    last = await window.last_inbound(customer)
    assert last is not None and abs(time.time() - last) < 10
    ttl = await window.redis.ttl(window.key(customer))
    assert 6 * 24 * 3600 < ttl <= 7 * 24 * 3600


async def test_sms_does_not_touch_the_whatsapp_window(gateway, window):
    customer = phone()
    assert (await gateway.post(inbound_params(customer, "Hallo", SMS_NUMBER)))[0] == 200
    await gateway.tasks.drain()
    assert await window.last_inbound(customer) is None


async def test_duplicate_sends_nothing(gateway, fake):
    gateway.service.outcome = Outcome("conv", "nl", [BotMessage("Dit mag niet nog eens")], duplicate=True)
    assert (await gateway.post(inbound_params(phone(), "Hallo", SMS_NUMBER)))[0] == 200
    await gateway.tasks.drain()
    assert len(gateway.service.inbounds) == 1
    assert fake.requests == []


async def test_signature_over_the_public_url_with_query_string(gateway):
    params = inbound_params(phone(), "Hallo", SMS_NUMBER)
    path = f"{PATH}?tenant=shop"
    assert (await gateway.post(params, path=path))[0] == 200
    # Signed for the address the gateway listens on rather than the public one: refused.
    internal = str(gateway.client.make_url(path))
    assert (await gateway.post(params, path=path, signed_url=internal))[0] == 403
    # The query string is part of what is signed.
    assert (await gateway.post(params, path=path, signed_url=PUBLIC + PATH))[0] == 403


async def test_missing_or_forged_signature_is_403(gateway, caplog):
    customer = phone()
    params = inbound_params(customer, "Geheime tekst", SMS_NUMBER)
    with caplog.at_level(logging.DEBUG, logger="channels.twilio"):
        async with gateway.client.post(PATH, data=params) as resp:
            assert resp.status == 403
        assert (await gateway.post(params, token="not-the-token"))[0] == 403
        headers = signed_post_args(gateway.settings.twilio_auth_token, PUBLIC + PATH, params)
        async with gateway.client.post(PATH, data={**params, "Body": "changed"}, headers=headers) as resp:
            assert resp.status == 403
    assert gateway.service.inbounds == []
    assert params["MessageSid"] in caplog.text
    assert customer not in caplog.text and customer[1:] not in caplog.text and "Geheime" not in caplog.text


async def test_json_body_is_415(gateway):
    params = inbound_params(phone(), "Hallo", SMS_NUMBER)
    headers = signed_post_args(gateway.settings.twilio_auth_token, PUBLIC + PATH, params)
    async with gateway.client.post(PATH, json=params, headers=headers) as resp:
        assert resp.status == 415


async def test_oversized_body_is_413(gateway):
    params = inbound_params(phone(), "x" * (65 * 1024), SMS_NUMBER)
    assert (await gateway.post(params))[0] == 413

    async def chunks():  # no Content-Length: the limit holds while reading
        for _ in range(80):
            yield b"Body=" + b"x" * 1024 + b"&"

    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    async with gateway.client.post(PATH, data=chunks(), headers=headers) as resp:
        assert resp.status == 413
    assert gateway.service.inbounds == []


@pytest.mark.parametrize("change", [
    {"From": None}, {"MessageSid": None}, {"From": "0612345678"}, {"From": "whatsapp:hallo"},
    {"From": "+31"}, {"From": "+0612345678"},
], ids=["no-From", "no-MessageSid", "national-number", "whatsapp-not-a-number", "too-short", "leading-zero"])
async def test_missing_fields_or_bad_number_is_400(gateway, change, caplog):
    params = inbound_params(phone(), "Geheime tekst", SMS_NUMBER)
    for key, value in change.items():
        if value is None:
            del params[key]
        else:
            params[key] = value
    with caplog.at_level(logging.DEBUG, logger="channels.twilio"):
        assert (await gateway.post(params))[0] == 400
    assert gateway.service.inbounds == []
    assert "Geheime" not in caplog.text and "0612345678" not in caplog.text


async def test_whatsapp_when_only_sms_is_configured_is_503(make_gateway, fake, prefix):
    gateway = await make_gateway(make_settings(fake, prefix, twilio_whatsapp_number=""))
    params = inbound_params(f"whatsapp:{phone()}", "Hallo", WA_SENDER)
    assert (await gateway.post(params))[0] == 503
    assert gateway.service.inbounds == []


async def test_reply_that_twilio_refuses_is_logged_without_number(gateway, fake, caplog):
    customer, sid = phone(), message_sid()
    fake.fail_next(1, status=400, code=21610)
    with caplog.at_level(logging.DEBUG, logger="channels.twilio"):
        assert (await gateway.post(inbound_params(customer, "Geheime tekst", SMS_NUMBER, sid=sid)))[0] == 200
        await gateway.tasks.drain()
    assert "21610" in caplog.text and sid in caplog.text
    assert customer not in caplog.text and customer[1:] not in caplog.text and "Geheime" not in caplog.text
    assert fake.messages == []
