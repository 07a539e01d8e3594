"""Outbound reliability and process robustness on a real stack of its own (Redis db 13 with its
own key prefix, action server, Rasa with the trained model, gateway; fake Twilio on loopback):
failed WhatsApp replies marked failed in the transcript, order kept after a Twilio hang, the
web chat's busy note, `make run`'s supervisor restarting a killed process, and the gateway
finishing in-flight work within 10 s of SIGTERM.

A stack of its own because these tests kill and stop its processes."""

from __future__ import annotations

import asyncio
import io
import os
import secrets
import signal
import threading
import time
import uuid

import aiohttp
import pytest
from sqlalchemy import select

from bot.texts import messages
from bot.shared.db import create_engine
from bot.records.models import TranscriptEntry
from bot.launch.run import Stack, free_port
from tests.support.chat import ChatClient
from tests.support.stack import FAKE_TWILIO, delete_prefix, demo_shop_db
from tests.support.fake_twilio import FakeTwilio, inbound_params, signed_post_args

BUSY_NL = messages.text("busy", "nl")
SLOW_NL = messages.text("inbox_slow", "nl")
WA_NUMBER = FAKE_TWILIO["TWILIO_WHATSAPP_NUMBER"]


@pytest.fixture(scope="module")
def fake():
    twilio = FakeTwilio(account_sid=FAKE_TWILIO["TWILIO_ACCOUNT_SID"], auth_token=FAKE_TWILIO["TWILIO_AUTH_TOKEN"])
    twilio.start()
    yield twilio
    twilio.stop()


@pytest.fixture(scope="module")
def rstack(redis_url, model, fake, tmp_path_factory):
    prefix = "r" + secrets.token_hex(4)
    db = demo_shop_db(tmp_path_factory.mktemp("reliability"))
    s = Stack(gateway_port=free_port(), rasa_port=free_port(), action_port=free_port(), redis_url=redis_url,
              database_url=db, key_prefix=prefix, model=model, log_dir=tmp_path_factory.mktemp("rlogs"),
              extra_env={**FAKE_TWILIO, "TWILIO_API_URL": fake.base_url, "DELIVERY_RETRY_SECONDS": "3"})
    s.extra_env["PUBLIC_BASE_URL"] = f"http://127.0.0.1:{s.gateway_port}"
    s.start()
    yield s
    s.stop()
    delete_prefix(redis_url, prefix)


@pytest.fixture(autouse=True)
def _fresh(fake):
    fake.clear()


def phone() -> str:
    return f"+316{secrets.randbelow(10**8):08d}"


async def whatsapp_in(stack: Stack, number: str, body: str) -> None:
    url = f"http://127.0.0.1:{stack.gateway_port}/webhooks/twilio"
    params = inbound_params(f"whatsapp:{number}", body, to=f"whatsapp:{WA_NUMBER}", sid="SM" + uuid.uuid4().hex)
    async with aiohttp.ClientSession() as http:
        async with http.post(url, data=params, headers=signed_post_args(FAKE_TWILIO["TWILIO_AUTH_TOKEN"], url, params),
                             timeout=aiohttp.ClientTimeout(total=10)) as resp:
            assert resp.status == 200


async def bot_rows(stack: Stack, since_id: int = 0) -> list[TranscriptEntry]:
    engine = create_engine(stack.database_url)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(select(TranscriptEntry).where(
                TranscriptEntry.id > since_id, TranscriptEntry.sender == "bot",
                TranscriptEntry.channel == "whatsapp").order_by(TranscriptEntry.id))
            return list(rows)
    finally:
        await engine.dispose()


async def chat(stack: Stack) -> ChatClient:
    return await ChatClient(f"http://127.0.0.1:{stack.gateway_port}").connect()


async def answers(client: ChatClient, text: str, timeout: float = 60) -> list[str]:
    """The bot's texts for one message, the busy note included."""
    return [m.get("text", "") for m in await client.say(text, timeout=timeout)]


# -- outbound ------------------------------------------------------------------------------------

