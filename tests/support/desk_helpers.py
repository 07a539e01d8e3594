"""Helpers for the agent desk's browser tests: agents, WhatsApp customers, desk pages.

The browser is Debian's Chromium driven by Playwright (Playwright's own browser download does
not work here). Everything runs on loopback.
"""

from __future__ import annotations

import asyncio
import secrets
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable
from urllib.parse import urlparse

import aiohttp

from bot.shared.settings import PROJECT_ROOT
from tests.support.fake_twilio import inbound_params, signed_post_args

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]


# -- agents -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class DeskAgent:
    username: str
    name: str
    role: str
    password: str
    ui_language: str = "nl"


async def create_agent(stack, *, role: str, name: str, ui_language: str = "nl",
                       skills: str = "general,finance", languages: str = "nl,en") -> DeskAgent:
    """An agent made with the admin command line, on the stack's database; unique per run."""
    username = f"desk_{role}_{secrets.token_hex(3)}"
    password = "pw-" + secrets.token_urlsafe(12)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot.desk", "create-agent", "--username", username, "--name", name,
        "--role", role, "--skills", skills, "--languages", languages, "--ui-language", ui_language,
        "--password-stdin",
        cwd=PROJECT_ROOT, env=stack.env(), stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate((password + "\n").encode()), 120)
    assert proc.returncode == 0, f"create-agent failed ({proc.returncode}): {out.decode()} {err.decode()}"
    return DeskAgent(username, name, role, password, ui_language)


# -- a customer on WhatsApp -----------------------------------------------------------------------

class WhatsAppCustomer:
    """A customer writing to the gateway's Twilio webhook; what they receive comes from FakeTwilio."""

    def __init__(self, stack, fake_twilio, phone: str) -> None:
        self.stack, self.fake, self.phone = stack, fake_twilio, phone
        self.address = f"whatsapp:{phone}"

    def received(self) -> list[dict[str, Any]]:
        return [m for m in self.fake.messages if m["To"] == self.address]

    def mark(self) -> int:
        """How many messages the customer has received so far (to look only at newer ones)."""
        return len(self.received())

    async def send(self, body: str) -> None:
        env = self.stack.env()
        url = f"http://127.0.0.1:{self.stack.gateway_port}/webhooks/twilio"
        params = inbound_params(self.address, body, to=f"whatsapp:{env['TWILIO_WHATSAPP_NUMBER']}",
                                sid="SM" + secrets.token_hex(16))
        async with aiohttp.ClientSession() as http:
            async with http.post(url, data=params, headers=signed_post_args(env["TWILIO_AUTH_TOKEN"], url, params)) as resp:
                assert resp.status == 200, f"webhook answered {resp.status}: {await resp.text()}"

    async def wait_for(self, predicate: Callable[[str], bool] = lambda body: True, *, after: int,
                       timeout: float = 60, what: str = "a message") -> str:
        """The first message after index `after` whose body satisfies `predicate`."""
        deadline = time.monotonic() + timeout
        while True:
            newer = self.received()[after:]
            for message in newer:
                body = message.get("Body") or message.get("ContentVariables") or ""
                if predicate(body):
                    return body
            if time.monotonic() >= deadline:
                raise AssertionError(f"{self.phone} did not receive {what} within {timeout:.0f} s; "
                                     f"got {[m.get('Body') or m.get('ContentVariables') for m in newer]}")
            await asyncio.sleep(0.1)

    async def say(self, body: str, predicate: Callable[[str], bool] = lambda body: True, *,
                  timeout: float = 60, what: str = "an answer") -> str:
        """Send `body` and wait for an answer satisfying `predicate`."""
        before = self.mark()
        await self.send(body)
        return await self.wait_for(predicate, after=before, timeout=timeout, what=what)


# -- desk pages -----------------------------------------------------------------------------------

@dataclass
class DeskPage:
    """A logged-in desk in its own browser context, collecting script errors and CSP violations."""

    base: str
    context: Any
    page: Any
    problems: list[str] = field(default_factory=list)

    def by(self, testid: str):
        return self.page.get_by_test_id(testid)

    def queue_item(self, text: str):
        return self.by("queue-item").filter(has_text=text)

    def queue_item_of(self, conversation: str):
        return self.page.locator(f'[data-testid="queue-item"][data-conversation="{conversation}"]')

    def mine_item_of(self, conversation: str):
        return self.page.locator(f'[data-testid="mine-item"][data-conversation="{conversation}"]')

    async def api(self, method: str, path: str, body: dict | None = None) -> dict:
        """Call the desk API from inside the page (same origin, session cookie, CSRF token)."""
        return await self.page.evaluate(
            """async ([method, path, body]) => {
                const me = await (await fetch('/desk/api/me', {credentials: 'same-origin'})).json();
                const opts = {method, credentials: 'same-origin', headers: {'X-CSRF-Token': me.csrf}};
                if (method !== 'GET') { opts.headers['Content-Type'] = 'application/json'; opts.body = JSON.stringify(body || {}); }
                const resp = await fetch(path, opts);
                let data = null; try { data = await resp.json(); } catch (e) {}
                return {status: resp.status, data};
            }""",
            [method, path, body],
        )

    async def close_quietly(self, conversation: str | None) -> None:
        """Close a conversation this agent still holds (test clean-up; errors ignored)."""
        if not conversation or self.page.is_closed():
            return
        try:
            await self.api("POST", f"/desk/api/conversations/{conversation}/close", {})
        except Exception:  # noqa: BLE001 - clean-up must not hide the real failure
            pass

    def assert_clean(self) -> None:
        assert not self.problems, f"the desk page had script errors or CSP violations: {self.problems}"


def watch(page, problems: list[str]) -> None:
    def on_console(message) -> None:
        text = message.text
        if message.type == "error" and ("Content Security Policy" in text or "Refused to" in text):
            problems.append(f"CSP: {text}")
        elif message.type == "error" and "Failed to load resource" not in text:
            problems.append(f"console: {text}")

    page.on("console", on_console)
    page.on("pageerror", lambda exc: problems.append(f"pageerror: {exc}"))


async def open_login(browser, base: str):
    context = await browser.new_context(locale="nl-NL", timezone_id="Europe/Amsterdam")
    page = await context.new_page()
    problems: list[str] = []
    watch(page, problems)
    await page.goto(f"{base}/desk/login")
    return DeskPage(base, context, page, problems)


async def submit_login(desk: DeskPage, username: str, password: str) -> None:
    await desk.page.locator("input[name=username]").fill(username)
    await desk.page.locator("input[name=password]").fill(password)
    await desk.page.locator("form button[type=submit], form input[type=submit]").first.click()


async def login(browser, base: str, agent: DeskAgent):
    """A desk page logged in as `agent`, ready (profile loaded, live events connected)."""
    from playwright.async_api import expect

    desk = await open_login(browser, base)
    await submit_login(desk, agent.username, agent.password)
    await desk.page.wait_for_url(lambda url: urlparse(url).path.rstrip("/") == "/desk", timeout=15_000)
    await expect(desk.by("agent-name")).to_have_text(agent.name, timeout=15_000)
    await expect(desk.by("live")).to_have_attribute("data-state", "on", timeout=15_000)
    return desk
