"""The published rasa-webchat widget (1.0.1, unchanged: its npm package's bundle in
tests/vendor/rasa-webchat/) on a business's own site (another origin: tests/support/site.py),
against the whole running stack, in a real browser (Debian's Chromium via Playwright).

What a visitor of that site notices: a refusal is shown (rasa-webchat knows no `error_message`),
an agent's answer that came while the tab was closed is there when they come back, and a list
the bot sends shows one item per line (rasa-webchat renders Markdown).
"""

from __future__ import annotations

import pytest
from playwright.async_api import async_playwright, expect
from redis.asyncio import Redis

from bot.texts import messages
from tests.support.chat import latest_code, conversation_of
from tests.support.desk_api import PASSWORD, Browser, create_agent
from tests.support.desk_helpers import CHROMIUM, CHROMIUM_ARGS
from tests.support.site import offline
from tests.support.stack import stack_sql
from tests.support.wait import until

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason=f"the web chat's browser tests need Debian's Chromium at {CHROMIUM} (make browser)",
)

expect.set_options(timeout=30_000)


@pytest.fixture
async def context(browser):
    """One visitor's browser: its own storage, where rasa-webchat keeps the conversation."""
    ctx = await browser.new_context(locale="nl-NL")
    await offline(ctx)
    yield ctx
    await ctx.close()


class Visitor:
    """rasa-webchat on the site, in one tab."""

    def __init__(self, page) -> None:
        self.page = page
        self.errors: list[str] = []
        page.on("pageerror", lambda exc: self.errors.append(str(exc)))

    @classmethod
    async def open(cls, context, site) -> "Visitor":
        visitor = cls(await context.new_page())
        await visitor.page.goto(f"{site.url}/rasa-webchat.html")
        await expect(visitor.page.locator(".rw-launcher")).to_be_visible()
        # rasa-webchat remembers (in the browser's storage) whether the chat was open
        if not await visitor.page.locator(".rw-conversation-container").count():
            await visitor.page.locator(".rw-launcher").click()
        await expect(visitor.page.locator(".rw-new-message")).to_be_enabled()
        return visitor

    def bot(self):
        return self.page.locator(".rw-response .rw-message-text")

    async def say(self, text: str, answers: int = 1) -> None:
        """Type and send a message; wait until at least `answers` more bot messages are shown."""
        before = await self.bot().count()
        await self.page.locator(".rw-new-message").fill(text)
        await self.page.locator(".rw-send").click()
        await expect(self.bot()).to_have_count(before + answers, timeout=30_000)

    async def session_id(self) -> str:
        return await self.page.evaluate("JSON.parse(localStorage.getItem('chat_session')).session_id")




async def test_a_message_that_is_too_long_shows_the_refusal(context, third_party_site):
    visitor = await Visitor.open(context, third_party_site)
    await visitor.say("a" * 5000)
    refusal = messages.text("too_long", "nl", limit=4096)
    assert await visitor.bot().last.inner_text() == refusal
    await expect(visitor.bot().filter(has_text=refusal)).to_have_count(1)  # once, not twice
    # and the chat goes on normally
    await visitor.say("hoi")
    assert "Waarmee kan ik je helpen" in await visitor.bot().last.inner_text()
    assert visitor.errors == []


async def test_an_agents_answer_while_the_tab_was_closed_is_there_on_return(context, third_party_site, stack):
    visitor = await Visitor.open(context, third_party_site)
    await visitor.say("ik wil een medewerker spreken", answers=2)  # the handoff and the honest wait
    session = await visitor.session_id()
    conv = await conversation_of(stack, session)
    desk = Browser(f"http://127.0.0.1:{stack.gateway_port}")
    try:
        assert (await desk.login(create_agent(stack, "agent"), PASSWORD)).status == 303
        status, _ = await desk.act(conv, "claim")
        assert status == 200
        joined = visitor.bot().filter(has_text="van de klantenservice")  # "Je praat nu met Anna ..."
        await expect(joined).to_have_count(1)
        shown_before = await visitor.bot().count()

        await visitor.page.close()  # the visitor closes the tab
        redis = Redis.from_url(stack.redis_url, decode_responses=True)
        try:  # the gateway saw the tab go (what it sends from now on is kept for the visitor's return)
            await until(lambda: redis.exists(f"{stack.key_prefix}:webchat:left:{session}"), timeout=10,
                        what="the gateway noting that the tab was closed")
        finally:
            await redis.close(close_connection_pool=True)
        answer = "Ik heb je pakket gevonden: het wordt morgen bezorgd."
        status, _ = await desk.act(conv, "reply", {"text": answer})
        assert status == 200
    finally:
        await desk.close()

    again = await Visitor.open(context, third_party_site)  # the same browser, later
    await expect(again.bot().filter(has_text=answer)).to_have_count(1)
    # everything from before is still shown, once, and the answer came after it
    await expect(again.bot()).to_have_count(shown_before + 1)
    assert await again.bot().last.inner_text() == answer
    await expect(again.bot().filter(has_text="van de klantenservice")).to_have_count(1)
    assert again.errors == []


async def test_a_list_from_the_bot_shows_one_item_per_line(context, third_party_site, stack):
    visitor = await Visitor.open(context, third_party_site)
    def codes() -> int:
        return stack_sql(stack, "select count(*) from outbox o join customers c on c.id = o.customer_id "
                                "where c.customer_number = 'K10001' and o.kind = 'one_time_code'")[0][0]

    await visitor.say("hoeveel spaarpunten heb ik")
    before = codes()
    await visitor.say("K10001")  # the code goes to Sanne's phone (the outbox)
    await until(lambda: codes() == before + 1, timeout=10, what="Sanne's code")
    await visitor.say(latest_code(stack, "K10001"))
    await expect(visitor.bot().filter(has_text="punten (niveau")).to_have_count(1)
    shown = visitor.bot().filter(has_text="punten (niveau")
    # what the bot said, as the desk shows it: the points line and one line per reward
    [(said,)] = stack_sql(stack, "select text from transcript where conversation = ? and sender = 'bot' "
                                 "and text like '%punten (niveau%' order by id desc limit 1",
                          await conversation_of(stack, await visitor.session_id()))
    lines = said.split("\n")
    assert len(lines) >= 3 and all(line.startswith("• ") for line in lines[1:]), said
    assert (await shown.inner_text()).split("\n") == lines
    assert await shown.locator("br").count() == len(lines) - 1
    assert visitor.errors == []
