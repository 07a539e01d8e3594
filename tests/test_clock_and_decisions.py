"""The one clock, the one decisions module, the one money formatter and config/policy.yml.

The time is fixed with `FixedClock` (bot/policy/clock.py) and every test asserts one exact text:
Monday 2 March 2026 10:00 and Friday 6 March 2026 20:00, Amsterdam time (no Dutch holidays that
week), or a moment just before and just after a refund's 30-day limit. The record tests run on
SQLite and PostgreSQL with the demo web shop (the `shop` fixture), like test_records_actions.py.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal

import pytest
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.dialogue import ActionResponseTime
from actions.handlers import ActionTopic
from bot.policy import churn
from bot.policy.clock import FixedClock, at, from_env, local_zone
from bot.policy.decisions import Decisions
from bot.policy.hours import ServiceLevels
from bot.policy.mandate import MandateTable, Reason
from bot.policy.rules import PolicyError, PolicyRules, Range
from bot.records.models import AuditEntry, Customer, Decision, Order
from bot.records.repository import Records
from bot.texts import fmt

MONDAY_10 = at(2026, 3, 2, 10, 0)
FRIDAY_20 = at(2026, 3, 6, 20, 0)


# -- the clock ---------------------------------------------------------------------------------

def test_the_zone_is_the_one_of_the_service_levels():
    assert str(local_zone()) == str(ServiceLevels.load().tz) == "Europe/Amsterdam"


def test_today_is_the_local_date_not_the_utc_date():
    # Friday 23:30 UTC is already Saturday 00:30 in Amsterdam
    clock = FixedClock(datetime(2026, 3, 6, 23, 30, tzinfo=timezone.utc))
    assert clock.today() == date(2026, 3, 7)
    assert churn.local_today(clock) == date(2026, 3, 7)
    assert clock.date_of(datetime(2026, 3, 6, 23, 30)) == date(2026, 3, 7)  # naive: stored as UTC
    assert clock.now() == datetime(2026, 3, 6, 23, 30, tzinfo=timezone.utc)
    assert clock.advance(hours=1).today() == date(2026, 3, 7)


def test_a_fixed_clock_needs_an_aware_moment():
    with pytest.raises(ValueError, match="aware moment"):
        FixedClock(datetime(2026, 3, 2, 10, 0))


def test_the_process_clock_is_fixed_only_by_bot_fixed_now(monkeypatch):
    monkeypatch.delenv("BOT_FIXED_NOW", raising=False)
    assert type(from_env()).__name__ == "Clock"
    monkeypatch.setenv("BOT_FIXED_NOW", "2026-03-02T10:00:00+01:00")
    assert from_env().now() == datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)
    monkeypatch.setenv("BOT_FIXED_NOW", "2026-03-02T10:00:00")
    with pytest.raises(ValueError, match="needs an offset"):
        from_env()
    monkeypatch.setenv("BOT_FIXED_NOW", "maandag")
    with pytest.raises(ValueError, match="ISO 8601"):
        from_env()


# -- one money formatter -------------------------------------------------------------------------

@pytest.mark.parametrize("cents,nl,en", [
    (0, "€0,00", "€0.00"), (5, "€0,05", "€0.05"), (1995, "€19,95", "€19.95"),
    (123456, "€1.234,56", "€1,234.56"), (-250, "-€2,50", "-€2.50"), (Decimal("1234.5"), "€12,35", "€12.35"),
])
def test_money_is_written_the_dutch_and_the_english_way(cents, nl, en):
    assert (fmt.money(cents, "nl"), fmt.money(cents, "en")) == (nl, en)


def test_the_mandate_the_churn_reasons_and_the_desk_use_the_same_money():
    from bot.desk.texts import outcome

    assert Reason("amount_over_limit", {"role": "bot", "amount": Decimal("25.01"), "limit": Decimal("25")}).text("nl") \
        == "bedrag €25,01 is meer dan de grens van €25,00 voor de bot"
    assert churn._euro(Decimal("1234.5"), True) == "€12,35"
    told = outcome("payment_arrangement", agent_name="Anna de Jong", role="senior_agent", amount_cents=24900,
                   instalments=3)
    assert told == {"nl": "Goed nieuws: je mag €249,00 in 3 termijnen van €83,00 betalen; goedgekeurd door Anna "
                          "(senior medewerker).",
                    "en": "Good news: you may pay €249.00 in 3 instalments of €83.00; approved by Anna "
                          "(senior colleague)."}


# -- config/policy.yml -----------------------------------------------------------------------------

def test_the_policy_file_holds_todays_constants():
    rules = PolicyRules.load()
    assert (rules.brand, rules.return_days, rules.late_delivery_voucher, rules.retention_voucher,
            rules.instalments, rules.code_valid_minutes, rules.acknowledge_seconds) == (
        "De Webwinkel", 30, Decimal("5"), Decimal("10"), Range(2, 36), 10, 300)
    assert 36 in rules.instalments and 37 not in rules.instalments and 1 not in rules.instalments


@pytest.mark.parametrize("data,message", [
    ({"returns": {"days": 30}}, "returns: unknown key 'days' (known: window_days)"),
    ({"instalments": {"min": 12, "max": 6}}, "instalments: max (6) is less than min (12)"),
    ({"instalments": {"min": 1}}, "instalments.min: must be a whole number of at least 2, got 1"),
    ({"vouchers": {"retention": "tien"}}, "vouchers.retention: must be a positive amount in euros"),
    ({"vouchers": {"late_delivery": 5.001}}, "vouchers.late_delivery: must be a positive amount in euros"),
    ({"brand": ""}, "brand: must be the shop's name"),
    ({"waiting": {"acknowledge_seconds": -1}}, "waiting.acknowledge_seconds: must be a whole number of at least 0"),
    ({"colour": "blue"}, "top level: unknown key 'colour'"),
])
def test_a_wrong_policy_file_stops_with_the_place(data, message):
    with pytest.raises(PolicyError) as raised:
        PolicyRules.from_dict(data)
    assert str(raised.value).startswith(message)


def test_a_policy_file_that_is_not_yaml_names_the_file(tmp_path):
    path = tmp_path / "policy.yml"
    path.write_text("instalments: [2, 36\n", encoding="utf-8")
    with pytest.raises(PolicyError, match=f"cannot read {path}"):
        PolicyRules.load(path)
    path.write_text("instalments: {max: 1}\n", encoding="utf-8")
    with pytest.raises(PolicyError, match=rf"instalments.max: .* \(in {path}\)"):
        PolicyRules.load(path)


# -- the response time at a fixed moment -----------------------------------------------------------

@pytest.mark.parametrize("moment,lang,said", [
    (MONDAY_10, "nl", "morgen voor 10:00"),              # 8 business hours: Tuesday 10:00
    (MONDAY_10, "en", "tomorrow before 10:00"),
    (FRIDAY_20, "nl", "maandag 9 maart voor 17:00"),     # closed: Monday 09:00 + 8 hours
    (FRIDAY_20, "en", "Monday 9 March before 17:00"),
])
async def test_the_response_time_answer_depends_on_the_clock(shop, moment, lang, said):
    repo = Records(shop)
    async with repo.session() as s:
        sanne = (await s.execute(Customer.__table__.select().where(Customer.customer_number == "K10001"))).first().id
    clock = FixedClock(moment)
    deadline = ServiceLevels.load().deadline("complaint", clock.now())
    ticket = await repo.create_ticket(sanne, "complaint", details="fixed clock", promised_by=deadline)
    try:
        conversation = f"c-clock-{uuid.uuid4().hex[:8]}"
        tracker = Tracker(conversation, {"customer_id": str(sanne), "language": lang}, {}, [], False, None, {},
                          "action_listen")
        dispatcher = CollectingDispatcher()
        await ActionResponseTime(clock=clock).run(dispatcher, tracker, {})
        mine = [m for m in dispatcher.messages if m.get("ticket") == ticket.id]
        assert [(m["response"], m["deadline"]) for m in mine] == [("utter_response_time_ticket", said)]
        # an hour after the deadline the same ticket is late
        dispatcher = CollectingDispatcher()
        await ActionResponseTime(clock=FixedClock(deadline + timedelta(hours=1))).run(dispatcher, tracker, {})
        assert [m["response"] for m in dispatcher.messages if m.get("ticket") == ticket.id] == [
            "utter_response_time_ticket_late"]
    finally:
        await repo.close_ticket(ticket.id)


# -- a decision's order age at a fixed moment ------------------------------------------------------

async def _sanne_and_order(shop) -> tuple[Customer, Order]:
    repo = Records(shop)
    async with repo.session() as s:
        order = (await s.execute(Order.__table__.select().where(Order.order_number == "104100"))).first()
    customer = await repo.customer(order.customer_id)
    return customer, await repo.order(customer.id, "104100")


def _days_after_delivery(order: Order, days: int, hour: int, minute: int) -> FixedClock:
    """A clock `days` calendar days (in the configured zone) after the order's delivery day."""
    delivered = FixedClock(datetime.now(timezone.utc)).date_of(order.delivered_at)
    return FixedClock(datetime.combine(delivered + timedelta(days=days), time(hour, minute), tzinfo=local_zone()))


