"""Erasing a customer from the agent desk: supervisors only, with the CSRF token, confirmed with
the customer number; over HTTP against the real gateway app (SQLite and PostgreSQL), and the
button in a real browser (Chromium via Playwright).

Real Redis (TEST_REDIS_URL, own key prefix, deleted afterwards); Rasa is not needed: the
conversation is put in the queue with `Handoffs.enqueue`, as the bot would.
"""

from __future__ import annotations

import asyncio
import os
import secrets

import pytest

from bot.gateway.keys import HANDOFFS, RECORDS, RETENTION, SERVICE
from sqlalchemy import select

from bot.desk.auth import Agents
from bot.records.models import AuditEntry
from tests.support.stack import TEST_REDIS_URL, delete_prefix, demo_shop_db
from tests.support.desk_helpers import CHROMIUM, CHROMIUM_ARGS, DeskAgent, login
from tests.support.desk_api import PASSWORD, Browser, start


async def _agent(records, role: str, ui: str = "nl") -> DeskAgent:
    username = f"{role.replace('_', '')}{secrets.token_hex(3)}"
    name = f"{'Sara' if role == 'supervisor' else 'Anna'} {username}"
    await Agents(records).create(username=username, name=name, role=role, skills=("general", "complaints"),
                                 languages=("nl", "en"), ui_language=ui, password=PASSWORD)
    return DeskAgent(username, name, role, PASSWORD, ui)


async def _waiting(app, number: str) -> tuple[int, str]:
    """The customer's WhatsApp conversation, waiting for a person."""
    records, service = app[RECORDS], app[SERVICE]
    c = await records.by_customer_number(number)
    conv = await service.conversation_for("whatsapp", c.phone)
    await service.store.update(conv, last_address=c.phone, last_channel="whatsapp", language="nl")
    await records.add_transcript(conv, c.id, "customer", "whatsapp", "Waar blijft mijn bestelling 104233?")
    await app[HANDOFFS].enqueue(conv, reason="asked", language="nl", customer_id=c.id, customer_name=c.name,
                                summary="waar blijft 104233", channel="whatsapp")
    return c.id, conv


@pytest.fixture
async def gateway(shop, database_url):
    prefix = "de" + secrets.token_hex(4)
    server = await start(database_url, TEST_REDIS_URL, prefix)
    browsers: list[Browser] = []
    base = str(server.make_url("")).rstrip("/")

    async def browser(agent: DeskAgent) -> Browser:
        b = Browser(base)
        browsers.append(b)
        assert (await b.login(agent.username, PASSWORD)).status == 303
        b.username = agent.username
        return b

    yield server.app, browser, prefix
    for b in browsers:
        await b.close()
    await server.close()
    delete_prefix(TEST_REDIS_URL, prefix)


async def test_supervisor_erases_agent_gets_403_and_csrf_is_required(gateway):
    app, browser, prefix = gateway
    records = app[RECORDS]
    customer_id, conv = await _waiting(app, "K10001")
    agent = await browser(await _agent(records, "agent"))
    supervisor = await browser(await _agent(records, "supervisor", ui="en"))
    path = f"/desk/api/customers/{customer_id}/erase"

    status, record = await supervisor.get(f"/desk/api/conversations/{conv}")
    assert status == 200 and record["customer"]["id"] == customer_id and record["customer"]["number"] == "K10001"

    status, body = await agent.post(path, {"confirm": "K10001"})
    assert (status, body["error"]) == (403, "erase_forbidden")
    assert body["message"] == "Alleen een teamleider mag klantgegevens wissen."
    status, body = await supervisor.post(path, {"confirm": "K10001"}, csrf=False)
    assert (status, body["error"]) == (403, "csrf")
    status, body = await supervisor.post(path, {"confirm": "K10001"}, csrf="not-the-token")
    assert (status, body["error"]) == (403, "csrf")
    status, body = await supervisor.post(path, {"confirm": "K10002"})
    assert (status, body["error"]) == (400, "erase_confirm")
    assert body["message"] == "Type the customer number to confirm; it does not match."
    assert await records.by_customer_number("K10001") is not None  # nothing happened so far

    status, body = await supervisor.post(path, {"confirm": 10001})
    assert (status, body["error"]) == (400, "bad_field")
    status, body = await supervisor.post(path, {"confirm": "k10001"})
    assert status == 200, body
    assert body["complete"] is True and body["residual_sql"] == 0 and body["residual_redis"] == 0
    assert body["kept"]["invoices"] == 10 and body["tombstone"].startswith("ERASED-")
    assert body["sql"]["customers"] == 1 and body["sql"]["transcript"] == 1
    assert await records.by_customer_number("K10001") is None
    assert await app[HANDOFFS].get(conv) is None
    assert (await supervisor.get(f"/desk/api/conversations/{conv}"))[0] == 404
    assert (await supervisor.post(path, {"confirm": "K10001"}))[0] == 404
    async with records.session() as s:
        entries = list((await s.execute(select(AuditEntry).where(AuditEntry.decision.in_(("erase", "erase_redis")))
                                        .order_by(AuditEntry.id))).scalars())
    assert [(e.decision, e.actor_role, e.actor, e.customer_id) for e in entries] == [
        ("erase", "supervisor", supervisor.username, None), ("erase_redis", "supervisor", supervisor.username, None)]
    assert entries[0].request["erase_id"] == body["erase_id"]


