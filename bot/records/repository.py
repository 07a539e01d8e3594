"""The one way the actions (and later the desk) read and write customer records.

Built with an AsyncEngine (see `bot.shared.db.create_engine`); every method is a short transaction.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, Iterable

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.orm import selectinload, sessionmaker

from bot.promises import state
from bot.records.models import (
    AuditEntry, ChurnScore, ContactEvent, ContactIdentity, Customer, Decision, Feedback, Invoice,
    LoyaltyAccount, OneTimeCode, Order, Outbox, Promise, Reward, Survey, Ticket, TranscriptEntry,
)
from channels import registry

OTP_TTL = timedelta(minutes=10)
OTP_MAX_ATTEMPTS = 5
TIERS = ("bronze", "silver", "gold")


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def _utc(value: datetime | None) -> datetime | None:
    """What is stored: UTC (SQLite keeps no offset)."""
    return value.astimezone(timezone.utc) if value is not None else None


def _aware_promise(promise: Promise) -> Promise:
    for column in ("deadline", "settled_at", "flagged_at", "answered_at", "created_at", "window_start", "reminded_at"):
        setattr(promise, column, aware(getattr(promise, column)))
    return promise


def aware(value: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; they were stored as UTC."""
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value


def jsonable(value: Any) -> Any:
    """Decimals, dates and tuples made fit for a JSON column (audit requests, ticket data)."""
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    return value


def cents(amount: Decimal | float | int | str) -> int:
    return int((Decimal(str(amount)) * 100).quantize(Decimal("1")))


@dataclass
class InvoiceView:
    invoice_number: str
    order_number: str | None
    issued_at: date
    due_date: date
    amount_cents: int
    paid_cents: int
    last_paid_at: date | None

    @property
    def open_cents(self) -> int:
        return max(0, self.amount_cents - self.paid_cents)

    def status(self, today: date) -> str:
        if self.open_cents == 0:
            return "paid"
        if self.due_date < today:
            return "overdue"
        return "partially_paid" if self.paid_cents else "open"


