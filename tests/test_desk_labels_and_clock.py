"""The desk with a fixed clock, its labels from the server, and its one instalment range.

The real gateway app (`create_app`) with the desk, real Redis and SQLite with the demo web shop,
and the app's clock (app key CLOCK) fixed with `FixedClock`; Rasa is not needed (handoff items
are queued with `Handoffs.enqueue`, as the bot would). The last test opens the desk in Chromium.

Personas (docs/demo-data.md): Daan Jansen (K10002), order 118902 (€249.00, delivered 3 days ago);
Kantoorservice Hoekstra (K10013), an open invoice that is not due yet.
"""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
import uuid
from datetime import datetime, time, timedelta, timezone

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from sqlalchemy import select

from bot.desk.auth import Agents
from bot.gateway.app import create_app
from bot.gateway.keys import CLOCK, HANDOFFS, RECORDS, SERVICE
from bot.policy.clock import FixedClock, local_zone
from bot.records.models import AuditEntry, Invoice, Order, Payment
from bot.shared.settings import Settings
from bot.texts import fmt
from tests.support.stack import delete_prefix as _delete_prefix, demo_shop_db
from tests.support.desk_helpers import CHROMIUM, CHROMIUM_ARGS, DeskAgent, login

PASSWORD = "correct horse battery"
CSRF_FIELD = re.compile(r'name="csrf" value="([^"]+)"')


class Desk:
    """The app with a fixed clock, and helpers to queue customers and act as agents."""

    def __init__(self, server: TestServer, clock: FixedClock) -> None:
        self.server, self.clock = server, clock
        self.url = str(server.make_url("")).rstrip("/")
        self.sessions: list[aiohttp.ClientSession] = []

    @property
    def records(self):
        return self.server.app[RECORDS]

    async def agent(self, role: str = "agent", ui: str = "nl") -> DeskAgent:
        username = f"lbl{role.replace('_', '')}{secrets.token_hex(3)}"
        name = f"Anna {username}"
        await Agents(self.records).create(username=username, name=name, role=role, skills=("general", "finance"),
                                          languages=("nl", "en"), ui_language=ui, password=PASSWORD)
        return DeskAgent(username, name, role, PASSWORD, ui)

    async def logged_in(self, agent: DeskAgent) -> "Api":
        http = aiohttp.ClientSession(base_url=self.url, cookie_jar=aiohttp.CookieJar(unsafe=True))
        self.sessions.append(http)
        async with http.get("/desk/login") as page:
            token = CSRF_FIELD.search(await page.text()).group(1)
        async with http.post("/desk/login", data={"username": agent.username, "password": PASSWORD, "csrf": token},
                             allow_redirects=False) as r:
            assert r.status == 303
        api = Api(http)
        api.csrf = (await api.get("/desk/api/me"))[1]["csrf"]
        return api

    async def waiting(self, customer: str, topic: str = "request_refund", request: dict | None = None) -> str:
        app = self.server.app
        c = await self.records.by_customer_number(customer)
        store = app[SERVICE].store
        conv = await store.key_for("webchat", uuid.uuid4().hex)
        await store.update(conv, customer_id=str(c.id), language="nl", last_channel="webchat")
        await app[HANDOFFS].enqueue(conv, reason="mandate", language="nl", customer_id=c.id, customer_name=c.name,
                                    segment=c.segment, topic=topic, role="agent", summary="test", request=request,
                                    channel="webchat")
        return conv


class Api:
    def __init__(self, http: aiohttp.ClientSession) -> None:
        self.http, self.csrf = http, ""

    async def get(self, path: str) -> tuple[int, dict]:
        async with self.http.get(path, allow_redirects=False) as r:
            return r.status, await r.json()

    async def post(self, path: str, body: dict | None = None) -> tuple[int, dict]:
        async with self.http.post(path, data=json.dumps(body or {}), allow_redirects=False,
                                  headers={"Content-Type": "application/json", "X-CSRF-Token": self.csrf}) as r:
            return r.status, await r.json()


@pytest.fixture(scope="module")
def labels_db(tmp_path_factory) -> str:
    return demo_shop_db(tmp_path_factory.mktemp("labelsdb"))


