"""Decisions (refunds, vouchers, payment arrangements, retention discounts): one implementation
for the bot (actions/handlers.py) and the desk (bot/desk/routes.py).

A decision is asked for by a role (the bot, or an agent's role), evaluated against the mandate
table (bot/policy/mandate.py), and always recorded: the audit entry of the evaluation, plus the
Decision row when it is granted, in one transaction (`Records.decide`). "Today" and the order's
age come from the one clock (bot/policy/clock.py) in the zone of config/service_levels.yml.

    decisions = Decisions(records, mandates, clock)
    request = await decisions.request("refund", customer, amount_cents=1995, order=order)
    outcome = await decisions.decide("bot", "bot", customer.id, request, order_id=order.id,
                                     reason="requested in chat")
    outcome.allowed, outcome.verdict.lowest_role, outcome.decision
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from bot.policy.clock import SYSTEM, Clock
from bot.policy.mandate import MandateRequest, MandateTable, Verdict
from bot.records.models import Customer, Decision, Order
from bot.records.repository import Records, aware, cents, jsonable

# the decisions the bot and the desk take; the API name is also Decision.kind
KINDS = ("refund", "goodwill_voucher", "payment_arrangement", "retention_discount")
MAX_REASON = 1000


@dataclass(frozen=True)
class Outcome:
    verdict: Verdict
    decision: Decision | None  # the recorded decision when granted

    @property
    def allowed(self) -> bool:
        return self.verdict.allowed


class Decisions:
    def __init__(self, records: Records, mandates: MandateTable, clock: Clock | None = None) -> None:
        self.records, self.mandates, self.clock = records, mandates, clock or SYSTEM

    # -- facts a decision needs --------------------------------------------------------------
    def today(self) -> date:
        return self.clock.today()

    def order_age_days(self, order: Order) -> int:
        """Whole days since delivery (or since it was placed, when not delivered), as calendar days."""
        reference = aware(order.delivered_at) or aware(order.placed_at)
        return (self.clock.today() - self.clock.date_of(reference)).days

    async def refund_left(self, order: Order) -> tuple[int, int]:
        """(already refunded, still refundable) cents of an order."""
        refunded = await self.records.refunded_cents(order.id)
        return refunded, order.total_cents - refunded

    async def open_cents(self, customer_id: int) -> int:
        """What the customer still has to pay on invoices that are not paid (today by the clock)."""
        today = self.clock.today()
        return sum(i.open_cents for i in await self.records.invoices(customer_id) if i.status(today) != "paid")

    async def previous(self, customer_id: int, kind: str) -> tuple[date, ...]:
        """The calendar dates (in the configured zone) on which the customer got `kind` before."""
        return tuple(self.clock.date_of(d.created_at) for d in await self.records.decisions(customer_id)
                     if d.kind == kind)

    async def request(self, kind: str, customer: Customer, *, amount_cents: int | None = None,
                      amount: Decimal | None = None, instalments: int | None = None, percent: int | None = None,
                      order: Order | None = None) -> MandateRequest:
        """The mandate request: the amount (cents, or euros), the instalments of an arrangement,
        the percent of a retention discount, a refund's order age, the segment, today and the
        dates the customer got this decision before."""
        if amount is None and amount_cents is not None:
            amount = Decimal(amount_cents) / 100
        return MandateRequest(
            kind, amount=amount,
            instalments=instalments if kind == "payment_arrangement" else None,
            percent=Decimal(percent) if kind == "retention_discount" and percent is not None else None,
            order_age_days=self.order_age_days(order) if kind == "refund" and order is not None else None,
            customer_segment=customer.segment, today=self.clock.today(),
            previous=await self.previous(customer.id, kind),
        )

    def may(self, role: str, request: MandateRequest) -> bool:
        return self.mandates.may(role, request)

    # -- evaluate and record -----------------------------------------------------------------
    async def decide(self, role: str, actor: str, customer_id: int, request: MandateRequest, *,
                     order_id: int | None = None, reason: str = "") -> Outcome:
        """Evaluate `request` for `role`, write the audit entry and, when allowed, the Decision.

        MandateError when the role or decision is not in the mandate table (nothing is written)."""
        verdict = self.mandates.evaluate(role, request)
        record = verdict.as_dict()
        record["explanation"] = verdict.explain("en")
        grant = None
        if verdict.allowed:
            grant = {"kind": request.decision,
                     "amount_cents": cents(request.amount) if request.amount is not None else None,
                     "order_id": order_id, "instalments": request.instalments,
                     "percent": int(request.percent) if request.percent is not None else None,
                     "reason": reason[:MAX_REASON]}
        decision = await self.records.decide(customer_id=customer_id, verdict_record=jsonable(record),
                                             actor_role=role, actor=actor, grant=grant)
        return Outcome(verdict, decision)
