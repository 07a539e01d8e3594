"""Proactive care from the records (seed 004: be proactive, don't wait for the complaint).

Every `every_minutes` (config/proactive.yml) the scheduler runs `ProactiveCare.run`:
- a late delivery (expected date passed, not delivered) is told to the customer before they ask,
  on their preferred channel, with the carrier and tracking code and what the shop does about it;
  on WhatsApp outside the 24-hour window the channel's sender uses the configured template (or
  the message fails and is recorded as failed: never a free-form message outside the window);
- an invoice about to fall due, or overdue, gets one friendly reminder with the option of an
  arrangement;
- a customer whose churn score reached the threshold, or who went silent after a complaint,
  becomes a task for a person (an open `reach_out` ticket with the reasons, in the desk's record),
  never a message from the bot.
Messages need the customer's consent (`consent_proactive`), a channel we can reach them on, and
fall outside quiet hours. Each is written to `proactive_messages` first (one per kind and subject,
a unique key: two gateways never send it twice), then to the transcript and the contact history.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from bot.pipeline.types import BotMessage
from bot.records.models import ChurnScore, Customer, Invoice, Order, ProactiveMessage, Ticket
from bot.texts import fmt, messages
from channels import registry

log = logging.getLogger(__name__)

CONFIG = Path(__file__).resolve().parents[2] / "config" / "proactive.yml"
CONFIG_ENV = "PROACTIVE_FILE"

# "STOP" on a messaging channel, or asking for no more messages anywhere: off on every channel at once
# the texts a business may word itself in config/proactive.yml (`texts: {key: {nl: ..., en: ...}}`)
OWN_TEXTS = ("proactive_late", "proactive_late_plain", "proactive_invoice_due", "proactive_invoice_overdue")
STOP_ALONE = re.compile(r"^\s*(stop|stopp|stoppen|unsubscribe|afmelden)\s*[.!]*\s*$", re.I)
STOP_ANYWHERE = re.compile(r"^\s*(?:stuur me |send me )?(geen berichten meer|no more messages|stop (?:met )?(?:berichten|sturen|"
                           r"messages|messaging)|stop sending (?:me )?messages)\s*[.!]*\s*$", re.I)
MESSAGING = ("sms", "whatsapp", "telegram")


def is_stop(text: str, channel: str) -> bool:
    return bool(STOP_ANYWHERE.match(text or "") or (channel in MESSAGING and STOP_ALONE.match(text or "")))


@dataclass(frozen=True)
class ProactiveConfig:
    every_minutes: int = 15
    quiet_from: time = time(21, 0)
    quiet_until: time = time(8, 30)
    late_delivery: bool = True
    days_late: int = 1
    invoice_reminder: bool = True
    days_before_due: int = 2
    reach_out: bool = True
    churn_threshold: int = 60
    silent_after_complaint_days: int = 7
    texts: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = ()  # overrides of bot/texts/messages.py keys

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> "ProactiveConfig":
        quiet = raw.get("quiet_hours") or ["21:00", "08:30"]
        late, invoice, reach = raw.get("late_delivery") or {}, raw.get("invoice_reminder") or {}, raw.get("reach_out") or {}
        return cls(
            every_minutes=int(raw.get("every_minutes", 15)),
            quiet_from=time.fromisoformat(str(quiet[0])), quiet_until=time.fromisoformat(str(quiet[1])),
            late_delivery=bool(late.get("enabled", True)), days_late=int(late.get("days_late", 1)),
            invoice_reminder=bool(invoice.get("enabled", True)), days_before_due=int(invoice.get("days_before_due", 2)),
            reach_out=bool(reach.get("enabled", True)), churn_threshold=int(reach.get("churn_threshold", 60)),
            silent_after_complaint_days=int(reach.get("silent_after_complaint_days", 7)),
            texts=tuple((key, tuple((lang, str(text)) for lang, text in (variants or {}).items()))
                        for key, variants in (raw.get("texts") or {}).items() if key in OWN_TEXTS),
        )

    @classmethod
    def load(cls, path: str | Path | None = None) -> "ProactiveConfig":
        path = Path(path or os.environ.get(CONFIG_ENV) or CONFIG)
        return cls.from_dict(yaml.safe_load(path.read_text(encoding="utf-8")) or {})

    def text(self, key: str, lang: str, **values: Any) -> str:
        """The business's own wording (config/proactive.yml `texts`) when it has one, else ours."""
        own = dict(dict(self.texts).get(key, ()))
        template = own.get(lang) or own.get("nl")
        if template:
            try:
                return template.format(**values)
            except (KeyError, IndexError, ValueError):
                log.warning("config/proactive.yml texts.%s.%s has an unknown {placeholder}: ours is used", key, lang)
        return messages.text(key, lang, **values)

    def quiet(self, local: datetime) -> bool:
        now = local.time()
        if self.quiet_from <= self.quiet_until:
            return self.quiet_from <= now < self.quiet_until
        return now >= self.quiet_from or now < self.quiet_until


