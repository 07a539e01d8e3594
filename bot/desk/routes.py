"""The agent desk's HTTP side: login pages, the JSON API and the event stream.

`setup(app)` adds the routes to the gateway; the shared objects (Redis, the conversation
service, the records, the handoff queue, the settings) are read from the gateway's app keys at
request time. The contract with the rest of the system is docs/handoff-contract.md.

Security, in short: a session is a random token in an HttpOnly, SameSite=Strict cookie (Path
/desk), stored in Redis as its sha256; every POST needs the session's CSRF token (header
X-CSRF-Token, or form field `csrf` for logout); the login form has its own double-submit CSRF
cookie; login attempts are throttled per username and client (bot/desk/auth.py: LoginThrottle;
the client address and https come from bot.shared.forwarded, which believes X-Forwarded-For/-Proto only
from TRUSTED_PROXIES); cookies are Secure when the request came over https. Every decision is checked against the mandate
table with the agent's own role, on the server. Customer text is only ever returned as JSON data
(the frontend escapes it); the login page escapes everything it shows. Logs carry ids only.
"""

from __future__ import annotations

import asyncio
import html
import json
import logging
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from string import Template
from typing import Any, Awaitable, Callable

from aiohttp import web

from bot.desk import texts
from bot.desk.auth import (
    MAX_PASSWORD, SESSION_TTL, Agents, LoginThrottle, Session, Sessions, agent_info, password_stamp,
    person_roles, public, verify_password,
)
from bot.desk.record import customer_record, open_ticket
from bot.shared.forwarded import client_address, client_key, is_https
from bot.gateway.keys import (
    CLOCK, DESK_HEARTBEAT, DESK_MANDATES, DESK_STOP, HANDOFFS, RECORDS, REDIS, SERVICE, SETTINGS, WEB_CHAT,
)
from bot.people import AgentInfo, HandoffError, Handoffs
from bot.policy import clock as clocks
from bot.policy.decisions import KINDS as DECISIONS, Decisions
from bot.policy.mandate import MandateError, MandateTable
from bot.policy.rules import policy
from bot.promises import state
from bot.records.models import Agent
from bot.records.personal import TOMBSTONE_PREFIX, NoSuchCustomer, erase_customer
from bot.shared.safe_input import encodable
from bot.records.repository import aware
from bot.texts import fmt, messages
from bot.texts.fmt import money

log = logging.getLogger(__name__)

DESK_DIR = Path(__file__).resolve().parent
STATIC_DIR = DESK_DIR / "static"
LOGIN_TEMPLATE = DESK_DIR / "templates" / "login.html"

COOKIE = "desk_session"
LOGIN_COOKIE = "desk_login_csrf"
CSRF_HEADER = "X-CSRF-Token"
MAX_BODY = 64 * 1024          # API request bodies (a 4096-byte reply, JSON-escaped, fits easily)
MAX_NOTE = 1000               # characters
MAX_AMOUNT_CENTS = 100_000_000  # €1,000,000: anything above is a typo
CONVERSATION = re.compile(r"^[A-Za-z0-9_-]{1,40}\Z")
ORDER_NUMBER = re.compile(r"^[A-Za-z0-9-]{1,12}$")
QUEUE_NAME = re.compile(r"^[a-z0-9_]{1,32}$")
EVENT_NAME = re.compile(r"^[a-z_]{1,32}$")


