"""The customer record the desk shows next to a conversation.

Everything JSON-able; money as cents plus a string formatted for the agent's ui_language
(bot.texts.fmt.money), times as ISO 8601 (UTC), dates as YYYY-MM-DD in the configured zone;
"today" and "now" come from the clock passed in (bot/policy/clock.py). Reads through `Records`
where it has a method, and its own short queries otherwise.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import select

from bot.policy.churn import ChurnResult
from bot.policy.clock import SYSTEM, Clock
from bot.desk.texts import lang_of
from bot.texts.fmt import money
from bot.records.models import Decision, Feedback, Order, Ticket
from bot.records.repository import Records, aware

ORDERS = 10
DECISIONS = 20
FEEDBACK = 10


def _iso(value: date | datetime | None) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return aware(value).isoformat()
    return value.isoformat()


async def customer_record(records: Records, customer_id: int, ui_language: str = "nl",
                          today: date | None = None, clock: Clock | None = None) -> dict[str, Any] | None:
    """The customer as the desk shows them; None when the customer does not exist."""
    lang = lang_of(ui_language)
    clock = clock or SYSTEM
    today = today or clock.today()
    now = clock.now()

    def _day(value: date | datetime | None) -> str | None:
        day = clock.date_of(value)
        return day.isoformat() if day else None

    customer = await records.customer(customer_id)
    if customer is None:
        return None

    orders = await records.recent_orders(customer_id, limit=ORDERS)
    invoices = await records.invoices(customer_id)
    account, rewards = await records.loyalty(customer_id)
    tickets = await records.tickets(customer_id, status="open")
    churn = await records.churn(customer_id)
    async with records.session() as s:
        decisions = (await s.execute(
            select(Decision, Order.order_number).outerjoin(Order, Order.id == Decision.order_id)
            .where(Decision.customer_id == customer_id).order_by(Decision.id.desc()).limit(DECISIONS))).all()
        feedback = list((await s.execute(
            select(Feedback).where(Feedback.customer_id == customer_id, Feedback.anonymous.is_(False))
            .order_by(Feedback.id.desc()).limit(FEEDBACK))).scalars())
        ticket_orders = {}
        order_ids = {t.order_id for t in tickets if t.order_id}
        if order_ids:
            ticket_orders = dict((await s.execute(
                select(Order.id, Order.order_number).where(Order.id.in_(order_ids)))).all())

    return {
        "id": customer.id,
        "number": customer.customer_number,
        "name": customer.name,
        "segment": customer.segment,
        "language": customer.language,
        "preferred_channel": customer.preferred_channel,
        "since": _day(customer.created_at),
        "orders": [{
            "number": o.order_number,
            "date": _day(o.placed_at),
            "status": o.status,
            "total_cents": o.total_cents,
            "total": money(o.total_cents, lang),
            "carrier": o.carrier,
            "tracking_code": o.tracking_code,
            "promised_date": _day(o.promised_date),
            "delivered_at": _iso(o.delivered_at),
            "lines": [{"sku": line.sku, "description": line.description, "quantity": line.quantity}
                      for line in o.lines],
        } for o in orders],
        "invoices": [{
            "number": i.invoice_number,
            "order_number": i.order_number,
            "issued": _day(i.issued_at),
            "due": _day(i.due_date),
            "status": i.status(today),
            "amount_cents": i.amount_cents,
            "amount": money(i.amount_cents, lang),
            "open_cents": i.open_cents,
            "open": money(i.open_cents, lang),
        } for i in invoices],
        "open_total_cents": sum(i.open_cents for i in invoices),
        "open_total": money(sum(i.open_cents for i in invoices), lang),
        "loyalty": None if account is None else {
            "points": account.points, "tier": account.tier,
            "rewards": [{"code": r.code, "name": r.name_en if lang == "en" else r.name_nl,
                         "points": r.points_cost} for r in rewards],
        },
        "tickets": [{
            "id": t.id,
            "kind": t.kind,
            "status": t.status,
            "details": t.details,
            "data": t.data or {},
            "order_number": ticket_orders.get(t.order_id),
            "channel": t.channel,
            "created": _iso(t.created_at),
            "promised_by": _iso(t.promised_by),
            "overdue": bool(t.promised_by and aware(t.promised_by) < now),
        } for t in tickets],
        "churn": None if churn is None else {
            "score": churn.score,
            "level": ChurnResult(score=churn.score).level,
            "reasons": [{"code": r.get("code"), "weight": r.get("weight"), "text": r.get(lang) or r.get("en")}
                        for r in (churn.reasons or []) if isinstance(r, dict)],
            "computed_at": _iso(churn.computed_at),
        },
        "decisions": [{
            "id": d.id,
            "kind": d.kind,
            "amount_cents": d.amount_cents,
            "amount": money(d.amount_cents, lang) if d.amount_cents is not None else None,
            "instalments": d.instalments,
            "percent": d.percent,
            "order_number": number,
            "role": d.role,
            "actor": d.actor,
            "reason": d.reason,
            "at": _iso(d.created_at),
        } for d, number in decisions],
        "feedback": [{
            "ces": f.ces, "nps": f.nps, "csat": f.csat, "comment": f.comment, "conversation": f.conversation, "at": _iso(f.created_at),
        } for f in feedback],
    }


async def open_ticket(records: Records, ticket_id: Any, customer_id: int) -> Ticket | None:
    """The customer's ticket `ticket_id` when it is still open (for closing a waiting request)."""
    if isinstance(ticket_id, bool) or not isinstance(ticket_id, (int, str)) or not str(ticket_id).isdigit():
        return None
    async with records.session() as s:
        ticket = await s.get(Ticket, int(ticket_id))
    if ticket is None or ticket.customer_id != customer_id or ticket.status != "open":
        return None
    return ticket
