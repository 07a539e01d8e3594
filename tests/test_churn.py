"""Churn signals: each signal on hand-made facts, then the demo customers and stored scores."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import func, select

from bot.policy.churn import (
    WEIGHTS, ChurnResult, ComplaintFact, CustomerFacts, InvoiceFact, OrderFact, facts_for, local_today, refresh, score,
)
from bot.records.demo import load_demo
from bot.records.models import ChurnScore, ContactEvent, Customer

TODAY = date(2026, 6, 1)


def ago(days: int) -> date:
    return TODAY - timedelta(days=days)


def orders(*days: int, cents: int = 5000) -> list[OrderFact]:
    return [OrderFact(ago(d), cents) for d in days]


def facts(**kwargs) -> CustomerFacts:
    return CustomerFacts(today=TODAY, **kwargs)


def codes(f: CustomerFacts) -> list[str]:
    return score(f).codes


# ------------------------------------------------------------------------------ the pure score

def test_a_steady_customer_scores_zero():
    result = score(facts(orders=orders(10, 40, 70, 100, 130, 160, 190, 220, 250, 280, 310, 340),
                         invoices=[InvoiceFact(ago(26), 5000, 5000, ago(40))], last_contact=ago(5)))
    assert (result.score, result.reasons, result.level) == (0, [], "low")


def test_a_cancellation_request_is_a_signal_for_90_days():
    steady = orders(10, 40, 70, 100, 130, 160, 190, 220, 250, 280, 310, 340)
    result = score(facts(orders=steady, cancellations=[ago(3)], last_contact=ago(3)))
    assert (result.score, result.codes) == (20, ["cancellation_request"])
    assert result.reasons[0]["en"] == "Asked to cancel 3 days ago (1 time in the last 90 days)."
    assert result.reasons[0]["nl"] == "Vroeg 3 dagen geleden om een annulering of opzegging (1 keer in de laatste 90 dagen)."
    assert codes(facts(orders=steady, cancellations=[ago(90)], last_contact=ago(3))) == ["cancellation_request"]
    assert codes(facts(orders=steady, cancellations=[ago(91)], last_contact=ago(3))) == []


def test_a_low_survey_score_is_a_signal_for_90_days():
    steady = orders(10, 40, 70, 100, 130, 160, 190, 220, 250, 280, 310, 340)
    result = score(facts(orders=steady, feedback=[(ago(4), {"ces": 2, "nps": 5, "csat": None})], last_contact=ago(4)))
    assert (result.score, result.codes) == (15, ["low_feedback"])
    assert result.reasons[0]["en"] == "Gave a low score after a conversation 4 days ago (CES 2, NPS 5)."
    assert result.reasons[0]["nl"] == "Gaf 4 dagen geleden een lage score na een gesprek (CES 2, NPS 5)."
    # the boundaries: CES 3, NPS 6 and CSAT 2 are low; CES 4, NPS 7 and CSAT 3 are not; 91 days ago no longer counts
    for low in ({"ces": 3}, {"nps": 6}, {"csat": 2}):
        assert codes(facts(orders=steady, feedback=[(ago(90), low)], last_contact=ago(3))) == ["low_feedback"]
    for fine in ({"ces": 4}, {"nps": 7}, {"csat": 3}):
        assert codes(facts(orders=steady, feedback=[(ago(3), fine)], last_contact=ago(3))) == []
    assert codes(facts(orders=steady, feedback=[(ago(91), {"ces": 1})], last_contact=ago(3))) == []


def test_no_records_at_all_scores_zero():
    assert score(facts()).score == 0


def test_falling_order_frequency():
    assert "order_frequency_down" in codes(facts(orders=orders(30, 190, 220, 250, 280)))   # 1 vs 4
    assert "order_frequency_down" in codes(facts(orders=orders(30, 60, 190, 220, 250, 280)))  # 2 vs 4: half
    assert "order_frequency_down" not in codes(facts(orders=orders(30, 60, 90, 190, 220, 250, 280)))  # 3 vs 4
    assert "order_frequency_down" not in codes(facts(orders=orders(200)))   # too little history to compare
    cancelled = [OrderFact(ago(d), 5000, "cancelled") for d in (20, 40, 60)]
    assert "order_frequency_down" in codes(facts(orders=orders(190, 220, 250) + cancelled))


def test_falling_order_size():
    f = facts(orders=orders(20, 50, 80, cents=1500) + orders(200, 240, 280, cents=9000))
    result = score(f)
    assert "order_size_down" in result.codes
    reason = next(r for r in result.reasons if r["code"] == "order_size_down")
    assert "€15,00" in reason["nl"] and "€90,00" in reason["nl"]
    assert "€15.00" in reason["en"] and "€90.00" in reason["en"]
    same = facts(orders=orders(20, 50, 80, cents=8000) + orders(200, 240, 280, cents=9000))
    assert "order_size_down" not in codes(same)


def test_overdue_invoice():
    overdue = InvoiceFact(due_date=ago(10), amount_cents=24900)
    assert "invoice_overdue" in codes(facts(invoices=[overdue]))
    partly = InvoiceFact(due_date=ago(3), amount_cents=10000, paid_cents=4000)
    result = score(facts(invoices=[partly]))
    assert "invoice_overdue" in result.codes and "€60,00" in result.reasons[0]["nl"]
    not_yet_due = InvoiceFact(due_date=TODAY, amount_cents=24900)
    paid = InvoiceFact(due_date=ago(10), amount_cents=24900, paid_cents=24900, paid_on=ago(20))
    assert codes(facts(invoices=[not_yet_due, paid])) == []


def test_paid_late():
    late = InvoiceFact(due_date=ago(60), amount_cents=5000, paid_cents=5000, paid_on=ago(50))
    assert codes(facts(invoices=[late])) == ["paid_late"]
    long_ago = InvoiceFact(due_date=ago(420), amount_cents=5000, paid_cents=5000, paid_on=ago(400))
    on_time = InvoiceFact(due_date=ago(60), amount_cents=5000, paid_cents=5000, paid_on=ago(60))
    assert codes(facts(invoices=[long_ago, on_time])) == []


def test_open_complaint():
    assert codes(facts(complaints=[ComplaintFact(ago(3))], last_contact=ago(3))) == ["open_complaint"]
    answered = ComplaintFact(ago(3), "answered")
    assert codes(facts(complaints=[answered], last_contact=ago(3))) == ["open_complaint"]
    closed = ComplaintFact(ago(10), "closed", ago(5))
    assert codes(facts(complaints=[closed], last_contact=ago(5))) == []


def test_repeated_complaints():
    two = [ComplaintFact(ago(150), "closed", ago(140)), ComplaintFact(ago(20), "closed", ago(15))]
    assert codes(facts(complaints=two, last_contact=ago(15))) == ["repeated_complaints"]
    spread = [ComplaintFact(ago(250), "closed", ago(240)), ComplaintFact(ago(20), "closed", ago(15))]
    assert codes(facts(complaints=spread, last_contact=ago(15))) == []


def test_complaint_followed_by_silence():
    complaint = ComplaintFact(ago(60), "closed", ago(55))
    silent = facts(orders=orders(70, 100, 130), complaints=[complaint], last_contact=ago(55))
    result = score(silent)
    assert result.codes == ["silent_after_complaint"]
    assert result.reasons[0]["weight"] == WEIGHTS["silent_after_complaint"]
    assert "klagen niet meer" in result.reasons[0]["nl"] and "stop complaining" in result.reasons[0]["en"]

    ordered_since = facts(orders=orders(20, 70, 100), complaints=[complaint], last_contact=ago(55))
    assert "silent_after_complaint" not in codes(ordered_since)
    contact_since = facts(orders=orders(70, 100, 130), complaints=[complaint], last_contact=ago(10))
    assert "silent_after_complaint" not in codes(contact_since)
    too_recent = facts(complaints=[ComplaintFact(ago(20), "closed", ago(18))], last_contact=ago(18))
    assert "silent_after_complaint" not in codes(too_recent)
    too_old = facts(complaints=[ComplaintFact(ago(400), "closed", ago(390))], last_contact=ago(390))
    assert "silent_after_complaint" not in codes(too_old)
    still_open = facts(complaints=[ComplaintFact(ago(45))], last_contact=ago(45))
    assert set(codes(still_open)) == {"silent_after_complaint", "open_complaint"}


def test_long_time_since_last_order():
    result = score(facts(orders=orders(100)))
    assert result.codes == ["long_since_last_order"] and result.score == WEIGHTS["long_since_last_order"]
    assert score(facts(orders=orders(200))).score == 20
    assert score(facts(orders=orders(89))).score == 0


def test_score_is_capped_and_reasons_are_complete():
    f = facts(orders=orders(200, 230, 260, 290, 320, cents=20000),
              invoices=[InvoiceFact(ago(40), 9000), InvoiceFact(ago(100), 5000, 5000, ago(80))],
              complaints=[ComplaintFact(ago(170), "closed", ago(160)), ComplaintFact(ago(60))],
              last_contact=ago(60))
    result = score(f)
    assert set(result.codes) == {"order_frequency_down", "invoice_overdue", "paid_late", "open_complaint",
                                 "repeated_complaints", "silent_after_complaint", "long_since_last_order"}
    assert result.score == 100 and result.level == "high"
    weights = [r["weight"] for r in result.reasons]
    assert weights == sorted(weights, reverse=True)
    for reason in result.reasons:
        assert set(reason) == {"code", "weight", "nl", "en"}
        assert reason["nl"] and reason["en"] and reason["nl"] != reason["en"]


def test_levels():
    assert ChurnResult(50).level == "high" and ChurnResult(25).level == "medium" and ChurnResult(24).level == "low"


# ------------------------------------------------------------------------------ from the database

async def _ids(engine) -> dict[str, int]:
    async with engine.connect() as conn:
        return dict((await conn.execute(select(Customer.customer_number, Customer.id))).all())


async def test_pieter_scores_higher_than_sanne(engine):
    today = local_today()
    await load_demo(engine, today=today)
    ids = await _ids(engine)
    pieter = score(await facts_for(engine, ids["K10004"], today))
    sanne = score(await facts_for(engine, ids["K10001"], today))
    assert pieter.score > sanne.score
    assert {"order_frequency_down", "long_since_last_order", "open_complaint", "repeated_complaints",
            "paid_late"} <= set(pieter.codes)
    assert pieter.level == "high"
    assert sanne.score == 0 and sanne.level == "low"


async def test_facts_from_the_database(engine):
    today = local_today()
    await load_demo(engine, today=today)
    ids = await _ids(engine)
    pieter = await facts_for(engine, ids["K10004"], today)
    assert pieter.customer_id == ids["K10004"] and pieter.today == today
    assert max(o.placed_on for o in pieter.orders) == today - timedelta(days=200)
    assert len(pieter.complaints) == 2 and {c.status for c in pieter.complaints} == {"open", "closed"}
    assert sum(1 for i in pieter.invoices if i.paid_on and i.paid_on > i.due_date) == 1
    assert pieter.last_contact == today - timedelta(days=12)

    daan = await facts_for(engine, ids["K10002"], today)
    overdue = [i for i in daan.invoices if i.number == "F2026-00102"]
    assert overdue and overdue[0].paid_cents == 0 and overdue[0].paid_on is None
    assert "invoice_overdue" in score(daan).codes

    ruben = score(await facts_for(engine, ids["K10008"], today))
    assert "silent_after_complaint" in ruben.codes

    with pytest.raises(LookupError):
        await facts_for(engine, max(ids.values()) + 1000, today)


async def test_refresh_stores_and_updates_rows(engine):
    today = local_today()
    await load_demo(engine, today=today)  # the loader refreshes too
    ids = await _ids(engine)
    async with engine.begin() as conn:
        await conn.execute(ChurnScore.__table__.delete())

    results = await refresh(engine, today=today)
    assert set(results) == set(ids.values())
    async with engine.connect() as conn:
        stored = {cid: (s, r) for cid, s, r in await conn.execute(
            select(ChurnScore.customer_id, ChurnScore.score, ChurnScore.reasons))}
    assert len(stored) == len(ids)
    assert stored[ids["K10004"]][0] == results[ids["K10004"]].score >= 50
    assert [r["code"] for r in stored[ids["K10004"]][1]] == results[ids["K10004"]].codes
    assert stored[ids["K10001"]] == (0, [])

    # a new contact breaks Ruben's silence; refreshing only him updates his row, no duplicates
    async with engine.begin() as conn:
        await conn.execute(ContactEvent.__table__.insert().values(
            customer_id=ids["K10008"], at=func.now(), channel="sms", topic="order_status", summary="Vraag"))
    before = stored[ids["K10008"]][0]
    one = await refresh(engine, customer_id=ids["K10008"], today=today + timedelta(days=1))
    assert list(one) == [ids["K10008"]] and "silent_after_complaint" not in one[ids["K10008"]].codes
    async with engine.connect() as conn:
        count = (await conn.execute(select(func.count()).select_from(ChurnScore))).scalar_one()
        after = (await conn.execute(select(ChurnScore.score).where(ChurnScore.customer_id == ids["K10008"]))
                 ).scalar_one()
    assert count == len(ids)
    assert after == one[ids["K10008"]].score < before

    with pytest.raises(LookupError):
        await refresh(engine, customer_id=max(ids.values()) + 1000)
