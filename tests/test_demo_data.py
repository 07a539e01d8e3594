"""The demo data: counts, the fixed personas, idempotence, late orders; on SQLite and PostgreSQL."""

from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import and_, func, select

from bot.policy.churn import local_date, local_today
from bot.records.demo import load_demo
from bot.records.importer import normalize_phone, normalize_postcode
from bot.records.models import (
    ChurnScore, ContactEvent, ContactIdentity, Customer, Decision, Invoice, LoyaltyAccount, Order, OrderLine, Payment,
    Reward, Ticket,
)

TODAY = local_today()


def ago(days: int):
    return TODAY - timedelta(days=days)


async def rows(engine, stmt):
    async with engine.connect() as conn:
        return (await conn.execute(stmt)).all()


async def one_customer(engine, number: str):
    async with engine.connect() as conn:
        return (await conn.execute(select(Customer.__table__).where(Customer.customer_number == number))
                ).mappings().one()


async def orders_of(engine, number: str) -> dict[str, dict]:
    async with engine.connect() as conn:
        result = await conn.execute(
            select(Order.__table__).join(Customer, Customer.id == Order.customer_id)
            .where(Customer.customer_number == number))
        orders = {row["order_number"]: dict(row) for row in result.mappings()}
        for order in orders.values():
            order["lines"] = (await conn.execute(
                select(OrderLine.sku, OrderLine.description, OrderLine.quantity, OrderLine.unit_price_cents)
                .where(OrderLine.order_id == order["id"]))).all()
    return orders


async def invoices_of(engine, number: str) -> dict[str, dict]:
    async with engine.connect() as conn:
        result = await conn.execute(
            select(Invoice.__table__).join(Customer, Customer.id == Invoice.customer_id)
            .where(Customer.customer_number == number))
        invoices = {row["invoice_number"]: dict(row) for row in result.mappings()}
        for invoice in invoices.values():
            invoice["paid"] = (await conn.execute(select(func.coalesce(func.sum(Payment.amount_cents), 0))
                                                  .where(Payment.invoice_id == invoice["id"]))).scalar_one()
            invoice["paid_on"] = (await conn.execute(select(func.max(Payment.paid_at))
                                                     .where(Payment.invoice_id == invoice["id"]))).scalar()
    return invoices


async def loyalty_of(engine, number: str):
    return (await rows(engine, select(LoyaltyAccount.points, LoyaltyAccount.tier)
                       .join(Customer, Customer.id == LoyaltyAccount.customer_id)
                       .where(Customer.customer_number == number)))[0]


# ------------------------------------------------------------------------------ loading

async def test_counts_and_idempotent_second_load(engine):
    first = await load_demo(engine, today=TODAY)
    assert first["loaded"] is True
    assert first["customers"] >= 32
    assert first["rewards"] >= 5
    assert first["churn_scores"] == first["customers"]
    for key in ("orders", "order_lines", "invoices", "payments", "loyalty_accounts", "tickets", "decisions",
                "contact_history", "contact_identities"):
        assert first[key] > 0, key

    second = await load_demo(engine, today=TODAY)
    assert second["loaded"] is False and "already" in second["message"]
    assert {k: v for k, v in second.items() if k not in ("loaded", "message")} == \
           {k: v for k, v in first.items() if k not in ("loaded", "message")}


async def test_reset_reloads_the_same_data(engine):
    await load_demo(engine, today=TODAY)
    listing = select(Order.order_number, Order.total_cents, Order.status).order_by(Order.order_number)
    before = await rows(engine, listing)
    async with engine.begin() as conn:  # something of the user's own, to be wiped by reset
        await conn.execute(Customer.__table__.insert().values(
            customer_number="X1", name="Wegwerp", preferred_channel="webchat", language="nl",
            consent_proactive=False, segment="new", created_at=func.now()))
    result = await load_demo(engine, today=TODAY, reset=True)
    assert result["loaded"] is True
    after = await rows(engine, listing)
    assert after == before                              # deterministic
    assert await rows(engine, select(Customer.id).where(Customer.customer_number == "X1")) == []


# ------------------------------------------------------------------------------ the personas

