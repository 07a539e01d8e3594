"""The records schema (SQLAlchemy 1.4 ORM). Money is stored in cents, times in UTC.

Migrations live in migrations/ (alembic); this module is their source of truth.
"""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import (
    JSON, Boolean, Column, Date, DateTime, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint,
)
from sqlalchemy.orm import declarative_base, relationship

Base = declarative_base()


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Customer(Base):
    __tablename__ = "customers"
    id = Column(Integer, primary_key=True)
    customer_number = Column(String(20), unique=True, nullable=False)
    name = Column(String(200), nullable=False)
    email = Column(String(254), unique=True)
    phone = Column(String(20), index=True)  # E.164
    telegram_user_id = Column(String(32), unique=True)
    web_login_id = Column(String(64), unique=True)
    postcode = Column(String(10))
    preferred_channel = Column(String(16), nullable=False, default="webchat")
    language = Column(String(2), nullable=False, default="nl")
    consent_proactive = Column(Boolean, nullable=False, default=False)
    segment = Column(String(16), nullable=False, default="regular")  # new, regular, gold, business
    created_at = Column(DateTime(timezone=True), nullable=False, default=utcnow)

    orders = relationship("Order", back_populates="customer", order_by="Order.placed_at")
    loyalty = relationship("LoyaltyAccount", uselist=False, back_populates="customer")

    @property
    def greeting_name(self) -> str:
        """How the bot addresses the customer: a person by first name, a business by its name
        ("Kantoorservice Hoekstra B.V.", not "Kantoorservice")."""
        if self.segment == "business" or not self.name.split():
            return self.name
        return self.name.split()[0]



class ContactIdentity(Base):
    """(channel, address) -> customer. Phone numbers count for sms and whatsapp."""

    __tablename__ = "contact_identities"
    __table_args__ = (UniqueConstraint("channel", "address"),)
    id = Column(Integer, primary_key=True)
    customer_id = Column(Integer, ForeignKey("customers.id", ondelete="CASCADE"), nullable=False, index=True)
    channel = Column(String(16), nullable=False)
    address = Column(String(254), nullable=False)
    verified = Column(Boolean, nullable=False, default=False)
    created_at = Column(DateTime(timezone=True), nullable=False, default=utcnow)


class Order(Base):
    __tablename__ = "orders"
    id = Column(Integer, primary_key=True)
    order_number = Column(String(12), unique=True, nullable=False)
    customer_id = Column(Integer, ForeignKey("customers.id", ondelete="CASCADE"), nullable=False, index=True)
    placed_at = Column(DateTime(timezone=True), nullable=False)
    status = Column(String(16), nullable=False)  # placed, shipped, delivered, cancelled, returned
    carrier = Column(String(40))
    tracking_code = Column(String(64))
    promised_date = Column(Date)
    delivered_at = Column(DateTime(timezone=True))
    total_cents = Column(Integer, nullable=False, default=0)

    customer = relationship("Customer", back_populates="orders")
    lines = relationship("OrderLine", back_populates="order", cascade="all, delete-orphan")


class OrderLine(Base):
    __tablename__ = "order_lines"
    id = Column(Integer, primary_key=True)
    order_id = Column(Integer, ForeignKey("orders.id", ondelete="CASCADE"), nullable=False, index=True)
    sku = Column(String(40), nullable=False)
    description = Column(String(200), nullable=False)
    quantity = Column(Integer, nullable=False, default=1)
    unit_price_cents = Column(Integer, nullable=False)

    order = relationship("Order", back_populates="lines")


class Invoice(Base):
    __tablename__ = "invoices"
    id = Column(Integer, primary_key=True)
    invoice_number = Column(String(20), unique=True, nullable=False)
    customer_id = Column(Integer, ForeignKey("customers.id", ondelete="CASCADE"), nullable=False, index=True)
    order_id = Column(Integer, ForeignKey("orders.id", ondelete="SET NULL"), index=True)
    issued_at = Column(Date, nullable=False)
    due_date = Column(Date, nullable=False)
    amount_cents = Column(Integer, nullable=False)

    payments = relationship("Payment", back_populates="invoice", cascade="all, delete-orphan")


class Payment(Base):
    __tablename__ = "payments"
    id = Column(Integer, primary_key=True)
    invoice_id = Column(Integer, ForeignKey("invoices.id", ondelete="CASCADE"), nullable=False, index=True)
    paid_at = Column(Date, nullable=False)
    amount_cents = Column(Integer, nullable=False)
    method = Column(String(20), nullable=False, default="ideal")

    invoice = relationship("Invoice", back_populates="payments")