SECURITY_HEADERS = {
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
PAGE_CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
            "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
LOGIN_CSP = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"


def _shared(app: web.Application):
    return app[REDIS], app[SERVICE], app[SETTINGS]


# ----------------------------------------------------------------------------- errors and JSON

class DeskError(Exception):
    def __init__(self, status: int, code: str, extra: dict | None = None, **values: Any) -> None:
        super().__init__(code)
        self.status, self.code, self.extra, self.values = status, code, extra or {}, values


HANDOFF_STATUS = {"unknown_conversation": 404, "not_waiting": 409, "not_yours": 409, "not_eligible": 403,
                  "bad_target": 400, "unreachable": 409, "delivery_failed": 502, "unavailable": 503}


def _json(data: Any, status: int = 200) -> web.Response:
    response = web.json_response(data, status=status, dumps=lambda d: json.dumps(d, ensure_ascii=False))
    response.headers.update(SECURITY_HEADERS)
    return response


def _error(status: int, code: str, lang: str, extra: dict | None = None, **values: Any) -> web.Response:
    return _json({"error": code, "message": texts.error_text(code, lang, **values), **(extra or {})}, status)


def _guess_language(request: web.Request) -> str:
    accept = request.headers.get("Accept-Language", "").lower()
    return "en" if accept.startswith("en") else "nl"


# ----------------------------------------------------------------------------- who is asking

@dataclass
class Desk:
    """One authenticated request: the agent, their session and the shared objects."""

    request: web.Request
    agent: Agent
    session: Session

    @property
    def app(self) -> web.Application:
        return self.request.app

    @property
    def info(self) -> AgentInfo:
        return agent_info(self.agent)

    @property
    def lang(self) -> str:
        return texts.lang_of(self.agent.ui_language)

    @property
    def handoffs(self) -> Handoffs:
        return self.app[HANDOFFS]

    @property
    def service(self):
        return _shared(self.app)[1]

    @property
    def records(self):
        return self.app[RECORDS]

    @property
    def settings(self):
        return _shared(self.app)[2]

    @property
    def mandates(self) -> MandateTable:
        return self.app[DESK_MANDATES]

    @property
    def clock(self) -> clocks.Clock:
        return self.app[CLOCK]

    @property
    def decisions(self) -> Decisions:
        return Decisions(self.records, self.mandates, self.clock)


def _sessions(app: web.Application) -> Sessions:
    redis, _, settings = _shared(app)
    return Sessions(redis, settings.key_prefix)


async def _current(request: web.Request) -> Desk | None:
    """The logged-in agent, or None (no/expired session, inactive agent, password changed)."""
    sessions = _sessions(request.app)
    session = await sessions.get(request.cookies.get(COOKIE))
    if session is None:
        return None
    agent = await Agents(request.app[RECORDS]).by_id(session.agent_id)
    if agent is None or not agent.active or password_stamp(agent.password_hash) != session.stamp:
        await sessions.delete(session)
        return None
    return Desk(request, agent, session)


Handler = Callable[[web.Request, Desk], Awaitable[web.StreamResponse]]


def api(handler: Handler) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """Authenticate (401), check CSRF on POST (403), and turn errors into JSON in the agent's language."""

    async def wrapper(request: web.Request) -> web.StreamResponse:
        lang = _guess_language(request)
        try:
            desk = await _current(request)
            if desk is None:
                raise DeskError(401, "not_logged_in")
            lang = desk.lang
            if request.method != "GET" and not desk.session.csrf_ok(request.headers.get(CSRF_HEADER)):
                log.info("desk: CSRF check failed for %s on %s", desk.agent.username, request.path)
                raise DeskError(403, "csrf")
            return await handler(request, desk)
        except DeskError as exc:
            return _error(exc.status, exc.code, lang, exc.extra, **exc.values)
        except HandoffError as exc:
            log.info("desk: %s refused for %s: %s", request.path, request.match_info.get("conv", "-"), exc.code)
            return _error(HANDOFF_STATUS.get(exc.code, 409), exc.code, lang)
        except (web.HTTPException, asyncio.CancelledError):
            raise
        except Exception:  # noqa: BLE001 - a bug: JSON for the desk, the traceback in the log
            log.exception("desk: %s failed", request.path)
            return _error(500, "internal", lang)

    return wrapper


# ----------------------------------------------------------------------------- input

async def _body(request: web.Request, allowed: tuple[str, ...]) -> dict[str, Any]:
    """The JSON object of the request (an empty body is {}); 400/413 otherwise."""
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise DeskError(413, "too_large", limit=MAX_BODY)
    chunks, size = [], 0
    while True:
        chunk = await request.content.read(16 * 1024)
        if not chunk:
            break
        size += len(chunk)
        if size > MAX_BODY:
            raise DeskError(413, "too_large", limit=MAX_BODY)
        chunks.append(chunk)
    raw = b"".join(chunks)
    if not raw.strip():
        return {}

    def no_constants(name: str) -> Any:
        raise ValueError(name)

    try:
        data = json.loads(raw.decode("utf-8"), parse_constant=no_constants)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise DeskError(400, "bad_json") from None
    if not isinstance(data, dict):
        raise DeskError(400, "not_object")
    for key in data:
        if key not in allowed:
            raise DeskError(400, "unknown_field", field=str(key)[:40])
    return data


def _bad(field: str, why: str) -> DeskError:
    return DeskError(400, "bad_field", field=field, why=why)


def _text(data: dict, field: str, max_chars: int = MAX_NOTE, required: bool = False) -> str | None:
    value = data.get(field)
    if value is None:
        if required:
            raise _bad(field, "required")
        return None
    if not isinstance(value, str):
        raise _bad(field, "text")
    value = value.replace("\x00", "").strip()
    if not encodable(value):
        raise _bad(field, "unreadable")
    if len(value) > max_chars:
        raise _bad(field, "too_long")
    return value


def _cents(value: Any, field: str) -> int | None:
    """Euros (a JSON number or a string like "200", "200.50", "200,50") as positive cents."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise _bad(field, "positive_number")
    text = value.strip().replace(",", ".") if isinstance(value, str) else repr(value)
    if isinstance(value, str) and not re.fullmatch(r"\d{1,9}(\.\d{1,9})?", text):
        raise _bad(field, "positive_number")
    try:
        amount = Decimal(text)
    except InvalidOperation:
        raise _bad(field, "positive_number") from None
    if not amount.is_finite() or amount <= 0:
        raise _bad(field, "positive_number")
    if amount * 100 > MAX_AMOUNT_CENTS:  # before quantize: 1e30 has more digits than it can keep
        raise _bad(field, "too_large")
    if amount != amount.quantize(Decimal("0.01")):
        raise _bad(field, "cents")
    cents = int(amount * 100)
    if cents > MAX_AMOUNT_CENTS:
        raise _bad(field, "too_large")
    return cents


def _whole(value: Any, field: str, low: int, high: int, why: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise _bad(field, why)
    return value


REQUEST_FIELDS = ("decision", "amount", "amount_cents", "instalments", "percent", "order_number", "note")


def _decision_request(data: Any, field_prefix: str = "") -> dict[str, Any]:
    """A decision request from the desk (decide, or escalate's `request`), normalised to the shape
    of a handoff item's `request`: {decision, amount_cents?, instalments?, percent?, order_number?, note?}."""
    if not isinstance(data, dict):
        raise _bad(field_prefix.rstrip(".") or "request", "object")
    for key in data:
        if key not in REQUEST_FIELDS:
            raise DeskError(400, "unknown_field", field=f"{field_prefix}{str(key)[:40]}")
    decision = data.get("decision")
    if not isinstance(decision, str) or decision not in DECISIONS:
        raise DeskError(400, "unknown_decision", decision=str(decision)[:40], known=", ".join(DECISIONS))
    cents = _cents(data.get("amount"), f"{field_prefix}amount")
    if cents is None and data.get("amount_cents") is not None:
        raw = data["amount_cents"]
        cents = _whole(raw, f"{field_prefix}amount_cents", 1, MAX_AMOUNT_CENTS, "whole_number")
    order_number = data.get("order_number")
    if order_number is not None:
        if isinstance(order_number, int) and not isinstance(order_number, bool):
            order_number = str(order_number)
        if not isinstance(order_number, str) or not ORDER_NUMBER.match(order_number.strip()):
            raise _bad(f"{field_prefix}order_number", "name")
        order_number = order_number.strip()
    out = {
        "decision": decision,
        "amount_cents": cents,
        "instalments": _whole(data.get("instalments"), f"{field_prefix}instalments", policy().instalments.min,
                              policy().instalments.max, "instalments"),
        "percent": _whole(data.get("percent"), f"{field_prefix}percent", 1, 100, "percent"),
        "order_number": order_number,
        "note": _text(data, "note") or None,
    }
    return {k: v for k, v in out.items() if v is not None}


def _conversation(request: web.Request) -> str:
    conv = request.match_info.get("conv", "")
    if not CONVERSATION.match(conv):
        raise DeskError(404, "unknown_conversation")
    return conv


async def _item(desk: Desk, conv: str) -> dict[str, Any]:
    item = await desk.handoffs.get(conv)
    if item is None:
        raise DeskError(404, "unknown_conversation")
    return item


def _own(desk: Desk, item: dict[str, Any]) -> None:
    if item.get("state") != "with_agent" or item.get("claimed_by") != desk.agent.username:
        raise DeskError(409, "not_yours")


def _role(desk: Desk, value: Any, field: str = "role") -> str | None:
    if value is None:
        return None
    roles = person_roles(desk.mandates)
    if not isinstance(value, str) or value not in roles:
        raise DeskError(400, "unknown_role", role=str(value)[:40], known=", ".join(roles))
    return value


# ----------------------------------------------------------------------------- API

@api
async def me(request: web.Request, desk: Desk) -> web.Response:
    data = public(desk.agent)
    data.pop("active", None)
    data["csrf"] = desk.session.csrf
    data["roles"] = list(person_roles(desk.mandates))
    data["queues"] = {name: q.titles for name, q in desk.handoffs.config.queues.items()}
    return _json(data)


@api
async def labels(request: web.Request, desk: Desk) -> web.Response:
    """What the desk shows for codes (roles, order and invoice statuses ...), in both languages:
    {"nl": {"role": {"agent": "medewerker", ...}, "i": {...}, ...}, "en": {...}} (bot/desk/texts.py LABELS)."""
    return _json(texts.labels())


@api
async def queue(request: web.Request, desk: Desk) -> web.Response:
    info = desk.info
    waiting = [{**item, "can_claim": desk.handoffs.eligible(item, info)} for item in await desk.handoffs.waiting()]
    mine = await desk.handoffs.assigned(desk.agent.username)
    online = await desk.handoffs.online()
    return _json({"waiting": waiting, "mine": mine, "online": len(online)})


def _may_view(desk: Desk, item: dict[str, Any]) -> bool:
    roles = person_roles(desk.mandates)
    top = roles[-1] if roles else None
    return (item.get("state") == "waiting" or item.get("claimed_by") == desk.agent.username
            or desk.agent.role == top)


@api
async def conversation(request: web.Request, desk: Desk) -> web.Response:
    conv = _conversation(request)
    item = await _item(desk, conv)
    if not _may_view(desk, item):
        raise DeskError(409, "not_yours")
    history = await desk.service.history(conv)
    transcript = []
    for entry in history:
        at = entry.get("at")
        if at is None and entry.get("ts") is not None:  # the Redis transcript (no records database)
            at = datetime.fromtimestamp(float(entry["ts"])).astimezone().isoformat()
        row = {"sender": entry.get("sender"), "channel": entry.get("channel"), "text": entry.get("text", ""),
               "at": at, "agent": entry.get("agent_name") or entry.get("agent")}
        for extra in ("buttons", "media", "image", "delivery", "delivery_error"):
            if entry.get(extra):
                row[extra] = entry[extra]
        transcript.append(row)
    # amounts are formatted in the language the desk shows (?lang=, else the agent's ui_language)
    lang = request.query.get("lang") if request.query.get("lang") in texts.LANGUAGES else desk.lang
    customer = None
    if item.get("customer_id") is not None:
        customer = await customer_record(desk.records, int(item["customer_id"]), lang, clock=desk.clock)
    wanted = item.get("request")
    if isinstance(wanted, dict) and isinstance(wanted.get("amount_cents"), int):
        item = {**item, "request": {**wanted, "amount_text": money(wanted["amount_cents"], lang)}}
    identity = await desk.service.identity_level(conv)
    return _json({"item": item, "transcript": transcript, "customer": customer, "identity": identity})


@api
async def claim(request: web.Request, desk: Desk) -> web.Response:
    conv = _conversation(request)
    await _body(request, ())
    item = await desk.service.claim(conv, desk.info)
    log.info("desk: %s claimed %s", desk.agent.username, conv)
    return _json(item)


@api
async def reply(request: web.Request, desk: Desk) -> web.Response:
    conv = _conversation(request)
    data = await _body(request, ("text",))
    value, limit = data.get("text"), desk.settings.max_message_bytes
    if value is None:
        raise _bad("text", "required")
    if not isinstance(value, str):
        raise _bad("text", "text")
    text = value.replace("\x00", "").strip()
    if not encodable(text):
        raise _bad("text", "unreadable")
    if not text:
        raise DeskError(400, "empty_text")
    if len(text.encode("utf-8")) > limit:
        raise DeskError(413, "text_too_long", limit=limit)
    item = await _item(desk, conv)
    _own(desk, item)
    channel = await desk.service.agent_reply(conv, desk.info, text)
    log.info("desk: %s replied in %s on %s", desk.agent.username, conv, channel)
    return _json({"channel": channel})


@api
async def transfer(request: web.Request, desk: Desk) -> web.Response:
    conv = _conversation(request)
    data = await _body(request, ("role", "queue", "note"))
    role = _role(desk, data.get("role"))
    target = data.get("queue")
    if target is not None and (not isinstance(target, str) or not QUEUE_NAME.match(target)
                               or target not in desk.handoffs.config.queues):
        raise DeskError(400, "bad_target")
    note = _text(data, "note") or ""
    item = await _item(desk, conv)
    _own(desk, item)
    item = await desk.service.transfer(conv, desk.info, role=role, queue=target, note=note)
    log.info("desk: %s transferred %s (role %s, queue %s)", desk.agent.username, conv, role, target)
    return _json(item)


@api
async def typing(request: web.Request, desk: Desk) -> web.Response:
    """The agent is typing a reply: the customer's web chat shows it for a few seconds (the desk
    says it again while the agent goes on typing)."""
    conv = _conversation(request)
    await _body(request, ())
    _own(desk, await _item(desk, conv))
    chat = request.app.get(WEB_CHAT)
    if chat is not None:
        await chat.agent_typing(conv, desk.agent.name)
    return _json({"ok": True})


@api
async def handback(request: web.Request, desk: Desk) -> web.Response:
    conv = _conversation(request)
    data = await _body(request, ("resolved",))
    resolved = data.get("resolved", False)
    if not isinstance(resolved, bool):
        raise _bad("resolved", "boolean")
    _own(desk, await _item(desk, conv))
    await desk.service.hand_back(conv, desk.info, resolved=resolved)
    log.info("desk: %s handed %s back to the bot", desk.agent.username, conv)
    return _json({"ok": True})


@api
async def close(request: web.Request, desk: Desk) -> web.Response:
    conv = _conversation(request)
    await _body(request, ())
    _own(desk, await _item(desk, conv))
    await desk.service.close(conv, desk.info)
    log.info("desk: %s closed %s", desk.agent.username, conv)
    return _json({"ok": True})


@api
async def decide(request: web.Request, desk: Desk) -> web.Response:
    conv = _conversation(request)
    wanted = _decision_request(await _body(request, REQUEST_FIELDS))
    item = await _item(desk, conv)
    _own(desk, item)
    if item.get("customer_id") is None:
        raise DeskError(409, "no_customer")
    redis, _, settings = _shared(desk.app)
    lock = f"{settings.key_prefix}:desk:deciding:{conv}"
    if not await redis.set(lock, desk.agent.username, nx=True, ex=30):
        raise DeskError(409, "busy")
    try:
        return await _decide(desk, conv, item, int(item["customer_id"]), wanted)
    finally:
        await redis.delete(lock)


async def _decide(desk: Desk, conv: str, item: dict, customer_id: int, wanted: dict) -> web.Response:
    records, lang, kind, decisions = desk.records, desk.lang, wanted["decision"], desk.decisions
    customer = await records.customer(customer_id)
    if customer is None:
        raise DeskError(409, "no_customer")
    order = None
    if wanted.get("order_number"):
        order = await records.order(customer_id, wanted["order_number"])
        if order is None:
            raise DeskError(400, "unknown_order", order=wanted["order_number"])
    cents = wanted.get("amount_cents")
    if kind == "refund":
        if order is None:
            raise _bad("order_number", "required")
        _, left = await decisions.refund_left(order)
        cents = left if cents is None else cents
        if cents > left or left <= 0:
            raise DeskError(400, "over_order_total", total=money(max(0, left), lang))
    elif kind == "goodwill_voucher" and cents is None:
        raise _bad("amount", "required")
    elif kind == "payment_arrangement":
        if wanted.get("instalments") is None:
            raise _bad("instalments", "required")
        if cents is None:
            cents = await decisions.open_cents(customer_id)
            if cents <= 0:
                raise DeskError(400, "nothing_open")
    elif kind == "retention_discount" and wanted.get("percent") is None:
        raise _bad("percent", "required")
    wanted = {**wanted, "amount_cents": cents} if cents is not None else wanted
    request = await decisions.request(kind, customer, amount_cents=cents, instalments=wanted.get("instalments"),
                                      percent=wanted.get("percent"), order=order if kind == "refund" else None)
    role = desk.agent.role
    try:
        outcome = await decisions.decide(role, desk.agent.username, customer_id, request,
                                         order_id=order.id if order else None,
                                         reason=wanted.get("note") or f"granted in the desk ({conv})")
    except MandateError:  # the agent's role is no longer in the mandate table: never allowed
        log.warning("desk: role %s of %s is not in the mandate table", role, desk.agent.username)
        explanation = f"role {role} is not in the mandate table"
        raise DeskError(403, "beyond_mandate", {"allowed": False, "escalate_to": desk.mandates.lowest_role(request),
                                                "explanation": explanation, "request": wanted},
                        explanation=explanation) from None
    verdict, decision = outcome.verdict, outcome.decision
    if not verdict.allowed:
        log.info("desk: %s asked %s beyond their mandate in %s (escalate to %s)", desk.agent.username, kind, conv,
                 verdict.lowest_role)
        explanation = verdict.explain(lang)
        raise DeskError(403, "beyond_mandate", {"allowed": False, "escalate_to": verdict.lowest_role,
                                                "explanation": explanation, "request": wanted},
                        explanation=explanation)
    log.info("desk: %s granted %s (decision %s) in %s", desk.agent.username, kind, decision.id, conv)
    told = None
    message = texts.outcome(kind, agent_name=desk.agent.name, role=role, amount_cents=cents,
                            order_number=order.order_number if order else None,
                            instalments=wanted.get("instalments"), percent=wanted.get("percent"))
    try:
        told = await desk.service.tell(conv, message, sender="agent", agent=desk.info)
    except Exception as exc:  # noqa: BLE001 - granted and recorded; the agent tells the customer instead
        log.warning("desk: telling %s about decision %s failed: %s", conv, decision.id, type(exc).__name__)
    ticket = await open_ticket(records, item.get("ticket_id"), customer_id)
    if ticket is not None and ticket.kind == "waiting_request" and (ticket.data or {}).get("request") in (None, kind):
        await records.close_ticket(ticket.id, "closed")
    return _json({"allowed": True, "decision_id": decision.id, "told": told, "decision": kind,
                  "request": wanted, "explanation": verdict.explain(lang)})


@api
async def escalate(request: web.Request, desk: Desk) -> web.Response:
    conv = _conversation(request)
    data = await _body(request, ("role", "request", "note"))
    if data.get("role") is None:
        raise _bad("role", "required")
    role = _role(desk, data.get("role"))
    if data.get("request") is None:
        raise _bad("request", "required")
    wanted = _decision_request(data["request"], "request.")
    note = _text(data, "note") or ""
    item = await _item(desk, conv)
    _own(desk, item)
    item = await desk.service.transfer(conv, desk.info, role=role, note=note, request=wanted)
    log.info("desk: %s escalated %s to %s (%s)", desk.agent.username, conv, role, wanted["decision"])
    return _json(item)


# ----------------------------------------------------------------------------- promises

CALLBACK_STATUS = {"unknown_callback": 404, "callback_closed": 409, "window_not_free": 409, "callback_busy": 409,
                   "no_free_window": 409, "customer_unreachable": 502}


def _callbacks(desk: Desk):
    from bot.gateway.keys import PROMISES
    from bot.promises.callbacks import CallbackDesk

    return CallbackDesk(desk.app[PROMISES].watch)


def _may_call_back(desk: Desk) -> None:
    """Callbacks are the calling queue's (config/promises.yml callbacks.queue) and the supervisors'."""
    from bot.promises.callbacks import config as callback_config

    roles = person_roles(desk.mandates)
    queue = desk.handoffs.config.queues.get(callback_config().queue)
    if desk.agent.role != (roles[-1] if roles else None) and queue is not None and queue.skill not in desk.info.skills:
        raise DeskError(403, "not_eligible")


def _ticket_id(request: web.Request, unknown: str = "unknown_callback") -> int:
    raw = request.match_info.get("ticket", "")
    if not raw.isdigit() or len(raw) > 12:
        raise DeskError(404, unknown)
    return int(raw)


async def _callback_call(coro):
    from bot.promises.callbacks import CallbackError

    try:
        return await coro
    except CallbackError as exc:
        raise DeskError(CALLBACK_STATUS.get(exc.code, 409), exc.code) from None


@api
async def callback_list(request: web.Request, desk: Desk) -> web.Response:
    """GET /desk/api/callbacks: {"due": [...], "later": [...], "overdue": [...], "windows": [...]}."""
    _may_call_back(desk)
    service = _callbacks(desk)
    listing = await service.listing(desk.lang)
    now, tz = desk.clock.now(), service.levels.tz
    from bot.promises.callbacks import button_title

    listing["windows"] = [{"start": s.isoformat(), "end": e.isoformat(), "title": button_title(s, e, desk.lang, now, tz)}
                          for s, e in await service.windows()]
    return _json(listing)


@api
async def callback_action(request: web.Request, desk: Desk) -> web.Response:
    """POST /desk/api/callbacks/{ticket}/done | not_reached | moved {"start": ISO of a free window}."""
    _may_call_back(desk)
    ticket, action = _ticket_id(request), request.match_info.get("action")
    service = _callbacks(desk)
    if action == "done":
        await _body(request, ())
        result = await _callback_call(service.done(ticket, desk.agent.username))
    elif action == "not_reached":
        await _body(request, ())
        result = await _callback_call(service.not_reached(ticket, desk.agent.username))
    elif action == "moved":
        data = await _body(request, ("start",))
        try:
            start = datetime.fromisoformat(str(data.get("start") or ""))
        except ValueError:
            raise _bad("start", "time") from None
        if start.tzinfo is None:
            raise _bad("start", "time")
        result = await _callback_call(service.moved(ticket, desk.agent.username, start))
    else:
        raise DeskError(404, "not_found")
    log.info("desk: %s marked callback %s %s", desk.agent.username, ticket, action)
    await desk.handoffs.publish({"type": "callbacks"})
    return _json(result)


@api
async def reach_out_list(request: web.Request, desk: Desk) -> web.Response:
    """GET /desk/api/reach-out: customers to contact (bot/promises/proactive.py made the tasks),
    with the reasons, highest churn first."""
    rows = []
    for ticket in await desk.records.tickets_of_kind("reach_out", "open"):
        customer = await desk.records.customer(ticket.customer_id)
        scored = await desk.records.churn(ticket.customer_id)
        rows.append({"ticket": ticket.id, "customer_id": ticket.customer_id,
                     "customer": customer.name if customer else "", "customer_number": customer.customer_number if customer else "",
                     "phone": customer.phone if customer else None, "churn": scored.score if scored else None,
                     "reasons": (ticket.data or {}).get("reasons") or [ticket.details]})
    rows.sort(key=lambda r: -(r["churn"] or 0))
    return _json({"reach_out": rows})


@api
async def reach_out_done(request: web.Request, desk: Desk) -> web.Response:
    """POST /desk/api/reach-out/{ticket}/done {"note": "what was done"}: the task is closed with it."""
    ticket_id = _ticket_id(request, "not_found")
    data = await _body(request, ("note",))
    note = _text(data, "note", 500) or ""
    ticket = await desk.records.ticket(ticket_id)
    if ticket is None or ticket.kind != "reach_out":
        raise DeskError(404, "not_found")
    if ticket.status != "open":
        raise DeskError(409, "callback_closed")
    await desk.records.note_on_ticket(ticket.id, done_by=desk.agent.username, note=note)
    await desk.records.close_ticket(ticket.id, now=desk.clock.now())
    await desk.records.contact(ticket.customer_id, "desk", "reach_out", f"reached out by {desk.agent.username}: {note}"[:300])
    log.info("desk: %s closed reach-out task %s", desk.agent.username, ticket.id)
    return _json({"ticket": ticket.id, "status": "closed"})


FOLLOW_UP = "feedback_followup"  # a detractor's answer to the survey (bot/feedback/survey.py)
TRANSCRIPT_ROWS = 40


def _may_follow_up(desk: Desk, ticket: Any) -> bool:
    """A follow-up is for a person of its queue (the queue's skill) and language; the top role sees all."""
    roles = person_roles(desk.mandates)
    if desk.agent.role == (roles[-1] if roles else None):
        return True
    data = ticket.data or {}
    queue = desk.handoffs.config.queues.get(str(data.get("queue") or "general"))
    skill = queue.skill if queue is not None else None
    return (not skill or skill in desk.info.skills) and (data.get("language") or "nl") in desk.info.languages


@api
async def follow_up_list(request: web.Request, desk: Desk) -> web.Response:
    """GET /desk/api/feedback-followups: detractors' answers to follow up, for the agent's queues and
    languages, soonest promise first: the scores, the comment, the conversation's transcript."""
    rows = []
    for ticket in await desk.records.tickets_of_kind(FOLLOW_UP, "open"):
        if not _may_follow_up(desk, ticket):
            continue
        data = ticket.data or {}
        customer = await desk.records.customer(ticket.customer_id)
        conv = data.get("conversation")
        history = await desk.records.transcript(conv, TRANSCRIPT_ROWS) if conv else []
        rows.append({
            "ticket": ticket.id, "customer_id": ticket.customer_id,
            "customer": customer.name if customer else "", "customer_number": customer.customer_number if customer else "",
            "scores": data.get("scores") or {}, "comment": data.get("comment") or "", "queue": data.get("queue"),
            "language": data.get("language"), "channel": ticket.channel, "topic": data.get("topic"),
            "served_by": data.get("agent") or "bot", "conversation": conv,
            "promised_by": aware(ticket.promised_by).isoformat() if ticket.promised_by else None,
            "created_at": aware(ticket.created_at).isoformat() if ticket.created_at else None,
            "transcript": [{"sender": e.get("sender"), "text": e.get("text"), "at": e.get("at") or e.get("created_at")}
                           for e in history],
        })
    rows.sort(key=lambda r: r["promised_by"] or "")
    return _json({"follow_ups": rows})


@api
async def follow_up_done(request: web.Request, desk: Desk) -> web.Response:
    """POST /desk/api/feedback-followups/{ticket}/done {"note": "what was done", "message": "to the
    customer"}: the customer is told (in the conversation, on its channel), the item is closed and
    its promise kept (or broken when late)."""
    ticket_id = _ticket_id(request, "not_found")
    data = await _body(request, ("note", "message"))
    note = _text(data, "note", 500, required=True) or ""
    message = _text(data, "message", 1000, required=True) or ""
    if not note or not message:
        raise _bad("note" if not note else "message", "required")
    ticket = await desk.records.ticket(ticket_id)
    if ticket is None or ticket.kind != FOLLOW_UP or not _may_follow_up(desk, ticket):
        raise DeskError(404, "not_found")
    if ticket.status != "open":
        raise DeskError(409, "callback_closed")
    conv = (ticket.data or {}).get("conversation")
    if not conv:
        raise DeskError(409, "unreachable")
    when = desk.clock.local(aware(ticket.created_at))
    texts = {lang: messages.text("feedback_followup_done", lang, day=fmt.day(when.date(), lang), note=message)
             for lang in ("nl", "en")}
    channel = await desk.service.tell(conv, texts, "agent", desk.info)  # HandoffError: unreachable, delivery_failed
    await desk.records.note_on_ticket(ticket.id, done_by=desk.agent.username, note=note)
    await desk.records.close_ticket(ticket.id, now=desk.clock.now())
    await desk.records.contact(ticket.customer_id, channel, "feedback",
                               f"follow-up #{ticket.id} by {desk.agent.username}: {note}"[:300])
    log.info("desk: %s closed feedback follow-up %s", desk.agent.username, ticket.id)
    return _json({"ticket": ticket.id, "status": "closed", "channel": channel})


REPORT_ROLE = "supervisor"  # who sees the team's figures
MAX_PROMISE_DAYS = 30


def _promise_deadline(desk: Desk, item: dict[str, Any], data: dict[str, Any]) -> datetime:
    """The agent's chosen time: a preset within the hours of the conversation's queue
    (bot/promises/state.py `preset_deadline`) or an ISO moment with its offset."""
    levels = desk.handoffs.config.queue_of(item).levels
    now = desk.clock.now()
    preset, raw = data.get("preset"), data.get("deadline")
    if preset is not None:
        if preset not in state.PRESETS:
            raise _bad("preset", "choice")
        return state.preset_deadline(preset, levels, now)
    if not isinstance(raw, str):
        raise _bad("deadline", "required")
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        raise _bad("deadline", "time") from None
    if moment.tzinfo is None:
        raise _bad("deadline", "time")
    if moment <= now or moment - now > timedelta(days=MAX_PROMISE_DAYS):
        raise _bad("deadline", "range")
    return moment


@api
async def make_promise(request: web.Request, desk: Desk) -> web.Response:
    """An agent's "I'll get back to you tomorrow" in two clicks: {"preset": "tomorrow"} (or
    {"deadline": ISO}) and an optional {"note"}: told to the customer, recorded, watched."""
    conv = _conversation(request)
    data = await _body(request, ("preset", "deadline", "note"))
    item = await _item(desk, conv)
    _own(desk, item)
    deadline = _promise_deadline(desk, item, data)
    note = _text(data, "note", 300) or ""
    promise = await desk.service.people.promise(conv, desk.info, deadline, note)
    log.info("desk: %s promised %s an answer by %s", desk.agent.username, conv, deadline.isoformat())
    return _json({"promise": promise.id, "deadline": promise.deadline.isoformat(), "text": promise.text}, 201)


@api
async def promises_at_risk(request: web.Request, desk: Desk) -> web.Response:
    """The banner: promises the scheduler flagged (about to break) or broken in the last day,
    for their owner (the agent, or an agent of the queue that owes them) and for supervisors."""
    now = desk.clock.now()
    roles = person_roles(desk.mandates)
    top = roles[-1] if roles else None
    rows = []
    for promise in await desk.records.promises_between(now - timedelta(days=1), now + timedelta(days=60)):
        at_risk = promise.status in ("open", "renewing") and promise.flagged_at is not None
        broken = promise.status == "broken"
        if not (at_risk or broken):
            continue
        mine = promise.owed_by == f"agent:{desk.agent.username}"
        queue = desk.handoffs.config.queues.get(promise.queue or "")
        for_queue = promise.owed_by and promise.owed_by.startswith("queue:") and (
            queue is None or queue.skill in desk.info.skills)
        if not (mine or for_queue or desk.agent.role == top):
            continue
        rows.append({"promise": promise.id, "kind": promise.kind, "state": "broken" if broken else "at_risk",
                     "deadline": promise.deadline.isoformat(), "conversation": promise.conversation,
                     "ticket": promise.ticket_id, "queue": promise.queue, "owed_by": promise.owed_by,
                     "mine": mine, "text": promise.text})
    rows.sort(key=lambda r: (r["state"] != "broken", r["deadline"]))
    return _json({"promises": rows})


def _period(request: web.Request, desk: Desk):
    from datetime import date, timedelta as td

    from bot.reports.promises import Period

    def day(name: str, default: date) -> date:
        raw = request.query.get(name)
        if raw is None or raw == "":
            return default
        try:
            return date.fromisoformat(raw)
        except ValueError:
            raise _bad(name, "date") from None

    end = day("to", desk.clock.today())
    start = day("from", end - td(days=27))
    if start > end or (end - start).days > 366:
        raise _bad("from", "period")
    return Period(start, end)


def _csv(text: str, name: str) -> web.Response:
    response = web.Response(text=text, content_type="text/csv", charset="utf-8")
    response.headers.update(SECURITY_HEADERS)
    response.headers["Content-Disposition"] = f'attachment; filename="{name}.csv"'
    return response


@api
async def promise_report(request: web.Request, desk: Desk) -> web.Response:
    """GET /desk/api/reports/promises?from=YYYY-MM-DD&to=YYYY-MM-DD[&format=csv] (supervisors)."""
    from bot.reports import promises as reports

    if desk.agent.role != REPORT_ROLE:
        raise DeskError(403, "reports_forbidden")
    report = await reports.promise_report(desk.records, _period(request, desk), desk.clock.now(), desk.clock.tz)
    if request.query.get("format") == "csv":
        return _csv(reports.as_csv(report), f"promises-{report['from']}-{report['to']}")
    return _json(report)


MAX_SEARCH = 100  # characters of a comment search


@api
async def feedback_report(request: web.Request, desk: Desk) -> web.Response:
    """GET /desk/api/reports/feedback?from=&to=[&channel=&queue=&agent=&served_by=&topic=][&q=words]
    [&format=csv&table=weeks|channel|queue|agent|served_by|topic|ces|comments|promises|churn]
    (supervisors): NPS, CES, CSAT and response rate per week and per breakdown, the comments, the
    promises and waits per queue and the churn watch-list (bot/reports/feedback.py)."""
    from bot.reports import feedback as reports

    if desk.agent.role != REPORT_ROLE:
        raise DeskError(403, "reports_forbidden")
    period = _period(request, desk)
    try:
        filters = reports.parse_filters(request.query)
    except ValueError as exc:
        raise _bad(str(exc), "code") from None
    search = request.query.get("q", "")
    if len(search) > MAX_SEARCH or not encodable(search):
        raise _bad("q", "too_long")
    csv_table = request.query.get("table", "weeks")
    wants_csv = request.query.get("format") == "csv"
    if wants_csv and csv_table not in reports.TABLES:
        raise _bad("table", "table")
    report = await reports.feedback_report(desk.records, period, desk.clock.now(), desk.clock.tz, filters, search)
    if wants_csv:
        lang = request.query.get("lang") if request.query.get("lang") in texts.LANGUAGES else desk.lang
        return _csv(reports.as_csv(report, csv_table, lang), f"feedback-{csv_table}-{report['from']}-{report['to']}")
    return _json(report)


ERASE_ROLE = "supervisor"  # who may erase a customer's personal data from the desk (GDPR art. 17)


@api
async def erase(request: web.Request, desk: Desk) -> web.Response:
    """Erase a customer everywhere (bot/records/personal.py). Supervisors only; the body must
    repeat the customer number: {"confirm": "K10001"}."""
    raw = request.match_info.get("customer", "")
    if not raw.isdigit() or len(raw) > 12:
        raise DeskError(404, "not_found")
    if desk.agent.role != ERASE_ROLE:
        log.info("desk: %s (%s) may not erase customer ref %s", desk.agent.username, desk.agent.role, raw)
        raise DeskError(403, "erase_forbidden")
    data = await _body(request, ("confirm",))
    confirm = _text(data, "confirm", 40, required=True)
    customer = await desk.records.customer(int(raw))
    if customer is None or customer.customer_number.startswith(TOMBSTONE_PREFIX):
        raise DeskError(404, "not_found")
    if confirm.strip().upper() != customer.customer_number.upper():
        raise DeskError(400, "erase_confirm")
    redis, _, settings = _shared(desk.app)
    try:
        result = await erase_customer(desk.records.engine, customer.id, redis, settings.key_prefix,
                                      actor_role=desk.agent.role, actor=desk.agent.username)
    except NoSuchCustomer:  # erased by someone else a moment ago
        raise DeskError(404, "not_found") from None
    log.info("desk: %s erased customer ref %s (erase %s)", desk.agent.username, result.customer_ref, result.erase_id)
    return _json(result.as_dict())


# ----------------------------------------------------------------------------- events (SSE)

def _sse(event: Any) -> bytes | None:
    if not isinstance(event, dict):
        return None
    name = event.get("type")
    if not isinstance(name, str) or not EVENT_NAME.match(name) or name == "ping":
        return None
    return f"event: {name}\ndata: {json.dumps(event, ensure_ascii=False)}\n\n".encode()


async def events(request: web.Request) -> web.StreamResponse:
    desk = await _current(request)
    if desk is None:
        return _error(401, "not_logged_in", _guess_language(request))
    app, info = request.app, desk.info
    handoffs = desk.handoffs
    interval = app.get(DESK_HEARTBEAT, 15.0)
    stop = app[DESK_STOP]
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream; charset=utf-8",
                                           "Cache-Control": "no-cache, no-store", "X-Accel-Buffering": "no",
                                           "X-Content-Type-Options": "nosniff"})
    await response.prepare(request)
    loop = asyncio.get_running_loop()
    stream = handoffs.subscribe()
    pending: asyncio.Future | None = None
    stopping = asyncio.ensure_future(stop.wait())
    reason = "stopped"
    try:
        await response.write(b"retry: 3000\n: connected\n\n")
        await handoffs.heartbeat(info)
        beat = loop.time() + interval
        while not stop.is_set():
            if pending is None:
                pending = asyncio.ensure_future(stream.__anext__())
            timeout = max(0.0, min(beat - loop.time(), 2.0))
            done, _ = await asyncio.wait({pending, stopping}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
            if stopping in done:
                reason = "shutdown"
                break
            if request.transport is None or request.transport.is_closing():
                reason = "disconnected"
                break
            if pending in done:
                finished, pending = pending, None
                try:
                    event = finished.result()
                except StopAsyncIteration:
                    reason = "events ended"
                    break
                chunk = _sse(event)
                if chunk:
                    await response.write(chunk)
            if loop.time() >= beat:
                if await _current(request) is None:
                    reason = "session ended"
                    break
                await response.write(b": ping\n\n")
                await handoffs.heartbeat(info)
                beat = loop.time() + interval
    except (ConnectionError, RuntimeError) as exc:  # the client went away mid-write
        reason = type(exc).__name__
    except Exception as exc:  # noqa: BLE001 - Redis trouble: the browser reconnects (retry: 3000)
        reason = type(exc).__name__
        log.warning("desk: event stream of %s failed: %s", info.username, reason)
    finally:
        stopping.cancel()
        if pending is not None:
            pending.cancel()
            await asyncio.wait({pending}, timeout=3)
        try:
            await asyncio.wait_for(stream.aclose(), 3)
        except Exception:  # noqa: BLE001 - already closed by the cancellation above
            pass
        log.debug("desk: event stream of %s ended (%s)", info.username, reason)
    return response


# ----------------------------------------------------------------------------- pages

def _page(body: str, status: int = 200, csp: str = LOGIN_CSP) -> web.Response:
    response = web.Response(text=body, status=status, content_type="text/html", charset="utf-8")
    response.headers.update(SECURITY_HEADERS)
    response.headers["Content-Security-Policy"] = csp
    return response


def _login_page(request: web.Request, status: int = 200, message: str = "", info: bool = False,
                username: str = "") -> web.Response:
    token = secrets.token_urlsafe(32)
    box = f'<p class="message{" info" if info else ""}" role="alert">{html.escape(message)}</p>' if message else ""
    body = Template(LOGIN_TEMPLATE.read_text(encoding="utf-8")).substitute(
        title=html.escape(texts.LOGIN["title"]), heading=html.escape(texts.LOGIN["heading"]),
        username_label=html.escape(texts.LOGIN["username"]), password_label=html.escape(texts.LOGIN["password"]),
        submit=html.escape(texts.LOGIN["submit"]), csrf=html.escape(token),
        username=html.escape(username[:64]), message=box,
    )
    response = _page(body, status)
    response.set_cookie(LOGIN_COOKIE, token, max_age=3600, path="/desk", httponly=True, secure=_secure(request),
                        samesite="Strict")
    return response


def _secure(request: web.Request) -> bool:
    """Whether cookies get `Secure`: https on this connection, or a trusted proxy says so."""
    return is_https(request, _shared(request.app)[2].trusted_proxies)


def _client(request: web.Request) -> str:
    return client_key(client_address(request, _shared(request.app)[2].trusted_proxies))


def _redirect(location: str) -> web.Response:
    response = web.Response(status=303, headers={"Location": location, **SECURITY_HEADERS})
    return response


async def login_form(request: web.Request) -> web.Response:
    if await _current(request) is not None:
        return _redirect("/desk")
    return _login_page(request, message=texts.LOGIN["logged_out"] if "out" in request.query else "", info=True)


async def login(request: web.Request) -> web.Response:
    form = await request.post()
    username, password, given = form.get("username"), form.get("password"), form.get("csrf")
    expected = request.cookies.get(LOGIN_COOKIE, "")
    if not isinstance(given, str) or not expected or not secrets.compare_digest(given.encode(), expected.encode()):
        return _login_page(request, 403, texts.LOGIN["csrf"])
    if not isinstance(username, str) or not isinstance(password, str):
        return _login_page(request, 401, texts.LOGIN["failed"])
    username = username.strip().lower()[:64]
    redis, _, settings = _shared(request.app)
    throttle = LoginThrottle(redis, settings.key_prefix)
    client = _client(request)
    attempt = await throttle.attempt(username, client)
    if not attempt.allowed:
        log.info("desk: login throttled (%s)", attempt.reason)
        response = _login_page(request, 429, texts.LOGIN["throttled"], username=username)
        response.headers["Retry-After"] = str(attempt.retry_after)
        return response
    if attempt.delay:
        await asyncio.sleep(attempt.delay)  # many recent attempts on this username: slowed, not refused
    agents = Agents(request.app[RECORDS])
    agent = await agents.by_username(username) if username else None
    ok, new_hash = await verify_password(agent.password_hash if agent else None,
                                         password if len(password) <= MAX_PASSWORD else "")
    if not ok or agent is None or not agent.active:
        log.info("desk: login failed")  # never the username typed: it may be a password
        return _login_page(request, 401, texts.LOGIN["failed"], username=username)
    if new_hash:
        await agents.replace_hash(agent.id, agent.password_hash, new_hash)
        agent.password_hash = new_hash
    await throttle.succeeded(username, client)
    sessions = Sessions(redis, settings.key_prefix)
    old = await sessions.get(request.cookies.get(COOKIE))
    if old is not None:
        await sessions.delete(old)
    token, _ = await sessions.create(agent)
    log.info("desk: %s logged in", agent.username)
    response = _redirect("/desk")
    response.set_cookie(COOKIE, token, max_age=SESSION_TTL, path="/desk", httponly=True, secure=_secure(request),
                        samesite="Strict")
    response.del_cookie(LOGIN_COOKIE, path="/desk")
    return response


async def logout(request: web.Request) -> web.Response:
    desk = await _current(request)
    if desk is None:
        response = _redirect("/desk/login")
        response.del_cookie(COOKIE, path="/desk")
        return response
    given = request.headers.get(CSRF_HEADER)
    if given is None:
        form = await request.post()
        given = form.get("csrf")
    if not desk.session.csrf_ok(given):
        if request.headers.get(CSRF_HEADER) is not None or "json" in request.headers.get("Accept", ""):
            return _error(403, "csrf", desk.lang)
        return _page(html.escape(texts.error_text("csrf", desk.lang)), 403)
    await _sessions(request.app).delete(desk.session)
    try:
        await desk.handoffs.offline(desk.info)
    except Exception as exc:  # noqa: BLE001 - presence expires by itself within a minute
        log.warning("desk: marking %s offline failed: %s", desk.agent.username, type(exc).__name__)
    log.info("desk: %s logged out", desk.agent.username)
    response = _redirect("/desk/login?out=1")
    response.del_cookie(COOKIE, path="/desk")
    return response


PLACEHOLDER = """<!doctype html><html lang="nl"><meta charset="utf-8"><title>Agent desk</title>
<h1>Agent desk</h1><p>De desk-app (bot/desk/static/desk.html) is nog niet geïnstalleerd. ·
The desk app (bot/desk/static/desk.html) is not installed yet.</p>"""


async def desk_page(request: web.Request) -> web.StreamResponse:
    if await _current(request) is None:
        return _redirect("/desk/login")
    page = STATIC_DIR / "desk.html"
    if page.is_file():
        response = web.FileResponse(page, headers={**SECURITY_HEADERS, "Content-Security-Policy": PAGE_CSP,
                                                   "Content-Type": "text/html; charset=utf-8"})
        return response
    return _page(PLACEHOLDER, csp=PAGE_CSP)


# ----------------------------------------------------------------------------- wiring

def setup(app: web.Application) -> None:
    """Add the desk's routes to the gateway (call from create_app, before it starts)."""
    app[DESK_MANDATES] = MandateTable.load()
    if CLOCK not in app:  # the gateway's clock when it has set one (tests fix it), else the process's
        app[CLOCK] = clocks.from_env()
    app[DESK_STOP] = asyncio.Event()
    if DESK_HEARTBEAT not in app:
        app[DESK_HEARTBEAT] = 15.0

    async def stop_streams(app: web.Application) -> None:
        app[DESK_STOP].set()

    app.on_shutdown.append(stop_streams)
    r = app.router
    r.add_get("/desk", desk_page)
    r.add_get("/desk/", desk_page)
    r.add_get("/desk/login", login_form)
    r.add_post("/desk/login", login)
    r.add_post("/desk/logout", logout)
    r.add_get("/desk/events", events)
    r.add_get("/desk/api/me", me)
    r.add_get("/desk/api/labels", labels)
    r.add_get("/desk/api/queue", queue)
    r.add_get("/desk/api/conversations/{conv}", conversation)
    for action, handler in (("claim", claim), ("reply", reply), ("typing", typing), ("transfer", transfer),
                            ("handback", handback),
                            ("close", close), ("decide", decide), ("escalate", escalate)):
        r.add_post(f"/desk/api/conversations/{{conv}}/{action}", handler)
    r.add_post("/desk/api/conversations/{conv}/promise", make_promise)
    r.add_get("/desk/api/promises", promises_at_risk)
    r.add_get("/desk/api/callbacks", callback_list)
    r.add_get("/desk/api/reach-out", reach_out_list)
    r.add_post("/desk/api/reach-out/{ticket}/done", reach_out_done)
    r.add_get("/desk/api/feedback-followups", follow_up_list)
    r.add_post("/desk/api/feedback-followups/{ticket}/done", follow_up_done)
    r.add_post("/desk/api/callbacks/{ticket}/{action}", callback_action)
    r.add_get("/desk/api/reports/promises", promise_report)
    r.add_get("/desk/api/reports/feedback", feedback_report)
    r.add_post("/desk/api/customers/{customer}/erase", erase)
    if STATIC_DIR.is_dir():
        r.add_static("/desk/static/", STATIC_DIR)
    else:
        log.warning("desk: %s does not exist; /desk/static/ is not served", STATIC_DIR)