async def test_persona_sanne(engine):
    await load_demo(engine, today=TODAY)
    sanne = await one_customer(engine, "K10001")
    assert (sanne["name"], sanne["email"], sanne["phone"], sanne["postcode"], sanne["language"],
            sanne["preferred_channel"], sanne["consent_proactive"], sanne["segment"]) == (
        "Sanne de Vries", "sanne.devries@example.nl", "+31612345601", "1012 AB", "nl", "whatsapp", True, "gold")
    assert tuple(await loyalty_of(engine, "K10001")) == (1250, "gold")

    orders = await orders_of(engine, "K10001")
    late = orders["104233"]
    assert (late["status"], late["carrier"], late["tracking_code"]) == ("shipped", "PostNL", "3SWEB104233")
    assert late["promised_date"] == ago(2) and local_date(late["placed_at"]) == ago(6)
    assert late["delivered_at"] is None
    assert late["total_cents"] == 8995 and len(late["lines"]) == 2
    assert sum(q * p for _, _, q, p in late["lines"]) == 8995

    case = orders["104100"]
    assert case["status"] == "delivered"
    assert local_date(case["delivered_at"]) == ago(10) and local_date(case["placed_at"]) == ago(14)
    assert case["total_cents"] == 1995
    assert [(d, q, p) for _, d, q, p in case["lines"]] == [("Telefoonhoesje", 1, 1995)]
    invoices = [i for i in (await invoices_of(engine, "K10001")).values() if i["order_id"] == case["id"]]
    assert len(invoices) == 1 and invoices[0]["paid"] == invoices[0]["amount_cents"] == 1995

    idents = set(await rows(engine, select(ContactIdentity.channel, ContactIdentity.address)
                            .where(ContactIdentity.customer_id == sanne["id"])))
    assert {("sms", "+31612345601"), ("whatsapp", "+31612345601"),
            ("email", "sanne.devries@example.nl")} <= idents


async def test_persona_daan(engine):
    await load_demo(engine, today=TODAY)
    daan = await one_customer(engine, "K10002")
    assert (daan["name"], daan["email"], daan["phone"], daan["postcode"], daan["language"],
            daan["preferred_channel"], daan["segment"]) == (
        "Daan Jansen", "daan.jansen@example.nl", "+31612345602", "3511 CD", "nl", "sms", "regular")
    assert tuple(await loyalty_of(engine, "K10002")) == (320, "silver")
    order = (await orders_of(engine, "K10002"))["118902"]
    assert order["status"] == "delivered" and local_date(order["delivered_at"]) == ago(3)
    assert order["total_cents"] == 24900
    invoice = (await invoices_of(engine, "K10002"))["F2026-00102"]
    assert invoice["order_id"] == order["id"]
    assert invoice["due_date"] == ago(10) and invoice["amount_cents"] == 24900 and invoice["paid"] == 0


async def test_persona_emma(engine):
    await load_demo(engine, today=TODAY)
    emma = await one_customer(engine, "K10003")
    assert (emma["name"], emma["email"], emma["phone"], emma["postcode"], emma["language"],
            emma["preferred_channel"], emma["telegram_user_id"], emma["consent_proactive"], emma["segment"]) == (
        "Emma Clarke", "emma.clarke@example.co.uk", "+447700900123", "2511 EF", "en", "telegram", "700100",
        True, "regular")
    assert tuple(await loyalty_of(engine, "K10003")) == (540, "silver")
    orders = await orders_of(engine, "K10003")
    assert orders["121212"]["status"] == "delivered"
    assert local_date(orders["121212"]["delivered_at"]) == ago(40) and orders["121212"]["total_cents"] == 5900
    assert orders["126354"]["status"] == "shipped"
    assert orders["126354"]["promised_date"] == TODAY + timedelta(days=2)
    assert orders["126354"]["total_cents"] == 2450
    assert ("telegram", "700100") in set(await rows(engine, select(ContactIdentity.channel, ContactIdentity.address)
                                                    .where(ContactIdentity.customer_id == emma["id"])))


async def test_persona_pieter(engine):
    await load_demo(engine, today=TODAY)
    pieter = await one_customer(engine, "K10004")
    assert (pieter["name"], pieter["email"], pieter["phone"], pieter["postcode"], pieter["language"],
            pieter["preferred_channel"], pieter["segment"]) == (
        "Pieter Bakker", "pieter.bakker@example.nl", "+31612345604", "9711 GH", "nl", "email", "regular")
    placed = sorted(local_date(o["placed_at"]) for o in (await orders_of(engine, "K10004")).values())
    assert placed[-1] == ago(200)                                     # last order 200 days ago
    assert sum(1 for d in placed if ago(400) <= d <= ago(200)) >= 5   # ordered often before that
    complaints = await rows(engine, select(Ticket.status, Ticket.created_at).where(
        Ticket.customer_id == pieter["id"], Ticket.kind == "complaint"))
    assert sorted(status for status, _ in complaints) == ["closed", "open"]
    assert all(local_date(created) >= ago(120) for _, created in complaints)
    late = [i for i in (await invoices_of(engine, "K10004")).values()
            if i["paid"] >= i["amount_cents"] and i["paid_on"] > i["due_date"]]
    assert len(late) == 1


