"""Our own web chat on a business's site (another origin) with nothing but its one script tag,
in a real browser (Debian's Chromium via Playwright) against the whole running stack.

What the visitor notices: a launcher (untouched by the site's CSS, and not touching it), a click
opens the chat over the page and the bot answers, typing dots exactly while the bot works on an
answer or an agent types, a badge counting the messages that came while the chat was closed, and
the agent's name above the agent's messages. A site that WEBCHAT_ORIGINS does not name gets no chat.
"""

from __future__ import annotations

import pytest

from tests.support.chat import conversation_of
from playwright.async_api import async_playwright, expect

from redis.asyncio import Redis

from tests.support.desk_api import PASSWORD, Browser, create_agent
from tests.support.desk_helpers import CHROMIUM, CHROMIUM_ARGS
from tests.support.site import offline
from tests.support.wait import until

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason=f"the web chat's browser tests need Debian's Chromium at {CHROMIUM} (make browser)",
)

expect.set_options(timeout=30_000)

BRAND_COLOUR = "rgb(79, 70, 229)"

# Records, inside the chat's frame, when the typing dots appear and go and when a bot or agent
# message is added: what a person watching would see, in order.
WATCH = """() => {
  window.__seen = [];
  const typing = document.getElementById('typing');
  let shown = !typing.hidden;
  // one observer for both, so that its records come in the order things happened
  new MutationObserver((changes) => {
    for (const change of changes) {
      if (change.type === 'attributes' && change.target === typing && shown !== !typing.hidden) {
        shown = !typing.hidden;
        window.__seen.push(shown ? 'dots' : 'no dots');
      }
      for (const node of change.addedNodes || []) {
        if (node.classList && node.classList.contains('msg-bot')) window.__seen.push('message');
      }
    }
  }).observe(document.getElementById('scroller'), {subtree: true, childList: true, attributes: true,
                                                   attributeFilter: ['hidden']});
}"""


@pytest.fixture
async def page(browser):
    context = await browser.new_context(locale="nl-NL")
    await offline(context)
    page = await context.new_page()
    page.problems = []
    page.on("pageerror", lambda exc: page.problems.append(f"script error: {exc}"))
    page.on("console", lambda msg: msg.type == "error" and page.problems.append(f"console: {msg.text}"))
    yield page
    await context.close()


async def _has(said, text: str) -> bool:
    return text in await said




def chat_frame(page, stack):
    gateway = f"http://127.0.0.1:{stack.gateway_port}/"
    frames = [f for f in page.frames if f.url.startswith(gateway)]
    assert len(frames) == 1, [f.url for f in page.frames]
    return frames[0]


async def seen(frame) -> list[str]:
    return await frame.evaluate("window.__seen.splice(0)")