class ProactiveCare:
    def __init__(self, records: Any, outbound: Any, clock: Any, config: ProactiveConfig | None = None) -> None:
        self.records = records
        self.outbound = outbound
        self.clock = clock
        self.config = config or ProactiveConfig.load()

    async def run(self) -> dict[str, int]:
        counts = {"late_delivery": 0, "invoice_reminder": 0, "reach_out": 0}
        now = self.clock.now()
        quiet = self.config.quiet(self.clock.local(now))
        if self.config.late_delivery and not quiet:
            counts["late_delivery"] = await self.late_deliveries(now)
        if self.config.invoice_reminder and not quiet:
            counts["invoice_reminder"] = await self.invoice_reminders(now)
        if self.config.reach_out:
            counts["reach_out"] = await self.reach_out(now)
        return counts

    # -- the three kinds ------------------------------------------------------------------------
    async def late_deliveries(self, now: datetime) -> int:
        today = self.clock.local(now).date()
        async with self.records.session() as s:
            rows = (await s.execute(select(Order, Customer).join(Customer, Customer.id == Order.customer_id).where(
                Order.status.in_(("placed", "shipped")), Order.promised_date.is_not(None),
                Order.promised_date <= today - timedelta(days=self.config.days_late)))).all()
        sent = 0
        for order, customer in rows:
            lang = customer.language if customer.language in ("nl", "en") else "nl"
            values = dict(name=customer.greeting_name, order=order.order_number,
                          expected=fmt.day(order.promised_date, lang), carrier=order.carrier or "",
                          tracking=order.tracking_code or "")
            key = "proactive_late" if order.carrier and order.tracking_code else "proactive_late_plain"
            sent += await self._send(customer, "late_delivery", f"order:{order.order_number}",
                                     self.config.text(key, lang, **values), now)
        return sent

    async def invoice_reminders(self, now: datetime) -> int:
        today = self.clock.local(now).date()
        async with self.records.session() as s:
            customers = (await s.execute(select(Customer).join(Invoice, Invoice.customer_id == Customer.id).where(
                Invoice.due_date <= today + timedelta(days=self.config.days_before_due)).distinct())).scalars().all()
        sent = 0
        for customer in customers:
            lang = customer.language if customer.language in ("nl", "en") else "nl"
            for invoice in await self.records.invoices(customer.id):
                status = invoice.status(today)
                if status == "paid" or invoice.due_date > today + timedelta(days=self.config.days_before_due):
                    continue
                overdue = status == "overdue"
                text = self.config.text("proactive_invoice_overdue" if overdue else "proactive_invoice_due", lang,
                                     name=customer.greeting_name, invoice=invoice.invoice_number,
                                     amount=fmt.money(invoice.open_cents, lang), due=fmt.day(invoice.due_date, lang))
                ref = f"invoice:{invoice.invoice_number}:{'overdue' if overdue else 'due'}"
                if overdue and await self._exists("invoice_reminder", f"invoice:{invoice.invoice_number}:due"):
                    continue  # one friendly reminder: the one before it fell due was it
                sent += await self._send(customer, "invoice_reminder", ref, text, now)
        return sent

    async def reach_out(self, now: datetime) -> int:
        made = 0
        async with self.records.session() as s:
            scored = (await s.execute(select(ChurnScore).where(ChurnScore.score >= self.config.churn_threshold))).scalars().all()
            complaints = (await s.execute(select(Ticket).where(
                Ticket.kind == "complaint", Ticket.status != "open", Ticket.closed_at.is_not(None)))).scalars().all()
        reasons: dict[int, list[str]] = {}
        for score in scored:
            reasons.setdefault(score.customer_id, []).append(
                f"churn score {score.score}: " + ", ".join(str(r.get("reason", r)) if isinstance(r, dict) else str(r)
                                                          for r in (score.reasons or [])[:4]))
        silent_since = now - timedelta(days=self.config.silent_after_complaint_days)
        for ticket in complaints:
            closed = ticket.closed_at if ticket.closed_at.tzinfo else ticket.closed_at.replace(tzinfo=now.tzinfo)
            if closed > silent_since:
                continue
            last = await self._last_contact(ticket.customer_id)
            if last is None or last <= closed:
                reasons.setdefault(ticket.customer_id, []).append(
                    f"silent since complaint #{ticket.id} was answered ({closed.date().isoformat()})")
        for customer_id, why in reasons.items():
            ref = f"customer:{customer_id}:{now.date().isocalendar()[0]}-W{now.date().isocalendar()[1]:02d}"
            if await self._open_reach_out(customer_id) or not await self._claim(customer_id, "reach_out", ref, None):
                continue
            ticket = await self.records.create_ticket(customer_id, "reach_out", details="; ".join(why)[:2000],
                                                      data={"reasons": why})
            await self._finish(ref, "reach_out", "task", f"ticket {ticket.id}")
            await self.records.contact(customer_id, "desk", "reach_out", f"ticket {ticket.id}: {'; '.join(why)[:200]}")
            made += 1
        return made

    # -- sending, once ------------------------------------------------------------------------------
    async def _exists(self, kind: str, ref: str) -> bool:
        async with self.records.session() as s:
            return (await s.execute(select(ProactiveMessage.id).where(ProactiveMessage.kind == kind,
                                                                     ProactiveMessage.ref == ref))).first() is not None

    async def _open_reach_out(self, customer_id: int) -> bool:
        return bool(await self.records.tickets(customer_id, kind="reach_out", status="open"))

    async def _last_contact(self, customer_id: int) -> datetime | None:
        from bot.records.models import ContactEvent

        async with self.records.session() as s:
            at = (await s.execute(select(ContactEvent.at).where(ContactEvent.customer_id == customer_id)
                                  .order_by(ContactEvent.at.desc()).limit(1))).scalar()
        return at if at is None or at.tzinfo else at.replace(tzinfo=self.clock.now().tzinfo)

    async def _claim(self, customer_id: int, kind: str, ref: str, channel: str | None) -> bool:
        try:
            async with self.records.session() as s, s.begin():
                s.add(ProactiveMessage(customer_id=customer_id, kind=kind, ref=ref, channel=channel, status="sending",
                                       created_at=self.clock.now()))
            return True
        except IntegrityError:
            return False  # done before, or another process is doing it

    async def _finish(self, ref: str, kind: str, status: str, detail: str | None = None) -> None:
        from sqlalchemy import update

        async with self.records.session() as s, s.begin():
            await s.execute(update(ProactiveMessage).where(ProactiveMessage.kind == kind, ProactiveMessage.ref == ref)
                            .values(status=status, detail=(detail or "")[:500] or None))

    async def _send(self, customer: Customer, kind: str, ref: str, text: str, now: datetime) -> int:
        if not customer.consent_proactive:
            return 0  # nothing without consent (and nothing recorded: consent may come later)
        channel = customer.preferred_channel
        address = registry.address_of(customer, channel)
        if not address or not self.outbound.can_send(channel):
            return 0
        if not await self._claim(customer.id, kind, ref, channel):
            return 0
        store = self.outbound.store
        # the customer's one conversation (a new one on that channel when they never wrote)
        key = await store.customer_conversation(customer.id)
        if key is None:
            key = await store.claim_customer(customer.id, await store.key_for(channel, address))
            await store.update(key, customer_id=str(customer.id), language=customer.language or "nl")
        row = await self.outbound.transcript.log(key, "bot", text, channel, proactive=kind)
        result = await self.outbound.send(key, channel, address, [BotMessage(text)], [row], what=f"proactive {kind}")
        status = "failed" if result.status == "failed" else "sent"
        await self._finish(ref, kind, status, getattr(result, "reason", None) if status == "failed" else None)
        await self.records.contact(customer.id, channel, kind, f"proactive: {ref} ({status})")
        log.info("proactive %s %s to customer %s on %s: %s", kind, ref, customer.id, channel, status)
        return 1 if status == "sent" else 0