async def test_a_whatsapp_reply_twilio_never_takes_is_marked_failed_not_sent(rstack, fake):
    last = max([r.id for r in await bot_rows(rstack)], default=0)
    fake.fail_next(1000, status=503)
    number = phone()
    await whatsapp_in(rstack, number, "wat zijn jullie openingstijden")
    deadline = time.monotonic() + 30
    while True:
        rows = await bot_rows(rstack, last)
        if rows and all((r.data or {}).get("delivery") == "failed" for r in rows):
            break
        assert time.monotonic() < deadline, [(r.text[:20], r.data) for r in rows]
        await asyncio.sleep(0.3)
    fake.clear()
    # the opening hours (config/service_levels.yml); what follows says whether they are there now (the real clock)
    assert len(rows) == 1 and rows[0].text.startswith(
        "Ik ben er altijd. Onze collega's zijn er maandag t/m vrijdag 9:00–17:00, niet op feestdagen. Nu zijn ze er")
    reason = rows[0].data["delivery_error"]
    assert reason.startswith("given up after") and "HTTP 503" in reason and number not in reason


async def test_answers_stay_in_order_after_a_twilio_hang(rstack, fake):
    """The first answer's first call hangs past the client's 10 s timeout; the second message's
    answer is ready long before, yet reaches the customer after the first."""
    number = phone()
    fake.hang_next(1, seconds=11, to=f"whatsapp:{number}")
    await whatsapp_in(rstack, number, "wat zijn jullie openingstijden")
    await fake.wait_arrived(1, timeout=60)
    await whatsapp_in(rstack, number, "ben jij een bot?")
    got = await fake.wait_for(f"whatsapp:{number}", count=2, timeout=60)
    assert [m["Body"][:18] for m in got] == ["Ik ben er altijd. ", "Ik ben een digital"]
    arrived = [r["Body"][:18] for r in fake.arrived if r["To"] == f"whatsapp:{number}"]
    assert arrived == ["Ik ben er altijd. "] * 2 + ["Ik ben een digital"]  # hung, retried, then the 2nd


async def test_a_slow_turn_gets_one_busy_note_and_then_its_answer(rstack):
    rstack.extra_env["BUSY_NOTE_SECONDS"] = "0.001"  # every turn counts as slow for this gateway
    rstack.restart("gateway")
    client = await chat(rstack)
    try:
        # BUSY_NOTE_SECONDS is 0.001 here: every turn is "slow"; the note comes once, then the answer
        first = await answers(client, "wat zijn jullie openingstijden")
        assert first[0].startswith("Ik ben er altijd."), first
        assert (await client.error(timeout=10))["text"] == SLOW_NL
        second = await answers(client, "ben jij een bot?")  # within five minutes: no second note
        assert second[0].startswith("Ik ben een digitale assistent"), second
        await asyncio.sleep(1)
        assert client.errors.empty()
    finally:
        await client.close()
        del rstack.extra_env["BUSY_NOTE_SECONDS"]
        rstack.restart("gateway")


# -- processes -----------------------------------------------------------------------------------

