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

from bot.records.models import (
    AuditEntry, ChurnScore, ContactEvent, ContactIdentity, Customer, Decision, Invoice,
    LoyaltyAccount, OneTimeCode, Order, Outbox, Promise, Reward, Ticket, TranscriptEntry,
)
from channels import registry

OTP_TTL = timedelta(minutes=10)
OTP_MAX_ATTEMPTS = 5
TIERS = ("bronze", "silver", "gold")


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


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
    ) -> Ticket:
        if promised_by is not None:
            promised_by = promised_by.astimezone(timezone.utc)  # SQLite keeps no offset
        async with self.session() as s, s.begin():
            ticket = Ticket(customer_id=customer_id, kind=kind, details=details, data=data or {},
                            order_id=order_id, channel=channel, promised_by=promised_by)
            s.add(ticket)
        return ticket

    async def tickets(self, customer_id: int, kind: str | None = None, status: str | None = None) -> list[Ticket]:
        async with self.session() as s:
            query = select(Ticket).where(Ticket.customer_id == customer_id)
            if kind:
                query = query.where(Ticket.kind == kind)
            if status:
                query = query.where(Ticket.status == status)
            return list((await s.execute(query.order_by(Ticket.created_at))).scalars())

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
    async def add_promise(self, conversation: str, customer_id: int | None, kind: str, text: str,
                          deadline: datetime) -> Promise:
        """Store what the customer was told; it replaces the conversation's earlier open promise."""
        async with self.session() as s, s.begin():
            await s.execute(
                update(Promise).where(Promise.conversation == conversation, Promise.status == "open")
                .values(status="superseded", settled_at=utcnow())
            )
            promise = Promise(conversation=conversation, customer_id=customer_id, kind=kind, text=text[:2000],
                              deadline=deadline.astimezone(timezone.utc))
            s.add(promise)
        return promise

    async def open_promises(self, conversation: str) -> list[Promise]:
        async with self.session() as s:
            row = await s.execute(select(Promise).where(Promise.conversation == conversation,
                                                        Promise.status == "open").order_by(Promise.id))
            promises = list(row.scalars())
        for promise in promises:
            promise.deadline = aware(promise.deadline)
        return promises

    async def promises(self, conversation: str) -> list[Promise]:
        async with self.session() as s:
            row = await s.execute(select(Promise).where(Promise.conversation == conversation).order_by(Promise.id))
            promises = list(row.scalars())
        for promise in promises:
            promise.deadline = aware(promise.deadline)
            promise.settled_at = aware(promise.settled_at)
        return promises

    async def settle_promises(self, conversation: str, now: datetime | None = None) -> int:
        """A person answered (at `now`, default: this moment): open promises are kept when in
        time, broken when late."""
        now = now or utcnow()
        settled = 0
        for promise in await self.open_promises(conversation):
            async with self.session() as s, s.begin():
                result = await s.execute(
                    update(Promise).where(Promise.id == promise.id, Promise.status == "open")
                    .values(status="kept" if now <= promise.deadline else "broken", settled_at=now)
                )
                settled += result.rowcount
        return settled

    async def note_on_ticket(self, ticket_id: int, **notes: Any) -> None:
        """Add what the customer said about an open ticket ("rather in the afternoon") to its data."""
        async with self.session() as s, s.begin():
            ticket = await s.get(Ticket, ticket_id)
            if ticket is not None:
                ticket.data = {**(ticket.data or {}), **notes}  # a new dict: JSON columns track assignment

    async def close_ticket(self, ticket_id: int, status: str = "closed") -> None:
        async with self.session() as s, s.begin():
            ticket = await s.get(Ticket, ticket_id)
            if ticket is not None and ticket.status == "open":
                ticket.status = status
                ticket.first_response_at = ticket.first_response_at or utcnow()
                if status == "closed":
                    ticket.closed_at = utcnow()

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
