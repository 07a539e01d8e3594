"""No inbound message lost, none processed twice: the real stack (Rasa with the trained model, the
action server, the gateway) on PostgreSQL and Redis reached through loopback TCP proxies this
test cuts and restores; fake Twilio and Telegram servers count what customers receive.

Exactly once is checked twice: Rasa's tracker holds each message id exactly once (Rasa never
ran a turn twice, none went missing), and each customer received exactly the bot messages of
those turns (no reply lost, none sent twice). The stack is this module's own, so killing its
processes disturbs no other test; every test leaves it running again.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import time
from collections import Counter

import aiohttp
import pytest
import redis as redis_sync

from bot.texts import messages
from bot.launch.run import Stack, free_port
from tests.support.chat import ChatClient
from tests.support.stack import FAKE_TELEGRAM, FAKE_TWILIO, PG_ADMIN_URL, delete_prefix, pg_admin, print_tracebacks
from tests.support.fake_telegram import text_update
from tests.support.fake_twilio import inbound_params, signed_post_args
from tests.support.tcp_proxy import TcpProxy

pytestmark = [pytest.mark.stack, pytest.mark.timeout(900)]  # a stack of its own

REDIS_DIRECT = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/13")
INTERIMS = {messages.text(k, lang) for k in ("inbox_kept", "inbox_slow") for lang in ("nl", "en")}


# -- the stack behind proxies ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def proxies():
    redis_host, redis_port = "127.0.0.1", int(REDIS_DIRECT.rsplit(":", 1)[1].split("/")[0])
    pg = PG_ADMIN_URL.split("@", 1)[1].split("/", 1)[0]
    pg_host, pg_port = pg.split(":") if ":" in pg else (pg, "5432")
    redis_proxy = TcpProxy(redis_host, redis_port).start()
    pg_proxy = TcpProxy(pg_host, int(pg_port)).start()
    yield redis_proxy, pg_proxy
    redis_proxy.stop()
    pg_proxy.stop()


@pytest.fixture(scope="module")
def rstack(model, twilio_server, telegram_server, proxies, tmp_path_factory):
    from bot.shared.db import create_engine
    from bot.records.demo import load_demo
    from bot.records.migrate import upgrade

    redis_proxy, pg_proxy = proxies
    name = "kbinbox_" + secrets.token_hex(4)
    asyncio.run(pg_admin(f'CREATE DATABASE "{name}"'))
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    upgrade(f"{base}/{name}")

    async def demo() -> None:
        engine = create_engine(f"{base}/{name}")
        try:
            await load_demo(engine)
        finally:
            await engine.dispose()

    asyncio.run(demo())
    db = REDIS_DIRECT.rsplit("/", 1)[1]
    prefix = "ti" + secrets.token_hex(4)
    s = Stack(
        gateway_port=free_port(), rasa_port=free_port(), action_port=free_port(),
        redis_url=f"redis://127.0.0.1:{redis_proxy.port}/{db}",
        database_url=f"postgresql://postgres@127.0.0.1:{pg_proxy.port}/{name}",
        key_prefix=prefix, model=model, log_dir=tmp_path_factory.mktemp("inbox-logs"),
        extra_env={**FAKE_TWILIO, **FAKE_TELEGRAM, "TWILIO_API_URL": twilio_server[1],
                   "TELEGRAM_API_URL": telegram_server[1],
                   # the fakes were made by pytest's own copy of conftest (its secrets differ from ours)
                   "TWILIO_ACCOUNT_SID": twilio_server[0].account_sid,
                   "TWILIO_AUTH_TOKEN": twilio_server[0].auth_token,
                   "TELEGRAM_BOT_TOKEN": telegram_server[0].token},
    )
    s.extra_env["PUBLIC_BASE_URL"] = f"http://127.0.0.1:{s.gateway_port}"
    s.start()
    yield s
    s.stop()
    print_tracebacks(s)
    delete_prefix(REDIS_DIRECT, prefix)
    asyncio.run(pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def running(rstack):
    """Whatever a test stopped or killed runs again afterwards, and every proxy is restored."""
    yield rstack
    if rstack.processes.get("actions") is None or rstack.processes["actions"].poll() is not None:
        rstack.start_actions()
    if rstack.processes.get("gateway") is None or rstack.processes["gateway"].poll() is not None:
        rstack.start_gateway()


@pytest.fixture
def cuttable(proxies):
    yield proxies
    for proxy in proxies:
        proxy.restore()


# -- customers on three channels -------------------------------------------------------------------

class Customers:
    """One SMS number, one Telegram user and one web chat visitor, all new to the shop."""

    def __init__(self, stack: Stack, fake_twilio, fake_telegram) -> None:
        self.stack, self.twilio, self.telegram = stack, fake_twilio, fake_telegram
        self.phone = f"+316{secrets.randbelow(10**8):08d}"
        self.telegram_user = 7_000_000_000 + secrets.randbelow(10**9)
        self.chat: ChatClient | None = None
        self.sent = Counter()
        self.update_ids: list[int] = []
        self.params: list[dict] = []

    async def open_chat(self, language: str | None = None) -> ChatClient:
        self.chat = await ChatClient(f"http://127.0.0.1:{self.stack.gateway_port}", language=language).connect()
        return self.chat

    async def sms(self, body: str, params: dict | None = None) -> int:
        url = f"http://127.0.0.1:{self.stack.gateway_port}/webhooks/twilio"
        if params is None:
            params = inbound_params(self.phone, body, to=FAKE_TWILIO["TWILIO_SMS_NUMBER"], sid="SM" + secrets.token_hex(16))
            self.params.append(params)
            self.sent["sms"] += 1
        async with aiohttp.ClientSession() as http:
            async with http.post(url, data=params, headers=signed_post_args(self.stack.env()["TWILIO_AUTH_TOKEN"], url, params),
                                 timeout=aiohttp.ClientTimeout(total=15)) as resp:
                return resp.status

    async def telegram_text(self, text: str, update_id: int | None = None) -> int:
        if update_id is None:
            update_id = secrets.randbelow(2**31)
            self.update_ids.append(update_id)
            self.sent["telegram"] += 1
        url = f"http://127.0.0.1:{self.stack.gateway_port}/webhooks/telegram"
        update = text_update(update_id, self.telegram_user, text, message_id=update_id % 100000)
        async with aiohttp.ClientSession() as http:
            async with http.post(url, json=update, headers={"X-Telegram-Bot-Api-Secret-Token": FAKE_TELEGRAM["TELEGRAM_WEBHOOK_SECRET"]},
                                 timeout=aiohttp.ClientTimeout(total=15)) as resp:
                return resp.status

    async def webchat(self, text: str) -> None:
        await self.chat.sio.emit("user_uttered", {"message": text, "session_id": self.chat.session_id,
                                                  "customData": {"language": self.chat.language} if self.chat.language else {}})
        self.sent["webchat"] += 1

    # what the customers received (interim "your message is kept" notices apart)
    def sms_received(self) -> list[str]:
        return [m.get("Body") or "" for m in self.twilio.messages if m["To"] == self.phone]

    def telegram_received(self) -> list[str]:
        return [str(c.get("text", "")) for c in self.telegram.calls_of("sendMessage", chat_id=self.telegram_user)]

    def webchat_received(self) -> list[str]:
        got = [m.get("text", "") for m in self.chat.received_now()]
        self._web = getattr(self, "_web", []) + got
        return self._web

    def webchat_errors(self) -> list[str]:
        got = []
        while not self.chat.errors.empty():
            got.append(self.chat.errors.get_nowait().get("text", ""))
        self._errors = getattr(self, "_errors", []) + got
        return self._errors

    # what Rasa ran: per channel, the message ids of the user events and the bot messages of each turn
    async def turns(self) -> dict[str, list[tuple[str, int]]]:
        client = redis_sync.Redis.from_url(REDIS_DIRECT, decode_responses=True)
        try:
            addresses = {"sms": self.phone, "telegram": str(self.telegram_user),
                         "webchat": self.chat.session_id if self.chat else None}
            keys = {ch: client.get(f"{self.stack.key_prefix}:identity:{ch}:{a}") for ch, a in addresses.items() if a}
        finally:
            client.close()
        out: dict[str, list[tuple[str, int]]] = {}
        async with aiohttp.ClientSession() as http:
            for channel, key in keys.items():
                if not key:
                    out[channel] = []
                    continue
                async with http.get(f"http://127.0.0.1:{self.stack.rasa_port}/conversations/{key}/tracker",
                                    params={"token": self.stack.rasa_token}) as resp:
                    events = (await resp.json())["events"]
                turns: list[list] = []
                for event in events:
                    if event.get("event") == "user":
                        turns.append([event.get("message_id") or "", 0])
                    elif event.get("event") == "bot" and turns and (
                            event.get("text") or (event.get("data") or {}).get("buttons")):
                        turns[-1][1] += 1
                out[channel] = [(m, n) for m, n in turns if m.startswith(f"{channel}:")]
        return out

    async def answered_exactly_once(self, timeout: float = 90) -> dict[str, list[tuple[str, int]]]:
        """Wait until every message sent was a turn in Rasa and its replies arrived; then check
        that nothing more comes: each message id once in the tracker, each reply once."""
        def expected(turns: dict) -> dict[str, int]:
            return {
                "sms": sum(1 for _, n in turns.get("sms", []) if n),   # an SMS turn is one message
                "telegram": sum(n for _, n in turns.get("telegram", [])),
                "webchat": sum(n for _, n in turns.get("webchat", [])),
            }

        deadline = time.monotonic() + timeout
        while True:
            turns = await self.turns()
            done = all(len(turns.get(ch, [])) >= n for ch, n in self.sent.items())
            got = self.received()
            if done and all(len(got[ch]) >= expected(turns)[ch] for ch in self.sent):
                break
            assert time.monotonic() < deadline, f"not all answered: sent {dict(self.sent)}, turns {turns}, got {got}"
            await asyncio.sleep(0.5)
        await asyncio.sleep(4)  # nothing more may come
        turns, got = await self.turns(), self.received()
        for channel, count in self.sent.items():
            ids = [m for m, _ in turns[channel]]
            assert len(ids) == count and len(set(ids)) == count, (channel, ids)  # Rasa ran each message once
            assert len(got[channel]) == expected(turns)[channel], (channel, got[channel], turns[channel])
        return turns

    def received(self) -> dict[str, list[str]]:
        return {
            "sms": [t for t in self.sms_received() if t not in INTERIMS],
            "telegram": [t for t in self.telegram_received() if t not in INTERIMS],
            "webchat": [t for t in self.webchat_received() if t not in INTERIMS] if self.chat else [],
        }

    def interims(self) -> dict[str, list[str]]:
        return {
            "sms": [t for t in self.sms_received() if t in INTERIMS],
            "telegram": [t for t in self.telegram_received() if t in INTERIMS],
            "webchat": [t for t in self.webchat_errors() if t in INTERIMS] if self.chat else [],
        }


@pytest.fixture
async def customers(running, fake_twilio, fake_telegram):
    made = Customers(running, fake_twilio, fake_telegram)
    yield made
    if made.chat is not None and made.chat.sio.connected:
        await made.chat.close()


CUT_SECONDS = 20
FIRST, SECOND = "hallo", "wat zijn jullie openingstijden?"


async def _outage_on_every_channel(customers: Customers, proxy: TcpProxy) -> None:
    await customers.open_chat()
    proxy.cut()
    cut_at = time.monotonic()
    try:
        for text in (FIRST, SECOND):
            assert await customers.sms(text) == 200
            assert await customers.telegram_text(text) == 200
            await customers.webchat(text)
        # Twilio and Telegram retry a webhook: the same MessageSid / update_id is stored once
        assert await customers.sms("", params=customers.params[0]) == 200
        assert await customers.telegram_text(FIRST, update_id=customers.update_ids[0]) == 200
        await asyncio.sleep(2)
        assert customers.webchat_errors() == []  # every web chat message was received
        await asyncio.sleep(max(0.0, CUT_SECONDS - (time.monotonic() - cut_at)))
    finally:
        proxy.restore()
    turns = await customers.answered_exactly_once()
    # in order per customer: the greeting's turn before the question's, on every channel
    assert all(len(t) == 2 for t in turns.values())
    # a retry after the answer is not answered again
    before = customers.received()
    assert await customers.sms("", params=customers.params[1]) == 200
    assert await customers.telegram_text(SECOND, update_id=customers.update_ids[1]) == 200
    await asyncio.sleep(3)
    assert customers.received() == before
    assert (await customers.turns()) == turns


async def test_a_20_second_redis_cut_loses_no_message_and_answers_each_once(customers, cuttable):
    redis_proxy, _ = cuttable
    await _outage_on_every_channel(customers, redis_proxy)


async def test_a_20_second_database_cut_loses_no_message_and_answers_each_once(customers, cuttable):
    _, pg_proxy = cuttable
    await _outage_on_every_channel(customers, pg_proxy)


async def test_a_killed_gateway_answers_its_messages_in_flight_after_restart_once(running, fake_twilio, fake_telegram):
    crowd = [Customers(running, fake_twilio, fake_telegram) for _ in range(5)]
    statuses = await asyncio.gather(*(c.sms(FIRST) for c in crowd), *(c.telegram_text(FIRST) for c in crowd))
    assert statuses == [200] * 10
    os.killpg(running.processes["gateway"].pid, signal.SIGKILL)  # in flight: most turns have not finished
    running.processes["gateway"].wait()
    answered_before = sum(bool(c.sms_received()) + bool(c.telegram_received()) for c in crowd)
    running.start_gateway()
    for customer in crowd:
        await customer.answered_exactly_once(timeout=120)
    assert answered_before < 10  # the kill really caught messages in flight


async def test_action_server_down_gets_the_interim_message_in_5_seconds_then_the_answer(customers, running):
    await customers.open_chat(language="en")
    running.stop_process("actions")
    await asyncio.sleep(3)  # the gateway's last good health check of the action server has expired
    try:
        started = time.monotonic()
        await customers.webchat("hello, what are your opening hours?")
        assert await customers.sms(FIRST) == 200
        while not customers.interims()["webchat"]:
            assert time.monotonic() - started < 5, "no interim message on the web chat within 5 s"
            await asyncio.sleep(0.05)
        assert customers.interims()["webchat"] == [messages.text("inbox_kept", "en")]
        await customers.twilio.wait_for(customers.phone, 1, timeout=5 - (time.monotonic() - started))
        assert customers.sms_received() == [messages.text("inbox_kept", "nl")]  # Dutch for the Dutch SMS
        await customers.webchat("are you there?")        # a second message: told once is enough
        assert await customers.sms(SECOND) == 200
        await asyncio.sleep(4)
        assert customers.received() == {"sms": [], "telegram": [], "webchat": []}  # nothing answered yet
    finally:
        running.start_actions()
    turns = await customers.answered_exactly_once()
    assert [len(turns["sms"]), len(turns["webchat"])] == [2, 2]
    assert customers.interims() == {"sms": [messages.text("inbox_kept", "nl")], "telegram": [],
                                    "webchat": [messages.text("inbox_kept", "en")]}


async def test_with_redis_and_the_database_both_away_webhooks_get_503_and_the_visitor_is_told(customers, cuttable):
    redis_proxy, pg_proxy = cuttable
    await customers.open_chat(language="en")
    redis_proxy.cut()
    pg_proxy.cut()
    try:
        assert await customers.sms(FIRST) == 503            # Twilio may send it again
        assert await customers.telegram_text(FIRST) == 503  # Telegram sends it again
        await customers.chat.sio.emit("user_uttered", {"message": "hello, are you open today?",
                                                       "session_id": customers.chat.session_id})
        error = await customers.chat.error(timeout=15)
        assert error["text"] == messages.text("inbox_not_received", "en")
    finally:
        redis_proxy.restore()
        pg_proxy.restore()
    # once they are back, the retries Twilio and Telegram send are answered, once each
    assert await customers.sms("", params=customers.params[0]) == 200
    assert await customers.telegram_text(FIRST, update_id=customers.update_ids[0]) == 200
    await customers.answered_exactly_once()