async def test_the_script_tag_gives_a_launcher_that_opens_the_chat_with_typing_a_badge_and_the_agents_name(
        page, third_party_site, stack):
    await page.goto(f"{third_party_site.url}/embed.html")
    launcher = page.get_by_test_id("kb-launcher")
    badge, panel = page.get_by_test_id("kb-badge"), page.get_by_test_id("kb-panel")
    await expect(launcher).to_be_visible()
    await expect(launcher).to_have_attribute("aria-label", "Chat met De Webwinkel")
    await expect(panel).to_be_hidden()
    await expect(badge).to_be_hidden()
    # no CSS leaks: the site's rules for every button do not reach the launcher, ours not the site
    assert await launcher.evaluate("b => getComputedStyle(b).backgroundColor") == BRAND_COLOUR
    assert await page.locator("#own-button").evaluate("b => getComputedStyle(b).backgroundColor") == "rgb(255, 0, 0)"
    assert await page.locator("#own-launcher").evaluate("d => getComputedStyle(d).position") == "static"

    await launcher.click()
    await expect(panel).to_be_visible()
    await expect(launcher).to_have_attribute("aria-label", "Chat sluiten")
    chat = page.frame_locator("kb-chat-widget iframe")
    await expect(chat.locator("#empty-state")).to_contain_text("Hoi! Waarmee kunnen we je helpen?")
    await expect(chat.locator("#status")).to_have_text("verbonden")
    await expect(chat.locator("#send")).to_be_enabled()  # connected, history read
    frame = chat_frame(page, stack)
    await frame.evaluate(WATCH)

    # the bot answers; the dots show while it works on it, and are gone when the answer is there
    await chat.locator("#input").fill("hoi")
    await chat.locator("#input").press("Enter")
    greeting = chat.locator(".msg-bot").filter(has_text="Waarmee kan ik je helpen?")
    await expect(greeting).to_have_count(1)
    await expect(chat.locator("#typing")).to_be_hidden()
    assert await seen(frame) == ["dots", "message", "no dots"]
    await expect(chat.locator(".msg-sender")).to_have_text(["De Webwinkel"])
    await expect(chat.locator(".quick-reply").first).to_have_text("Waar is mijn bestelling?")

    # to a person: the agent claims it while the chat is open
    await chat.get_by_role("button", name="Een medewerker spreken").click()
    await expect(chat.locator(".msg-user").last).to_have_text("Een medewerker spreken")  # the title, not /request_human
    await expect(chat.locator(".msg-bot").filter(has_text="niets te herhalen")).to_have_count(1)
    await expect(chat.locator("#typing")).to_be_hidden()
    session = await frame.evaluate("localStorage.getItem('webchat_session_id')")
    conv = await conversation_of(stack, session)
    desk = Browser(f"http://127.0.0.1:{stack.gateway_port}")
    try:
        assert (await desk.login(create_agent(stack, "agent"), PASSWORD)).status == 303
        status, _ = await desk.act(conv, "claim")
        assert status == 200
        await expect(chat.locator(".msg-bot").filter(has_text="van de klantenservice")).to_have_count(1)
        await expect(chat.locator(".msg-sender-agent")).to_have_text(["Anna"])
        await expect(badge).to_be_hidden()  # it came while the chat was open
        await seen(frame)

        # the customer writes while the agent has it: no dots, nobody is typing yet
        await chat.locator("#input").fill("het gaat om bestelling 104233")
        await chat.locator("#input").press("Enter")
        await expect(chat.locator(".msg-user").last).to_have_text("het gaat om bestelling 104233")

        async def customer_said() -> list[str]:
            _, view = await desk.get(f"/desk/api/conversations/{conv}")
            return [row["text"] for row in view["transcript"] if row["sender"] == "customer"]

        # its turn ran (a turn says `typing_on` before it writes the transcript)
        await until(lambda: _has(customer_said(), "het gaat om bestelling 104233"), timeout=15,
                    what="the customer's message reaching the desk")
        # the agent types: the dots, with the agent's name for screen readers
        status, _ = await desk.act(conv, "typing")
        assert status == 200
        await expect(chat.locator("#typing")).to_be_visible()
        await expect(chat.locator("#typing-text")).to_have_text("Anna is aan het typen…")
        status, _ = await desk.act(conv, "reply", {"text": "Ik kijk het na."})
        assert status == 200
        await expect(chat.locator(".msg-bot").last).to_have_text("Ik kijk het na.")
        await expect(chat.locator("#typing")).to_be_hidden()
        assert await seen(frame) == ["dots", "message", "no dots"]
        assert await customer_said() == ["hoi", "Een medewerker spreken", "het gaat om bestelling 104233"]

        # closed (the chat's own close button): what the agent sends now is counted on the badge
        await chat.locator("#close").click()
        await expect(panel).to_be_hidden()
        for text in ("Gevonden: hij is onderweg.", "Morgen wordt hij bezorgd."):
            status, _ = await desk.act(conv, "reply", {"text": text})
            assert status == 200
        await expect(badge).to_have_text("2")
        await expect(badge).to_be_visible()
        await expect(launcher).to_have_attribute("aria-label", "Chat met De Webwinkel (2 nieuwe berichten)")
    finally:
        await desk.close()

    await launcher.click()
    await expect(panel).to_be_visible()
    await expect(badge).to_be_hidden()
    await expect(chat.locator(".msg-bot").last).to_have_text("Morgen wordt hij bezorgd.")
    # the name above each run of the agent's messages: the claim, and after the customer's message
    await expect(chat.locator(".msg-sender-agent")).to_have_text(["Anna", "Anna"])
    await expect(chat.locator(".msg-sender-agent + .msg-bot")).to_have_text(["Je praat nu met Anna van de klantenservice.", "Ik kijk het na."],
                                                                             use_inner_text=True)
    assert page.problems == []


async def test_a_site_webchat_origins_does_not_name_gets_no_chat(page, third_party_site, stack):
    # the same page from http://localhost:<port>: another origin than the one allowed
    await page.goto(f"http://localhost:{third_party_site.port}/embed.html")
    await expect(page.get_by_test_id("kb-launcher")).to_be_visible()
    await page.get_by_test_id("kb-launcher").click()
    await until(lambda: page.problems, timeout=15, what="the browser refusing the frame")
    gateway = f"http://127.0.0.1:{stack.gateway_port}/"
    assert page.problems == [
        f"console: Framing '{gateway}' violates the following Content Security Policy directive: "
        f"\"frame-ancestors 'self' {third_party_site.origin}\". The request has been blocked.\n"]
    assert not [f for f in page.frames if f.url.startswith(gateway)]  # no chat page in it