class LoyaltyAccount(Base):
    __tablename__ = "loyalty_accounts"
    customer_id = Column(Integer, ForeignKey("customers.id", ondelete="CASCADE"), primary_key=True)
    points = Column(Integer, nullable=False, default=0)
    tier = Column(String(10), nullable=False, default="bronze")  # bronze, silver, gold

    customer = relationship("Customer", back_populates="loyalty")


class Reward(Base):
    """Rewards that give a direct advantage (seed: a loyalty programme fitting the customer)."""

    __tablename__ = "rewards"
    id = Column(Integer, primary_key=True)
    code = Column(String(20), unique=True, nullable=False)
    name_nl = Column(String(200), nullable=False)
    name_en = Column(String(200), nullable=False)
    points_cost = Column(Integer, nullable=False)
    min_tier = Column(String(10), nullable=False, default="bronze")


class Ticket(Base):
    """Complaints, callbacks, delivery problems, returns and requests waiting for a person."""

    __tablename__ = "tickets"
    id = Column(Integer, primary_key=True)
    customer_id = Column(Integer, ForeignKey("customers.id", ondelete="CASCADE"), nullable=False, index=True)
    order_id = Column(Integer, ForeignKey("orders.id", ondelete="SET NULL"))
    kind = Column(String(24), nullable=False)
    status = Column(String(12), nullable=False, default="open")  # open, answered, closed
    details = Column(Text, nullable=False, default="")
    data = Column(JSON, nullable=False, default=dict)
    channel = Column(String(16))
    created_at = Column(DateTime(timezone=True), nullable=False, default=utcnow)
    promised_by = Column(DateTime(timezone=True))
    first_response_at = Column(DateTime(timezone=True))
    closed_at = Column(DateTime(timezone=True))


class Decision(Base):
    """A refund, voucher, payment arrangement or discount granted, with who granted it."""

    __tablename__ = "decisions"
    id = Column(Integer, primary_key=True)
    customer_id = Column(Integer, ForeignKey("customers.id", ondelete="CASCADE"), nullable=False, index=True)
    order_id = Column(Integer, ForeignKey("orders.id", ondelete="SET NULL"))
    kind = Column(String(24), nullable=False)
    amount_cents = Column(Integer)
    instalments = Column(Integer)
    percent = Column(Integer)
    role = Column(String(24), nullable=False)
    actor = Column(String(64), nullable=False)
    reason = Column(Text, nullable=False, default="")
    created_at = Column(DateTime(timezone=True), nullable=False, default=utcnow)


class AuditEntry(Base):
    """Every mandate evaluation: who asked for what, and the answer."""

    __tablename__ = "audit_log"
    id = Column(Integer, primary_key=True)
    at = Column(DateTime(timezone=True), nullable=False, default=utcnow, index=True)
    customer_id = Column(Integer, ForeignKey("customers.id", ondelete="SET NULL"), index=True)
    actor_role = Column(String(24), nullable=False)
    actor = Column(String(64), nullable=False)
    decision = Column(String(24), nullable=False)
    request = Column(JSON, nullable=False)
    allowed = Column(Boolean, nullable=False)
    escalate_to = Column(String(24))
    reason = Column(Text, nullable=False)


class ContactEvent(Base):
    """The contact history: one row per conversation topic handled."""

    __tablename__ = "contact_history"
    id = Column(Integer, primary_key=True)
    customer_id = Column(Integer, ForeignKey("customers.id", ondelete="CASCADE"), nullable=False, index=True)
    at = Column(DateTime(timezone=True), nullable=False, default=utcnow)
    channel = Column(String(16), nullable=False)
    topic = Column(String(40), nullable=False)
    summary = Column(Text, nullable=False, default="")


class OneTimeCode(Base):
    """Second factor for sensitive actions: a code sent to a channel we already know."""

    __tablename__ = "one_time_codes"
    id = Column(Integer, primary_key=True)
    customer_id = Column(Integer, ForeignKey("customers.id", ondelete="CASCADE"), nullable=False, index=True)
    code_hash = Column(String(128), nullable=False)
    channel = Column(String(16), nullable=False)
    created_at = Column(DateTime(timezone=True), nullable=False, default=utcnow)
    expires_at = Column(DateTime(timezone=True), nullable=False)
    attempts = Column(Integer, nullable=False, default=0)
    used_at = Column(DateTime(timezone=True))