async def wait_console(console: io.StringIO, text: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while text not in console.getvalue():
        assert time.monotonic() < deadline, f"{text!r} not on the console: {console.getvalue()!r}"
        await asyncio.sleep(0.2)


async def test_make_run_restarts_a_killed_process_and_it_serves_again(rstack):
    console, stop = io.StringIO(), threading.Event()
    supervisor = threading.Thread(target=rstack.supervise, args=(stop, console), daemon=True)
    supervisor.start()
    try:
        for name in ("actions", "gateway"):
            old = rstack.processes[name].pid
            os.killpg(old, signal.SIGKILL)
            await wait_console(console, f"{name} stopped unexpectedly (signal 9); restarting in 1 s", 10)
            await wait_console(console, f"{name} is running again", 120)
            assert rstack.processes[name].pid != old and rstack.processes[name].poll() is None
            client = await chat(rstack)
            try:  # the greeting is a custom action: the action server and the gateway both serve
                said = [t for t in await answers(client, "hallo") if t != BUSY_NL]
                assert said[0].startswith("Hoi!") or said[0].startswith("Hallo")
            finally:
                await client.close()
    finally:
        stop.set()
        supervisor.join(30)
    assert rstack.dead() is None


def test_supervisor_gives_up_after_fast_failures_in_a_row(tmp_path):
    """A process that dies right after every start: restarted 1, 2, 4 s later, then given up."""
    stack = Stack(log_dir=tmp_path)
    stack._spawn("actions", ["sh", "-c", "exit 3"])
    stack.restart = lambda name: stack._spawn(name, ["sh", "-c", "exit 3"])  # what start_actions would run
    console = io.StringIO()
    with pytest.raises(SystemExit):
        stack.supervise(threading.Event(), console, give_up_after=3, max_delay=30)
    lines = console.getvalue().splitlines()
    assert lines[0] == f"actions stopped unexpectedly (exit 3); restarting in 1 s (see {tmp_path / 'actions.log'})"
    assert [line.split("restarting in ")[1][:3] for line in lines if "restarting in" in line] == ["1 s", "2 s"]
    assert lines[-1].startswith("actions stopped unexpectedly (exit 3) 3 times in a row within 60 s of starting; giving up")


async def test_sigterm_finishes_the_reply_in_flight_and_exits_within_10_s(rstack, fake):
    """A web chat visitor is connected (an open socket) and a WhatsApp reply is on its way to a
    slow Twilio when SIGTERM arrives: the reply is delivered and the gateway is gone in 10 s."""
    visitor = await chat(rstack)
    number = phone()
    fake.delay_next(1, seconds=3, to=f"whatsapp:{number}")
    await whatsapp_in(rstack, number, "wat zijn jullie openingstijden")
    await fake.wait_arrived(1, timeout=60)
    gateway = rstack.processes["gateway"]
    started = time.monotonic()
    gateway.send_signal(signal.SIGTERM)
    code = await asyncio.to_thread(gateway.wait, 20)
    took = time.monotonic() - started
    try:
        assert took < 10, f"the gateway took {took:.1f} s to stop"
        assert code == 0
        [delivered] = fake.messages
        assert delivered["To"] == f"whatsapp:{number}" and delivered["Body"].startswith("Ik ben er altijd.")
    finally:
        if visitor.sio.connected:
            await visitor.sio.disconnect()
        rstack.restart("gateway")


async def test_the_desk_shows_an_agent_reply_twilio_refused_as_failed(rstack, fake, people_r):
    from tests.support.desk_api import PASSWORD, Browser, create_agent

    number = phone()
    await whatsapp_in(rstack, number, "ik wil een medewerker spreken")
    await fake.wait_for(f"whatsapp:{number}", count=1, timeout=60)
    conv = None
    for _ in range(100):  # this stack serves only these tests: the one waiting is this customer
        waiting = [i["conversation"] for i in await people_r.waiting() if i.get("channel") == "whatsapp"]
        if waiting:
            conv = waiting[-1]
            break
        await asyncio.sleep(0.2)
    assert conv is not None
    desk = Browser(f"http://127.0.0.1:{rstack.gateway_port}")
    try:
        username = create_agent(rstack, "supervisor", skills="general,finance,retention,complaints")
        assert (await desk.login(username, PASSWORD)).status == 303
        status, _ = await desk.act(conv, "claim")
        assert status == 200
        fake.fail_next(1, status=400, code=21211)
        status, answer = await desk.act(conv, "reply", {"text": "Hoi, ik help je verder."})
        assert (status, answer["error"]) == (502, "delivery_failed")
        status, view = await desk.get(f"/desk/api/conversations/{conv}")
        [line] = [e for e in view["transcript"] if e["text"] == "Hoi, ik help je verder."]
        assert line["delivery"] == "failed"
        assert line["delivery_error"] == "Twilio refused the whatsapp message: HTTP 400, Twilio error 21211"
        joined = [e for e in view["transcript"] if e["sender"] == "agent" and e["text"].startswith("Je praat nu met")]
        assert [e["delivery"] for e in joined] == ["sent"]
    finally:
        await desk.close()
        await people_r.finish(conv, None, "closed")


@pytest.fixture
async def people_r(rstack):
    from redis.asyncio import Redis

    from bot.people import HandoffConfig, Handoffs

    redis = Redis.from_url(rstack.redis_url, decode_responses=True)
    yield Handoffs(redis, rstack.key_prefix, HandoffConfig.load())
    await redis.close(close_connection_pool=True)
