"""Issue 12's "done when", end to end: a customer asks on WhatsApp to be called back; the bot
offers the number on record (masked) and free windows, books the chosen one and confirms it on
WhatsApp; the callback appears in the desk's callback list (Chromium via Playwright), the agent
marks it called, and the promise it was is kept. The action server runs on the real clock, so the
window is whichever was offered first: the test reads it from the offer and checks that the same
window is confirmed, listed and recorded."""

from __future__ import annotations

import re
import sqlite3

import pytest
from playwright.async_api import expect

from tests.support.desk_helpers import CHROMIUM, WhatsAppCustomer, create_agent, login

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason=f"needs Debian's Chromium at {CHROMIUM} (make browser)")
expect.set_options(timeout=20_000)

TIM = "+31612345630"  # K10030 Tim Kok: writes from the WhatsApp number in his record (verified by it)


def db(stack) -> sqlite3.Connection:
    return sqlite3.connect(stack.database_url.removeprefix("sqlite:///"))


async def test_a_callback_asked_on_whatsapp_is_booked_confirmed_listed_and_done(browser, stack, fake_twilio):
    tim = WhatsAppCustomer(stack, fake_twilio, TIM)
    asked = await tim.say("kunnen jullie me terugbellen?", lambda body: "56 30" in body or "nummer" in body,
                          what="the question which number")
    assert "Zullen we je bellen op je nummer dat eindigt op 56 30?" in asked  # masked, never the whole number
    offer = await tim.say("1", lambda body: "tijdvak" in body, what="the free windows")  # "1. Ja, dat nummer"
    first = re.search(r"1\. (.+?) (\d{2}:\d{2})–(\d{2}:\d{2})", offer)
    assert first, offer
    day, start, end = first.groups()
    booked = await tim.say("1", lambda body: "Afgesproken" in body, what="the confirmation")
    ticket = int(re.search(r"\(#(\d+)\)", booked).group(1))
    assert f"we bellen je {day} tussen {start} en {end} op +31612345630 (#{ticket})" in booked

    with db(stack) as conn:
        (status, kind), = conn.execute("SELECT status, kind FROM tickets WHERE id = ?", (ticket,)).fetchall()
        promises = conn.execute("SELECT kind, status, channel FROM promises WHERE ticket_id = ?", (ticket,)).fetchall()
    assert (status, kind) == ("open", "callback") and promises == [("callback", "open", "whatsapp")]

    agent = await create_agent(stack, role="agent", name="Bo Bellers", ui_language="nl")
    desk = await login(browser, f"http://127.0.0.1:{stack.gateway_port}", agent)
    try:
        item = desk.by("callback-item").filter(has_text="Tim Kok")
        await expect(item).to_have_count(1)
        await expect(item.get_by_test_id("callback-window")).to_have_text(f"{day} tussen {start} en {end}")
        assert await item.get_attribute("data-ticket") == str(ticket)
        await item.get_by_test_id("callback-done").click()
        await expect(desk.by("callback-item").filter(has_text="Tim Kok")).to_have_count(0)
        desk.assert_clean()
    finally:
        await desk.context.close()
    with db(stack) as conn:
        assert conn.execute("SELECT status FROM tickets WHERE id = ?", (ticket,)).fetchall() == [("closed",)]
        assert conn.execute("SELECT status FROM promises WHERE ticket_id = ?", (ticket,)).fetchall() == [("kept",)]