async def test_persona_olivia(engine):
    await load_demo(engine, today=TODAY)
    olivia = await one_customer(engine, "K10005")
    assert (olivia["name"], olivia["email"], olivia["phone"], olivia["postcode"], olivia["language"],
            olivia["preferred_channel"], olivia["web_login_id"], olivia["segment"]) == (
        "Olivia Smith", "olivia.smith@example.com", "+353871234567", "1017 CE", "en", "webchat", "web-olivia", "new")
    assert local_date(olivia["created_at"]) == ago(5)
    orders = await orders_of(engine, "K10005")
    assert list(orders) == ["131313"]
    order = orders["131313"]
    assert (order["status"], order["total_cents"], order["promised_date"]) == ("placed", 1500,
                                                                               TODAY + timedelta(days=1))
    assert local_date(order["placed_at"]) == ago(5)
    assert ("webchat", "web-olivia") in set(await rows(engine, select(ContactIdentity.channel, ContactIdentity.address)
                                                       .where(ContactIdentity.customer_id == olivia["id"])))


# ------------------------------------------------------------------------------ late orders, variety

async def test_late_order_104233_detectable_whenever_loaded(engine):
    await load_demo(engine)  # today = the real today
    late = await rows(engine, select(Order.order_number).where(
        Order.status == "shipped", Order.promised_date < local_today(), Order.delivered_at.is_(None)))
    numbers = {n for (n,) in late}
    assert "104233" in numbers
    assert len(numbers) >= 2                     # other late deliveries too (DHL, DPD)
    assert "126354" not in numbers               # Emma's is on time


