"""The desk's login behind the real gateway app: the Secure cookie (https directly, or from a
trusted proxy only), login throttling that slows and refuses a guesser without locking an agent
out, and the demo outbox behind a desk login.

Real Redis (own key prefixes, deleted afterwards), real SQLite with the demo web shop, the real
gateway (`bot.gateway.app.create_app`). Different clients are different loopback addresses
(127.0.0.x: Linux routes all of 127/8 to lo), so the server sees each as its own peer.
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import shutil
import ssl
import subprocess
import sys
import time
from dataclasses import dataclass, replace

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from bot.desk.auth import LOGIN_CLIENT_MAX, LOGIN_USER_MAX_DELAY, Agents
from bot.gateway.keys import RECORDS
from bot.shared.forwarded import parse_networks
from bot.gateway.app import create_app
from bot.shared.settings import PROJECT_ROOT, Settings
from tests.support.stack import delete_prefix, demo_shop_db

PASSWORD = "correct horse battery"
WRONG = "wrong password!"
CSRF_FIELD = re.compile(r'name="csrf" value="([^"]+)"')


@dataclass
class Server:
    server: TestServer
    url: str
    prefix: str

    @property
    def records(self):
        return self.server.app[RECORDS]


@pytest.fixture(scope="module")
def login_db(tmp_path_factory) -> str:
    return demo_shop_db(tmp_path_factory.mktemp("logindb"))


@pytest.fixture(scope="module")
def certificate(tmp_path_factory) -> ssl.SSLContext:
    if not shutil.which("openssl"):
        pytest.skip("openssl is needed to make a test certificate")
    directory = tmp_path_factory.mktemp("tls")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(directory / "key.pem"),
                    "-out", str(directory / "cert.pem"), "-days", "1", "-subj", "/CN=127.0.0.1"],
                   check=True, capture_output=True, timeout=60)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(directory / "cert.pem", directory / "key.pem")
    return context


@pytest.fixture(scope="module")
async def servers(login_db, redis_url, certificate):
    """plain: no proxy trusted, no outbox; proxied: trusts 127.0.0.1 (a reverse proxy on this
    machine) and serves the demo outbox; https: TLS on the gateway itself."""
    before = os.environ.get("DATABASE_URL")
    os.environ["DATABASE_URL"] = login_db  # read by the gateway's create_engine() at start-up
    base = Settings(redis_url=redis_url, rasa_url="http://127.0.0.1:9")
    made: dict[str, Server] = {}
    try:
        for name, settings, tls in (
            ("plain", {}, None),
            ("proxied", {"trusted_proxies": parse_networks("127.0.0.1"), "dev_outbox": True}, None),
            ("https", {}, certificate),
        ):
            prefix = "dl" + secrets.token_hex(4)
            server = TestServer(create_app(replace(base, key_prefix=prefix, **settings)), host="127.0.0.1")
            await server.start_server(ssl=tls)
            made[name] = Server(server, str(server.make_url("")).rstrip("/"), prefix)
        yield made
    finally:
        for s in made.values():
            await s.server.close()
            delete_prefix(redis_url, s.prefix)
        if before is None:
            os.environ.pop("DATABASE_URL", None)
        else:
            os.environ["DATABASE_URL"] = before


async def new_agent(server: Server) -> str:
    username = f"agent{secrets.token_hex(4)}"
    await Agents(server.records).create(username=username, name=f"Anna {username}", role="agent",
                                        skills=["general"], languages=["nl", "en"], password=PASSWORD)
    return username


class Client:
    """One client machine: its own source address; cookies handled by hand (a Secure cookie
    must still be sent back over the test's plain http, as a browser would over https)."""

    def __init__(self, server: Server, address: str = "127.0.0.1", headers: dict | None = None) -> None:
        connector = aiohttp.TCPConnector(local_addr=(address, 0), ssl=False)
        self.http = aiohttp.ClientSession(connector=connector, cookie_jar=aiohttp.DummyCookieJar())
        self.base = server.url
        self.headers = headers or {}
        self.cookies: dict[str, str] = {}

    def _cookie_header(self) -> dict:
        return {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())} if self.cookies else {}

    def _keep(self, response: aiohttp.ClientResponse) -> list[str]:
        set_cookies = response.headers.getall("Set-Cookie", [])
        for header in set_cookies:
            name, _, value = header.split(";")[0].partition("=")
            if value.strip('"'):
                self.cookies[name] = value.strip('"')
            else:
                self.cookies.pop(name, None)
        return set_cookies

    async def get(self, path: str, headers: dict | None = None) -> tuple[int, str, aiohttp.ClientResponse]:
        async with self.http.get(self.base + path, headers={**self.headers, **(headers or {}), **self._cookie_header()},
                                 allow_redirects=False) as r:
            self._keep(r)
            return r.status, await r.text(), r

    async def login(self, username: str, password: str, headers: dict | None = None):
        """GET the form, POST it; (status, Set-Cookie headers of both, response, seconds the POST took)."""
        headers = {**self.headers, **(headers or {})}
        async with self.http.get(self.base + "/desk/login", headers={**headers, **self._cookie_header()}) as page:
            assert page.status == 200
            form_cookies = self._keep(page)
            token = CSRF_FIELD.search(await page.text()).group(1)
        start = time.perf_counter()
        async with self.http.post(self.base + "/desk/login", data={"username": username, "password": password,
                                                                   "csrf": token},
                                  headers={**headers, **self._cookie_header()}, allow_redirects=False) as r:
            await r.read()
            took = time.perf_counter() - start
            return r.status, form_cookies + self._keep(r), r, took

    async def close(self) -> None:
        await self.http.close()