async def test_order_age_counts_calendar_days_in_the_configured_zone(shop):
    customer, order = await _sanne_and_order(shop)
    decisions = Decisions(Records(shop), MandateTable.load(), _days_after_delivery(order, 30, 23, 59))
    assert decisions.order_age_days(order) == 30
    decisions.clock.advance(minutes=1)  # midnight: one day older
    assert decisions.order_age_days(order) == 31
    request = await decisions.request("refund", customer, amount_cents=1000, order=order)
    assert (request.order_age_days, request.today, request.amount) == (
        31, decisions.clock.today(), Decimal("10"))


@pytest.mark.parametrize("days,hour,minute,response,age", [
    (30, 23, 59, "utter_refund_granted", 30),     # the bot may refund orders at most 30 days old ...
    (31, 0, 0, "utter_request_escalated", 31),    # ... one minute later it is 31 days
])
async def test_the_bots_refund_uses_the_clock_for_the_order_age(shop, days, hour, minute, response, age):
    customer, order = await _sanne_and_order(shop)
    clock = _days_after_delivery(order, days, hour, minute)
    slots = {"topic": "request_refund", "customer_id": str(customer.id), "language": "nl",
             "order_number": "104100", "amount": "10"}
    latest = {"text": "", "intent": {"name": "inform"}, "entities": []}
    tracker = Tracker("c-age", slots, latest, [{"event": "user", "metadata": {}}], False, None, {}, "action_listen")
    dispatcher = CollectingDispatcher()
    await ActionTopic(clock=clock).run(dispatcher, tracker, {})
    assert dispatcher.messages[0]["response"] == response
    if age == 31:
        assert dispatcher.messages[0]["reason"] == "bestelling is 31 dagen oud, meer dan de grens van 30 dagen voor de bot"
    async with Records(shop).session() as s:
        audit = (await s.execute(AuditEntry.__table__.select().where(AuditEntry.customer_id == customer.id)
                                 .order_by(AuditEntry.id.desc()))).first()
        granted = (await s.execute(Decision.__table__.select().where(Decision.customer_id == customer.id,
                                                                     Decision.kind == "refund"))).all()
    assert (audit.decision, audit.allowed, audit.request["order_age_days"], audit.request["today"]) == (
        "refund", age == 30, age, clock.today().isoformat())
    assert [g.amount_cents for g in granted] == ([1000] if age == 30 else [])


def test_the_action_server_registers_the_actions_that_take_a_clock():
    """rasa_sdk registers every subclass of Action: the clock mixin must not be one."""
    from rasa_sdk.executor import ActionExecutor

    executor = ActionExecutor()
    executor.register_package("actions")
    assert {"action_topic", "action_ask_amount", "action_ask_retention_accepted", "action_response_time"} <= set(
        executor.actions)