async def test_variety_of_the_data(engine):
    await load_demo(engine, today=TODAY)
    customers = await rows(engine, select(Customer.customer_number, Customer.phone, Customer.postcode,
                                          Customer.language, Customer.preferred_channel, Customer.segment,
                                          Customer.consent_proactive, Customer.email))
    assert len({c.customer_number for c in customers}) == len(customers)
    assert all(re.fullmatch(r"K1\d{4}", c.customer_number) for c in customers)
    assert all(normalize_phone(c.phone) == c.phone for c in customers)           # E.164
    assert all(normalize_postcode(c.postcode) == c.postcode for c in customers)  # "1234 AB"
    english = [c for c in customers if c.language == "en"]
    assert len(english) >= 5 and all(c.phone.startswith(("+44", "+353")) for c in english)
    assert {c.preferred_channel for c in customers} == {"whatsapp", "sms", "telegram", "webchat", "email"}
    assert {c.segment for c in customers} == {"new", "regular", "gold", "business"}
    assert {c.consent_proactive for c in customers} == {True, False}

    # identities: every phone for sms and whatsapp, every email; some telegram and webchat
    idents = set(await rows(engine, select(ContactIdentity.channel, ContactIdentity.address)))
    for c in customers:
        assert {("sms", c.phone), ("whatsapp", c.phone), ("email", c.email)} <= idents
    assert sum(1 for ch, _ in idents if ch == "telegram") >= 3
    assert sum(1 for ch, _ in idents if ch == "webchat") >= 3

    orders = await rows(engine, select(Order.order_number, Order.status, Order.carrier, Order.tracking_code,
                                       Order.placed_at, Order.total_cents))
    assert all(re.fullmatch(r"1\d{5}", o.order_number) for o in orders)
    assert {o.status for o in orders} == {"placed", "shipped", "delivered", "cancelled", "returned"}
    assert {o.carrier for o in orders if o.carrier} == {"PostNL", "DHL", "DPD"}
    assert all(o.tracking_code for o in orders if o.status in ("shipped", "delivered"))
    assert any(o.total_cents < 2500 for o in orders) and any(o.total_cents >= 20000 for o in orders)
    assert any(local_date(o.placed_at) < ago(30) for o in orders)
    assert any(local_date(o.placed_at) > ago(30) for o in orders)
    totals = await rows(engine, select(Order.total_cents, func.sum(OrderLine.quantity * OrderLine.unit_price_cents))
                        .join(OrderLine, OrderLine.order_id == Order.id).group_by(Order.id, Order.total_cents))
    assert all(total == lines for total, lines in totals)

    # invoices: paid, open (not yet due), overdue, partly paid, paid late
    async with engine.connect() as conn:
        invoices = (await conn.execute(select(Invoice.invoice_number, Invoice.due_date, Invoice.amount_cents,
                                              func.coalesce(func.sum(Payment.amount_cents), 0),
                                              func.max(Payment.paid_at))
                                       .outerjoin(Payment, Payment.invoice_id == Invoice.id)
                                       .group_by(Invoice.id))).all()
    assert all(re.fullmatch(r"F\d{4}-\d{5}", number) for number, *_ in invoices)
    assert len({number for number, *_ in invoices}) == len(invoices)
    kinds = set()
    for _, due, amount, paid, paid_on in invoices:
        if paid >= amount:
            kinds.add("paid late" if paid_on > due else "paid")
        elif paid > 0:
            kinds.add("partly paid")
        else:
            kinds.add("overdue" if due < TODAY else "open")
    assert kinds == {"paid", "paid late", "partly paid", "overdue", "open"}

    rewards = await rows(engine, select(Reward.code, Reward.name_nl, Reward.name_en, Reward.points_cost,
                                        Reward.min_tier))
    assert len(rewards) >= 5 and {r.min_tier for r in rewards} == {"bronze", "silver", "gold"}
    assert all(r.name_nl and r.name_en and r.points_cost > 0 for r in rewards)
    tiers = {t for (t,) in await rows(engine, select(LoyaltyAccount.tier))}
    assert tiers == {"bronze", "silver", "gold"}

    tickets = await rows(engine, select(Ticket.kind, Ticket.status, Ticket.promised_by))
    assert any(t.kind == "complaint" and t.status == "open" and t.promised_by for t in tickets)
    assert any(t.kind == "complaint" and t.status == "closed" for t in tickets)
    assert any(t.kind == "callback" and t.promised_by for t in tickets)

    # a goodwill voucher about two months ago: the bot's once-a-year limit applies to that customer
    vouchers = await rows(engine, select(Customer.customer_number, Decision.created_at, Decision.amount_cents)
                          .join(Customer, Customer.id == Decision.customer_id)
                          .where(Decision.kind == "goodwill_voucher"))
    recent = [v for v in vouchers if local_date(v.created_at) >= ago(365)]
    assert [(v.customer_number, local_date(v.created_at)) for v in recent] == [("K10006", ago(60))]
    assert (await rows(engine, select(func.count()).select_from(ContactEvent)))[0][0] >= 10
    history = await rows(engine, select(ContactEvent.customer_id).distinct())
    assert len(history) >= 10

    # nothing happens before the customer existed
    early = await rows(engine, select(Order.order_number).join(Customer, Customer.id == Order.customer_id)
                       .where(and_(Order.placed_at < Customer.created_at)))
    assert early == []


async def test_only_the_intended_customers_show_churn_signals(engine):
    await load_demo(engine, today=TODAY)
    async with engine.connect() as conn:
        stored = {number: (score, {r["code"] for r in reasons}) for number, score, reasons in await conn.execute(
            select(Customer.customer_number, ChurnScore.score, ChurnScore.reasons)
            .join(ChurnScore, ChurnScore.customer_id == Customer.id))}
    signals = {number: codes for number, (score, codes) in stored.items() if score}
    assert signals == {
        "K10004": {"order_frequency_down", "long_since_last_order", "open_complaint", "repeated_complaints",
                   "paid_late"},
        "K10012": {"silent_after_complaint", "invoice_overdue"},
        "K10020": {"order_frequency_down", "long_since_last_order"},
        "K10007": {"order_frequency_down", "long_since_last_order"},
        "K10008": {"silent_after_complaint"},
        "K10002": {"invoice_overdue"},
        "K10014": {"invoice_overdue"},
        "K10011": {"order_size_down"},
        "K10022": {"open_complaint"},
        "K10013": {"paid_late"},
        "K10025": {"paid_late"},
        "K10023": {"low_feedback"},  # the demo's unhappy survey answers (bot/records/demo.py)
    }
    assert stored["K10004"][0] > stored["K10001"][0] == 0
