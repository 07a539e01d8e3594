"""The desk marks an agent message that did not reach the customer, in Dutch and in English
(Chromium via Playwright against the running stack; the fake Twilio refuses the message)."""

from __future__ import annotations

import asyncio
import secrets

import pytest
from playwright.async_api import async_playwright, expect

from tests.support.desk_helpers import CHROMIUM, CHROMIUM_ARGS, WhatsAppCustomer, create_agent, login

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason=f"needs Debian's Chromium at {CHROMIUM} (make browser)")


async def test_a_refused_agent_reply_is_marked_not_delivered_with_the_reason(browser, stack, fake_twilio):
    base = f"http://127.0.0.1:{stack.gateway_port}"
    agent = await create_agent(stack, role="supervisor", name="Fleur Falen", ui_language="nl",
                               skills="general,finance,retention,complaints")
    desk = await login(browser, base, agent)
    customer = WhatsAppCustomer(stack, fake_twilio, f"+316{secrets.randbelow(10**8):08d}")
    conv = None
    try:
        before = {i["conversation"] for i in (await desk.api("GET", "/desk/api/queue"))["data"]["waiting"]}
        await customer.say("ik wil een medewerker spreken", what="word that a person will answer")
        for _ in range(100):
            waiting = (await desk.api("GET", "/desk/api/queue"))["data"]["waiting"]
            new = [i["conversation"] for i in waiting if i["conversation"] not in before and i.get("channel") == "whatsapp"]
            if new:
                conv = new[0]
                break
            await asyncio.sleep(0.2)
        assert conv is not None
        item = desk.queue_item_of(conv)
        await expect(item).to_have_count(1, timeout=30_000)
        await item.get_by_test_id("claim").click()
        await expect(desk.mine_item_of(conv)).to_be_visible()
        await customer.wait_for(lambda body: body.startswith("Je praat nu met Fleur"), after=0, what="the agent joining")

        fake_twilio.fail_next(1, status=400, code=21211)
        await desk.by("reply-input").fill("Hoi, ik kijk even mee.")
        await desk.by("reply-send").click()
        line = desk.by("transcript-entry").filter(has_text="Hoi, ik kijk even mee.")
        await expect(line).to_have_attribute("data-delivery", "failed")
        await expect(line.get_by_test_id("entry-delivery")).to_have_text(
            "Niet afgeleverd · reden: Twilio refused the whatsapp message: HTTP 400, Twilio error 21211")
        joined = desk.by("transcript-entry").filter(has_text="Je praat nu met Fleur")
        await expect(joined).to_have_attribute("data-delivery", "sent")
        await expect(joined.get_by_test_id("entry-delivery")).to_have_count(0)

        await desk.by("lang-switch").select_option("en")
        await expect(line.get_by_test_id("entry-delivery")).to_have_text(
            "Not delivered · reason: Twilio refused the whatsapp message: HTTP 400, Twilio error 21211")
        assert "Hoi, ik kijk even mee." not in [m.get("Body") for m in customer.received()]
        desk.assert_clean()
    finally:
        await desk.close_quietly(conv)
        await desk.context.close()