@pytest.fixture
async def clients():
    made: list[Client] = []

    def make(server: Server, address: str = "127.0.0.1", headers: dict | None = None) -> Client:
        c = Client(server, address, headers)
        made.append(c)
        return c

    yield make
    for c in made:
        await c.close()


def cookie(set_cookies: list[str], name: str) -> str:
    return next(v for v in set_cookies if v.startswith(name + "="))


# -- the Secure flag ------------------------------------------------------------------------------

async def test_cookies_are_secure_over_https_directly(servers, clients):
    username = await new_agent(servers["https"])
    status, set_cookies, _, _ = await clients(servers["https"]).login(username, PASSWORD)
    assert status == 303
    assert "Secure" in cookie(set_cookies, "desk_session") and "Secure" in cookie(set_cookies, "desk_login_csrf")


async def test_cookies_are_secure_when_a_trusted_proxy_says_https(servers, clients):
    proxied = servers["proxied"]
    username = await new_agent(proxied)
    # nginx on this machine (trusted): "X-Forwarded-Proto: https"
    status, set_cookies, _, _ = await clients(proxied, headers={"X-Forwarded-Proto": "https",
                                                                "X-Forwarded-For": "198.51.100.4"}).login(username, PASSWORD)
    assert status == 303
    session = cookie(set_cookies, "desk_session")
    assert "Secure" in session and "HttpOnly" in session and "SameSite=Strict" in session
    assert "Secure" in cookie(set_cookies, "desk_login_csrf")
    # the same proxy forwarding plain http: no Secure (the browser would never send it back)
    status, set_cookies, _, _ = await clients(proxied, headers={"X-Forwarded-Proto": "http"}).login(username, PASSWORD)
    assert status == 303 and "Secure" not in cookie(set_cookies, "desk_session")


async def test_a_spoofed_x_forwarded_proto_is_ignored(servers, clients):
    # no proxy configured: whoever connects may write the header
    plain = servers["plain"]
    username = await new_agent(plain)
    status, set_cookies, _, _ = await clients(plain, headers={"X-Forwarded-Proto": "https"}).login(username, PASSWORD)
    assert status == 303 and "Secure" not in cookie(set_cookies, "desk_session")
    # a proxy configured, but this peer (127.0.0.9) is not it
    proxied = servers["proxied"]
    username = await new_agent(proxied)
    status, set_cookies, _, _ = await clients(proxied, "127.0.0.9", {"X-Forwarded-Proto": "https"}).login(username, PASSWORD)
    assert status == 303 and "Secure" not in cookie(set_cookies, "desk_session")
    assert "Secure" not in cookie(set_cookies, "desk_login_csrf")


# -- throttling -----------------------------------------------------------------------------------

async def test_the_guesser_is_refused_but_cannot_lock_the_agent_out(servers, clients):
    plain = servers["plain"]
    username = await new_agent(plain)
    stranger = clients(plain, "127.0.0.21")
    for _ in range(5):
        assert (await stranger.login(username, WRONG))[0] == 401
    # the stranger's sixth try is refused, even with the right password, and says when to retry
    status, _, response, _ = await stranger.login(username, PASSWORD)
    assert status == 429 and int(response.headers["Retry-After"]) > 0
    # ... and the same stranger may still log in as someone else (only that pair waits)
    other = await new_agent(plain)
    assert (await stranger.login(other, PASSWORD))[0] == 303
    # the agent, from her own computer, logs in at once (before: locked out for 15 minutes)
    status, set_cookies, _, took = await clients(plain, "127.0.0.22").login(username, PASSWORD)
    assert status == 303 and cookie(set_cookies, "desk_session")
    assert took < LOGIN_USER_MAX_DELAY + 3


async def test_fifty_failures_from_ten_clients_only_slow_the_agent_down(servers, clients):
    plain = servers["plain"]
    username = await new_agent(plain)
    strangers = [clients(plain, f"127.0.0.{30 + i}") for i in range(10)]

    async def five(c: Client) -> list[int]:
        return [(await c.login(username, WRONG))[0] for _ in range(5)]

    results = await asyncio.gather(*(five(c) for c in strangers))
    assert all(status == 401 for statuses in results for status in statuses)  # slowed, never refused
    status, _, _, took = await clients(plain, "127.0.0.41").login(username, PASSWORD)
    assert status == 303
    # slowed by the bounded delay (50 recent attempts on this username: the maximum), no more
    assert LOGIN_USER_MAX_DELAY - 0.5 <= took < LOGIN_USER_MAX_DELAY + 4
    # after her success the username is no longer slowed
    status, _, _, took = await clients(plain, "127.0.0.41").login(username, PASSWORD)
    assert status == 303 and took < 2


