"""The agent desk over HTTP: an agent's browser (its own cookies and CSRF token), agents made with
the desk's command line, and a gateway with the desk but without Rasa."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import uuid

import aiohttp
from aiohttp.test_utils import TestServer

PASSWORD = "correct horse battery"
CSRF_FIELD = re.compile(r'name="csrf" value="([^"]+)"')


def _wired(app) -> bool:
    return any(getattr(r, "canonical", "") == "/desk/api/me" for r in app.router.resources())


async def start(url: str, redis_url: str, prefix: str, heartbeat: float = 0.3) -> TestServer:
    """The real gateway app (`create_app`) with the desk, on the records database `url`; its Rasa
    address answers nothing (these tests put conversations in the queue themselves)."""
    from bot.gateway.app import create_app
    from bot.gateway.keys import DESK_HEARTBEAT
    from bot.shared.settings import Settings

    os.environ["DATABASE_URL"] = url  # read by the gateway's create_engine() at start-up
    app = create_app(Settings(redis_url=redis_url, key_prefix=prefix, rasa_url="http://127.0.0.1:9"))
    assert _wired(app), "bot.gateway.app.create_app must call bot.desk.routes.setup(app)"
    app[DESK_HEARTBEAT] = heartbeat
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    return server


def create_agent(stack, role: str, skills: str = "general,finance", languages: str = "nl,en") -> str:
    """An agent (password PASSWORD) made with `python -m bot.desk create-agent` on the stack's
    database; its user name."""
    username = f"{role.split('_')[0]}-{uuid.uuid4().hex[:6]}"
    subprocess.run(
        [sys.executable, "-m", "bot.desk", "create-agent", "--username", username, "--name", f"Anna {role}",
         "--role", role, "--skills", skills, "--languages", languages, "--password-stdin"],
        input=PASSWORD + "\n", text=True, check=True, capture_output=True, timeout=60,
        env={**os.environ, "DATABASE_URL": stack.database_url},
    )
    return username


class Browser:
    """One person's browser: its own cookies; `csrf` from /desk/api/me after logging in."""

    def __init__(self, base: str) -> None:
        self.http = aiohttp.ClientSession(base_url=base, cookie_jar=aiohttp.CookieJar(unsafe=True),
                                          timeout=aiohttp.ClientTimeout(total=60))
        self.csrf: str | None = None
        self.username = ""

    async def login_token(self) -> str:
        async with self.http.get("/desk/login") as page:
            assert page.status == 200
            return CSRF_FIELD.search(await page.text()).group(1)

    async def login(self, username: str, password: str) -> aiohttp.ClientResponse:
        token = await self.login_token()
        response = await self.http.post("/desk/login", data={"username": username, "password": password,
                                                             "csrf": token}, allow_redirects=False)
        await response.read()
        if response.status == 303:
            status, me = await self.get("/desk/api/me")
            assert status == 200
            self.csrf = me["csrf"]
        return response

    async def get(self, path: str) -> tuple[int, dict]:
        async with self.http.get(path, allow_redirects=False) as r:
            return r.status, await r.json()

    async def post(self, path: str, body=None, *, raw: bytes | None = None, csrf: str | None | bool = True,
                   content_type: str = "application/json") -> tuple[int, dict]:
        headers = {"Content-Type": content_type}
        if csrf is True and self.csrf:
            headers["X-CSRF-Token"] = self.csrf
        elif isinstance(csrf, str):
            headers["X-CSRF-Token"] = csrf
        data = raw if raw is not None else (b"" if body is None else json.dumps(body).encode())
        async with self.http.post(path, data=data, headers=headers, allow_redirects=False) as r:
            return r.status, await r.json()

    async def act(self, conv: str, action: str, body=None, **kw) -> tuple[int, dict]:
        return await self.post(f"/desk/api/conversations/{conv}/{action}", body if body is not None else {}, **kw)

    async def close(self) -> None:
        await self.http.close()


async def online(desk: Browser) -> asyncio.Task:
    """Keep the desk's live stream open (that is what makes an agent count as online): the task
    that reads it; cancel it to leave."""
    ready = asyncio.Event()

    async def listen() -> None:
        async with desk.http.get("/desk/events", timeout=aiohttp.ClientTimeout(total=None)) as stream:
            ready.set()
            async for _ in stream.content:
                pass

    task = asyncio.create_task(listen())
    await asyncio.wait_for(ready.wait(), 10)
    for _ in range(50):  # the stream marks the agent online right after it opened
        status, queue = await desk.get("/desk/api/queue")
        if status == 200 and queue["online"]:
            return task
        await asyncio.sleep(0.1)
    task.cancel()
    raise AssertionError(f"{desk.username or 'the agent'} did not come online")