class Outbox(Base):
    """Messages the system must deliver to a customer outside the current chat (codes, updates)."""

    __tablename__ = "outbox"
    id = Column(Integer, primary_key=True)
    customer_id = Column(Integer, ForeignKey("customers.id", ondelete="CASCADE"), nullable=False, index=True)
    channel = Column(String(16), nullable=False)
    address = Column(String(254), nullable=False)
    body = Column(Text, nullable=False)
    kind = Column(String(24), nullable=False)
    created_at = Column(DateTime(timezone=True), nullable=False, default=utcnow)
    sent_at = Column(DateTime(timezone=True))


class ChurnScore(Base):
    __tablename__ = "churn_scores"
    customer_id = Column(Integer, ForeignKey("customers.id", ondelete="CASCADE"), primary_key=True)
    score = Column(Integer, nullable=False)
    reasons = Column(JSON, nullable=False)
    computed_at = Column(DateTime(timezone=True), nullable=False, default=utcnow)


class TranscriptEntry(Base):
    """Every message of a conversation (customer, bot, agent) with the channel it went over."""

    __tablename__ = "transcript"
    id = Column(Integer, primary_key=True)
    conversation = Column(String(40), nullable=False, index=True)
    customer_id = Column(Integer, ForeignKey("customers.id", ondelete="SET NULL"), index=True)
    sender = Column(String(12), nullable=False)  # customer, bot, agent, system
    channel = Column(String(16), nullable=False)
    text = Column(Text, nullable=False, default="")
    data = Column(JSON, nullable=False, default=dict)  # buttons, media, message id
    created_at = Column(DateTime(timezone=True), nullable=False, default=utcnow)


class Agent(Base):
    """A person who works in the agent desk. Role from the mandate table; created by an admin
    on the command line (`python -m bot.desk create-agent`)."""

    __tablename__ = "agents"
    id = Column(Integer, primary_key=True)
    username = Column(String(64), unique=True, nullable=False)
    name = Column(String(200), nullable=False)
    password_hash = Column(String(255), nullable=False)  # argon2id
    role = Column(String(24), nullable=False)            # a role of config/mandates.yml
    skills = Column(JSON, nullable=False, default=list)     # e.g. ["general", "finance"]
    languages = Column(JSON, nullable=False, default=list)  # e.g. ["nl", "en"]
    ui_language = Column(String(2), nullable=False, default="nl")
    active = Column(Boolean, nullable=False, default=True)
    created_at = Column(DateTime(timezone=True), nullable=False, default=utcnow)


class Promise(Base):
    """Something with a time in it that we told a customer: a person answers before 10:00, a
    colleague looks at the complaint by tomorrow 12:00, we call back between 14:00 and 15:00, an
    agent's "I'll get back to you tomorrow". Its state (open, kept, renewed, broken) is decided in
    one place: bot/promises/state.py."""

    __tablename__ = "promises"
    __table_args__ = (Index("ix_promises_status_deadline", "status", "deadline"),)
    id = Column(Integer, primary_key=True)
    conversation = Column(String(40), index=True)     # the conversation it was said in (None: from the desk)
    customer_id = Column(Integer, ForeignKey("customers.id", ondelete="SET NULL"), index=True)
    ticket_id = Column(Integer, ForeignKey("tickets.id", ondelete="SET NULL"), index=True)
    kind = Column(String(24), nullable=False)          # handoff_wait, complaint, callback, agent, ...
    text = Column(Text, nullable=False)                # what the customer was told
    deadline = Column(DateTime(timezone=True), nullable=False)
    channel = Column(String(16))                       # where the answer comes
    language = Column(String(5))
    queue = Column(String(32))                         # the people's queue that owes it
    owed_by = Column(String(64))                       # "queue:<name>", "agent:<username>" or "bot"
    status = Column(String(12), nullable=False, default="open")  # open, kept, renewed, broken
    renewed_from = Column(Integer, ForeignKey("promises.id", ondelete="SET NULL"))
    renewals = Column(Integer, nullable=False, default=0, server_default="0")  # in its chain, before it
    reason = Column(Text)                              # renewed/broken: why
    flagged_at = Column(DateTime(timezone=True))       # the desk was warned it is at risk
    answered_at = Column(DateTime(timezone=True))      # kept/broken by an answer: when it came
    window_start = Column(DateTime(timezone=True))     # a callback: the window opens (the deadline closes it)
    reminded_at = Column(DateTime(timezone=True))      # a callback: the reminder went out
    created_at = Column(DateTime(timezone=True), nullable=False, default=utcnow)
    settled_at = Column(DateTime(timezone=True))