async def test_one_client_trying_many_usernames_is_refused(servers, clients):
    plain = servers["plain"]
    username = await new_agent(plain)
    guesser = clients(plain, "127.0.0.51")
    for batch in range(0, LOGIN_CLIENT_MAX, 10):
        statuses = await asyncio.gather(*(clients(plain, "127.0.0.51").login(f"nobody{batch + i}{secrets.token_hex(2)}", WRONG)
                                          for i in range(10)))
        assert [s[0] for s in statuses] == [401] * 10
    status, _, response, _ = await guesser.login(username, PASSWORD)
    assert status == 429 and "Too many failed attempts" in await response.text()
    assert int(response.headers["Retry-After"]) > 0
    # another client is not affected
    assert (await clients(plain, "127.0.0.52").login(username, PASSWORD))[0] == 303


async def test_x_forwarded_for_counts_only_from_a_trusted_proxy(servers, clients):
    # through the trusted proxy, each customer address is its own client ...
    proxied = servers["proxied"]
    username = await new_agent(proxied)
    stranger = clients(proxied, headers={"X-Forwarded-For": "203.0.113.7"})
    for _ in range(5):
        assert (await stranger.login(username, WRONG))[0] == 401
    assert (await stranger.login(username, PASSWORD))[0] == 429
    agent = clients(proxied, headers={"X-Forwarded-For": "198.51.100.20"})
    assert (await agent.login(username, PASSWORD))[0] == 303
    # ... while from anyone else X-Forwarded-For is ignored: a new made-up address per try is
    # still the same client
    plain = servers["plain"]
    username = await new_agent(plain)
    for i in range(5):
        status = (await clients(plain, "127.0.0.61", {"X-Forwarded-For": f"192.0.2.{i}"}).login(username, WRONG))[0]
        assert status == 401
    refused = await clients(plain, "127.0.0.61", {"X-Forwarded-For": "192.0.2.99"}).login(username, PASSWORD)
    assert refused[0] == 429


# -- the demo outbox -------------------------------------------------------------------------------

async def issue_code(server: Server, number: str = "K10005") -> str:
    records = server.records
    customer = await records.by_customer_number(number)
    return await records.issue_code(customer, "sms", customer.phone or "+31600000000",
                                    "Je code is {code} · Your code is {code}")


async def test_the_outbox_is_off_without_dev_outbox(servers, clients):
    c = clients(servers["plain"])
    assert (await c.get("/dev/outbox"))[0] == 404
    assert (await c.get("/desk/dev/outbox"))[0] == 404


async def test_the_outbox_needs_a_desk_login(servers, clients):
    proxied = servers["proxied"]
    code = await issue_code(proxied)
    stranger = clients(proxied, "127.0.0.71")
    status, body, response = await stranger.get("/dev/outbox")
    assert status == 303 and response.headers["Location"] == "/desk/dev/outbox" and code not in body
    status, body, response = await stranger.get("/desk/dev/outbox")
    assert status == 303 and response.headers["Location"] == "/desk/login" and code not in body
    # a made-up session is no session
    stranger.cookies["desk_session"] = secrets.token_urlsafe(32)
    status, body, _ = await stranger.get("/desk/dev/outbox")
    assert status == 303 and code not in body

    agent = clients(proxied, "127.0.0.72")
    assert (await agent.login(await new_agent(proxied), PASSWORD))[0] == 303
    status, body, response = await agent.get("/desk/dev/outbox")
    assert status == 200 and f"Je code is {code}" in body
    assert response.headers["Cache-Control"] == "no-store" and "frame-ancestors 'none'" in response.headers[
        "Content-Security-Policy"]


async def test_an_admin_reads_the_codes_on_the_command_line(servers, login_db):
    first = await issue_code(servers["plain"], "K10006")
    second = await issue_code(servers["plain"], "K10007")
    customer = await servers["plain"].records.by_customer_number("K10007")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot.records", "outbox", "--last", "2", cwd=PROJECT_ROOT,
        env={**os.environ, "DATABASE_URL": login_db, "PYTHONPATH": str(PROJECT_ROOT)},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode == 0, err.decode()
    lines = out.decode().strip().splitlines()
    assert len(lines) == 2
    assert f"Je code is {first}" in lines[0] and f"Je code is {second}" in lines[1]  # newest last
    assert " sms " in lines[1] and re.match(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC ", lines[1])
    assert customer.phone not in out.decode() and customer.phone[-2:] in lines[1]  # masked
