"""The agent desk's server side, through HTTP against the real gateway app.

Real Redis (TEST_REDIS_URL, own key prefix, deleted afterwards), real SQLite with the demo web
shop, the real gateway (`bot.gateway.app.create_app`) with the desk wired in. Rasa is not needed:
handoff items are put in the queue with `Handoffs.enqueue`, as the bot would. Every agent is a
separate browser (its own cookie jar) that logs in through the login form.

Personas (docs/demo-data.md): Daan Jansen (K10002), order 118902 (€249.00, delivered 3 days
ago). Mandates (config/mandates.yml): agent refunds up to €150, senior_agent up to €1000.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import secrets
import time
import uuid
from dataclasses import dataclass, field

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from sqlalchemy import select

from bot.desk.auth import Agents
from bot.gateway.keys import HANDOFFS, RECORDS, SERVICE
from bot.records.models import AuditEntry, Decision, Ticket
from bot.records.repository import Records
from tests.support.desk_api import PASSWORD, Browser, start
from tests.support.stack import delete_prefix, demo_shop_db


# -- the gateway with the desk -------------------------------------------------------------------

@pytest.fixture(scope="module")
def desk_db(tmp_path_factory) -> str:
    return demo_shop_db(tmp_path_factory.mktemp("deskdb"))


@dataclass
class Env:
    server: TestServer
    url: str
    prefix: str
    db: str
    browsers: list = field(default_factory=list)
    names: itertools.count = field(default_factory=itertools.count)

    @property
    def app(self):
        return self.server.app

    @property
    def records(self) -> Records:
        return self.app[RECORDS]

    @property
    def handoffs(self):
        return self.app[HANDOFFS]

    @property
    def service(self):
        return self.app[SERVICE]

    def browser(self) -> "Browser":
        b = Browser(self.url)
        self.browsers.append(b)
        return b

    async def agent(self, role: str = "agent", skills=("general", "finance"), languages=("nl", "en"),
                    ui: str = "nl", name: str | None = None) -> str:
        username = f"{role.replace('_', '')}{next(self.names)}{secrets.token_hex(2)}"
        await Agents(self.records).create(username=username, name=name or f"Anna {username}", role=role,
                                          skills=skills, languages=languages, ui_language=ui, password=PASSWORD)
        return username

    async def logged_in(self, role: str = "agent", **kw) -> "Browser":
        username = await self.agent(role, **kw)
        b = self.browser()
        response = await b.login(username, PASSWORD)
        assert response.status == 303, await response.text()
        b.username = username
        return b

    async def waiting(self, customer: str = "K10002", role: str = "agent", topic: str = "request_refund",
                      language: str = "nl", request: dict | None = None, ticket: bool = False) -> str:
        c = await self.records.by_customer_number(customer)
        conv = await self.service.store.key_for("webchat", uuid.uuid4().hex)
        await self.service.store.update(conv, customer_id=str(c.id), language=language, last_channel="webchat")
        ticket_id = None
        if ticket:
            t = await self.records.create_ticket(c.id, "waiting_request", details="refund for order 118902",
                                                 data={"request": "refund", "role": role, "amount_cents": 20000},
                                                 channel="webchat")
            ticket_id = t.id
        await self.handoffs.enqueue(conv, reason="mandate", language=language, customer_id=c.id,
                                    customer_name=c.name, segment=c.segment, topic=topic, role=role,
                                    summary="refund order 118902", request=request, ticket_id=ticket_id,
                                    channel="webchat")
        return conv

    async def rows(self, model, *where) -> list:
        async with self.records.session() as s:
            return list((await s.execute(select(model).where(*where).order_by(model.id))).scalars())


@pytest.fixture(scope="module")
async def env(desk_db, redis_url):
    before = os.environ.get("DATABASE_URL")
    prefix = "dk" + secrets.token_hex(4)
    server = await start(desk_db, redis_url, prefix)
    e = Env(server, str(server.make_url("")).rstrip("/"), prefix, desk_db)
    yield e
    for b in e.browsers:
        await b.close()
    await server.close()
    if before is None:
        os.environ.pop("DATABASE_URL", None)
    else:
        os.environ["DATABASE_URL"] = before
    delete_prefix(redis_url, prefix)


# -- logging in --------------------------------------------------------------------------------

async def test_login_ok_sets_a_strict_httponly_cookie_and_me_shows_the_agent(env):
    username = await env.agent("senior_agent", ui="en", name="Anna de Jong")
    b = env.browser()
    response = await b.login(username, PASSWORD)
    assert response.status == 303 and response.headers["Location"] == "/desk"
    cookie = next(v for v in response.headers.getall("Set-Cookie") if v.startswith("desk_session="))
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/desk" in cookie
    assert "Secure" not in cookie  # plain http here; Secure when the request is https
    token = cookie.split(";")[0].split("=", 1)[1]
    status, me = await b.get("/desk/api/me")
    assert status == 200
    assert me["username"] == username and me["role"] == "senior_agent" and me["name"] == "Anna de Jong"
    assert me["skills"] == ["general", "finance"] and me["languages"] == ["nl", "en"] and me["ui_language"] == "en"
    assert len(me["csrf"]) >= 32 and "password_hash" not in me
    # stored under the token's sha256: the Redis contents are not usable as a cookie
    import hashlib
    import redis.asyncio as aioredis

    r = aioredis.Redis.from_url(os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/13"), decode_responses=True)
    try:
        assert await r.exists(f"{env.prefix}:desk:session:{hashlib.sha256(token.encode()).hexdigest()}")
        assert not await r.exists(f"{env.prefix}:desk:session:{token}")
        ttl = await r.ttl(f"{env.prefix}:desk:session:{hashlib.sha256(token.encode()).hexdigest()}")
        assert 8 * 3600 - 60 < ttl <= 8 * 3600
    finally:
        await r.close()
    async with b.http.get("/desk", allow_redirects=False) as page:
        assert page.status == 200 and "text/html" in page.headers["Content-Type"]
        assert page.headers["X-Frame-Options"] == "DENY"


@pytest.mark.parametrize("case", ["wrong", "unknown", "inactive"])
async def test_login_refused_with_the_same_text(env, case):
    username = await env.agent()
    if case == "inactive":
        await Agents(env.records).set_active(username, False)
    b = env.browser()
    response = await b.login(username if case != "unknown" else "nobody" + secrets.token_hex(3),
                             PASSWORD if case == "inactive" else "wrong password!")
    assert response.status == 401
    text = await response.text()
    assert "Onbekende gebruikersnaam of verkeerd wachtwoord" in text and "Unknown username or wrong password" in text
    assert not any(v.startswith("desk_session=") for v in response.headers.getall("Set-Cookie", []))
    assert (await b.get("/desk/api/me"))[0] == 401


async def test_unknown_user_takes_as_long_as_a_wrong_password(env):
    username = await env.agent()
    b = env.browser()

    async def timed(name: str, password: str) -> float:
        start = time.perf_counter()
        assert (await b.login(name, password)).status == 401
        return time.perf_counter() - start

    await timed("nobody-warmup", "x" * 12)
    wrong = min([await timed(username, "wrong password!") for _ in range(2)])
    unknown = min([await timed("nobody" + secrets.token_hex(3), "wrong password!") for _ in range(2)])
    assert unknown > wrong * 0.5  # a dummy hash is verified: no shortcut for unknown names


async def test_five_failures_then_429_even_with_the_right_password(env):
    username = await env.agent()
    b = env.browser()
    for _ in range(5):
        assert (await b.login(username, "wrong password!")).status == 401
    response = await b.login(username, PASSWORD)
    assert response.status == 429
    assert "Too many failed attempts" in await response.text()
    # another username is not affected
    other = await env.agent()
    assert (await env.browser().login(other, PASSWORD)).status == 303


async def test_success_resets_the_failure_count(env):
    username = await env.agent()
    b = env.browser()
    for _ in range(4):
        assert (await b.login(username, "wrong password!")).status == 401
    assert (await b.login(username, PASSWORD)).status == 303
    for _ in range(4):
        assert (await env.browser().login(username, "wrong password!")).status == 401
    assert (await env.browser().login(username, PASSWORD)).status == 303


async def test_login_form_needs_its_csrf_cookie(env):
    username = await env.agent()
    fresh = env.browser()  # never loaded the form: no csrf cookie
    async with fresh.http.post("/desk/login", data={"username": username, "password": PASSWORD, "csrf": "x" * 43},
                               allow_redirects=False) as r:
        assert r.status == 403
    b = env.browser()
    await b.login_token()
    async with b.http.post("/desk/login", data={"username": username, "password": PASSWORD, "csrf": "wrong"},
                           allow_redirects=False) as r:
        assert r.status == 403
    async with b.http.post("/desk/login", data={"username": username, "password": PASSWORD},
                           allow_redirects=False) as r:
        assert r.status == 403


async def test_login_page_escapes_what_it_shows(env):
    b = env.browser()
    token = await b.login_token()
    async with b.http.post("/desk/login", data={"username": '"><script>alert(1)</script>', "password": "x" * 12,
                                                "csrf": token}, allow_redirects=False) as r:
        text = await r.text()
        assert r.status == 401
        assert "<script>alert(1)" not in text and "&lt;script&gt;" in text
        assert "frame-ancestors 'none'" in r.headers["Content-Security-Policy"]


async def test_without_a_session_api_is_401_and_pages_redirect(env):
    b = env.browser()
    status, body = await b.get("/desk/api/queue")
    assert status == 401 and body["error"] == "not_logged_in" and body["message"]
    assert (await b.post("/desk/api/conversations/cabc/claim", {}))[0] == 401
    async with b.http.get("/desk", allow_redirects=False) as page:
        assert page.status == 303 and page.headers["Location"] == "/desk/login"
    async with b.http.get("/desk/events", allow_redirects=False) as stream:
        assert stream.status == 401
    # a made-up cookie is no session
    b.http.cookie_jar.update_cookies({"desk_session": secrets.token_urlsafe(32)})
    assert (await b.get("/desk/api/me"))[0] == 401


async def test_logout_needs_csrf_and_ends_the_session(env):
    b = await env.logged_in()
    async with b.http.post("/desk/logout", data={"csrf": "wrong"}, allow_redirects=False) as r:
        assert r.status == 403
    assert (await b.get("/desk/api/me"))[0] == 200
    async with b.http.post("/desk/logout", data={"csrf": b.csrf}, allow_redirects=False) as r:
        assert r.status == 303 and r.headers["Location"].startswith("/desk/login")
    assert (await b.get("/desk/api/me"))[0] == 401


async def test_deactivating_or_a_new_password_ends_open_sessions(env):
    one, two = await env.logged_in(), await env.logged_in()
    await Agents(env.records).set_active(one.username, False)
    assert (await one.get("/desk/api/me"))[0] == 401
    await Agents(env.records).set_password(two.username, "another long password")
    assert (await two.get("/desk/api/me"))[0] == 401
    assert (await env.browser().login(two.username, "another long password")).status == 303


# -- CSRF on the API ---------------------------------------------------------------------------

async def test_api_posts_need_the_sessions_csrf_token(env):
    conv = await env.waiting()
    b = await env.logged_in()
    other = await env.logged_in()
    status, body = await b.act(conv, "claim", csrf=None)
    assert status == 403 and body["error"] == "csrf"
    status, body = await b.act(conv, "claim", csrf="x" * 43)
    assert status == 403
    status, body = await b.act(conv, "claim", csrf=other.csrf)  # another agent's token
    assert status == 403
    assert (await env.handoffs.get(conv))["state"] == "waiting"
    assert (await b.act(conv, "claim"))[0] == 200


# -- queue and claiming ------------------------------------------------------------------------

async def test_queue_shows_everything_waiting_with_can_claim(env):
    senior_only = await env.waiting(role="senior_agent")
    plain = await env.waiting(role="agent")
    english = await env.waiting(customer="K10003", language="en", role="agent")
    agent = await env.logged_in("agent", languages=("nl",))
    senior = await env.logged_in("senior_agent")
    status, q = await agent.get("/desk/api/queue")
    assert status == 200
    can = {i["conversation"]: i["can_claim"] for i in q["waiting"]}
    assert can[senior_only] is False and can[plain] is True and can[english] is False
    status, q = await senior.get("/desk/api/queue")
    can = {i["conversation"]: i["can_claim"] for i in q["waiting"]}
    assert can[senior_only] is True and can[english] is True
    assert isinstance(q["online"], int) and q["mine"] == []


async def test_claim_race_exactly_one_wins(env):
    conv = await env.waiting()
    one, two = await env.logged_in(), await env.logged_in()
    results = await asyncio.gather(one.act(conv, "claim"), two.act(conv, "claim"))
    statuses = sorted(status for status, _ in results)
    assert statuses == [200, 409]
    winner = one if results[0][0] == 200 else two
    item = await env.handoffs.get(conv)
    assert item["state"] == "with_agent" and item["claimed_by"] == winner.username
    status, q = await winner.get("/desk/api/queue")
    assert conv in [i["conversation"] for i in q["mine"]]
    assert conv not in [i["conversation"] for i in q["waiting"]]


async def test_agent_below_the_needed_role_cannot_claim(env):
    conv = await env.waiting(role="senior_agent")
    agent = await env.logged_in("agent")
    status, body = await agent.act(conv, "claim")
    assert status in (403, 409) and body["error"] == "not_eligible"
    assert (await env.handoffs.get(conv))["state"] == "waiting"
    senior = await env.logged_in("senior_agent")
    assert (await senior.act(conv, "claim"))[0] == 200


async def test_errors_are_in_the_agents_ui_language(env):
    nl = await env.logged_in(ui="nl")
    en = await env.logged_in(ui="en")
    _, body_nl = await nl.act("cnothere", "claim")
    _, body_en = await en.act("cnothere", "claim")
    assert body_nl["error"] == body_en["error"] == "unknown_conversation"
    assert body_nl["message"] == "Dit gesprek bestaat niet (meer)."
    assert body_en["message"] == "This conversation does not exist (any more)."


# -- the conversation, the customer record -----------------------------------------------------

async def test_conversation_has_transcript_and_customer_record_and_script_stays_data(env):
    conv = await env.waiting(request={"decision": "refund", "amount_cents": 20000, "order_number": "118902"})
    daan = await env.records.by_customer_number("K10002")
    evil = "<script>alert('x')</script> waar blijft mijn geld?"
    await env.records.add_transcript(conv, daan.id, "customer", "webchat", evil)
    b = await env.logged_in()
    async with b.http.get(f"/desk/api/conversations/{conv}") as r:
        assert r.status == 200 and r.headers["Content-Type"].startswith("application/json")
        assert r.headers["X-Content-Type-Options"] == "nosniff"
        data = await r.json()
    assert data["item"]["conversation"] == conv and data["item"]["request"]["amount_cents"] == 20000
    assert data["transcript"][-1]["text"] == evil and data["transcript"][-1]["sender"] == "customer"
    assert set(data["transcript"][-1]) >= {"sender", "channel", "text", "at", "agent"}
    c = data["customer"]
    assert (c["id"], c["number"], c["name"], c["segment"], c["language"]) == (daan.id, "K10002", "Daan Jansen",
                                                                                 "regular", "nl")
    order = next(o for o in c["orders"] if o["number"] == "118902")
    assert order["total_cents"] == 24900 and order["total"] == "€249,00" and order["status"] == "delivered"
    invoice = next(i for i in c["invoices"] if i["number"] == "F2026-00102")
    assert invoice["open_cents"] == 24900 and invoice["status"] == "overdue" and invoice["open"] == "€249,00"
    assert c["loyalty"]["points"] == 320 and c["loyalty"]["tier"] == "silver"
    assert isinstance(c["tickets"], list) and isinstance(c["decisions"], list) and isinstance(c["feedback"], list)
    assert isinstance(c["churn"]["score"], int) and isinstance(c["churn"]["reasons"], list)


async def test_the_agent_sees_how_sure_we_are_who_the_customer_is(env):
    verified = await env.waiting()
    await env.service.store.update(verified, level="verified", verified_by="whatsapp")
    claimed = await env.service.store.key_for("webchat", uuid.uuid4().hex)
    await env.service.store.update(claimed, level="claimed", language="nl", last_channel="webchat")
    await env.handoffs.enqueue(claimed, reason="asked", language="nl", channel="webchat")
    anonymous = await env.service.store.key_for("webchat", uuid.uuid4().hex)
    await env.handoffs.enqueue(anonymous, reason="asked", language="nl", channel="webchat")
    b = await env.logged_in()
    seen = {}
    for name, conv in (("verified", verified), ("claimed", claimed), ("anonymous", anonymous)):
        status, body = await b.get(f"/desk/api/conversations/{conv}")
        assert status == 200
        seen[name] = (body["identity"], body["customer"])
    assert seen["verified"][0] == {"level": "verified", "by": "whatsapp"} and seen["verified"][1]["number"] == "K10002"
    assert seen["claimed"] == ({"level": "claimed", "by": ""}, None)  # no customer record for a mere claim
    assert seen["anonymous"] == ({"level": "anonymous", "by": ""}, None)


async def test_someone_elses_conversation_is_not_shown(env):
    conv = await env.waiting()
    owner, other = await env.logged_in(), await env.logged_in()
    assert (await owner.act(conv, "claim"))[0] == 200
    status, body = await other.get(f"/desk/api/conversations/{conv}")
    assert status == 409 and body["error"] == "not_yours"
    for action, body in (("reply", {"text": "hallo"}), ("close", {}), ("handback", {}), ("transfer", {}),
                         ("decide", {"decision": "refund", "amount": 10, "order_number": "118902"}),
                         ("escalate", {"role": "supervisor", "request": {"decision": "refund"}})):
        status, answer = await other.act(conv, action, body)
        assert (status, answer["error"]) == (409, "not_yours"), action


# -- reply, transfer, hand back, close ---------------------------------------------------------

async def test_reply_transfer_handback_close(env):
    conv = await env.waiting()
    b = await env.logged_in()
    assert (await b.act(conv, "claim"))[0] == 200
    status, body = await b.act(conv, "reply", {"text": "  Hallo Daan, ik kijk even mee.  "})
    assert status == 200 and body["channel"] == "webchat"
    transcript = await env.records.transcript(conv)
    assert any(e["sender"] == "agent" and e["text"] == "Hallo Daan, ik kijk even mee." for e in transcript)

    status, item = await b.act(conv, "transfer", {"role": "senior_agent", "queue": "finance", "note": "bedrag te hoog"})
    assert status == 200 and item["state"] == "waiting" and item["role"] == "senior_agent"
    assert item["queue"] == "finance" and item["note"] == "bedrag te hoog"

    conv2 = await env.waiting()
    assert (await b.act(conv2, "claim"))[0] == 200
    assert (await b.act(conv2, "handback"))[0] == 200
    assert (await env.handoffs.state(conv2)) == "bot"
    conv3 = await env.waiting()
    assert (await b.act(conv3, "claim"))[0] == 200
    assert (await b.act(conv3, "close"))[0] == 200
    assert (await env.handoffs.state(conv3)) == "closed"
    status, body = await b.act(conv3, "reply", {"text": "nog iets"})
    assert status == 409


# -- decisions ---------------------------------------------------------------------------------

async def claimed(env, role: str = "agent", **kw) -> tuple["Browser", str]:
    conv = await env.waiting(**kw)
    b = await env.logged_in(role, name="Anna de Vries")
    status, body = await b.act(conv, "claim")
    assert status == 200, body
    return b, conv


async def test_decide_within_mandate_grants_tells_and_closes_the_request(env):
    b, conv = await claimed(env, ticket=True,
                            request={"decision": "refund", "amount_cents": 10000, "order_number": "118902"})
    daan = await env.records.by_customer_number("K10002")
    item = await env.handoffs.get(conv)
    status, body = await b.act(conv, "decide", {"decision": "refund", "amount": 100, "order_number": "118902",
                                                "note": "robot kapot"})
    assert status == 200, body
    assert body["allowed"] is True and isinstance(body["decision_id"], int) and body["told"]
    decisions = await env.rows(Decision, Decision.actor == b.username)
    assert [(d.kind, d.amount_cents, d.role, d.customer_id, d.reason) for d in decisions] == [
        ("refund", 10000, "agent", daan.id, "robot kapot")]
    assert decisions[0].order_id is not None and decisions[0].id == body["decision_id"]
    audit = await env.rows(AuditEntry, AuditEntry.actor == b.username)
    assert [(a.decision, a.allowed, a.actor_role, a.escalate_to) for a in audit] == [("refund", True, "agent", None)]
    assert audit[0].request["amount"] == "100" and audit[0].request["order_age_days"] is not None
    transcript = await env.records.transcript(conv)
    told = [e for e in transcript if e["sender"] == "agent"]
    assert told and "€100,00" in told[-1]["text"] and "118902" in told[-1]["text"] and "Anna" in told[-1]["text"]
    ticket = (await env.rows(Ticket, Ticket.id == item["ticket_id"]))[0]
    assert ticket.status in ("answered", "closed")


async def test_a_refund_beyond_what_is_left_on_the_order_is_refused(env):
    b, conv = await claimed(env, customer="K10004")  # Pieter: order 132712, €349.75
    assert (await b.act(conv, "decide", {"decision": "refund", "amount": "100", "order_number": "132712"}))[0] == 200
    status, body = await b.act(conv, "decide", {"decision": "refund", "amount": "250", "order_number": "132712"})
    assert (status, body["error"]) == (400, "over_order_total")
    assert "€249,75" in body["message"]  # what is left to refund
    refunds = await env.rows(Decision, Decision.actor == b.username)
    assert [d.amount_cents for d in refunds] == [10000]


async def test_decide_beyond_mandate_is_refused_with_whom_to_ask(env):
    # Café De Zwaan, order 163455 (€556.40): nothing refunded by other tests
    b, conv = await claimed(env, customer="K10034")
    said = len(await env.records.transcript(conv))  # "Anna joined" and so on
    status, body = await b.act(conv, "decide", {"decision": "refund", "amount": "200.00", "order_number": "163455"})
    assert status == 403
    assert body["allowed"] is False and body["error"] == "beyond_mandate" and body["escalate_to"] == "senior_agent"
    assert "€150,00" in body["explanation"]  # the agent's limit, in the agent's language
    assert body["request"] == {"decision": "refund", "amount_cents": 20000, "order_number": "163455"}
    assert await env.rows(Decision, Decision.actor == b.username) == []
    audit = await env.rows(AuditEntry, AuditEntry.actor == b.username)
    assert [(a.allowed, a.escalate_to) for a in audit] == [(False, "senior_agent")]
    assert len(await env.records.transcript(conv)) == said  # the customer is told nothing

    # the prefilled request goes straight to the role that may grant it
    status, item = await b.act(conv, "escalate", {"role": body["escalate_to"], "request": body["request"],
                                                  "note": "graag even kijken"})
    assert status == 200 and item["state"] == "waiting" and item["role"] == "senior_agent"
    assert item["request"]["amount_cents"] == 20000 and item["note"] == "graag even kijken"
    senior = await env.logged_in("senior_agent")
    assert (await senior.act(conv, "claim"))[0] == 200
    status, body = await senior.act(conv, "decide", {"decision": "refund", "amount_cents": 20000,
                                                     "order_number": "163455"})
    assert status == 200 and body["allowed"] is True
    told = [e for e in await env.records.transcript(conv) if e["sender"] == "agent"]
    assert "€200,00" in told[-1]["text"] and "senior medewerker" in told[-1]["text"]


@pytest.mark.parametrize("body,escalate_to", [
    ({"decision": "goodwill_voucher", "amount": 500}, "supervisor"),
    ({"decision": "retention_discount", "percent": 20}, "senior_agent"),
    ({"decision": "payment_arrangement", "instalments": 12}, "senior_agent"),
])
async def test_direct_api_calls_beyond_mandate_are_refused(env, body, escalate_to):
    b, conv = await claimed(env)
    status, answer = await b.act(conv, "decide", body)
    assert status == 403 and answer["escalate_to"] == escalate_to
    assert await env.rows(Decision, Decision.actor == b.username) == []
    assert [a.allowed for a in await env.rows(AuditEntry, AuditEntry.actor == b.username)] == [False]


@pytest.mark.parametrize("customer,role,body,kind,told", [
    ("K10002", "agent", {"decision": "goodwill_voucher", "amount": 25}, ("goodwill_voucher", 2500, None),
     "tegoedbon van €25,00"),
    ("K10002", "agent", {"decision": "retention_discount", "percent": 10}, ("retention_discount", None, 10),
     "10% korting"),
    ("K10003", "senior_agent", {"decision": "refund", "order_number": "121212"}, ("refund", 5900, None),
     "Good news: your refund of €59.00 for order 121212 has been approved by Anna (senior colleague)."),
])
async def test_decisions_within_mandate_in_the_customers_language(env, customer, role, body, kind, told):
    language = "en" if customer == "K10003" else "nl"
    b, conv = await claimed(env, role, customer=customer, language=language)
    status, answer = await b.act(conv, "decide", body)
    assert status == 200, answer
    d = (await env.rows(Decision, Decision.actor == b.username))[0]
    assert (d.kind, d.amount_cents, d.percent) == kind and d.role == role
    said = [e for e in await env.records.transcript(conv) if e["sender"] == "agent"]
    assert told in said[-1]["text"] and said[-1]["agent"] == b.username


async def test_payment_arrangement_within_mandate_defaults_to_the_open_amount(env):
    b, conv = await claimed(env)
    status, body = await b.act(conv, "decide", {"decision": "payment_arrangement", "instalments": 3})
    assert status == 200, body
    decision = (await env.rows(Decision, Decision.actor == b.username))[0]
    assert (decision.kind, decision.amount_cents, decision.instalments) == ("payment_arrangement", 24900, 3)
    told = [e for e in await env.records.transcript(conv) if e["sender"] == "agent"]
    assert "3 termijnen van €83,00" in told[-1]["text"]


# -- bad input to every endpoint ----------------------------------------------------------------

@pytest.mark.parametrize("action", ["claim", "reply", "transfer", "handback", "close", "decide", "escalate"])
async def test_bad_bodies_are_400_or_413(env, action):
    b, conv = await claimed(env)
    for raw, status, code in ((b"{not json", 400, "bad_json"), (b"[1, 2]", 400, "not_object"),
                              (b'"text"', 400, "not_object"), (b"\xff\xfe", 400, "bad_json"),
                              (b'{"amount": NaN}', 400, "bad_json"),
                              (b'{"x": "' + b"a" * 70_000 + b'"}', 413, "too_large")):
        got, body = await b.post(f"/desk/api/conversations/{conv}/{action}", raw=raw)
        assert (got, body["error"]) == (status, code), (action, raw[:20])
        assert body["message"]
    got, body = await b.act(conv, action, {"surprise": 1})
    assert (got, body["error"]) == (400, "unknown_field")
    got, body = await b.act("c" + uuid.uuid4().hex, action, {})
    assert got in (400, 404)  # 404 unknown conversation (400 when the body itself is wrong first)
    for bad in ("bad.conv", "x" * 41, "c%3Cscript%3E"):
        got, body = await b.act(bad, action, {})
        assert (got, body["error"]) == (404, "unknown_conversation")
    assert (await env.handoffs.get(conv))["state"] == "with_agent"


async def test_unknown_conversation_is_404(env):
    b = await env.logged_in()
    status, body = await b.get(f"/desk/api/conversations/c{uuid.uuid4().hex}")
    assert status == 404 and body["error"] == "unknown_conversation"
    for action, body in (("claim", {}), ("reply", {"text": "hoi"}), ("close", {}), ("handback", {}),
                         ("transfer", {"role": "agent"}), ("decide", {"decision": "refund", "amount": 5}),
                         ("escalate", {"role": "agent", "request": {"decision": "refund"}})):
        status, answer = await b.act(f"c{uuid.uuid4().hex}", action, body)
        assert (status, answer["error"]) == (404, "unknown_conversation"), action


async def test_reply_text_checks(env):
    b, conv = await claimed(env)
    for body, status, code in (({}, 400, "bad_field"), ({"text": ""}, 400, "empty_text"),
                               ({"text": "   \n "}, 400, "empty_text"), ({"text": 42}, 400, "bad_field"),
                               ({"text": ["a"]}, 400, "bad_field"), ({"text": None}, 400, "bad_field"),
                               ({"text": "é" * 2049}, 413, "text_too_long")):
        got, answer = await b.act(conv, "reply", body)
        assert (got, answer["error"]) == (status, code), body
    assert (await b.act(conv, "reply", {"text": "é" * 2048}))[0] == 200  # exactly 4096 bytes


async def test_decide_and_escalate_input_checks(env):
    b, conv = await claimed(env)
    cases = [
        ({"decision": "free_money", "amount": 5}, "unknown_decision"),
        ({"decision": 7}, "unknown_decision"),
        ({}, "unknown_decision"),
        ({"decision": "refund", "amount": -5, "order_number": "118902"}, "bad_field"),
        ({"decision": "refund", "amount": 0, "order_number": "118902"}, "bad_field"),
        ({"decision": "refund", "amount": "tien", "order_number": "118902"}, "bad_field"),
        ({"decision": "refund", "amount": True, "order_number": "118902"}, "bad_field"),
        ({"decision": "refund", "amount": [5], "order_number": "118902"}, "bad_field"),
        ({"decision": "refund", "amount": 1.234, "order_number": "118902"}, "bad_field"),
        ({"decision": "refund", "amount": 10}, "bad_field"),                      # which order?
        ({"decision": "refund", "amount": 10, "order_number": "104233"}, "unknown_order"),  # Sanne's order
        ({"decision": "refund", "amount": 10, "order_number": "<b>"}, "bad_field"),
        ({"decision": "refund", "amount": 300, "order_number": "118902"}, "over_order_total"),
        ({"decision": "goodwill_voucher"}, "bad_field"),
        ({"decision": "payment_arrangement"}, "bad_field"),
        ({"decision": "payment_arrangement", "instalments": 2.5}, "bad_field"),
        ({"decision": "payment_arrangement", "instalments": "3"}, "bad_field"),
        ({"decision": "retention_discount"}, "bad_field"),
        ({"decision": "retention_discount", "percent": 150}, "bad_field"),
        ({"decision": "refund", "amount": 5, "order_number": "118902", "note": 5}, "bad_field"),
        ({"decision": "refund", "amount": 5, "order_number": "118902", "note": "x" * 1001}, "bad_field"),
    ]
    for body, code in cases:
        status, answer = await b.act(conv, "decide", body)
        assert (status, answer["error"]) == (400, code), body
    assert await env.rows(Decision, Decision.actor == b.username) == []
    assert await env.rows(AuditEntry, AuditEntry.actor == b.username) == []

    good = {"decision": "refund", "amount_cents": 20000, "order_number": "118902"}
    for body, code in (({"role": "bot", "request": good}, "unknown_role"),
                       ({"role": "ceo", "request": good}, "unknown_role"),
                       ({"role": 3, "request": good}, "unknown_role"),
                       ({"request": good}, "bad_field"),
                       ({"role": "senior_agent"}, "bad_field"),
                       ({"role": "senior_agent", "request": "refund"}, "bad_field"),
                       ({"role": "senior_agent", "request": {"decision": "nope"}}, "unknown_decision"),
                       ({"role": "senior_agent", "request": {**good, "amount_cents": -1}}, "bad_field"),
                       ({"role": "senior_agent", "request": {**good, "hack": 1}}, "unknown_field")):
        status, answer = await b.act(conv, "escalate", body)
        assert (status, answer["error"]) == (400, code), body
    for body, code in (({"role": "bot"}, "unknown_role"), ({"queue": "nowhere"}, "bad_target"),
                       ({"queue": 5}, "bad_target"), ({"note": {"a": 1}}, "bad_field")):
        status, answer = await b.act(conv, "transfer", body)
        assert (status, answer["error"]) == (400, code), body
    assert (await env.handoffs.get(conv))["state"] == "with_agent"


# -- events -------------------------------------------------------------------------------------

async def read_until(stream: aiohttp.StreamReader, marker: bytes, timeout: float = 5) -> bytes:
    seen = b""
    deadline = asyncio.get_running_loop().time() + timeout
    while marker not in seen:
        left = deadline - asyncio.get_running_loop().time()
        assert left > 0, f"no {marker!r} in {seen!r}"
        seen += await asyncio.wait_for(stream.readany(), left)
    return seen


async def subscribers(env) -> int:
    import redis.asyncio as aioredis

    r = aioredis.Redis.from_url(os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/13"))
    try:
        return dict(await r.pubsub_numsub(f"{env.prefix}:desk:events")).get(f"{env.prefix}:desk:events".encode(), 0)
    finally:
        await r.close()


async def test_events_relay_queue_changes_ping_and_heartbeat(env):
    b = await env.logged_in()
    before = await subscribers(env)
    async with b.http.get("/desk/events") as r:
        assert r.status == 200 and r.headers["Content-Type"].startswith("text/event-stream")
        await read_until(r.content, b": connected")
        for _ in range(50):  # the subscription starts with the first read of the stream
            if await subscribers(env) > before:
                break
            await asyncio.sleep(0.05)
        conv = await env.waiting()
        seen = await read_until(r.content, f'"conversation": "{conv}"'.encode())
        assert b"event: queue\ndata: {\"type\": \"queue\"}" in seen or b"event: queue" in seen
        assert b"event: state" in seen
        await read_until(r.content, b": ping")  # every HEARTBEAT seconds (0.3 in these tests)
        assert b.username in [a.username for a in await env.handoffs.online()]
    for _ in range(60):  # the stream ends and unsubscribes when the browser goes away
        if await subscribers(env) <= before:
            break
        await asyncio.sleep(0.1)
    assert await subscribers(env) <= before


async def test_events_end_when_the_session_ends(env):
    b = await env.logged_in()
    async with b.http.get("/desk/events") as r:
        await read_until(r.content, b": connected")
        await Agents(env.records).set_active(b.username, False)
        await asyncio.wait_for(r.content.read(), 5)  # the server ends the stream at the next heartbeat


async def test_shutdown_is_not_blocked_by_open_event_streams(desk_db, redis_url):
    prefix = "dk" + secrets.token_hex(4)
    before = os.environ.get("DATABASE_URL")
    server = await start(desk_db, redis_url, prefix, heartbeat=15)
    http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
    try:
        username = f"shut{secrets.token_hex(3)}"
        await Agents(server.app[RECORDS]).create(username=username, name="Shut Down", role="agent",
                                                 skills=["general"], languages=["nl"], password=PASSWORD)
        b = Browser(str(server.make_url("")).rstrip("/"))
        assert (await b.login(username, PASSWORD)).status == 303
        r = await b.http.get("/desk/events")
        await read_until(r.content, b": connected")
        start_time = time.monotonic()
        await asyncio.wait_for(server.close(), 20)
        assert time.monotonic() - start_time < 8
        r.close()
        await b.close()
    finally:
        await http.close()
        if before is not None:
            os.environ["DATABASE_URL"] = before
        delete_prefix(redis_url, prefix)


# -- promises ------------------------------------------------------------------------------------

async def test_an_agent_promises_a_time_and_supervisors_see_the_figures(env):
    from datetime import datetime, timedelta, timezone

    from bot.records.models import Promise

    conv = await env.waiting(customer="K10002", topic="order_status", role="agent")
    b = await env.logged_in("agent")
    assert (await b.act(conv, "claim"))[0] == 200
    deadline = (datetime.now(timezone.utc) + timedelta(days=1)).replace(microsecond=0)
    assert await b.act(conv, "promise", {"preset": "next week"}) == (
        400, {"error": "bad_field", "message": "Veld 'preset' is ongeldig: kies 1h, today of tomorrow."})
    assert (await b.act(conv, "promise", {"deadline": "2020-01-01T10:00:00+01:00"}))[0] == 400
    assert (await b.act(conv, "promise", {"deadline": "tomorrow at ten"}))[0] == 400
    status, made = await b.act(conv, "promise", {"deadline": deadline.isoformat(), "note": "Ik vraag het magazijn."})
    assert status == 201, made
    assert made["text"].endswith("bij je terug, via de chat op de website. Ik vraag het magazijn.") and made["text"].startswith("Anna ")
    [row] = await env.rows(Promise, Promise.id == made["promise"])
    assert (row.kind, row.owed_by, row.status, row.conversation) == ("agent", f"agent:{b.username}", "open", conv)
    # someone else's conversation: not theirs to promise for
    other = await env.logged_in("agent")
    assert (await other.act(conv, "promise", {"preset": "1h"}))[0] == 409

    # the figures are the supervisors'
    assert (await b.get("/desk/api/reports/promises"))[0] == 403
    boss = await env.logged_in("supervisor")
    day = deadline.astimezone().date().isoformat()
    status, report = await boss.get(f"/desk/api/reports/promises?from={day}&to={day}")
    assert status == 200 and report["by_kind"]["agent"]["open"] >= 1
    assert (await boss.get("/desk/api/reports/promises?from=yesterday"))[0] == 400
    async with boss.http.get(f"/desk/api/reports/promises?from={day}&to={day}&format=csv") as r:
        assert r.status == 200 and r.headers["Content-Type"].startswith("text/csv")
        assert (await r.text()).startswith("kind,queue,week,open,kept,renewed,broken,total")


async def test_customers_to_reach_out_to_are_listed_with_their_reasons_and_closed_with_what_was_done(env):
    c = await env.records.by_customer_number("K10004")
    task = await env.records.create_ticket(c.id, "reach_out", details="churn score 72: late delivery",
                                           data={"reasons": ["churn score 72: late delivery, open complaint"]})
    b = await env.logged_in("agent")
    status, body = await b.get("/desk/api/reach-out")
    [row] = [r for r in body["reach_out"] if r["ticket"] == task.id]
    assert status == 200 and (row["customer_number"], row["reasons"]) == (
        "K10004", ["churn score 72: late delivery, open complaint"])
    assert (await b.post(f"/desk/api/reach-out/{task.id}/done", {"note": "Gebeld, bon van €10 aangeboden"}))[0] == 200
    assert (await b.post(f"/desk/api/reach-out/{task.id}/done", {"note": "nog eens"}))[0] == 409
    assert (await b.post("/desk/api/reach-out/abc/done", {}))[0] == 404
    [closed] = await env.rows(Ticket, Ticket.id == task.id)
    assert (closed.status, closed.data["note"], closed.data["done_by"]) == ("closed", "Gebeld, bon van €10 aangeboden",
                                                                            b.username)
    assert all(r["ticket"] != task.id for r in (await b.get("/desk/api/reach-out"))[1]["reach_out"])


async def test_a_detractors_answer_is_a_follow_up_for_the_right_people_and_the_customer_hears_what_was_done(env):
    from bot.desk.record import customer_record
    from bot.records.models import Promise
    from bot.records.repository import aware

    sanne = await env.records.by_customer_number("K10001")
    store, surveys = env.service.store, env.service.surveys
    conv = "c" + secrets.token_hex(8)
    await store.update(conv, last_channel="webchat", last_address=conv, language="nl", customer_id=str(sanne.id))
    started = await surveys.offer(conv, "close", served_by="agent", agent="anna", queue="general",
                                  topic="order_status", send=False)
    assert started is not None
    for answer in ("2", "overslaan", "Niemand belde terug", "koppelen mag"):
        replies = await surveys.answer(conv, "webchat", answer)
    assert replies[0].text.startswith("Bedankt voor je eerlijke antwoord.")
    [ticket] = await env.rows(Ticket, Ticket.customer_id == sanne.id, Ticket.kind == "feedback_followup")

    # an agent of the queue who speaks Dutch sees it, with the scores, the comment and the conversation
    b = await env.logged_in("agent")
    status, body = await b.get("/desk/api/feedback-followups")
    [row] = [r for r in body["follow_ups"] if r["ticket"] == ticket.id]
    assert status == 200 and (row["customer_number"], row["scores"], row["comment"], row["queue"], row["language"],
                              row["served_by"], row["topic"]) == (
        "K10001", {"ces": 2}, "Niemand belde terug", "general", "nl", "anna", "order_status")
    assert [m["text"] for m in row["transcript"] if m["sender"] == "customer"] == [
        "2", "overslaan", "Niemand belde terug", "koppelen mag"]
    assert row["promised_by"] == aware(ticket.promised_by).isoformat()
    # someone who speaks only English does not
    english = await env.logged_in("agent", languages=("en",))
    assert all(r["ticket"] != ticket.id for r in (await english.get("/desk/api/feedback-followups"))[1]["follow_ups"])
    assert (await english.post(f"/desk/api/feedback-followups/{ticket.id}/done",
                               {"note": "x", "message": "y"}))[0] == 404

    # done: both fields are needed; the customer is told in the conversation; the promise is kept
    assert (await b.post(f"/desk/api/feedback-followups/{ticket.id}/done", {"note": "Gebeld"}))[0] == 400
    status, done = await b.post(f"/desk/api/feedback-followups/{ticket.id}/done",
                                {"note": "Excuses gemaakt, bon van €10", "message": "Sorry! Je krijgt een bon van €10."})
    assert (status, done["status"], done["channel"]) == (200, "closed", "webchat")
    history = await env.records.transcript(conv, 5)
    assert history[-1]["sender"] == "agent" and history[-1]["text"].startswith("Over je feedback van ")
    assert history[-1]["text"].endswith(": Sorry! Je krijgt een bon van €10.")
    [closed] = await env.rows(Ticket, Ticket.id == ticket.id)
    assert (closed.status, closed.data["note"], closed.data["done_by"]) == ("closed", "Excuses gemaakt, bon van €10",
                                                                            b.username)
    [promise] = await env.rows(Promise, Promise.ticket_id == ticket.id)
    assert promise.status == "kept"
    assert (await b.post(f"/desk/api/feedback-followups/{ticket.id}/done", {"note": "a", "message": "b"}))[0] == 409
    # the record shows the answer (not anonymous), with its scores
    record = await customer_record(env.records, sanne.id, "nl")
    assert {"ces": 2, "nps": None, "csat": None, "comment": "Niemand belde terug"}.items() <= record["feedback"][0].items()


async def test_handing_back_as_resolved_sends_the_survey_a_plain_hand_back_does_not(env):
    from sqlalchemy import delete

    from bot.records.models import Feedback, Survey

    anouk = await env.records.by_customer_number("K10009")
    async with env.records.session() as s, s.begin():  # her demo surveys would hold this one off (fatigue)
        await s.execute(delete(Feedback).where(Feedback.customer_id == anouk.id))
        await s.execute(delete(Survey).where(Survey.customer_id == anouk.id))
    b = await env.logged_in()
    plain = await env.waiting(customer="K10009")
    assert (await b.act(plain, "claim"))[0] == 200
    assert (await b.act(plain, "handback", {"resolved": "yes"}))[0] == 400  # true or false
    assert (await b.act(plain, "handback"))[0] == 200
    assert await env.rows(Survey, Survey.conversation == plain) == []
    resolved = await env.waiting(customer="K10009")
    assert (await b.act(resolved, "claim"))[0] == 200
    assert (await b.act(resolved, "handback", {"resolved": True}))[0] == 200
    [survey] = await env.rows(Survey, Survey.conversation == resolved)
    assert (survey.trigger, survey.served_by, survey.agent, survey.channel, survey.queue) == (
        "handback", "agent", b.username, "webchat", "finance")  # a refund: the finance queue
    question = (await env.records.transcript(resolved, 1))[-1]
    assert question["sender"] == "bot" and question["text"].startswith("Mogen we je iets vragen over dit gesprek?")