async def test_the_gateway_schedules_the_retention_job(gateway):
    app, _, _ = gateway
    job = app[RETENTION].scheduler.get_job("retention")
    assert job is not None and (job.next_run_time.hour, job.next_run_time.minute) == (3, 30)


# -- the button, in a browser -----------------------------------------------------------------------

@pytest.fixture
def browser_db(tmp_path) -> str:
    return demo_shop_db(tmp_path)  # synchronous: before the test's event loop work


@pytest.mark.skipif(not CHROMIUM.exists(), reason=f"needs Debian's Chromium at {CHROMIUM} (make browser)")
async def test_the_erase_button_in_the_customer_record(browser_db, monkeypatch):
    from playwright.async_api import async_playwright, expect

    url = browser_db
    monkeypatch.setenv("DATABASE_URL", url)
    prefix = "db" + secrets.token_hex(4)
    server = await start(url, TEST_REDIS_URL, prefix)
    base = str(server.make_url("")).rstrip("/")
    p = await async_playwright().start()
    chromium = await p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
    try:
        app = server.app
        customer_id, conv = await _waiting(app, "K10001")
        agent = await _agent(app[RECORDS], "agent")
        supervisor = await _agent(app[RECORDS], "supervisor")

        desk = await login(chromium, base, agent)
        await desk.queue_item_of(conv).get_by_test_id("queue-open").click()
        await expect(desk.by("record-number")).to_have_text("K10001")
        await expect(desk.by("erase-box")).to_be_hidden()  # not for agents
        desk.assert_clean()
        await desk.context.close()

        desk = await login(chromium, base, supervisor)
        await desk.queue_item_of(conv).get_by_test_id("queue-open").click()
        await expect(desk.by("record-number")).to_have_text("K10001")
        await expect(desk.by("erase-customer")).to_have_text("Klantgegevens wissen (AVG)")
        prompts: list[str] = []

        async def answer(dialog, typed: str) -> None:
            prompts.append(dialog.message)
            await dialog.accept(typed)

        desk.page.once("dialog", lambda d: asyncio.ensure_future(answer(d, "K10002")))  # a wrong number first
        await desk.by("erase-customer").click()
        await expect(desk.by("status")).to_have_text("Niet gewist: het klantnummer klopte niet.")
        assert await app[RECORDS].by_customer_number("K10001") is not None
        desk.page.once("dialog", lambda d: asyncio.ensure_future(answer(d, "K10001")))
        await desk.by("erase-customer").click()
        await expect(desk.by("status")).to_contain_text("Klantgegevens gewist (wis-id ")
        await expect(desk.by("no-conversation")).to_be_visible()
        assert prompts[0].startswith("Alle gegevens van Sanne de Vries (K10001) worden overal gewist.")
        assert await app[RECORDS].by_customer_number("K10001") is None
        await expect(desk.queue_item_of(conv)).to_have_count(0)
        desk.assert_clean()
        await desk.context.close()
    finally:
        await chromium.close()
        await p.stop()
        await server.close()
        delete_prefix(TEST_REDIS_URL, prefix)
        os.environ["DATABASE_URL"] = url  # start() set it; monkeypatch restores the original
