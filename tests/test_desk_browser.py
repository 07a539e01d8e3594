"""The agent desk in a real browser (Chromium via Playwright) against the whole running stack.

Customers write on WhatsApp (signed Twilio webhooks into the gateway, the fake Twilio server
records what they receive); agents work in the desk. Every test asserts what a person would
notice: what the desk shows, and what the customer gets on WhatsApp.

The demo data is shared with the other tests of the session, so the tests never assume an
empty queue: they find their conversation by the customer's name and then by its id.
"""

from __future__ import annotations

import re
from types import SimpleNamespace

import pytest
from playwright.async_api import async_playwright, expect

from tests.support.desk_helpers import (
    CHROMIUM, CHROMIUM_ARGS, WhatsAppCustomer, create_agent, login, open_login, submit_login,
)

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason=f"the desk's browser tests need Debian's Chromium at {CHROMIUM} (make browser)",
)

expect.set_options(timeout=20_000)

DAAN = "+31612345602"  # K10002 Daan Jansen; order 118902 of €249.00
# K10034 Café De Zwaan (business): order 163455 of €556.40, so €100 and then €200 both fit in it
ZWAAN = "+31612345634"
TIM = "+31612345630"   # K10030 Tim Kok, prefers WhatsApp
XSS = '<img src=x onerror="window.__xss=1">'


@pytest.fixture(scope="module")
def base(stack) -> str:
    return f"http://127.0.0.1:{stack.gateway_port}"


@pytest.fixture(scope="module")
async def agents(stack):
    """An agent (refund limit €150, Dutch desk) and a senior agent (English desk)."""
    return SimpleNamespace(
        agent=await create_agent(stack, role="agent", name="Anna de Jong", ui_language="nl"),
        senior=await create_agent(stack, role="senior_agent", name="Sam Senior", ui_language="en"),
    )


async def asks_for_a_person_and_is_claimed(desk, customer, name: str) -> str:
    """The WhatsApp customer asks for a person; the item appears live in `desk`'s queue and the
    agent claims it. Returns the conversation id."""
    await customer.say("ik wil een medewerker spreken", what="word that a person will answer")
    item = desk.queue_item(name)
    await expect(item).to_have_count(1, timeout=30_000)
    conv = await item.get_attribute("data-conversation")
    await item.get_by_test_id("claim").click()
    await expect(desk.mine_item_of(conv)).to_be_visible()
    return conv


async def test_login_refuses_a_wrong_password_and_opens_the_desk_with_the_right_one(browser, base, agents):
    agent = agents.agent
    desk = await open_login(browser, base)
    try:
        # Without a session the desk sends you to the login page.
        await desk.page.goto(f"{base}/desk")
        await expect(desk.page.locator("input[name=password]")).to_be_visible()
        assert "/desk/login" in desk.page.url

        await submit_login(desk, agent.username, "not-the-password-at-all")
        await expect(desk.page.get_by_text(re.compile("verkeerd wachtwoord|wrong password", re.I)).first).to_be_visible()
        await expect(desk.by("queue-list")).to_have_count(0)

        await submit_login(desk, agent.username, agent.password)
        await expect(desk.by("agent-name")).to_have_text(agent.name)
        await expect(desk.by("agent-role")).to_have_text("medewerker")
        await expect(desk.by("live")).to_have_attribute("data-state", "on")
        await expect(desk.page.locator("#h-queue")).to_contain_text("Wachtrij")  # her ui_language: Dutch

        await desk.by("lang-switch").select_option("en")
        await expect(desk.page.locator("#h-queue")).to_contain_text("Queue")
        await expect(desk.by("agent-role")).to_have_text("agent")
        desk.assert_clean()
    finally:
        await desk.context.close()


async def test_handoff_shows_up_live_and_the_agent_talks_to_the_customer_on_whatsapp(browser, base, agents, stack, fake_twilio):
    desk = await login(browser, base, agents.agent)
    daan = WhatsAppCustomer(stack, fake_twilio, DAAN)
    conv = None
    try:
        await desk.page.evaluate("window.__sameDocument = 1")  # gone if the page reloads

        await daan.say(XSS)  # whatever the bot makes of it, it is in the transcript
        await daan.say("ik wil een medewerker spreken", what="word that a person will answer")

        item = desk.queue_item("Daan")
        await expect(item).to_have_count(1, timeout=30_000)  # pushed by the event stream
        conv = await item.get_attribute("data-conversation")
        await expect(item.get_by_test_id("queue-wait")).to_contain_text("wacht")
        await expect(item.get_by_test_id("queue-language")).to_have_text("NL")
        await expect(item.get_by_test_id("claim")).to_be_enabled()

        await item.get_by_test_id("claim").click()
        await expect(desk.mine_item_of(conv)).to_be_visible()
        await expect(desk.queue_item_of(conv)).to_have_count(0)
        await expect(desk.by("conv-state")).to_have_attribute("data-state", "with_agent")
        # Daan wrote from the WhatsApp number in his record: the agent sees he is verified, and how
        await expect(desk.by("conv-identity")).to_have_text("Bevestigd via het WhatsApp-nummer")
        await expect(desk.by("conv-identity")).to_have_attribute("data-level", "verified")

        # The customer's HTML is shown as the text they typed, and never runs.
        shown = desk.by("transcript-entry").filter(has_text=XSS).last
        await expect(shown.get_by_test_id("entry-text")).to_have_text(XSS)
        await expect(shown).to_have_attribute("data-sender", "customer")
        await expect(shown.get_by_test_id("entry-channel")).to_have_text("WhatsApp")
        await expect(desk.page.locator('[data-testid="transcript"] img')).to_have_count(0)
        assert await desk.page.evaluate("typeof window.__xss") == "undefined"

        # The agent's reply (Enter sends) reaches the customer on WhatsApp.
        before = daan.mark()
        await desk.by("reply-input").fill("Hoi Daan, ik help je verder")
        await desk.by("reply-input").press("Enter")
        await daan.wait_for(lambda body: "Hoi Daan, ik help je verder" in body, after=before, what="the agent's reply")
        await expect(desk.by("reply-input")).to_have_value("")
        mine = desk.by("transcript-entry").filter(has_text="Hoi Daan, ik help je verder").last
        await expect(mine).to_have_attribute("data-sender", "agent")

        # What the customer writes next appears in the open transcript by itself.
        await daan.send("De robotstofzuiger doet het niet meer")
        later = desk.by("transcript-entry").filter(has_text="De robotstofzuiger doet het niet meer").last
        await expect(later).to_be_visible(timeout=30_000)
        await expect(later).to_have_attribute("data-channel", "whatsapp")

        assert await desk.page.evaluate("window.__sameDocument") == 1, "the desk reloaded the page"
        desk.assert_clean()
    finally:
        await desk.close_quietly(conv)
        await desk.context.close()