@pytest.fixture(scope="module")
async def desk(labels_db, redis_url):
    before = os.environ.get("DATABASE_URL")
    os.environ["DATABASE_URL"] = labels_db
    prefix = "dl" + secrets.token_hex(4)
    clock = FixedClock(datetime.now(timezone.utc))
    app = create_app(Settings(redis_url=redis_url, key_prefix=prefix, rasa_url="http://127.0.0.1:9"))
    app[CLOCK] = clock  # before the app starts: the desk reads the time from here
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    d = Desk(server, clock)
    yield d
    for http in d.sessions:
        await http.close()
    await server.close()
    if before is None:
        os.environ.pop("DATABASE_URL", None)
    else:
        os.environ["DATABASE_URL"] = before
    _delete_prefix(redis_url, prefix)


# -- labels ---------------------------------------------------------------------------------------

async def test_the_desk_gets_its_labels_from_the_server_in_both_languages(desk):
    async with aiohttp.ClientSession() as anonymous:
        async with anonymous.get(f"{desk.url}/desk/api/labels") as r:
            assert r.status == 401
    api = await desk.logged_in(await desk.agent())
    status, labels = await api.get("/desk/api/labels")
    assert status == 200 and set(labels) == {"nl", "en"}
    assert labels["nl"]["i"] == {"paid": "betaald", "open": "open", "overdue": "te laat",
                                 "partially_paid": "deels betaald"}
    assert labels["en"]["i"]["partially_paid"] == "partly paid"
    assert labels["nl"]["role"] == {"bot": "bot", "agent": "medewerker", "senior_agent": "senior medewerker",
                                    "supervisor": "teamleider"}
    assert labels["en"]["o"]["placed"] == "placed" and labels["nl"]["d"]["refund"] == "Terugbetaling"