class Records:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._sessions = sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)

    def session(self) -> AsyncSession:
        return self._sessions()

    # -- who is this? -------------------------------------------------------------------------
    async def customer(self, customer_id: int) -> Customer | None:
        async with self.session() as s:
            return await s.get(Customer, customer_id, options=[selectinload(Customer.loyalty)])

    async def by_identity(self, channel: str, address: str) -> Customer | None:
        async with self.session() as s:
            row = await s.execute(
                select(Customer).join(ContactIdentity, ContactIdentity.customer_id == Customer.id)
                .where(ContactIdentity.channel == channel, ContactIdentity.address == address)
            )
            return row.scalars().first()

    async def by_customer_number(self, number: str) -> Customer | None:
        async with self.session() as s:
            row = await s.execute(select(Customer).where(Customer.customer_number == number.upper()))
            return row.scalars().first()

    async def by_email(self, email: str) -> Customer | None:
        async with self.session() as s:
            row = await s.execute(select(Customer).where(func.lower(Customer.email) == email.lower()))
            return row.scalars().first()

    async def by_order_and_postcode(self, order_number: str, postcode: str) -> Customer | None:
        wanted = postcode.replace(" ", "").upper()
        async with self.session() as s:
            row = await s.execute(
                select(Customer).join(Order, Order.customer_id == Customer.id)
                .where(Order.order_number == order_number)
            )
            customer = row.scalars().first()
        if customer and (customer.postcode or "").replace(" ", "").upper() == wanted:
            return customer
        return None

    async def by_phone(self, phone: str) -> Customer | None:
        async with self.session() as s:
            row = await s.execute(select(Customer).where(Customer.phone == phone))
            return row.scalars().first()

    async def add_identity(self, customer_id: int, channel: str, address: str) -> None:
        """Link (channel, address) to the customer, verified (the caller checked it)."""
        async with self.session() as s, s.begin():
            row = await s.execute(select(ContactIdentity).where(
                ContactIdentity.channel == channel, ContactIdentity.address == address))
            identity = row.scalars().first()
            if identity is None:
                s.add(ContactIdentity(customer_id=customer_id, channel=channel, address=address, verified=True))
            else:
                identity.customer_id, identity.verified = customer_id, True
            if channel == "telegram":
                customer = await s.get(Customer, customer_id)
                customer.telegram_user_id = address

    # -- transcript ------------------------------------------------------------------------------
    async def add_transcript(self, conversation: str, customer_id: int | None, sender: str, channel: str,
                             text: str, data: dict | None = None) -> int:
        """Write one transcript row; returns its id."""
        async with self.session() as s, s.begin():
            entry = TranscriptEntry(conversation=conversation, customer_id=customer_id, sender=sender,
                                    channel=channel, text=text, data=data or {})
            s.add(entry)
            await s.flush()
            return entry.id

    async def mark_delivery(self, ids: Iterable[int], status: str, reason: str = "") -> None:
        """Record on transcript rows whether they reached the customer (bot/delivery/queue.py):
        data.delivery = pending | sent | failed, data.delivery_error = the reason of a failure."""
        ids = list(ids)
        if not ids:
            return
        async with self.session() as s, s.begin():
            rows = await s.execute(select(TranscriptEntry).where(TranscriptEntry.id.in_(ids)))
            for entry in rows.scalars():
                data = {k: v for k, v in (entry.data or {}).items() if k not in ("delivery", "delivery_error")}
                data["delivery"] = status
                if reason:
                    data["delivery_error"] = reason[:300]
                entry.data = data

    async def transcript(self, conversation: str, limit: int = 200) -> list[dict[str, Any]]:
        async with self.session() as s:
            row = await s.execute(select(TranscriptEntry).where(TranscriptEntry.conversation == conversation)
                                  .order_by(TranscriptEntry.id.desc()).limit(limit))
            entries = list(row.scalars())[::-1]
        return [{"sender": e.sender, "text": e.text, "channel": e.channel, "at": aware(e.created_at).isoformat(),
                 **(e.data or {})} for e in entries]

    async def move_transcript(self, source: str, target: str, customer_id: int) -> None:
        async with self.session() as s, s.begin():
            await s.execute(update(TranscriptEntry).where(TranscriptEntry.conversation == source)
                            .values(conversation=target, customer_id=customer_id))

    # -- orders, invoices, loyalty ---------------------------------------------------------------
    async def order(self, customer_id: int, order_number: str) -> Order | None:
        async with self.session() as s:
            row = await s.execute(
                select(Order).options(selectinload(Order.lines))
                .where(Order.order_number == order_number, Order.customer_id == customer_id)
            )
            return row.scalars().first()

    async def order_by_number(self, order_number: str) -> Order | None:
        """An order by its number alone: only for what an order number + postcode claim may see."""
        async with self.session() as s:
            row = await s.execute(select(Order).where(Order.order_number == order_number).limit(1))
            return row.scalars().first()

    async def recent_orders(self, customer_id: int, limit: int = 5) -> list[Order]:
        async with self.session() as s:
            row = await s.execute(
                select(Order).options(selectinload(Order.lines)).where(Order.customer_id == customer_id)
                .order_by(Order.placed_at.desc()).limit(limit)
            )
            return list(row.scalars())

    async def invoices(self, customer_id: int) -> list[InvoiceView]:
        async with self.session() as s:
            row = await s.execute(
                select(Invoice, Order.order_number).outerjoin(Order, Order.id == Invoice.order_id)
                .options(selectinload(Invoice.payments))
                .where(Invoice.customer_id == customer_id).order_by(Invoice.issued_at.desc())
            )
            out = []
            for invoice, order_number in row.all():
                paid = sum(p.amount_cents for p in invoice.payments)
                last = max((p.paid_at for p in invoice.payments), default=None)
                out.append(InvoiceView(invoice.invoice_number, order_number, invoice.issued_at,
                                       invoice.due_date, invoice.amount_cents, paid, last))
            return out

    async def loyalty(self, customer_id: int) -> tuple[LoyaltyAccount | None, list[Reward]]:
        """The account and the rewards the customer can take right now."""
        async with self.session() as s:
            account = await s.get(LoyaltyAccount, customer_id)
            rewards = list((await s.execute(select(Reward).order_by(Reward.points_cost))).scalars())
        if account is None:
            return None, []
        rank = TIERS.index(account.tier) if account.tier in TIERS else 0
        available = [
            r for r in rewards
            if r.points_cost <= account.points and TIERS.index(r.min_tier if r.min_tier in TIERS else "bronze") <= rank
        ]
        return account, available

    # -- tickets, decisions, audit ------------------------------------------------------------------
    async def create_ticket(
        self, customer_id: int, kind: str, *, details: str = "", data: dict | None = None,
        order_id: int | None = None, channel: str | None = None, promised_by: datetime | None = None,
        conversation: str | None = None, language: str | None = None, queue: str | None = None,
        answer_channel: str | None = None, promise_text: str = "", now: datetime | None = None,
        window_start: datetime | None = None,
    ) -> Ticket:
        """A ticket for a person. With `promised_by` it is also a promise to the customer (one
        transaction): `promise_text` (what they were told; "{ticket}" is filled in) with the
        deadline, the channel the answer comes on and the queue that owes it; kept when the
        ticket is answered, watched until then (bot/promises)."""
        if promised_by is not None:
            promised_by = promised_by.astimezone(timezone.utc)  # SQLite keeps no offset
        async with self.session() as s, s.begin():
            ticket = Ticket(customer_id=customer_id, kind=kind, details=details, data=data or {},
                            order_id=order_id, channel=channel, promised_by=promised_by)
            s.add(ticket)
            if promised_by is not None:
                await s.flush()  # the ticket's id, for the promise and its text
                text = (promise_text or f"{kind} #{{ticket}}: {promised_by.isoformat()}").replace(
                    "{ticket}", str(ticket.id))
                s.add(Promise(conversation=conversation, customer_id=customer_id, ticket_id=ticket.id, kind=kind,
                              text=text[:2000], deadline=promised_by, channel=answer_channel or channel,
                              language=language, queue=queue, owed_by=f"queue:{queue}" if queue else None,
                              window_start=_utc(window_start), created_at=_utc(now or utcnow())))
        return ticket

    async def tickets(self, customer_id: int, kind: str | None = None, status: str | None = None) -> list[Ticket]:
        async with self.session() as s:
            query = select(Ticket).where(Ticket.customer_id == customer_id)
            if kind:
                query = query.where(Ticket.kind == kind)
            if status:
                query = query.where(Ticket.status == status)
            return list((await s.execute(query.order_by(Ticket.created_at))).scalars())

    async def callback_windows(self, after: datetime) -> list[datetime]:
        """The starts of the windows booked by open callbacks (all customers) ending after `after`:
        what a window's capacity counts (bot/promises/callbacks.py)."""
        async with self.session() as s:
            rows = (await s.execute(select(Ticket.data).where(Ticket.kind == "callback", Ticket.status == "open"))).scalars()
            starts = []
            for data in rows:
                try:
                    start = datetime.fromisoformat((data or {}).get("window_start") or "")
                except (TypeError, ValueError):
                    continue
                if start.tzinfo is not None and start >= after - timedelta(hours=24):
                    starts.append(start)
            return starts

    async def tickets_of_kind(self, kind: str, status: str = "open", limit: int = 200) -> list[Ticket]:
        """Tickets of one kind for all customers (the desk's task lists), oldest first."""
        async with self.session() as s:
            return list((await s.execute(select(Ticket).where(Ticket.kind == kind, Ticket.status == status)
                                         .order_by(Ticket.created_at).limit(limit))).scalars())

    async def callbacks(self, status: str = "open") -> list[Ticket]:
        """Callback tickets (the desk's list), soonest window first."""
        async with self.session() as s:
            rows = list((await s.execute(select(Ticket).where(Ticket.kind == "callback", Ticket.status == status)
                                         .order_by(Ticket.promised_by))).scalars())
        for ticket in rows:
            ticket.promised_by = aware(ticket.promised_by)
        return rows

    async def ticket(self, ticket_id: int) -> Ticket | None:
        async with self.session() as s:
            ticket = await s.get(Ticket, ticket_id)
        if ticket is not None:
            ticket.promised_by = aware(ticket.promised_by)
        return ticket

    async def refunded_cents(self, order_id: int) -> int:
        """What was already refunded on an order (by the bot or a person)."""
        async with self.session() as s:
            total = await s.scalar(select(func.coalesce(func.sum(Decision.amount_cents), 0))
                                   .where(Decision.order_id == order_id, Decision.kind == "refund"))
        return int(total or 0)

    async def decide(
        self, *, customer_id: int, verdict_record: dict[str, Any], actor_role: str, actor: str,
        grant: dict[str, Any] | None,
    ) -> Decision | None:
        """Write the audit entry for a mandate evaluation and, when granted, the decision, atomically."""
        async with self.session() as s, s.begin():
            s.add(AuditEntry(
                customer_id=customer_id, actor_role=actor_role, actor=actor,
                decision=verdict_record["decision"], request=verdict_record["request"],
                allowed=verdict_record["allowed"],
                escalate_to=None if verdict_record["allowed"] else verdict_record.get("lowest_role"),
                reason=verdict_record.get("explanation", ""),
            ))
            if grant is None:
                return None
            decision = Decision(customer_id=customer_id, role=actor_role, actor=actor, **grant)
            s.add(decision)
        return decision

    # -- promises ("a colleague answers before 10:00") -----------------------------------------------
    async def add_promise(self, conversation: str | None, customer_id: int | None, kind: str, text: str,
                          deadline: datetime, *, channel: str | None = None, language: str | None = None,
                          queue: str | None = None, owed_by: str | None = None, ticket_id: int | None = None,
                          now: datetime | None = None, reason: str = "a new estimate",
                          window_start: datetime | None = None) -> Promise:
        """Store what the customer was told. A new time for the same thing (the wait told again,
        the same ticket) renews the open promise before it (or finds it already broken); the
        same time again leaves it as it is."""
        now = now or utcnow()
        deadline = deadline.astimezone(timezone.utc)
        async with self.session() as s, s.begin():
            query = select(Promise).where(Promise.kind == kind, Promise.status.in_(state.UNSETTLED))
            if ticket_id is not None:
                query = query.where(Promise.ticket_id == ticket_id)
            elif conversation is not None:
                query = query.where(Promise.conversation == conversation, Promise.ticket_id.is_(None))
            else:
                query = query.where(False)
            before = list((await s.execute(query.order_by(Promise.id))).scalars())
            for promise in before:
                if aware(promise.deadline) == deadline:
                    promise.deadline = aware(promise.deadline)
                    return promise
            renewed_from, renewals = None, 0
            for promise in before:
                outcome = state.renewed(aware(promise.deadline), now, reason)
                await s.execute(update(Promise).where(Promise.id == promise.id,
                                                      Promise.status.in_(state.UNSETTLED))
                                .values(status=outcome.status, settled_at=_utc(outcome.settled_at),
                                        reason=outcome.reason))
                renewed_from, renewals = promise.id, promise.renewals + 1
            promise = Promise(conversation=conversation, customer_id=customer_id, kind=kind, text=text[:2000],
                              deadline=deadline, channel=channel, language=language, queue=queue,
                              owed_by=owed_by, ticket_id=ticket_id, renewed_from=renewed_from, renewals=renewals,
                              created_at=_utc(now), window_start=_utc(window_start))
            s.add(promise)
        return promise

    async def promise(self, promise_id: int) -> Promise | None:
        async with self.session() as s:
            promise = await s.get(Promise, promise_id)
        return _aware_promise(promise) if promise else None

    async def open_promises(self, conversation: str) -> list[Promise]:
        async with self.session() as s:
            row = await s.execute(select(Promise).where(Promise.conversation == conversation,
                                                        Promise.status.in_(state.UNSETTLED)).order_by(Promise.id))
            return [_aware_promise(p) for p in row.scalars()]

    async def promises(self, conversation: str | None = None, customer_id: int | None = None) -> list[Promise]:
        async with self.session() as s:
            query = select(Promise)
            if conversation is not None:
                query = query.where(Promise.conversation == conversation)
            if customer_id is not None:
                query = query.where(Promise.customer_id == customer_id)
            return [_aware_promise(p) for p in (await s.execute(query.order_by(Promise.id))).scalars()]

    async def promises_of_ticket(self, ticket_id: int) -> list[Promise]:
        async with self.session() as s:
            row = await s.execute(select(Promise).where(Promise.ticket_id == ticket_id).order_by(Promise.id))
            return [_aware_promise(p) for p in row.scalars()]

    async def unsettled_promises(self, due_before: datetime, limit: int = 500) -> list[Promise]:
        """Open (or being renewed) promises with a deadline before `due_before`, soonest first:
        what the scheduler looks at."""
        async with self.session() as s:
            row = await s.execute(select(Promise).where(Promise.status.in_(state.UNSETTLED),
                                                        Promise.deadline <= due_before.astimezone(timezone.utc))
                                  .order_by(Promise.deadline).limit(limit))
            return [_aware_promise(p) for p in row.scalars()]

    async def _settle(self, promise_id: int, outcome: "state.Outcome", *, from_states=state.UNSETTLED) -> bool:
        async with self.session() as s, s.begin():
            result = await s.execute(
                update(Promise).where(Promise.id == promise_id, Promise.status.in_(from_states))
                .values(status=outcome.status, settled_at=_utc(outcome.settled_at), reason=outcome.reason,
                        answered_at=_utc(outcome.answered_at))
            )
        return result.rowcount == 1

    async def settle_promises(self, conversation: str, now: datetime | None = None,
                              kinds: Iterable[str] | None = None) -> int:
        """A person answered in the conversation (at `now`, default: this moment): its open
        promises (of `kinds`, default all) are kept when in time, broken when late."""
        now = now or utcnow()
        kinds = set(kinds) if kinds is not None else None
        settled = 0
        for promise in await self.open_promises(conversation):
            if kinds is None or promise.kind in kinds:
                settled += await self._settle(promise.id, state.answered(promise.deadline, now))
        return settled

    async def answer_ticket_promises(self, ticket_id: int, now: datetime | None = None) -> int:
        """The ticket got its answer: its open promise is kept (or broken when late)."""
        now = now or utcnow()
        async with self.session() as s:
            row = await s.execute(select(Promise).where(Promise.ticket_id == ticket_id,
                                                        Promise.status.in_(state.UNSETTLED)))
            promises = [_aware_promise(p) for p in row.scalars()]
        return sum([await self._settle(p.id, state.answered(p.deadline, now)) for p in promises])

    async def expire_promise(self, promise_id: int, now: datetime, reason: str | None = None) -> bool:
        """Broken: the deadline passed and nobody answered or told the customer a new time."""
        promise = await self.promise(promise_id)
        if promise is None or promise.status not in state.UNSETTLED:
            return False
        outcome = state.expired(promise.deadline, now, reason or "deadline passed without an answer")
        return bool(outcome) and await self._settle(promise_id, outcome)

    async def flag_promise(self, promise_id: int, now: datetime) -> bool:
        """The desk was warned that this promise is at risk (once)."""
        async with self.session() as s, s.begin():
            result = await s.execute(update(Promise).where(Promise.id == promise_id, Promise.flagged_at.is_(None),
                                                           Promise.status.in_(state.UNSETTLED))
                                     .values(flagged_at=_utc(now)))
        return result.rowcount == 1

    async def mark_reminded(self, promise_id: int, now: datetime) -> bool:
        """The callback's reminder goes out (once)."""
        async with self.session() as s, s.begin():
            result = await s.execute(update(Promise).where(Promise.id == promise_id, Promise.reminded_at.is_(None),
                                                           Promise.status.in_(state.UNSETTLED))
                                     .values(reminded_at=_utc(now)))
        return result.rowcount == 1

    async def unmark_reminded(self, promise_id: int) -> None:
        async with self.session() as s, s.begin():
            await s.execute(update(Promise).where(Promise.id == promise_id).values(reminded_at=None))

    async def claim_renewal(self, promise_id: int) -> bool:
        """This process tells the customer the new time (no other process does, and nobody
        settles it meanwhile)."""
        async with self.session() as s, s.begin():
            result = await s.execute(update(Promise).where(Promise.id == promise_id, Promise.status == state.OPEN)
                                     .values(status=state.RENEWING))
        return result.rowcount == 1

    async def release_renewal(self, promise_id: int) -> None:
        """Telling the customer failed: open again (tried again, or broken at its deadline)."""
        async with self.session() as s, s.begin():
            await s.execute(update(Promise).where(Promise.id == promise_id, Promise.status == state.RENEWING)
                            .values(status=state.OPEN))

    async def renew_promise(self, promise_id: int, now: datetime, deadline: datetime, text: str,
                            reason: str, window_start: datetime | None = None) -> Promise | None:
        """The customer was told `text` (the new time `deadline`, with `reason`) at `now`: the
        claimed promise is renewed (or was already broken) and the new time is a promise of its own."""
        async with self.session() as s, s.begin():
            old = await s.get(Promise, promise_id)
            if old is None or old.status != state.RENEWING:
                return None
            outcome = state.renewed(aware(old.deadline), now, reason)
            old.status, old.settled_at, old.reason = outcome.status, _utc(outcome.settled_at), outcome.reason
            promise = Promise(conversation=old.conversation, customer_id=old.customer_id, kind=old.kind,
                              text=text[:2000], deadline=deadline.astimezone(timezone.utc), channel=old.channel,
                              language=old.language, queue=old.queue, owed_by=old.owed_by, ticket_id=old.ticket_id,
                              renewed_from=old.id, renewals=old.renewals + 1, created_at=_utc(now),
                              window_start=_utc(window_start))
            s.add(promise)
            if old.ticket_id is not None:  # the ticket shows the time the customer was last told
                ticket = await s.get(Ticket, old.ticket_id)
                if ticket is not None:
                    ticket.promised_by = promise.deadline
                    if window_start is not None:  # a callback: its new window
                        ticket.data = {**(ticket.data or {}), "window_start": window_start.isoformat(),
                                       "window_end": deadline.isoformat()}
        return _aware_promise(promise)

    async def promises_between(self, start: datetime, end: datetime) -> list[Promise]:
        """Promises whose deadline falls in [start, end): the reports' rows."""
        async with self.session() as s:
            row = await s.execute(select(Promise).where(Promise.deadline >= start.astimezone(timezone.utc),
                                                        Promise.deadline < end.astimezone(timezone.utc))
                                  .order_by(Promise.deadline))
            return [_aware_promise(p) for p in row.scalars()]

    async def surveys_between(self, start: datetime, end: datetime) -> list[Survey]:
        """Surveys sent in [start, end): the feedback report's response rate."""
        async with self.session() as s:
            row = await s.execute(select(Survey).where(Survey.sent_at >= start.astimezone(timezone.utc),
                                                       Survey.sent_at < end.astimezone(timezone.utc))
                                  .order_by(Survey.sent_at, Survey.id))
            surveys = list(row.scalars())
        for survey in surveys:
            for column in ("sent_at", "reminded_at", "ended_at"):
                setattr(survey, column, aware(getattr(survey, column)))
        return surveys

    async def feedback_between(self, start: datetime, end: datetime) -> list[Feedback]:
        """Feedback given in [start, end), anonymous answers included: the feedback report's rows,
        each with the `customer_number` of its customer (None when anonymous)."""
        async with self.session() as s:
            row = await s.execute(select(Feedback, Customer.customer_number)
                                  .outerjoin(Customer, Customer.id == Feedback.customer_id)
                                  .where(Feedback.created_at >= start.astimezone(timezone.utc),
                                         Feedback.created_at < end.astimezone(timezone.utc))
                                  .order_by(Feedback.created_at, Feedback.id))
            answers = []
            for answer, number in row.all():
                answer.created_at = aware(answer.created_at)
                answer.customer_number = None if answer.anonymous else number
                answers.append(answer)
        return answers

    async def churn_watch(self, min_score: int = 1, limit: int = 100,
                          task_kinds: Iterable[str] = ("reach_out",)) -> list[dict[str, Any]]:
        """Customers by churn score (highest first, at least `min_score`), each with the tasks made
        for them (`task_kinds`, open or done, newest first) and their last named feedback."""
        kinds = tuple(task_kinds)
        async with self.session() as s:
            scored = (await s.execute(
                select(ChurnScore, Customer).join(Customer, Customer.id == ChurnScore.customer_id)
                .where(ChurnScore.score >= min_score)
                .order_by(ChurnScore.score.desc(), Customer.customer_number).limit(limit))).all()
            ids = [score.customer_id for score, _ in scored]
            tasks: dict[int, list[Ticket]] = {}
            last_feedback: dict[int, Feedback] = {}
            if ids:
                for ticket in (await s.execute(select(Ticket).where(Ticket.customer_id.in_(ids), Ticket.kind.in_(kinds))
                                               .order_by(Ticket.created_at.desc(), Ticket.id.desc()))).scalars():
                    tasks.setdefault(ticket.customer_id, []).append(ticket)
                for answer in (await s.execute(select(Feedback).where(Feedback.customer_id.in_(ids),
                                                                      Feedback.anonymous.is_(False))
                                               .order_by(Feedback.created_at, Feedback.id))).scalars():
                    last_feedback[answer.customer_id] = answer
        rows = []
        for score, customer in scored:
            for ticket in tasks.get(customer.id, []):
                ticket.created_at, ticket.closed_at = aware(ticket.created_at), aware(ticket.closed_at)
            answer = last_feedback.get(customer.id)
            if answer is not None:
                answer.created_at = aware(answer.created_at)
            rows.append({"score": score, "customer": customer, "tasks": tasks.get(customer.id, []),
                         "feedback": answer})
        return rows

    async def reschedule_ticket(self, ticket_id: int, promised_by: datetime, **notes: Any) -> None:
        """A new time on an open ticket (a callback tried again), with notes in its data."""
        async with self.session() as s, s.begin():
            ticket = await s.get(Ticket, ticket_id)
            if ticket is not None:
                ticket.promised_by = _utc(promised_by)
                ticket.data = {**(ticket.data or {}), **notes}

    async def note_on_ticket(self, ticket_id: int, **notes: Any) -> None:
        """Add what the customer said about an open ticket ("rather in the afternoon") to its data."""
        async with self.session() as s, s.begin():
            ticket = await s.get(Ticket, ticket_id)
            if ticket is not None:
                ticket.data = {**(ticket.data or {}), **notes}  # a new dict: JSON columns track assignment

    async def close_ticket(self, ticket_id: int, status: str = "closed", now: datetime | None = None) -> None:
        """Answered or closed by a person: its promise is kept (or broken when late)."""
        now = now or utcnow()
        async with self.session() as s, s.begin():
            ticket = await s.get(Ticket, ticket_id)
            if ticket is not None and ticket.status == "open":
                ticket.status = status
                ticket.first_response_at = ticket.first_response_at or _utc(now)
                if status == "closed":
                    ticket.closed_at = _utc(now)
        await self.answer_ticket_promises(ticket_id, now)

    async def decisions(self, customer_id: int) -> list[Decision]:
        async with self.session() as s:
            row = await s.execute(select(Decision).where(Decision.customer_id == customer_id).order_by(Decision.id))
            return list(row.scalars())

    async def contact(self, customer_id: int, channel: str, topic: str, summary: str = "") -> None:
        async with self.session() as s, s.begin():
            s.add(ContactEvent(customer_id=customer_id, channel=channel, topic=topic, summary=summary))

    async def churn(self, customer_id: int) -> ChurnScore | None:
        async with self.session() as s:
            return await s.get(ChurnScore, customer_id)

    # -- preferences -------------------------------------------------------------------------------
    async def update_preferences(self, customer_id: int, **changes: Any) -> Customer:
        """Change preferred_channel, language, consent_proactive, email or phone; identities follow."""
        allowed = {"preferred_channel", "language", "consent_proactive", "email", "phone"}
        unknown = set(changes) - allowed
        if unknown:
            raise ValueError(f"cannot change {sorted(unknown)}")
        async with self.session() as s, s.begin():
            customer = await s.get(Customer, customer_id)
            for key, value in changes.items():
                setattr(customer, key, value)
            for field in ("email", "phone"):  # the channels it identifies the customer on follow
                if field in changes:
                    await self._replace_identities(s, customer_id, registry.identified_by(field), changes[field])
        return customer

    @staticmethod
    async def _replace_identities(s: AsyncSession, customer_id: int, channels: Iterable[str], address: str) -> None:
        for channel in channels:
            rows = await s.execute(select(ContactIdentity).where(
                ContactIdentity.customer_id == customer_id, ContactIdentity.channel == channel))
            for identity in rows.scalars():
                await s.delete(identity)
            await s.flush()
            s.add(ContactIdentity(customer_id=customer_id, channel=channel, address=address, verified=False))

    # -- second factor -----------------------------------------------------------------------------
    @staticmethod
    def _hash(code: str, customer_id: int) -> str:
        return hashlib.sha256(f"{customer_id}:{code}".encode()).hexdigest()

    async def issue_code(self, customer: Customer, channel: str, address: str, body: str,
                         valid_for: timedelta = OTP_TTL) -> str:
        """Create a one-time code and queue it for delivery on a channel we already know."""
        code = f"{secrets.randbelow(10_000):04d}"
        async with self.session() as s, s.begin():
            s.add(OneTimeCode(customer_id=customer.id, code_hash=self._hash(code, customer.id),
                              channel=channel, expires_at=utcnow() + valid_for))
            s.add(Outbox(customer_id=customer.id, channel=channel, address=address,
                         body=body.format(code=code), kind="one_time_code"))
        return code

    async def check_code(self, customer_id: int, code: str) -> bool:
        async with self.session() as s, s.begin():
            row = await s.execute(
                select(OneTimeCode).where(OneTimeCode.customer_id == customer_id, OneTimeCode.used_at.is_(None))
                .order_by(OneTimeCode.id.desc()).limit(1)
            )
            otp = row.scalars().first()
            if otp is None or aware(otp.expires_at) < utcnow() or otp.attempts >= OTP_MAX_ATTEMPTS:
                return False
            otp.attempts += 1
            if hmac.compare_digest(otp.code_hash, self._hash(code.strip(), customer_id)):
                otp.used_at = utcnow()
                return True
            return False

    async def pending_outbox(self, channels: Iterable[str], limit: int = 20) -> list[Outbox]:
        async with self.session() as s:
            row = await s.execute(select(Outbox).where(Outbox.sent_at.is_(None), Outbox.channel.in_(list(channels)))
                                  .order_by(Outbox.id).limit(limit))
            return list(row.scalars())

    async def claim_outbox(self, outbox_id: int) -> bool:
        """Mark one message as being sent; False when another process got it first."""
        async with self.session() as s, s.begin():
            result = await s.execute(update(Outbox).where(Outbox.id == outbox_id, Outbox.sent_at.is_(None))
                                     .values(sent_at=utcnow()))
            return result.rowcount == 1

    async def release_outbox(self, outbox_id: int) -> None:
        async with self.session() as s, s.begin():
            await s.execute(update(Outbox).where(Outbox.id == outbox_id).values(sent_at=None))

    async def outbox(self, customer_id: int | None = None, limit: int = 50) -> list[Outbox]:
        async with self.session() as s:
            query = select(Outbox).order_by(Outbox.id.desc()).limit(limit)
            if customer_id is not None:
                query = query.where(Outbox.customer_id == customer_id)
            return list((await s.execute(query)).scalars())
