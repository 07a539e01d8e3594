"""Churn signals: how likely a customer is to leave, and why, from their own records.

    facts = await facts_for(engine, customer_id, today)   # CustomerFacts, read from the database
    result = score(facts)                                  # pure: ChurnResult(score 0-100, reasons)
    await refresh(engine)                                  # every customer -> churn_scores (upsert)

Every reason is a dict ``{"code", "weight", "nl", "en"}``: agents read the texts in the desk,
in their own language. The signals, their weights and the reasoning behind them are in
docs/churn.md. In short (seed articles on *klantbehoud*): watch order frequency and size and
payment behaviour, take complaints seriously, and above all notice the customer who complained
and then went quiet: "klanten die op het punt staan om weg te lopen, klagen niet meer".

Dates: `today` is a calendar date (default: today by the clock passed in, in the zone of
config/service_levels.yml); stored times are UTC and are turned into calendar dates of that zone
before they are compared (bot/policy/clock.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Iterable

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.policy.clock import SYSTEM, Clock
from bot.records.models import ChurnScore, ContactEvent, Customer, Feedback, Invoice, Order, Payment, Ticket
from bot.texts.fmt import money

WINDOW_DAYS = 180                 # "recent" = the last 180 days, compared with the 180 before
COMPLAINT_KINDS = ("complaint",)  # ticket kinds that count as a complaint
OPEN_STATUSES = ("open", "answered")

# code -> weight; the score is the sum of the weights of the signals found, at most 100
WEIGHTS = {
    "order_frequency_down": 20,
    "order_size_down": 15,
    "invoice_overdue": 20,
    "paid_late": 10,
    "open_complaint": 15,
    "repeated_complaints": 15,
    "silent_after_complaint": 25,
    "long_since_last_order": 10,   # 90-179 days; 180 days or more: LONG_SINCE_LAST_ORDER_MAX
    "cancellation_request": 20,    # asked to cancel an order or the relationship lately
    "low_feedback": 15,            # a low score in a post-chat survey lately (bot/feedback)
}
# a low score (the detractor thresholds of config/feedback.yml's defaults) counts this long
LOW_FEEDBACK = {"ces": 3, "nps": 6, "csat": 2}
FEEDBACK_DAYS = 90
CANCELLATION_KINDS = ("cancellation",)  # ticket kinds of a cancellation request (an order or the account)
CANCELLATION_DAYS = 90                  # counts this long
LONG_SINCE_LAST_ORDER_MAX = 20

# thresholds
FREQUENCY_MIN_BEFORE = 2          # at least this many orders in the earlier window to compare
FREQUENCY_DROP = Decimal("0.5")   # recent <= 50 % of before
SIZE_MIN_BEFORE = 2
SIZE_DROP = Decimal("0.6")        # recent average <= 60 % of the earlier average
PAID_LATE_LOOKBACK_DAYS = 365
REPEATED_COMPLAINTS = 2           # complaints within WINDOW_DAYS
SILENCE_AFTER_DAYS = 30           # last complaint at least this long ago ...
SILENCE_LOOKBACK_DAYS = 365       # ... and not longer ago than this
LONG_SINCE_ORDER_DAYS = (90, 180)

HIGH, MEDIUM = 50, 25             # level thresholds


# ----------------------------------------------------------------------------- facts

@dataclass(frozen=True)
class OrderFact:
    placed_on: date
    total_cents: int
    status: str = "delivered"     # cancelled orders are ignored by every signal


@dataclass(frozen=True)
class InvoiceFact:
    due_date: date
    amount_cents: int
    paid_cents: int = 0
    paid_on: date | None = None   # the day the payments reached the amount; None: not (fully) paid
    number: str = ""


@dataclass(frozen=True)
class ComplaintFact:
    created_on: date
    status: str = "open"          # open, answered, closed
    closed_on: date | None = None


@dataclass
class CustomerFacts:
    """Everything the churn score looks at, for one customer, on one day."""

    today: date
    orders: list[OrderFact] = field(default_factory=list)
    invoices: list[InvoiceFact] = field(default_factory=list)
    complaints: list[ComplaintFact] = field(default_factory=list)
    last_contact: date | None = None   # latest contact-history row or ticket of any kind
    customer_id: int | None = None
    cancellations: list[date] = field(default_factory=list)  # days a cancellation was asked for
    feedback: list[tuple[date, dict]] = field(default_factory=list)  # (day, {"ces": 2, "nps": 5}) of answered surveys


@dataclass
class ChurnResult:
    score: int                                   # 0-100
    reasons: list[dict] = field(default_factory=list)   # {"code", "weight", "nl", "en"}, heaviest first

    @property
    def level(self) -> str:
        """"high" (>= 50), "medium" (>= 25) or "low"."""
        return "high" if self.score >= HIGH else "medium" if self.score >= MEDIUM else "low"

    @property
    def codes(self) -> list[str]:
        return [r["code"] for r in self.reasons]

    def as_dict(self) -> dict:
        return {"score": self.score, "level": self.level, "reasons": list(self.reasons)}


# ----------------------------------------------------------------------------- texts

def _euro(cents: int | Decimal, nl: bool) -> str:
    return money(cents, "nl" if nl else "en")


def _n(count: int, one: str, many: str) -> str:
    return f"{count} {one if count == 1 else many}"


def _reason(code: str, nl: str, en: str, weight: int | None = None) -> dict:
    return {"code": code, "weight": WEIGHTS[code] if weight is None else weight, "nl": nl, "en": en}


# ----------------------------------------------------------------------------- the score

def score(facts: CustomerFacts) -> ChurnResult:
    """The churn score (0-100) and its reasons, from facts alone (no I/O)."""
    today = facts.today
    reasons: list[dict] = []
    orders = sorted((o for o in facts.orders if o.status != "cancelled"), key=lambda o: o.placed_on)
    recent_start = today - timedelta(days=WINDOW_DAYS)
    before_start = today - timedelta(days=2 * WINDOW_DAYS)
    recent = [o for o in orders if recent_start < o.placed_on <= today]
    before = [o for o in orders if before_start < o.placed_on <= recent_start]

    # falling order frequency
    if len(before) >= FREQUENCY_MIN_BEFORE and len(recent) <= FREQUENCY_DROP * len(before):
        reasons.append(_reason(
            "order_frequency_down",
            f"Bestelt minder vaak: {_n(len(recent), 'bestelling', 'bestellingen')} in de laatste "
            f"{WINDOW_DAYS} dagen, tegen {len(before)} in de {WINDOW_DAYS} dagen daarvoor.",
            f"Ordering less often: {_n(len(recent), 'order', 'orders')} in the last {WINDOW_DAYS} days, "
            f"against {len(before)} in the {WINDOW_DAYS} days before."))

    # falling order size
    if recent and len(before) >= SIZE_MIN_BEFORE:
        avg_recent = Decimal(sum(o.total_cents for o in recent)) / len(recent)
        avg_before = Decimal(sum(o.total_cents for o in before)) / len(before)
        if avg_before > 0 and avg_recent <= SIZE_DROP * avg_before:
            reasons.append(_reason(
                "order_size_down",
                f"Kleinere bestellingen: gemiddeld {_euro(avg_recent, True)} in de laatste {WINDOW_DAYS} "
                f"dagen, tegen {_euro(avg_before, True)} in de {WINDOW_DAYS} dagen daarvoor.",
                f"Smaller orders: {_euro(avg_recent, False)} on average in the last {WINDOW_DAYS} days, "
                f"against {_euro(avg_before, False)} in the {WINDOW_DAYS} days before."))

    # overdue invoices
    overdue = [i for i in facts.invoices if i.paid_cents < i.amount_cents and i.due_date < today]
    if overdue:
        open_cents = sum(i.amount_cents - i.paid_cents for i in overdue)
        days = max((today - i.due_date).days for i in overdue)
        reasons.append(_reason(
            "invoice_overdue",
            f"Betalingsachterstand: {_n(len(overdue), 'factuur', 'facturen')} over de vervaldatum, "
            f"samen {_euro(open_cents, True)} open, tot {days} dagen te laat.",
            f"Overdue payment: {_n(len(overdue), 'invoice', 'invoices')} past the due date, "
            f"{_euro(open_cents, False)} open in total, up to {days} days late."))

    # invoices paid late in the past year
    since = today - timedelta(days=PAID_LATE_LOOKBACK_DAYS)
    late = [i for i in facts.invoices if i.paid_on is not None and i.paid_on > i.due_date and i.paid_on >= since]
    if late:
        days = max((i.paid_on - i.due_date).days for i in late)
        reasons.append(_reason(
            "paid_late",
            f"Betaalde het afgelopen jaar {_n(len(late), 'factuur', 'facturen')} te laat "
            f"(tot {days} dagen na de vervaldatum).",
            f"Paid {_n(len(late), 'invoice', 'invoices')} late in the past year "
            f"(up to {days} days after the due date)."))

    # complaints
    complaints = sorted(facts.complaints, key=lambda c: c.created_on)
    open_ones = [c for c in complaints if c.status in OPEN_STATUSES]
    if open_ones:
        days = (today - open_ones[0].created_on).days
        reasons.append(_reason(
            "open_complaint",
            f"{_n(len(open_ones), 'klacht', 'klachten')} nog niet afgehandeld (de oudste {days} dagen oud).",
            f"{_n(len(open_ones), 'complaint', 'complaints')} not yet resolved (the oldest {days} days old)."))
    in_window = [c for c in complaints if recent_start < c.created_on <= today]
    if len(in_window) >= REPEATED_COMPLAINTS:
        reasons.append(_reason(
            "repeated_complaints",
            f"Herhaald ontevreden: {len(in_window)} klachten in de laatste {WINDOW_DAYS} dagen.",
            f"Repeatedly dissatisfied: {len(in_window)} complaints in the last {WINDOW_DAYS} days."))

    # a complaint, then silence: no order and no contact after it
    if complaints:
        last = complaints[-1]
        days = (today - last.created_on).days
        settled = max(last.created_on, last.closed_on or last.created_on)
        ordered_since = any(o.placed_on > settled for o in orders)
        contact_since = facts.last_contact is not None and facts.last_contact > settled
        if SILENCE_AFTER_DAYS <= days <= SILENCE_LOOKBACK_DAYS and not ordered_since and not contact_since:
            reasons.append(_reason(
                "silent_after_complaint",
                f"Stil na een klacht: de laatste klacht was {days} dagen geleden en sindsdien is er geen "
                "bestelling en geen contact meer. Klanten die op het punt staan te vertrekken, klagen niet meer.",
                f"Silent after a complaint: the last complaint was {days} days ago, with no order and no "
                "contact since. Customers who are about to leave stop complaining."))

    # asked to cancel (an order, or being a customer): a signal whatever the outcome
    recent = [d for d in facts.cancellations if 0 <= (today - d).days <= CANCELLATION_DAYS]
    if recent:
        days = (today - max(recent)).days
        reasons.append(_reason(
            "cancellation_request",
            f"Vroeg {days} dagen geleden om een annulering of opzegging"
            f" ({_n(len(recent), 'keer', 'keer')} in de laatste {CANCELLATION_DAYS} dagen).",
            f"Asked to cancel {days} days ago ({_n(len(recent), 'time', 'times')} in the last {CANCELLATION_DAYS} days)."))

    # a low score in a survey after a conversation: said so themselves
    low = [(d, scores) for d, scores in facts.feedback if 0 <= (today - d).days <= FEEDBACK_DAYS
           and any(scores.get(k) is not None and scores[k] <= top for k, top in LOW_FEEDBACK.items())]
    if low:
        day, scores = max(low, key=lambda item: item[0])
        days = (today - day).days
        said = ", ".join(f"{k.upper()} {v}" for k, v in scores.items() if v is not None)
        reasons.append(_reason(
            "low_feedback",
            f"Gaf {days} dagen geleden een lage score na een gesprek ({said}).",
            f"Gave a low score after a conversation {days} days ago ({said})."))

    # long time since the last order
    if orders:
        days = (today - orders[-1].placed_on).days
        if days >= LONG_SINCE_ORDER_DAYS[0]:
            weight = LONG_SINCE_LAST_ORDER_MAX if days >= LONG_SINCE_ORDER_DAYS[1] else WEIGHTS["long_since_last_order"]
            reasons.append(_reason(
                "long_since_last_order",
                f"Lang niet besteld: de laatste bestelling was {days} dagen geleden.",
                f"No order for a long time: the last order was {days} days ago.", weight))

    reasons.sort(key=lambda r: -r["weight"])  # stable: equal weights keep the order above
    return ChurnResult(min(100, sum(r["weight"] for r in reasons)), reasons)


# ----------------------------------------------------------------------------- from the database

def local_today(clock: Clock | None = None) -> date:
    """Today in the configured zone, by `clock` (default: the system clock)."""
    return (clock or SYSTEM).today()


def local_date(value: datetime | date | None) -> date | None:
    """A stored time (UTC; SQLite hands it back without a zone) as a calendar date of the configured zone."""
    return SYSTEM.date_of(value)


async def _load_facts(conn, today: date, customer_ids: Iterable[int] | None) -> dict[int, CustomerFacts]:
    ids = None if customer_ids is None else list(customer_ids)

    def only(stmt, column):
        return stmt if ids is None else stmt.where(column.in_(ids))

    rows = await conn.execute(only(select(Customer.id), Customer.id))
    facts = {cid: CustomerFacts(today=today, customer_id=cid) for (cid,) in rows}

    rows = await conn.execute(only(select(Order.customer_id, Order.placed_at, Order.total_cents, Order.status),
                                   Order.customer_id))
    for cid, placed_at, total, status in rows:
        if cid in facts:
            facts[cid].orders.append(OrderFact(local_date(placed_at), total, status))

    invoices = (await conn.execute(only(select(Invoice.id, Invoice.customer_id, Invoice.due_date,
                                               Invoice.amount_cents, Invoice.invoice_number),
                                        Invoice.customer_id))).all()
    payments: dict[int, list[tuple[date, int]]] = {}
    pay_stmt = select(Payment.invoice_id, Payment.paid_at, Payment.amount_cents).join(
        Invoice, Invoice.id == Payment.invoice_id)
    for invoice_id, paid_at, amount in await conn.execute(only(pay_stmt, Invoice.customer_id)):
        payments.setdefault(invoice_id, []).append((paid_at, amount))
    for invoice_id, cid, due, amount, number in invoices:
        if cid not in facts:
            continue
        paid, paid_on = 0, None
        for paid_at, part in sorted(payments.get(invoice_id, [])):
            paid += part
            if paid_on is None and paid >= amount:
                paid_on = paid_at
        facts[cid].invoices.append(InvoiceFact(due, amount, paid, paid_on, number))

    rows = await conn.execute(only(select(Ticket.customer_id, Ticket.kind, Ticket.status, Ticket.created_at,
                                          Ticket.closed_at), Ticket.customer_id))
    last_contact: dict[int, date] = {}
    for cid, kind, status, created_at, closed_at in rows:
        if cid not in facts:
            continue
        created = local_date(created_at)
        if kind in COMPLAINT_KINDS:
            facts[cid].complaints.append(ComplaintFact(created, status, local_date(closed_at)))
        elif kind in CANCELLATION_KINDS:
            facts[cid].cancellations.append(created)
        last_contact[cid] = max(created, last_contact.get(cid, created))
    rows = await conn.execute(only(select(ContactEvent.customer_id, func.max(ContactEvent.at))
                                   .group_by(ContactEvent.customer_id), ContactEvent.customer_id))
    for cid, at in rows:
        if cid in facts and at is not None:
            day = local_date(at)
            last_contact[cid] = max(day, last_contact.get(cid, day))
    for cid, day in last_contact.items():
        facts[cid].last_contact = day
    rows = await conn.execute(only(select(Feedback.customer_id, Feedback.created_at, Feedback.ces, Feedback.nps,
                                          Feedback.csat).where(Feedback.anonymous.is_(False)), Feedback.customer_id))
    for cid, at, ces, nps, csat in rows:
        if cid in facts and at is not None:
            facts[cid].feedback.append((local_date(at), {"ces": ces, "nps": nps, "csat": csat}))
    return facts


async def facts_for(engine: AsyncEngine, customer_id: int, today: date | None = None) -> CustomerFacts:
    """The CustomerFacts of one customer (LookupError when there is no such customer)."""
    async with engine.connect() as conn:
        facts = await _load_facts(conn, today or local_today(), [customer_id])
    if customer_id not in facts:
        raise LookupError(f"no customer with id {customer_id}")
    return facts[customer_id]


async def refresh(engine: AsyncEngine, customer_id: int | None = None,
                  today: date | None = None, clock: Clock | None = None) -> dict[int, ChurnResult]:
    """Score one customer (or all), store the results in churn_scores (insert or update).

    `today` defaults to today by `clock` (default: the system clock), which also stamps computed_at.
    Returns {customer id: ChurnResult}. LookupError when the one customer asked for does not exist.
    """
    clock = clock or SYSTEM
    today = today or clock.today()
    now = clock.now()
    async with engine.begin() as conn:
        all_facts = await _load_facts(conn, today, None if customer_id is None else [customer_id])
        if customer_id is not None and customer_id not in all_facts:
            raise LookupError(f"no customer with id {customer_id}")
        results = {cid: score(f) for cid, f in all_facts.items()}
        rows = [{"customer_id": cid, "score": r.score, "reasons": r.reasons, "computed_at": now}
                for cid, r in results.items()]
        if rows:
            await _upsert_scores(conn, rows)
    return results


async def _upsert_scores(conn, rows: list[dict]) -> None:
    """INSERT ... ON CONFLICT (customer_id) DO UPDATE: safe when several processes refresh at once."""
    table = ChurnScore.__table__
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    elif conn.dialect.name == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    else:  # other databases: update the rows that exist, insert the others
        ids = [r["customer_id"] for r in rows]
        existing = set((await conn.execute(
            select(table.c.customer_id).where(table.c.customer_id.in_(ids)))).scalars())
        for row in rows:
            if row["customer_id"] in existing:
                await conn.execute(table.update().where(table.c.customer_id == row["customer_id"])
                                   .values(**{k: v for k, v in row.items() if k != "customer_id"}))
            else:
                await conn.execute(table.insert().values(**row))
        return
    stmt = insert(table)
    stmt = stmt.on_conflict_do_update(
        index_elements=[table.c.customer_id],
        set_={"score": stmt.excluded.score, "reasons": stmt.excluded.reasons,
              "computed_at": stmt.excluded.computed_at})
    await conn.execute(stmt, rows)


__all__ = [
    "ChurnResult", "ComplaintFact", "CustomerFacts", "InvoiceFact", "OrderFact", "WEIGHTS",
    "facts_for", "local_date", "local_today", "refresh", "score",
]