async def _partly_paid_invoice(desk) -> dict:
    """K10013's open invoice, half paid today: partially_paid (not due yet)."""
    customer = await desk.records.by_customer_number("K10013")
    async with desk.records.session() as s, s.begin():
        invoice = (await s.execute(select(Invoice).where(Invoice.customer_id == customer.id)
                                   .order_by(Invoice.due_date.desc()).limit(1))).scalars().one()
        paid = await s.scalar(select(Payment.id).where(Payment.invoice_id == invoice.id))
        if paid is None:
            s.add(Payment(invoice_id=invoice.id, paid_at=desk.clock.today(), amount_cents=invoice.amount_cents // 2,
                          method="bank_transfer"))
        number, amount = invoice.invoice_number, invoice.amount_cents
    return {"number": number, "amount": amount, "open": amount - amount // 2}


async def test_a_partly_paid_invoice_is_partially_paid_with_the_servers_dutch_label(desk):
    desk.clock.set(datetime.now(timezone.utc))
    invoice = await _partly_paid_invoice(desk)
    conv = await desk.waiting("K10013", topic="payment_arrangement")
    api = await desk.logged_in(await desk.agent(ui="nl"))
    status, data = await api.get(f"/desk/api/conversations/{conv}")
    assert status == 200
    row = next(i for i in data["customer"]["invoices"] if i["number"] == invoice["number"])
    assert (row["status"], row["amount"], row["open"]) == (
        "partially_paid", fmt.money(invoice["amount"], "nl"), fmt.money(invoice["open"], "nl"))
    labels = (await api.get("/desk/api/labels"))[1]
    assert labels["nl"]["i"][row["status"]] == "deels betaald"
    # the amounts in the language the desk shows
    status, data = await api.get(f"/desk/api/conversations/{conv}?lang=en")
    row = next(i for i in data["customer"]["invoices"] if i["number"] == invoice["number"])
    assert row["open"] == fmt.money(invoice["open"], "en")


# -- decisions with the clock ----------------------------------------------------------------------

async def _delivered(desk, number: str) -> datetime:
    async with desk.records.session() as s:
        return await s.scalar(select(Order.delivered_at).where(Order.order_number == number))


@pytest.mark.parametrize("days", [5, 40])
async def test_a_desk_decision_takes_the_order_age_and_today_from_the_clock(desk, days):
    delivered = desk.clock.date_of(await _delivered(desk, "118902"))
    desk.clock.set(datetime.combine(delivered + timedelta(days=days), time(10, 0), tzinfo=local_zone()))
    conv = await desk.waiting("K10002")
    agent = await desk.agent()
    api = await desk.logged_in(agent)
    assert (await api.post(f"/desk/api/conversations/{conv}/claim"))[0] == 200
    status, body = await api.post(f"/desk/api/conversations/{conv}/decide",
                                  {"decision": "refund", "amount": 10, "order_number": "118902"})
    assert status == 200 and body["allowed"] is True
    async with desk.records.session() as s:
        audit = (await s.execute(select(AuditEntry).where(AuditEntry.actor == agent.username))).scalars().one()
    assert (audit.decision, audit.allowed, audit.request["order_age_days"], audit.request["today"]) == (
        "refund", True, days, (delivered + timedelta(days=days)).isoformat())


async def test_the_desk_accepts_the_one_instalment_range_of_the_policy(desk):
    desk.clock.set(datetime.now(timezone.utc))
    conv = await desk.waiting("K10002", topic="payment_arrangement")
    api = await desk.logged_in(await desk.agent())
    assert (await api.post(f"/desk/api/conversations/{conv}/claim"))[0] == 200
    status, body = await api.post(f"/desk/api/conversations/{conv}/decide",
                                  {"decision": "payment_arrangement", "instalments": 37})
    assert (status, body["error"], body["message"]) == (
        400, "bad_field", "Veld 'instalments' is ongeldig: moet een geheel getal van 2 tot en met 36 zijn.")
    status, body = await api.post(f"/desk/api/conversations/{conv}/decide",
                                  {"decision": "payment_arrangement", "instalments": 36})
    assert (status, body["error"], body["escalate_to"]) == (403, "beyond_mandate", "supervisor")


# -- errors ------------------------------------------------------------------------------------------

async def test_an_unexpected_error_is_logged_with_its_traceback(desk, caplog, monkeypatch):
    conv = await desk.waiting("K10002")
    api = await desk.logged_in(await desk.agent(role="supervisor"))

    async def broken(conversation):
        raise RuntimeError("history is broken")

    monkeypatch.setattr(desk.server.app[SERVICE], "history", broken)
    with caplog.at_level(logging.ERROR, logger="bot.desk.routes"):
        status, body = await api.get(f"/desk/api/conversations/{conv}")
    assert (status, body["error"]) == (500, "internal")
    [record] = [r for r in caplog.records if r.name == "bot.desk.routes" and r.levelno == logging.ERROR]
    assert record.getMessage() == f"desk: /desk/api/conversations/{conv} failed"
    assert record.exc_info and record.exc_info[0] is RuntimeError


# -- in the browser ------------------------------------------------------------------------------------

@pytest.mark.skipif(not CHROMIUM.exists(), reason=f"needs Debian's Chromium at {CHROMIUM}")
async def test_a_dutch_agent_sees_deels_betaald_in_the_browser(desk):
    from playwright.async_api import async_playwright, expect

    desk.clock.set(datetime.now(timezone.utc))
    invoice = await _partly_paid_invoice(desk)
    conv = await desk.waiting("K10013", topic="payment_arrangement")
    agent = await desk.agent(ui="nl")
    p = await async_playwright().start()
    browser = await p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
    try:
        page = await login(browser, desk.url, agent)
        await page.queue_item_of(conv).get_by_test_id("queue-open").click()
        row = page.by("record-invoice").filter(has_text=invoice["number"])
        await expect(row).to_contain_text(
            f"{invoice['number']} · deels betaald · {fmt.money(invoice['amount'], 'nl')} · "
            f"open {fmt.money(invoice['open'], 'nl')}", timeout=15_000)
        await expect(page.by("queue-role").first).to_have_text("medewerker")
        await expect(page.page.locator('[data-testid="decide-kind"] option[value="refund"]')).to_have_text(
            "Terugbetaling")
        # in English: the server's English label and amounts
        await page.by("lang-switch").select_option("en")
        await expect(row).to_contain_text(
            f"{invoice['number']} · partly paid · {fmt.money(invoice['amount'], 'en')} · "
            f"open {fmt.money(invoice['open'], 'en')}", timeout=15_000)
        page.assert_clean()
    finally:
        await browser.close()
        await p.stop()