async def test_decisions_within_the_mandate_and_escalated_beyond_it(browser, base, agents, stack, fake_twilio):
    agent = await login(browser, base, agents.agent)
    senior = None
    zwaan = WhatsAppCustomer(stack, fake_twilio, ZWAAN)
    conv = None
    try:
        conv = await asks_for_a_person_and_is_claimed(agent, zwaan, "Zwaan")

        # The customer's record is next to the conversation.
        await expect(agent.by("record-orders")).to_contain_text("163455")
        await expect(agent.by("record-invoices")).to_contain_text("F2026-00290")
        await expect(agent.by("churn-score")).to_have_text("0/100")

        # Within the agent's mandate (refunds up to €150): granted, and the customer is told.
        await expect(agent.by("decide-form")).to_be_visible()
        before = zwaan.mark()
        await agent.by("decide-kind").select_option("refund")
        await agent.by("decide-amount").fill("100")
        await agent.by("decide-order").fill("163455")
        await agent.by("decide-submit").click()
        await expect(agent.by("decide-result")).to_contain_text("€100,00")
        await zwaan.wait_for(lambda body: "€100,00" in body and "163455" in body, after=before,
                            what="word of the €100 refund")

        # Beyond it: the desk explains and offers to escalate to a senior agent.
        await agent.by("decide-amount").fill("200")
        await agent.by("decide-submit").click()
        await expect(agent.by("decide-refused")).to_be_visible()
        await expect(agent.by("decide-explanation")).to_contain_text(re.compile(r"150"))
        await expect(agent.by("escalate")).to_have_text("Escaleren naar senior medewerker")
        await agent.by("escalate").click()
        await expect(agent.mine_item_of(conv)).to_have_count(0)
        waiting = agent.queue_item_of(conv)
        await expect(waiting.get_by_test_id("claim")).to_be_disabled()
        await expect(waiting.get_by_test_id("claim-why")).to_contain_text("senior medewerker")

        # A senior agent (English desk) takes it over with the request filled in, and grants it.
        senior = await login(browser, base, agents.senior)
        offered = senior.queue_item_of(conv)
        await expect(offered.get_by_test_id("queue-role")).to_have_text("senior agent")
        await expect(offered.get_by_test_id("claim")).to_be_enabled()
        await offered.get_by_test_id("claim").click()
        await expect(senior.mine_item_of(conv)).to_be_visible()
        await expect(senior.by("item-request")).to_contain_text("€200.00")
        await expect(senior.by("decide-kind")).to_have_value("refund")
        await expect(senior.by("decide-amount")).to_have_value("200")
        await expect(senior.by("decide-order")).to_have_value("163455")
        before = zwaan.mark()
        await senior.by("decide-submit").click()
        await expect(senior.by("decide-result")).to_contain_text("€200,00")  # what the café was told, in Dutch
        await zwaan.wait_for(lambda body: "€200,00" in body, after=before, what="word of the €200 refund")
        await expect(senior.by("record-decisions")).to_contain_text("€200.00")

        agent.assert_clean()
        senior.assert_clean()
    finally:
        if senior is not None:
            await senior.close_quietly(conv)
            await senior.context.close()
        await agent.close_quietly(conv)
        await agent.context.close()


async def test_closing_gives_the_customer_back_to_the_bot(browser, base, agents, stack, fake_twilio):
    desk = await login(browser, base, agents.agent)
    tim = WhatsAppCustomer(stack, fake_twilio, TIM)
    conv = None
    try:
        conv = await asks_for_a_person_and_is_claimed(desk, tim, "Tim")

        await desk.by("close").click()
        await expect(desk.mine_item_of(conv)).to_have_count(0)
        await expect(desk.by("status")).to_have_text("Gesprek afgesloten.")
        await expect(desk.by("no-conversation")).to_be_visible()  # the closed conversation left the desk
        await expect(desk.by("reply-input")).to_be_hidden()

        answer = await tim.say("hoe laat zijn jullie open", lambda body: "9:00" in body, what="the bot's opening hours")
        assert "17:00" in answer
        desk.assert_clean()
    finally:
        await desk.close_quietly(conv)
        await desk.context.close()