class ProactiveMessage(Base):
    """Something we told or did before the customer asked (bot/promises/proactive.py): a late
    delivery, an invoice reminder, a reach-out task. One per (kind, ref): the row is written first,
    so two processes never send it twice."""

    __tablename__ = "proactive_messages"
    __table_args__ = (UniqueConstraint("kind", "ref", name="uq_proactive_kind_ref"),)
    id = Column(Integer, primary_key=True)
    customer_id = Column(Integer, ForeignKey("customers.id", ondelete="CASCADE"), nullable=False, index=True)
    kind = Column(String(24), nullable=False)     # late_delivery, invoice_reminder, reach_out
    ref = Column(String(40), nullable=False)      # what it is about: "order:104233", "invoice:F2026-00102"
    channel = Column(String(16))
    status = Column(String(12), nullable=False)   # sending, sent, failed, skipped, task
    detail = Column(Text)                         # why skipped or failed, the reasons of a task
    created_at = Column(DateTime(timezone=True), nullable=False, default=utcnow)


class Survey(Base):
    """A survey sent after a conversation ended (bot/feedback/survey.py): who was asked, when, why
    and how it ended. Kept for the fatigue rules and the response rate; its answers are in
    `feedback` (an anonymous answer is not linked back: `feedback.survey_id` stays empty)."""

    __tablename__ = "surveys"
    __table_args__ = (Index("ix_surveys_customer_sent", "customer_id", "sent_at"),)
    id = Column(Integer, primary_key=True)
    customer_id = Column(Integer, ForeignKey("customers.id", ondelete="CASCADE"), index=True)
    conversation = Column(String(40), index=True)
    channel = Column(String(16), nullable=False)
    language = Column(String(5), nullable=False)
    queue = Column(String(32))
    topic = Column(String(40))
    served_by = Column(String(8), nullable=False)      # bot, agent
    agent = Column(String(64))                         # the agent's username when a person served
    trigger = Column(String(12), nullable=False)       # close, handback, resolved, quiet
    status = Column(String(12), nullable=False, default="sent")  # sent, answered, stopped, left, expired, failed
    asked_nps = Column(Boolean, nullable=False, default=False)
    sent_at = Column(DateTime(timezone=True), nullable=False, default=utcnow)
    reminded_at = Column(DateTime(timezone=True))
    ended_at = Column(DateTime(timezone=True))


class Feedback(Base):
    """What a customer said about a conversation afterwards: CES (1-7), NPS (0-10), CSAT (1-5), each
    optional, and a comment. Anonymous: no customer, conversation, agent or survey, only channel,
    queue, topic, who served (bot/agent) and the ISO week."""

    __tablename__ = "feedback"
    id = Column(Integer, primary_key=True)
    customer_id = Column(Integer, ForeignKey("customers.id", ondelete="CASCADE"), index=True)
    conversation = Column(String(40))
    survey_id = Column(Integer, ForeignKey("surveys.id", ondelete="SET NULL"), index=True)
    ces = Column(Integer)
    nps = Column(Integer)
    csat = Column(Integer)
    comment = Column(Text, nullable=False, default="")
    channel = Column(String(16))
    queue = Column(String(32))
    topic = Column(String(40))
    served_by = Column(String(8))
    agent = Column(String(64))
    anonymous = Column(Boolean, nullable=False, default=False)
    week = Column(String(8), index=True)                # ISO week, "2026-W49"
    created_at = Column(DateTime(timezone=True), nullable=False, default=utcnow)


class InboxMessage(Base):
    """An inbound message, stored before its webhook is answered and processed from here
    (bot/pipeline/inbox.py). Unique per (channel, message id): a webhook retry is not stored twice.
    Times are seconds since the epoch (float), so ordering and leases compare exactly on
    every database. The payload (the message itself) is emptied once the message is done."""

    __tablename__ = "inbox"
    __table_args__ = (
        UniqueConstraint("channel", "message_id", name="uq_inbox_channel_message"),
        Index("ix_inbox_stream", "channel", "address", "status"),
        Index("ix_inbox_status_lease", "status", "lease_until"),
    )
    id = Column(Integer, primary_key=True)
    channel = Column(String(16), nullable=False)
    message_id = Column(String(80), nullable=False)
    address = Column(String(80), nullable=False)   # the sender: messages of one sender keep their order
    payload = Column(JSON, nullable=False, default=dict)
    received_at = Column(Float, nullable=False)
    status = Column(String(12), nullable=False, default="pending")  # pending, done, failed
    attempts = Column(Integer, nullable=False, default=0)
    lease_owner = Column(String(40))
    lease_until = Column(Float)   # while pending: leased until, or not to be tried before
    interim_at = Column(Float)    # when the customer was told the message is kept
    last_error = Column(String(200))
    done_at = Column(Float)
