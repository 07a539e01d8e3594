"""The custom actions that read and write the customer records, on a real database.

Every test that touches the records runs twice: on SQLite and on PostgreSQL (the `shop` fixture
in conftest.py loads the demo web shop into an emptied database and points `records()` at it).
The actions are run directly with rasa_sdk trackers, as in test_actions.py. The tests check what
the customer would notice (the response and the values filled into it) and what is written to
the database (tickets, decisions, audit log, contact history, customers, identities, codes).

The personas are those of docs/demo-data.md; their database ids are looked up, never assumed.
"""

from __future__ import annotations

import hashlib
import re
import time
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from rasa_sdk import Tracker
from rasa_sdk.events import ActiveLoop, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy import insert, select

from actions.dialogue import ActionGreet
from actions.handlers import ActionAskAmount, ActionAskDetails, ActionAskRetentionAccepted, ActionTopic
from actions.language import ValidateSlotMappings
from actions.topics import ActionAskOrderNumber, ActionAskOtpCode, ValidateTopicForm
from bot.policy.clock import Clock, FixedClock
from bot.policy.hours import ServiceLevels
from bot.texts import fmt
from bot.records.models import (
    AuditEntry, ChurnScore, ContactEvent, ContactIdentity, Customer, Decision, Invoice, OneTimeCode, Order, Outbox,
    Ticket,
)
from bot.records.repository import aware
from tests.support.clock import business_monday, local

# The tests of deadlines run at one moment: 10:00 on a Monday a few days from now (the demo shop is
# dated by it, see the `clock` fixture), where every response time here (8 business hours,
# config/service_levels.yml) ends on Tuesday at 10:00.
MONDAY = business_monday()
TUESDAY_10 = local(MONDAY.date() + timedelta(days=1), 10)
at_monday = pytest.mark.parametrize("clock", [FixedClock(MONDAY)], ids=["monday-10h"])
TOMORROW_10 = {"nl": "morgen voor 10:00", "en": "tomorrow before 10:00"}

FORM = "topic_form"
DOMAIN = {"slots": {}, "forms": {FORM: {"required_slots": ["customer_id"]}}}
# the slots action_topic clears after every answered question
RESET = [SlotSet(slot, None) for slot in
         ("details", "amount", "instalments", "retention_accepted", "preference", "otp_code", "id_attempts",
          "claimed_id", "id_code", "callback_phone", "callback_slot", "callback_offer", "callback_phone_asked")]


# -- trackers and running actions -------------------------------------------------------------

def tracker(text="", intent="inform", entities=(), slots=None, metadata=None, active_loop=None) -> Tracker:
    latest = {"text": text, "intent": {"name": intent, "confidence": 0.9}, "entities": list(entities)}
    user_event = {"event": "user", "text": text, "parse_data": latest, "metadata": metadata or {}}
    return Tracker("c-records", dict(slots or {}), latest, [user_event], False, None,
                   {"name": active_loop}, "action_listen")


def topic_done(message: dict) -> bool:
    """The control message every answered question ends with (bot/shared/control.py TopicDone)."""
    return (message.get("custom") or {}).keys() == {"topic_done"}


async def run(action, t: Tracker):
    """The messages an action sent (without the TopicDone marker: tests/test_conversation_actions.py
    checks that one) and its events."""
    dispatcher = CollectingDispatcher()
    events = await action.run(dispatcher, t, DOMAIN)
    return [m for m in dispatcher.messages if not topic_done(m)], events


def responses(messages) -> list[str]:
    """Response names; a custom JSON message (for the gateway) by its first key."""
    return [m["response"] or next(iter(m.get("custom") or {}), None) for m in messages]


def slots_after(slots: dict, events) -> dict:
    out = dict(slots)
    out.update({e["name"]: e["value"] for e in events if e.get("event") == "slot"})
    return out


async def answer(topic: str, customer: int | None, lang: str = "nl", channel: str | None = None,
                 clock: Clock | None = None, **slots):
    """Run action_topic for a question the form has gathered (at `clock`'s time: the process's by default)."""
    values = {"topic": topic, "customer_id": None if customer is None else str(customer), "language": lang, **slots}
    return await run(ActionTopic(clock=clock), tracker(slots=values, metadata={"channel": channel} if channel else {}))


# -- the database ------------------------------------------------------------------------------

async def rows(engine, model, *where) -> list[dict]:
    table = model.__table__
    async with engine.connect() as conn:
        result = await conn.execute(select(table).where(*where).order_by(*table.primary_key.columns))
        return [dict(r) for r in result.mappings()]


async def one(engine, model, *where) -> dict:
    found = await rows(engine, model, *where)
    assert len(found) == 1, found
    return found[0]


async def cid(engine, number: str) -> int:
    return (await one(engine, Customer, Customer.customer_number == number))["id"]


async def order_row(engine, number: str) -> dict:
    return await one(engine, Order, Order.order_number == number)


WATCHED = {"tickets": Ticket, "decisions": Decision, "audit_log": AuditEntry, "contact_history": ContactEvent,
           "outbox": Outbox, "one_time_codes": OneTimeCode}


async def snapshot(engine) -> dict[str, set[int]]:
    return {name: {r["id"] for r in await rows(engine, model)} for name, model in WATCHED.items()}


async def added(engine, before: dict[str, set[int]]) -> dict[str, list[dict]]:
    return {name: [r for r in await rows(engine, model) if r["id"] not in before[name]]
            for name, model in WATCHED.items()}


def nothing_written(new: dict[str, list[dict]]) -> bool:
    return all(not v for v in new.values())


def now() -> datetime:
    """The real time (one-time codes and what the records stamp themselves use it)."""
    return datetime.now(timezone.utc)


async def known_code(engine, customer: int, code: str) -> None:
    """A one-time code stored the way Records.issue_code stores it (hashed), with a known value."""
    async with engine.begin() as conn:
        await conn.execute(insert(OneTimeCode.__table__).values(
            customer_id=customer, code_hash=hashlib.sha256(f"{customer}:{code}".encode()).hexdigest(),
            channel="whatsapp", created_at=now(), expires_at=now() + timedelta(minutes=10), attempts=0))


# == 1. who is it ================================================================================

@pytest.fixture(autouse=True)
def _fresh_identification_limits(monkeypatch):
    """Without REDIS_URL the limits (actions/limits.py) count in this process: start each test afresh."""
    from actions import limits

    monkeypatch.delenv("REDIS_URL", raising=False)
    limits._redis.cache_clear()
    limits._local.clear()
    yield
    limits._local.clear()


async def codes_sent(engine, customer: int) -> list[dict]:
    return await rows(engine, Outbox, Outbox.customer_id == customer, Outbox.kind == "one_time_code")


CLAIMED = {"id_code": None, "id_order_number": None, "postcode": None, "id_attempts": 0, "given_claim": None}


@pytest.mark.parametrize("text", ["K10001", "mijn klantnummer is k 10001", "klant K-10001 hier",
                                  "sanne.devries@example.nl", "Mijn mail is SANNE.DeVries@Example.NL graag"])
async def test_a_claim_sends_a_code_and_identifies_nobody_yet(shop, text):
    sanne = await cid(shop, "K10001")
    dispatcher = CollectingDispatcher()
    found = await ValidateTopicForm().extract_customer_id(
        dispatcher, tracker(text, slots={"requested_slot": "customer_id"}), DOMAIN)
    assert found == {"claimed_id": str(sanne), **CLAIMED}
    assert "customer_id" not in found and "customer_name" not in found
    assert dispatcher.messages[0]["custom"] == {"identity": {"level": "claimed"}}
    [code] = await codes_sent(shop, sanne)
    assert (code["channel"], code["address"]) == ("whatsapp", "+31612345601")  # a channel in her records


async def test_a_claim_of_nobody_looks_exactly_the_same(shop):
    dispatcher = CollectingDispatcher()
    found = await ValidateTopicForm().extract_customer_id(
        dispatcher, tracker("K99999", slots={"requested_slot": "customer_id"}), DOMAIN)
    assert found == {"claimed_id": "none", **CLAIMED}
    assert dispatcher.messages[0]["custom"] == {"identity": {"level": "claimed"}}
    assert await rows(shop, Outbox) == [] or all(r["kind"] != "one_time_code" for r in await rows(shop, Outbox))


async def test_the_code_from_the_records_verifies_and_joins(shop):
    sanne = await cid(shop, "K10001")
    await known_code(shop, sanne, "4821")
    form = ValidateTopicForm()
    slots = {"requested_slot": "id_code", "claimed_id": str(sanne), "topic": "order_status"}
    assert await form.required_slots([], CollectingDispatcher(), tracker(slots=slots), DOMAIN) == [
        "id_code", "customer_id", "order_number"]
    dispatcher = CollectingDispatcher()
    found = await form.extract_id_code(dispatcher, tracker("4821", slots=slots), DOMAIN)
    assert found["customer_id"] == str(sanne) and found["customer_name"] == "Sanne" and found["id_code"] == "ok"
    assert found["claimed_id"] is None and found["verified_until"] > time.time() + 29 * 60
    assert [(m["response"], m.get("customer_name")) for m in dispatcher.messages] == [
        ("utter_identified", "Sanne"), (None, None)]
    assert dispatcher.messages[1]["custom"] == {"identified_customer": sanne,
                                                "identity": {"level": "verified", "by": "code"}}


async def test_wrong_codes_are_answered_alike_and_the_third_ends_the_claim(shop):
    sanne = await cid(shop, "K10001")
    await known_code(shop, sanne, "4821")
    form = ValidateTopicForm()
    from actions import limits

    for claimed in (str(sanne), "none"):
        limits._local.clear()  # another conversation
        slots = {"requested_slot": "id_code", "claimed_id": claimed, "id_attempts": 0}
        said = []
        for text in ("1111", "2222", "3333"):
            dispatcher = CollectingDispatcher()
            found = await form.extract_id_code(dispatcher, tracker(text, slots=slots), DOMAIN)
            said += responses(dispatcher.messages)
            slots = {**slots, **found}
            assert "customer_id" not in found
        assert said == ["utter_otp_wrong", "utter_otp_wrong", "utter_identify_code_give_up"]
        assert slots["claimed_id"] is None


async def test_order_number_and_postcode_prove_that_order_for_an_order_status_question(shop):
    form = ValidateTopicForm()
    dispatcher = CollectingDispatcher()
    slots = {"requested_slot": "customer_id", "topic": "order_status"}
    found = await form.extract_customer_id(dispatcher, tracker("bestelling 104233, postcode 1012 ab", slots=slots), DOMAIN)
    assert found == {"claim_order": "104233", "order_number": "104233", "id_order_number": None, "postcode": None}
    assert dispatcher.messages == []
    slots.update(found)
    assert await form.required_slots([], dispatcher, tracker(slots=slots), DOMAIN) == []
    messages, _ = await run(ActionTopic(), tracker(slots={**slots, "language": "nl"}))
    assert [(m["response"], m.get("summary")) for m in messages] == [
        ("utter_order_status_claimed", "Bestelling 104233: onderweg, vervoerder PostNL")]
    # another order, or another question, needs the customer verified
    other = {**slots, "order_number": "104100"}
    assert await form.required_slots([], dispatcher, tracker(slots=other), DOMAIN) == ["customer_id", "order_number"]


async def test_order_number_and_postcode_for_any_other_question_need_a_code(shop):
    sanne = await cid(shop, "K10001")
    found = await ValidateTopicForm().extract_customer_id(
        CollectingDispatcher(), tracker("104233 1012AB", slots={"requested_slot": "customer_id",
                                                                "topic": "return_item"}), DOMAIN)
    assert found == {"claimed_id": str(sanne), **CLAIMED}


async def test_order_number_alone_asks_for_the_postcode(shop):
    form = ValidateTopicForm()
    first = CollectingDispatcher()
    found = await form.extract_customer_id(first, tracker("104233", slots={"requested_slot": "customer_id"}), DOMAIN)
    assert found == {"id_order_number": "104233", "order_number": "104233"}
    assert first.messages == []  # nobody identified yet, and nothing said: the form asks the postcode
    assert await form.required_slots([], first, tracker(slots={"topic": "return_item", **found}), DOMAIN) == [
        "postcode", "customer_id", "order_number"]


@pytest.mark.parametrize("text", ["104233 9999ZZ", "118902 1012AB"], ids=["wrong-postcode", "someone-elses-order"])
async def test_order_number_with_a_postcode_that_does_not_match_shows_nothing(shop, text):
    dispatcher = CollectingDispatcher()
    found = await ValidateTopicForm().extract_customer_id(
        dispatcher, tracker(text, slots={"requested_slot": "customer_id", "topic": "order_status"}), DOMAIN)
    assert found == {"id_order_number": None, "postcode": None, "order_number": None}
    assert responses(dispatcher.messages) == ["utter_claim_order_not_found"]


async def test_no_claim_at_all_counts_the_attempts_and_gives_up_on_the_third(shop):
    form = ValidateTopicForm()
    attempts = None
    said = []
    for text in ("weet ik niet", "geen idee", "hmm"):
        dispatcher = CollectingDispatcher()
        found = await form.extract_customer_id(
            dispatcher, tracker(text, slots={"requested_slot": "customer_id", "id_attempts": attempts}), DOMAIN)
        attempts = found["id_attempts"]
        said += responses(dispatcher.messages)
    assert attempts == 3
    assert said == ["utter_identify_failed", "utter_identify_failed", "utter_identify_give_up"]


async def test_claims_per_conversation_are_limited(shop):
    form = ValidateTopicForm()
    said = []
    for n in range(1, 8):
        dispatcher = CollectingDispatcher()
        await form.extract_customer_id(dispatcher, tracker(f"K1000{n}", slots={"requested_slot": "customer_id"}), DOMAIN)
        said.append(responses(dispatcher.messages))
    assert said[:5] == [["identity"]] * 5
    assert said[5:] == [["utter_identify_limited"]] * 2


async def test_codes_per_customer_are_limited_whoever_asks(shop):
    sanne = await cid(shop, "K10001")
    form = ValidateTopicForm()
    for n in range(5):  # five strangers, five conversations, five client addresses
        t = tracker("K10001", slots={"requested_slot": "customer_id"}, metadata={"client": f"visitor-{n}"})
        t.sender_id = f"c-stranger-{n}"
        await form.extract_customer_id(CollectingDispatcher(), t, DOMAIN)
    assert len(await codes_sent(shop, sanne)) == 3  # config/identity.yml codes_per_customer


async def test_a_customer_number_volunteered_unasked_starts_the_claim_and_small_talk_does_not(shop):
    sanne = await cid(shop, "K10001")
    form = ValidateTopicForm()
    found = await form.extract_customer_id(CollectingDispatcher(), tracker("Hoi, ik ben K10001"), DOMAIN)
    assert found["claimed_id"] == str(sanne) and "customer_id" not in found
    quiet = CollectingDispatcher()
    assert await form.extract_customer_id(quiet, tracker("waar blijft mijn pakket?"), DOMAIN) == {}
    assert await form.extract_customer_id(quiet, tracker("K10002", slots={"customer_id": str(sanne)}), DOMAIN) == {}
    assert quiet.messages == []


@pytest.mark.parametrize("channel,address,number,first_name", [
    ("whatsapp", "+31612345601", "K10001", "Sanne"),
    ("sms", "+31612345602", "K10002", "Daan"),
    ("telegram", "700100", "K10003", "Emma"),
])
async def test_identified_by_the_channel_address(shop, channel, address, number, first_name):
    expected = await cid(shop, number)
    t = tracker("hoi", metadata={"channel": channel, "address": address})
    found = await ValidateSlotMappings().extract_customer_id(CollectingDispatcher(), t, DOMAIN)
    assert found == {"customer_id": str(expected), "customer_name": first_name}


async def test_a_web_chat_session_proves_nothing_unless_the_site_verified_it(shop):
    olivia = await cid(shop, "K10005")
    action = ValidateSlotMappings()
    plain = tracker("hi", metadata={"channel": "webchat", "address": "web-olivia"})
    assert await action.extract_customer_id(CollectingDispatcher(), plain, DOMAIN) == {}
    signed = tracker("hi", metadata={"channel": "webchat", "address": "web-olivia", "verified_identity": True})
    assert await action.extract_customer_id(CollectingDispatcher(), signed, DOMAIN) == {
        "customer_id": str(olivia), "customer_name": "Olivia"}
    stranger = tracker("hoi", metadata={"channel": "whatsapp", "address": "+31699999999"})
    assert await action.extract_customer_id(CollectingDispatcher(), stranger, DOMAIN) == {}
    known = tracker("hoi", slots={"customer_id": "7"}, metadata={"channel": "whatsapp", "address": "+31612345601"})
    assert await action.extract_customer_id(CollectingDispatcher(), known, DOMAIN) == {}


async def test_customer_known_by_channel_is_greeted_by_name(shop):
    sanne = await cid(shop, "K10001")
    t = tracker("hoi", metadata={"channel": "whatsapp", "address": "+31612345601", "language": "nl"})
    _, events = await run(ValidateSlotMappings(), t)
    slots = slots_after({}, events)
    assert slots["customer_id"] == str(sanne)
    messages, _ = await run(ActionGreet(), tracker("hoi", slots=slots))
    assert [(m["response"], m.get("customer_name")) for m in messages] == [("utter_greet_known", "Sanne")]


async def test_form_order_number_then_postcode_then_code_identifies_through_the_form(shop):
    sanne = await cid(shop, "K10001")
    slots = {"topic": "return_item", "requested_slot": "customer_id", "language": "nl"}
    _, events = await run(ValidateTopicForm(), tracker("104233", slots=slots, active_loop=FORM))
    slots = slots_after(slots, events)
    assert slots["requested_slot"] == "postcode"
    # utter_ask_postcode says "bestelling {id_order_number}": the slot must be there
    assert slots.get("id_order_number") == "104233"
    messages, events = await run(ValidateTopicForm(), tracker("1012 AB", slots=slots, active_loop=FORM))
    assert responses(messages) == ["identity"]
    slots = slots_after(slots, events)
    assert slots["requested_slot"] == "id_code" and slots.get("customer_id") is None
    [sent] = await codes_sent(shop, sanne)
    await known_code(shop, sanne, "5931")  # the newest code is the one checked
    messages, events = await run(ValidateTopicForm(), tracker("5931", slots=slots, active_loop=FORM))
    assert responses(messages) == ["utter_identified", "identified_customer"]
    assert slots_after(slots, events)["customer_id"] == str(sanne)


async def test_form_gives_up_after_three_wrong_codes(shop):
    slots = {"topic": "complaint", "requested_slot": "customer_id", "language": "nl"}
    said = []
    for text in ("K99999", "1234", "2345", "3456"):
        messages, events = await run(ValidateTopicForm(), tracker(text, slots=slots, active_loop=FORM))
        said += responses(messages)
        slots = slots_after(slots, events)
    assert said == ["identity", "utter_otp_wrong", "utter_otp_wrong", "utter_identify_code_give_up"]
    assert slots["requested_slot"] == "customer_id" and slots.get("customer_id") is None


# == 2. what the form asks, per topic ===============================================================

def _shown(key: str, value: object) -> str:
    """A test id that is the same in every process (pytest-xdist compares them): a time as past/future."""
    if key == "verified_until":
        return "future" if float(value) > time.time() else "past"
    return str(value)[:10]


@pytest.mark.parametrize("slots,expected", [
    ({"topic": "order_status"}, ["customer_id", "order_number"]),
    ({"topic": "request_refund"}, ["customer_id", "order_number", "otp_code", "amount"]),
    ({"topic": "request_refund", "verified_until": time.time() + 86400}, ["customer_id", "order_number", "amount"]),
    ({"topic": "request_refund", "verified_until": time.time() - 1}, ["customer_id", "order_number", "otp_code", "amount"]),
    ({"topic": "request_refund", "id_order_number": "104100"},
     ["postcode", "customer_id", "order_number", "otp_code", "amount"]),
    ({"topic": "request_refund", "id_order_number": "104100", "customer_id": "1"},
     ["customer_id", "order_number", "otp_code", "amount"]),
    ({"topic": "update_preferences"}, ["customer_id", "preference"]),
    ({"topic": "update_preferences", "preference": "preferred_channel=sms"}, ["customer_id", "preference"]),
    ({"topic": "update_preferences", "preference": "consent_proactive=no"}, ["customer_id", "preference"]),
    ({"topic": "update_preferences", "preference": "email=new@example.nl"}, ["customer_id", "preference", "otp_code"]),
    ({"topic": "update_preferences", "preference": "phone=+31611111111"}, ["customer_id", "preference", "otp_code"]),
    ({"topic": "update_preferences", "preference": "email=new@example.nl", "verified_until": time.time() + 86400},
     ["customer_id", "preference"]),
    ({"topic": "payment_arrangement"}, ["customer_id", "amount", "instalments"]),
    ({"topic": "cancel_contract"}, ["customer_id", "details", "retention_accepted"]),
    ({"topic": None}, ["customer_id"]),
], ids=lambda v: "-".join(f"{k}={_shown(k, x)}" for k, x in v.items()) if isinstance(v, dict) else None)
async def test_required_slots_per_topic(slots, expected):
    form = ValidateTopicForm()
    assert await form.required_slots([], CollectingDispatcher(), tracker(slots=slots), DOMAIN) == expected


# == 3. order status ============================================================================

@pytest.mark.parametrize("number,order_number,lang,response,status", [
    ("K10001", "104233", "nl", "utter_order_status_late", "onderweg"),
    ("K10001", "104100", "nl", "utter_order_status_delivered", "bezorgd"),
    ("K10003", "126354", "en", "utter_order_status_shipped", "on its way"),
    ("K10005", "131313", "en", "utter_order_status_placed", "ordered, not shipped yet"),
])
async def test_order_status_answers_from_the_order(shop, number, order_number, lang, response, status):
    customer = await cid(shop, number)
    order = await order_row(shop, order_number)
    before = await snapshot(shop)
    messages, events = await answer("order_status", customer, lang, channel="whatsapp", order_number=order_number)
    assert events == RESET
    assert responses(messages) == [response]
    said = messages[0]
    assert said["order_number"] == order_number and said["status"] == status
    assert said["carrier"] == (order["carrier"] or "-") and said["tracking_code"] == (order["tracking_code"] or "-")
    assert said["expected"] == fmt.day(order["promised_date"], lang)
    new = await added(shop, before)
    assert [(c["customer_id"], c["channel"], c["topic"], c["summary"]) for c in new["contact_history"]] == [
        (customer, "whatsapp", "order_status", f"order {order_number}")]
    assert new["tickets"] == [] and new["decisions"] == [] and new["audit_log"] == []


@at_monday
async def test_late_order_names_carrier_and_tracking_code(shop, clock):
    sanne = await cid(shop, "K10001")
    messages, _ = await answer("order_status", sanne, order_number="104233", clock=clock)
    assert responses(messages) == ["utter_order_status_late"]
    assert (messages[0]["carrier"], messages[0]["tracking_code"]) == ("PostNL", "3SWEB104233")
    assert messages[0]["expected"] == fmt.day(MONDAY.date() - timedelta(days=2), "nl")  # promised for Saturday
    contact = (await rows(shop, ContactEvent, ContactEvent.customer_id == sanne))[-1]
    assert (contact["channel"], contact["topic"]) == ("webchat", "order_status")  # no channel metadata: web chat


async def test_someone_elses_order_is_not_shown(shop):
    sanne = await cid(shop, "K10001")
    form = ValidateTopicForm()
    dispatcher = CollectingDispatcher()
    t = tracker("118902", slots={"customer_id": str(sanne), "requested_slot": "order_number"})
    assert await form.validate_order_number("118902", dispatcher, t, DOMAIN) == {"order_number": None}
    assert [(m["response"], m["order_number"]) for m in dispatcher.messages] == [("utter_order_not_found", "118902")]
    own = CollectingDispatcher()
    assert await form.validate_order_number("#104233", own, t, DOMAIN) == {"order_number": "104233"}
    assert own.messages == []

    before = await snapshot(shop)
    messages, events = await answer("order_status", sanne, order_number="118902")
    assert events == RESET
    assert [(m["response"], m["order_number"]) for m in messages] == [("utter_order_not_found", "118902")]
    assert "carrier" not in messages[0]  # nothing of Daan's order leaks
    assert nothing_written(await added(shop, before))


async def test_order_number_given_before_identification_is_dropped_when_not_theirs(shop):
    sanne = await cid(shop, "K10001")
    form = ValidateTopicForm()
    t = tracker(slots={"order_number": "118902"})
    assert await form.validate_customer_id(str(sanne), CollectingDispatcher(), t, DOMAIN) == {
        "customer_id": str(sanne), "order_number": None}
    t = tracker(slots={"order_number": "104233"})
    assert await form.validate_customer_id(str(sanne), CollectingDispatcher(), t, DOMAIN) == {"customer_id": str(sanne)}


async def test_which_order_offers_the_customers_recent_orders_as_buttons(shop):
    sanne = await cid(shop, "K10001")
    messages, events = await run(ActionAskOrderNumber(), tracker(slots={"customer_id": str(sanne), "language": "nl"}))
    assert events == [] and responses(messages) == ["utter_ask_order_number"]
    buttons = messages[0]["buttons"]
    late, refundable = await order_row(shop, "104233"), await order_row(shop, "104100")
    assert len(buttons) == 4
    assert buttons[:2] == [
        {"title": f"104233 · {fmt.day(late['placed_at'], 'nl')} · onderweg", "payload": "104233"},
        {"title": f"104100 · {fmt.day(refundable['placed_at'], 'nl')} · bezorgd", "payload": "104100"},
    ]
    daan = await cid(shop, "K10002")
    assert "118902" not in [b["payload"] for b in buttons] and daan != sanne


# == 4. refunds ==================================================================================

async def test_refund_within_the_bots_mandate_is_granted_and_recorded(shop):
    sanne = await cid(shop, "K10001")
    order = await order_row(shop, "104100")
    before = await snapshot(shop)
    messages, events = await answer("request_refund", sanne, channel="whatsapp", order_number="104100", amount="all",
                                    verified_until=time.time() + 600)
    assert events == RESET
    assert [(m["response"], m["amount"], m["order_number"]) for m in messages] == [
        ("utter_refund_granted", "€19,95", "104100")]
    new = await added(shop, before)
    assert [(d["customer_id"], d["kind"], d["amount_cents"], d["role"], d["actor"], d["order_id"])
            for d in new["decisions"]] == [(sanne, "refund", 1995, "bot", "bot", order["id"])]
    [audit] = new["audit_log"]
    assert (audit["customer_id"], audit["decision"], audit["allowed"], audit["actor_role"]) == (sanne, "refund", True, "bot")
    assert audit["request"]["amount"] == "19.95" and audit["request"]["order_age_days"] == 10
    assert new["tickets"] == []
    assert [(c["channel"], c["topic"], c["summary"]) for c in new["contact_history"]] == [
        ("whatsapp", "refund", "order 104100")]


@at_monday
@pytest.mark.parametrize("amount,granted", [("25.00", True), ("25.01", False)])
async def test_refund_limit_is_exactly_25_euros(shop, clock, amount, granted):
    daan = await cid(shop, "K10002")  # order 118902: €249.00, delivered 3 days ago
    before = await snapshot(shop)
    messages, _ = await answer("request_refund", daan, order_number="118902", amount=amount, clock=clock)
    new = await added(shop, before)
    cents = 2500 if granted else 2501
    [audit] = new["audit_log"]
    assert audit["allowed"] is granted
    if granted:
        assert [(m["response"], m["amount"]) for m in messages] == [("utter_refund_granted", "€25,00")]
        assert [(d["kind"], d["amount_cents"], d["role"]) for d in new["decisions"]] == [("refund", cents, "bot")]
        assert new["tickets"] == []
    else:
        assert [(m["response"], m["role"]) for m in messages if m["response"]] == [("utter_request_escalated", "medewerker")]
        assert messages[-1]["custom"]["handoff"]["role"] == "agent"
        assert messages[0]["reason"] == "bedrag €25,01 is meer dan de grens van €25,00 voor de bot"
        assert audit["escalate_to"] == "agent"
        assert new["decisions"] == []
        [ticket] = new["tickets"]
        assert ticket["kind"] == "waiting_request" and ticket["data"]["role"] == "agent"
        assert ticket["data"]["amount_cents"] == cents
        assert aware(ticket["promised_by"]) == TUESDAY_10


@at_monday
@pytest.mark.parametrize("lang,role,reason", [
    ("nl", "senior medewerker", "bedrag €249,00 is meer dan de grens van €25,00 voor de bot"),
    ("en", "senior colleague", "amount €249.00 is over the bot's limit of €25.00"),
])
async def test_refund_beyond_the_bots_mandate_becomes_a_prefilled_request(shop, clock, lang, role, reason):
    daan = await cid(shop, "K10002")
    order = await order_row(shop, "118902")
    before = await snapshot(shop)
    messages, events = await answer("request_refund", daan, lang, channel="sms", order_number="118902", amount="all",
                                    clock=clock)
    assert events == RESET
    assert responses(messages) == ["utter_request_escalated", "handoff"]
    said = messages[0]
    assert (said["role"], said["reason"]) == (role, reason)
    # the gateway queues it for a senior agent and tells the customer the live wait
    handoff = messages[1]["custom"]["handoff"]
    assert (handoff["reason"], handoff["role"], handoff["request"]) == (
        "mandate", "senior_agent", {"decision": "refund", "amount_cents": 24900, "order_number": "118902"})

    new = await added(shop, before)
    assert new["decisions"] == []  # nothing granted
    [ticket] = new["tickets"]
    assert said["ticket"] == ticket["id"] == handoff["ticket"]
    assert (ticket["customer_id"], ticket["kind"], ticket["status"], ticket["order_id"], ticket["channel"]) == (
        daan, "waiting_request", "open", order["id"], "sms")
    assert aware(ticket["promised_by"]) == TUESDAY_10  # the SLA deadline stays the upper bound
    data = ticket["data"]
    assert (data["request"], data["role"], data["amount_cents"], data["order_number"]) == (
        "refund", "senior_agent", 24900, "118902")
    assert [r["code"] for r in data["reasons"]] == ["amount_over_limit"]
    [audit] = new["audit_log"]
    assert (audit["decision"], audit["allowed"], audit["escalate_to"], audit["actor_role"]) == (
        "refund", False, "senior_agent", "bot")
    assert [(c["topic"], c["summary"]) for c in new["contact_history"]] == [("refund", "order 118902")]


@pytest.mark.parametrize("amount,reason_codes", [("10.00", ["order_too_old"]),
                                                 ("all", ["amount_over_limit", "order_too_old"])])
async def test_refund_on_an_order_older_than_30_days_goes_to_a_colleague(shop, amount, reason_codes):
    emma = await cid(shop, "K10003")  # order 121212, €59.00, delivered 40 days ago
    before = await snapshot(shop)
    messages, _ = await answer("request_refund", emma, "en", channel="telegram", order_number="121212", amount=amount)
    assert [(m["response"], m["role"]) for m in messages if m["response"]] == [("utter_request_escalated", "colleague")]
    assert messages[-1]["custom"]["handoff"]["role"] == "agent"
    assert messages[0]["reason"].endswith("order is 40 days old, over the bot's limit of 30 days")
    if amount == "10.00":
        assert messages[0]["reason"] == "order is 40 days old, over the bot's limit of 30 days"
    new = await added(shop, before)
    [ticket] = new["tickets"]
    assert ticket["data"]["role"] == "agent"
    assert ticket["data"]["amount_cents"] == (1000 if amount == "10.00" else 5900)
    assert [r["code"] for r in ticket["data"]["reasons"]] == reason_codes
    [audit] = new["audit_log"]
    assert (audit["allowed"], audit["escalate_to"]) == (False, "agent")
    assert audit["request"]["order_age_days"] == 40
    assert new["decisions"] == []


async def test_refund_of_more_than_the_order_cost_is_refused_without_writing_anything(shop):
    sanne = await cid(shop, "K10001")
    before = await snapshot(shop)
    messages, events = await answer("request_refund", sanne, order_number="104100", amount="20.00")
    assert events == RESET
    assert [(m["response"], m["order_number"], m["total"]) for m in messages] == [
        ("utter_refund_too_much", "104100", "€19,95")]
    assert nothing_written(await added(shop, before))


@pytest.mark.parametrize("number,topic,lang,response,total,title", [
    ("K10001", "request_refund", "nl", "utter_ask_amount_refund", "€19,95", "Het hele bedrag (€19,95)"),
    ("K10002", "payment_arrangement", "en", "utter_ask_amount_arrangement", "€249.00", "The full amount (€249.00)"),
])
async def test_ask_amount_shows_the_total_and_its_button_means_everything(shop, number, topic, lang, response, total,
                                                                          title):
    customer = await cid(shop, number)
    slots = {"customer_id": str(customer), "topic": topic, "language": lang,
             "order_number": "104100" if topic == "request_refund" else None}
    messages, events = await run(ActionAskAmount(), tracker(slots=slots))
    assert events == []
    assert [(m["response"], m["total"], m["buttons"]) for m in messages] == [
        (response, total, [{"title": title, "payload": title}])]
    pressed = tracker(title, slots={**slots, "requested_slot": "amount"})
    assert await ValidateTopicForm().extract_amount(CollectingDispatcher(), pressed, DOMAIN) == {"amount": "all"}


@pytest.mark.parametrize("text,expected", [
    ("€ 12,50 graag", {"amount": "12.50"}), ("25", {"amount": "25.00"}), ("alles", {"amount": "all"}),
    ("the whole amount please", {"amount": "all"}), ("dertig euro", {"amount": None}),
])
async def test_amount_is_read_from_the_answer(text, expected):
    dispatcher = CollectingDispatcher()
    t = tracker(text, slots={"requested_slot": "amount"})
    assert await ValidateTopicForm().extract_amount(dispatcher, t, DOMAIN) == expected
    assert responses(dispatcher.messages) == ([] if expected.get("amount") else ["utter_amount_format"])


# == 5. one-time codes ===========================================================================

@pytest.mark.parametrize("number,lang,channel,address,shown,masked,wording", [
    ("K10001", "nl", "whatsapp", "+31612345601", "WhatsApp", "•••• 01", "Je code voor De Webwinkel is"),
    ("K10003", "en", "sms", "+447700900123", "SMS", "•••• 23", "Your De Webwinkel code is"),
])
async def test_one_time_code_is_sent_to_a_known_channel_and_stored_hashed(shop, number, lang, channel, address,
                                                                          shown, masked, wording):
    customer = await cid(shop, number)
    before = await snapshot(shop)
    messages, events = await run(ActionAskOtpCode(), tracker(slots={"customer_id": str(customer), "language": lang}))
    assert events == []
    assert [(m["response"], m["channel"], m["masked"]) for m in messages] == [("utter_ask_otp_code", shown, masked)]
    new = await added(shop, before)
    [sent] = new["outbox"]
    assert (sent["customer_id"], sent["channel"], sent["address"], sent["kind"], sent["sent_at"]) == (
        customer, channel, address, "one_time_code", None)
    assert sent["body"].startswith(wording)
    code = re.search(r"\d{4,}", sent["body"]).group(0)
    [stored] = new["one_time_codes"]
    assert stored["code_hash"] == hashlib.sha256(f"{customer}:{code}".encode()).hexdigest()
    assert code not in stored["code_hash"]
    assert (stored["channel"], stored["attempts"], stored["used_at"]) == (channel, 0, None)
    assert timedelta(minutes=9) < aware(stored["expires_at"]) - now() <= timedelta(minutes=10)


async def test_the_code_sent_is_the_4_digit_code_the_bot_asks_for_and_it_verifies(shop):
    sanne = await cid(shop, "K10001")
    await run(ActionAskOtpCode(), tracker(slots={"customer_id": str(sanne), "language": "nl"}))
    [sent] = await rows(shop, Outbox, Outbox.customer_id == sanne)
    code = re.search(r"\d+", sent["body"]).group(0)
    assert len(code) == 4  # utter_ask_otp_code: "een code van 4 cijfers"
    dispatcher = CollectingDispatcher()
    t = tracker(code, slots={"customer_id": str(sanne), "requested_slot": "otp_code"})
    found = await ValidateTopicForm().extract_otp_code(dispatcher, t, DOMAIN)
    assert found.get("otp_code") == "ok"


async def test_right_code_verifies_for_half_an_hour_and_only_once(shop):
    sanne = await cid(shop, "K10001")
    await known_code(shop, sanne, "4321")
    form = ValidateTopicForm()
    t = tracker("mijn code is 4321", slots={"customer_id": str(sanne), "requested_slot": "otp_code"})
    dispatcher = CollectingDispatcher()
    started = time.time()
    found = await form.extract_otp_code(dispatcher, t, DOMAIN)
    assert found["otp_code"] == "ok"
    assert started + 29 * 60 < found["verified_until"] <= time.time() + 30 * 60
    assert responses(dispatcher.messages) == ["utter_otp_verified"]
    [stored] = await rows(shop, OneTimeCode, OneTimeCode.customer_id == sanne)
    assert stored["used_at"] is not None and stored["attempts"] == 1

    again = CollectingDispatcher()
    assert await form.extract_otp_code(again, t, DOMAIN) == {"otp_code": None}
    assert responses(again.messages) == ["utter_otp_wrong"]


async def test_wrong_code_verifies_nothing_and_five_wrong_codes_burn_it(shop):
    sanne = await cid(shop, "K10001")
    await known_code(shop, sanne, "4321")
    form = ValidateTopicForm()
    slots = {"customer_id": str(sanne), "requested_slot": "otp_code"}
    for attempt in range(1, 6):
        dispatcher = CollectingDispatcher()
        assert await form.extract_otp_code(dispatcher, tracker("1234", slots=slots), DOMAIN) == {"otp_code": None}
        assert responses(dispatcher.messages) == ["utter_otp_wrong"]
        [stored] = await rows(shop, OneTimeCode, OneTimeCode.customer_id == sanne)
        assert (stored["attempts"], stored["used_at"]) == (attempt, None)
    late = CollectingDispatcher()
    assert await form.extract_otp_code(late, tracker("4321", slots=slots), DOMAIN) == {"otp_code": None}  # too many tries
    assert responses(late.messages) == ["utter_otp_wrong"]

    unsure = CollectingDispatcher()
    assert await form.extract_otp_code(unsure, tracker("geen idee", slots=slots), DOMAIN) == {"otp_code": None}
    assert responses(unsure.messages) == ["utter_otp_format"]
    other = CollectingDispatcher()  # only while the code is asked
    assert await form.extract_otp_code(other, tracker("4321", slots={**slots, "requested_slot": "amount"}), DOMAIN) == {}
    assert other.messages == []


async def test_form_keeps_the_customer_verified_after_the_right_code(shop):
    sanne = await cid(shop, "K10001")
    await known_code(shop, sanne, "4321")
    slots = {"topic": "request_refund", "customer_id": str(sanne), "order_number": "104100",
             "requested_slot": "otp_code", "language": "nl"}
    messages, events = await run(ValidateTopicForm(), tracker("4321", slots=slots, active_loop=FORM))
    assert responses(messages) == ["utter_otp_verified"]
    slots = slots_after(slots, events)
    assert slots["requested_slot"] == "amount"
    # next turn: the amount; the form must not ask for (and send) a code again
    _, events = await run(ValidateTopicForm(), tracker("alles", slots=slots, active_loop=FORM))
    assert slots_after(slots, events)["requested_slot"] is None


# == 6. invoices ==================================================================================

async def test_overdue_invoice_is_listed_with_the_total_overdue(shop):
    daan = await cid(shop, "K10002")
    invoice = await one(shop, Invoice, Invoice.invoice_number == "F2026-00102")
    before = await snapshot(shop)
    messages, events = await answer("invoice_question", daan, channel="sms")
    assert events == RESET
    assert [(m["response"], m["total"]) for m in messages] == [("utter_invoices_overdue", "€249,00")]
    lines = messages[0]["lines"].split("\n")
    assert lines[0] == (f"• F2026-00102 (118902): €249,00, achterstallig "
                        f"(vervaldatum {fmt.day(invoice['due_date'], 'nl')}, open €249,00)")
    assert len(lines) == 4 and all(line.endswith(", betaald") for line in lines[1:])
    new = await added(shop, before)
    assert [(c["customer_id"], c["channel"], c["topic"]) for c in new["contact_history"]] == [
        (daan, "sms", "invoice_question")]


@pytest.mark.parametrize("lang,paid", [("nl", "betaald"), ("en", "paid")])
async def test_paid_invoices_are_listed_without_a_warning(shop, lang, paid):
    sanne = await cid(shop, "K10001")
    messages, _ = await answer("invoice_question", sanne, lang)
    assert responses(messages) == ["utter_invoices"] and "total" not in messages[0]
    lines = messages[0]["lines"].split("\n")
    assert len(lines) == 5  # the five newest
    assert all(line.endswith(f", {paid}") for line in lines)
    assert lines[0].startswith("• ") and "(104233): " in lines[0]
    assert ("€89.95" if lang == "en" else "€89,95") in lines[0]


# == 7. payment arrangements =======================================================================

async def test_arrangement_within_the_bots_mandate_is_granted(shop):
    daan = await cid(shop, "K10002")
    before = await snapshot(shop)
    messages, events = await answer("payment_arrangement", daan, channel="sms", amount="all", instalments=3.0)
    assert events == RESET
    assert [(m["response"], m["amount"], m["instalments"], m["per"]) for m in messages] == [
        ("utter_arrangement_granted", "€249,00", 3, "€83,00")]
    new = await added(shop, before)
    assert [(d["customer_id"], d["kind"], d["amount_cents"], d["instalments"], d["role"]) for d in new["decisions"]] == [
        (daan, "payment_arrangement", 24900, 3, "bot")]
    assert [(a["decision"], a["allowed"]) for a in new["audit_log"]] == [("payment_arrangement", True)]
    assert new["tickets"] == []
    assert [c["topic"] for c in new["contact_history"]] == ["payment_arrangement"]


@pytest.mark.parametrize("instalments,role,role_name", [
    (5, "agent", "medewerker"), (12, "senior_agent", "senior medewerker"), (13, "supervisor", "teamleider"),
])
async def test_more_instalments_go_to_the_role_that_may_grant_them(shop, instalments, role, role_name):
    daan = await cid(shop, "K10002")
    before = await snapshot(shop)
    messages, _ = await answer("payment_arrangement", daan, amount="all", instalments=float(instalments))
    assert [(m["response"], m["role"]) for m in messages if m["response"]] == [("utter_request_escalated", role_name)]
    assert messages[-1]["custom"]["handoff"]["role"] == role
    assert messages[0]["reason"] == f"{instalments} termijnen is meer dan de grens van 3 termijnen voor de bot"
    new = await added(shop, before)
    assert new["decisions"] == []
    [ticket] = new["tickets"]
    assert ticket["kind"] == "waiting_request" and ticket["order_id"] is None
    assert (ticket["data"]["request"], ticket["data"]["role"], ticket["data"]["amount_cents"],
            ticket["data"]["instalments"]) == ("payment_arrangement", role, 24900, instalments)
    [audit] = new["audit_log"]
    assert (audit["allowed"], audit["escalate_to"]) == (False, role)


async def test_nothing_open_means_no_arrangement(shop):
    sanne = await cid(shop, "K10001")
    before = await snapshot(shop)
    messages, _ = await answer("payment_arrangement", sanne, amount="all", instalments=3.0)
    assert responses(messages) == ["utter_nothing_open"]
    assert nothing_written(await added(shop, before))


@pytest.mark.parametrize("text,expected,complaint", [
    ("3", {"instalments": 3.0}, []), ("in drie termijnen", {"instalments": 3.0}, []),
    ("twelve please", {"instalments": 12.0}, []), ("1", {"instalments": None}, ["utter_instalments_format"]),
    ("weet ik niet", {"instalments": None}, ["utter_instalments_format"]),
])
async def test_instalments_are_read_from_the_answer(text, expected, complaint):
    dispatcher = CollectingDispatcher()
    t = tracker(text, slots={"requested_slot": "instalments"})
    assert await ValidateTopicForm().extract_instalments(dispatcher, t, DOMAIN) == expected
    assert responses(dispatcher.messages) == complaint


# == 8. loyalty ===================================================================================

async def test_gold_customer_sees_every_reward(shop):
    sanne = await cid(shop, "K10001")
    before = await snapshot(shop)
    messages, events = await answer("loyalty_points", sanne, channel="whatsapp")
    assert events == RESET
    assert [(m["response"], m["points"], m["tier"]) for m in messages] == [("utter_loyalty_rewards", 1250, "gold")]
    rewards = messages[0]["rewards"].split("\n")
    assert len(rewards) == 8
    assert rewards[0] == "• Gratis cadeauverpakking (100 punten)"
    assert rewards[-1] == "• Gratis avondlevering, een jaar lang (600 punten)"
    new = await added(shop, before)
    assert [(c["channel"], c["topic"]) for c in new["contact_history"]] == [("whatsapp", "loyalty")]


async def test_silver_customer_sees_only_rewards_of_her_tier_in_english(shop):
    emma = await cid(shop, "K10003")  # 540 points, silver
    messages, _ = await answer("loyalty_points", emma, "en")
    assert [(m["response"], m["points"], m["tier"]) for m in messages] == [("utter_loyalty_rewards", 540, "silver")]
    assert messages[0]["rewards"].split("\n") == [
        "• Free gift wrapping (100 points)",
        "• Free shipping on your next order (150 points)",
        "• Free return: we collect it at your home (200 points)",
        "• €5 off your next order (250 points)",
        "• Early access to the sale, two days ahead (300 points)",
        "• €10 off your next order (450 points)",
    ]


async def test_few_points_means_no_rewards_yet(shop):
    olivia = await cid(shop, "K10005")  # 15 points
    messages, _ = await answer("loyalty_points", olivia, "en")
    assert [(m["response"], m["points"], m["tier"]) for m in messages] == [
        ("utter_loyalty_no_rewards_yet", 15, "bronze")]
    assert "rewards" not in messages[0]


# == 9. preferences ===============================================================================

async def test_preferred_channel_changes_at_once(shop):
    sanne = await cid(shop, "K10001")
    messages, events = await answer("update_preferences", sanne, preference="preferred_channel=sms")
    assert events == RESET
    assert [(m["response"], m["what"], m["value"]) for m in messages] == [
        ("utter_preference_updated", "je voorkeurskanaal", "sms")]
    customer = await one(shop, Customer, Customer.id == sanne)
    assert customer["preferred_channel"] == "sms"
    contact = (await rows(shop, ContactEvent, ContactEvent.customer_id == sanne))[-1]
    assert (contact["topic"], contact["summary"]) == ("preferences", "preferred_channel")


async def test_language_change_switches_the_conversation_too(shop):
    sanne = await cid(shop, "K10001")
    messages, events = await answer("update_preferences", sanne, preference="language=en")
    assert events == [SlotSet("language", "en")] + RESET
    assert [(m["response"], m["what"], m["value"]) for m in messages] == [
        ("utter_preference_updated", "je taal", "English")]
    assert (await one(shop, Customer, Customer.id == sanne))["language"] == "en"


async def test_email_change_needs_a_verified_customer(shop):
    sanne = await cid(shop, "K10001")
    before = await snapshot(shop)
    for verified_until in (None, time.time() - 5):
        messages, events = await answer("update_preferences", sanne, preference="email=nieuw@example.nl",
                                        verified_until=verified_until)
        assert responses(messages) == ["utter_not_verified"] and events == RESET
    customer = await one(shop, Customer, Customer.id == sanne)
    assert customer["email"] == "sanne.devries@example.nl"
    identities = await rows(shop, ContactIdentity, ContactIdentity.customer_id == sanne,
                            ContactIdentity.channel == "email")
    assert [i["address"] for i in identities] == ["sanne.devries@example.nl"]
    assert nothing_written(await added(shop, before))


async def test_verified_email_change_updates_customer_and_identity(shop):
    sanne = await cid(shop, "K10001")
    messages, _ = await answer("update_preferences", sanne, "en", preference="email=sanne.nieuw@example.nl",
                               verified_until=time.time() + 600)
    assert [(m["response"], m["what"], m["value"]) for m in messages] == [
        ("utter_preference_updated", "your email address", "sanne.nieuw@example.nl")]
    assert (await one(shop, Customer, Customer.id == sanne))["email"] == "sanne.nieuw@example.nl"
    identities = await rows(shop, ContactIdentity, ContactIdentity.customer_id == sanne,
                            ContactIdentity.channel == "email")
    assert [(i["address"], i["verified"]) for i in identities] == [("sanne.nieuw@example.nl", False)]
    # she is now found by the new address, no longer by the old one
    form = ValidateTopicForm()
    found = await form.extract_customer_id(
        CollectingDispatcher(), tracker("sanne.nieuw@example.nl", slots={"requested_slot": "customer_id"}), DOMAIN)
    assert found["claimed_id"] == str(sanne)
    gone = await form.extract_customer_id(
        CollectingDispatcher(), tracker("sanne.devries@example.nl", slots={"requested_slot": "customer_id"}), DOMAIN)
    assert gone["claimed_id"] == "none"


async def test_email_of_another_account_is_refused_and_nothing_changes(shop):
    sanne = await cid(shop, "K10001")
    messages, _ = await answer("update_preferences", sanne, preference="email=daan.jansen@example.nl",
                               verified_until=time.time() + 600)
    assert responses(messages) == ["utter_preference_taken"]
    assert (await one(shop, Customer, Customer.id == sanne))["email"] == "sanne.devries@example.nl"
    identities = await rows(shop, ContactIdentity, ContactIdentity.customer_id == sanne,
                            ContactIdentity.channel == "email")
    assert [i["address"] for i in identities] == ["sanne.devries@example.nl"]


async def test_verified_phone_change_moves_sms_and_whatsapp(shop):
    sanne = await cid(shop, "K10001")
    messages, _ = await answer("update_preferences", sanne, preference="phone=+31687654321",
                               verified_until=time.time() + 600)
    assert [(m["response"], m["value"]) for m in messages] == [("utter_preference_updated", "+31687654321")]
    identities = await rows(shop, ContactIdentity, ContactIdentity.customer_id == sanne,
                            ContactIdentity.channel.in_(["sms", "whatsapp"]))
    assert sorted((i["channel"], i["address"]) for i in identities) == [
        ("sms", "+31687654321"), ("whatsapp", "+31687654321")]
    t = tracker("hoi", metadata={"channel": "whatsapp", "address": "+31687654321"})
    assert (await ValidateSlotMappings().extract_customer_id(CollectingDispatcher(), t, DOMAIN))["customer_id"] == str(sanne)


@pytest.mark.parametrize("lang,shown", [("nl", "nee"), ("en", "no")])
async def test_consent_for_messages_can_be_switched_off(shop, lang, shown):
    sanne = await cid(shop, "K10001")
    assert (await one(shop, Customer, Customer.id == sanne))["consent_proactive"] is True
    messages, _ = await answer("update_preferences", sanne, lang, preference="consent_proactive=no")
    assert [(m["response"], m["value"]) for m in messages] == [("utter_preference_updated", shown)]
    assert (await one(shop, Customer, Customer.id == sanne))["consent_proactive"] is False


@pytest.mark.parametrize("text,entities,expected", [
    ("stuur het voortaan via WhatsApp", [], "preferred_channel=whatsapp"),
    ("mijn nieuwe e-mail is Sanne.Nieuw@Example.NL", [], "email=sanne.nieuw@example.nl"),
    ("nieuw nummer", [{"entity": "phone_number", "value": "06 1234 5678"}], "phone=+31612345678"),
    ("in het Engels graag", [{"entity": "language", "value": "en"}], "language=en"),
    ("ik wil geen berichten meer", [], "consent_proactive=no"),
    ("please unsubscribe me", [], "consent_proactive=no"),
])
async def test_what_the_customer_wants_to_change_is_understood(text, entities, expected):
    t = tracker(text, entities=entities, slots={"requested_slot": "preference"})
    dispatcher = CollectingDispatcher()
    assert await ValidateTopicForm().extract_preference(dispatcher, t, DOMAIN) == {"preference": expected}
    assert dispatcher.messages == []


async def test_unclear_preference_is_asked_again():
    dispatcher = CollectingDispatcher()
    t = tracker("doe maar iets", slots={"requested_slot": "preference"})
    assert await ValidateTopicForm().extract_preference(dispatcher, t, DOMAIN) == {"preference": None}
    assert responses(dispatcher.messages) == ["utter_preference_unclear"]


async def test_no_more_mail_is_an_opt_out_not_a_channel_switch():
    t = tracker("ik wil geen mail meer ontvangen", slots={"requested_slot": "preference"})
    assert await ValidateTopicForm().extract_preference(CollectingDispatcher(), t, DOMAIN) == {
        "preference": "consent_proactive=no"}


# == 10. complaints ===============================================================================

@at_monday
async def test_complaint_is_recorded_with_an_honest_deadline_and_refreshes_churn(shop, clock):
    sanne = await cid(shop, "K10001")
    churn_before = await one(shop, ChurnScore, ChurnScore.customer_id == sanne)
    before = await snapshot(shop)
    messages, events = await answer("complaint", sanne, channel="whatsapp", clock=clock,
                                    details="De bezorger gooide mijn pakket over het hek.")
    assert events == RESET
    assert responses(messages) == ["utter_complaint_recorded"]
    new = await added(shop, before)
    [ticket] = new["tickets"]
    assert (ticket["customer_id"], ticket["kind"], ticket["status"], ticket["details"], ticket["channel"]) == (
        sanne, "complaint", "open", "De bezorger gooide mijn pakket over het hek.", "whatsapp")
    assert aware(ticket["promised_by"]) == TUESDAY_10
    said = messages[0]
    assert (said["ticket"], said["channel"], said["deadline"]) == (ticket["id"], "WhatsApp", "morgen voor 10:00")
    assert [(c["topic"], c["summary"]) for c in new["contact_history"]] == [("complaint", f"ticket {ticket['id']}")]
    churn_after = await one(shop, ChurnScore, ChurnScore.customer_id == sanne)
    # recomputed at the clock's time (the demo's score was computed when the shop was loaded, before it)
    assert aware(churn_after["computed_at"]) == MONDAY > aware(churn_before["computed_at"])
    assert "open_complaint" in [r["code"] for r in churn_after["reasons"]]
    assert churn_after["score"] > churn_before["score"]




async def test_complaint_of_a_customer_about_to_leave_goes_to_a_person(shop):
    pieter = await cid(shop, "K10004")  # churn score 80: config/handoff.yml sends it to people
    before = await snapshot(shop)
    messages, _ = await answer("complaint", pieter, channel="sms", details="Weer te laat, ik ben het zat.")
    new = await added(shop, before)
    [ticket] = new["tickets"]
    assert responses(messages) == ["utter_complaint_to_person", "handoff"]
    assert messages[0]["ticket"] == ticket["id"]
    handoff = messages[1]["custom"]["handoff"]
    assert (handoff["reason"], handoff["ticket"], handoff["topic"]) == ("complaint", ticket["id"], "complaint")


# says: whether the answer names the deadline (requests beyond the bot's mandate go to people,
# who tell the live wait instead, and a return's answer is about the label)
@pytest.mark.parametrize("topic,number,slots,kind,lang,says", [
    ("complaint", "K10001", {"details": "Onbeleefde bezorger"}, "complaint", "nl", True),
    ("request_refund", "K10002", {"order_number": "118902", "amount": "all"}, "waiting_request", "nl", False),
    ("payment_arrangement", "K10002", {"amount": "all", "instalments": 6.0}, "waiting_request", "en", False),
    ("delivery_problem", "K10001", {"order_number": "104233", "details": "niet bezorgd"}, "delivery_problem", "nl",
     True),
    ("return_item", "K10001", {"order_number": "104100"}, "return", "nl", False),
    ("cancel_contract", "K10003", {"details": "moving", "retention_accepted": False}, "cancellation", "en", True),
    ("cancel_contract", "K10006", {"details": "te duur", "retention_accepted": True, "retention_offer": "colleague"},
     "waiting_request", "nl", False),
], ids=lambda v: v if isinstance(v, str) and not v.startswith("K") and len(v) > 2 else None)
@at_monday
async def test_promised_deadline_is_stored_as_promised(shop, clock, topic, number, slots, kind, lang, says):
    """The moment a person will answer, per service_levels.yml, is the one stored on the ticket
    and the one the customer is told (when the answer names it)."""
    assert ServiceLevels.load().response_hours[kind] == 8  # business hours: Monday 10:00 -> Tuesday 10:00
    customer = await cid(shop, number)
    before = await snapshot(shop)
    messages, _ = await answer(topic, customer, lang, clock=clock, **slots)
    [ticket] = (await added(shop, before))["tickets"]
    assert aware(ticket["promised_by"]) == TUESDAY_10
    told = [m["deadline"] for m in messages if "deadline" in m]
    assert told == ([TOMORROW_10[lang]] if says else [])


# == 11. cancellation =============================================================================

@pytest.mark.parametrize("number,offer,response", [
    ("K10001", "voucher", "utter_retention_offer_voucher"),
    ("K10009", "voucher", "utter_retention_offer_voucher"),   # her voucher was 420 days ago
    ("K10006", "colleague", "utter_retention_offer_colleague"),  # had one from the bot 60 days ago
])
async def test_retention_offer_follows_the_bots_voucher_limit(shop, number, offer, response):
    customer = await cid(shop, number)
    before = await snapshot(shop)
    messages, events = await run(ActionAskRetentionAccepted(),
                                 tracker(slots={"customer_id": str(customer), "language": "nl"}))
    assert events == [SlotSet("retention_offer", offer)]
    assert responses(messages) == [response]
    if offer == "voucher":
        assert messages[0]["amount"] == "€10,00"
    assert nothing_written(await added(shop, before))  # an offer is not a decision yet


async def test_accepted_voucher_keeps_the_customer_and_is_recorded(shop):
    sanne = await cid(shop, "K10001")
    before = await snapshot(shop)
    messages, events = await answer("cancel_contract", sanne, details="te duur", retention_accepted=True,
                                    retention_offer="voucher")
    assert events == RESET
    assert [(m["response"], m["amount"]) for m in messages] == [("utter_retention_kept", "€10,00")]
    new = await added(shop, before)
    assert [(d["kind"], d["amount_cents"], d["role"], d["reason"]) for d in new["decisions"]] == [
        ("goodwill_voucher", 1000, "bot", "retention: te duur")]
    assert [(a["decision"], a["allowed"]) for a in new["audit_log"]] == [("goodwill_voucher", True)]
    assert new["tickets"] == []


@at_monday
async def test_accepted_colleague_offer_becomes_a_waiting_request(shop, clock):
    lotte = await cid(shop, "K10006")
    before = await snapshot(shop)
    messages, _ = await answer("cancel_contract", lotte, details="ik bestel weinig", retention_accepted=True,
                               retention_offer="colleague", clock=clock)
    new = await added(shop, before)
    [ticket] = new["tickets"]
    assert (ticket["kind"], ticket["data"]) == ("waiting_request", {"request": "retention_discount", "role": "agent"})
    assert ticket["details"] == "retention offer wanted: ik bestel weinig"
    assert aware(ticket["promised_by"]) == TUESDAY_10
    assert [(m["response"], m["ticket"]) for m in messages if m["response"]] == [
        ("utter_retention_to_person", ticket["id"])]
    handoff = messages[-1]["custom"]["handoff"]
    assert (handoff["reason"], handoff["role"], handoff["ticket"]) == ("cancellation", "agent", ticket["id"])
    assert new["decisions"] == []


@at_monday
async def test_declined_offer_records_the_cancellation(shop, clock):
    sanne = await cid(shop, "K10001")
    churn_before = await one(shop, ChurnScore, ChurnScore.customer_id == sanne)
    before = await snapshot(shop)
    messages, events = await answer("cancel_contract", sanne, "en", details="moving abroad",
                                    retention_accepted=False, retention_offer="voucher", clock=clock)
    assert events == RESET
    new = await added(shop, before)
    [ticket] = new["tickets"]
    assert (ticket["customer_id"], ticket["kind"], ticket["details"], ticket["status"]) == (
        sanne, "cancellation", "moving abroad", "open")
    assert aware(ticket["promised_by"]) == TUESDAY_10
    assert [(m["response"], m["ticket"], m["channel"], m["deadline"]) for m in messages] == [
        ("utter_cancellation_recorded", ticket["id"], "WhatsApp", "tomorrow before 10:00")]
    assert new["decisions"] == [] and new["audit_log"] == []
    churn_after = await one(shop, ChurnScore, ChurnScore.customer_id == sanne)
    assert aware(churn_after["computed_at"]) == MONDAY > aware(churn_before["computed_at"])


@pytest.mark.parametrize("topic,response", [("cancel_contract", "utter_ask_cancel_reason"),
                                            ("complaint", "utter_ask_details")])
async def test_details_question_fits_the_topic(topic, response):
    messages, events = await run(ActionAskDetails(), tracker(slots={"topic": topic}))
    assert responses(messages) == [response] and events == []


# == 12. delivery problems ========================================================================

@at_monday
async def test_late_delivery_gets_a_ticket_and_one_apology_voucher(shop, clock):
    sanne = await cid(shop, "K10001")
    order = await order_row(shop, "104233")
    before = await snapshot(shop)
    messages, events = await answer("delivery_problem", sanne, channel="whatsapp", order_number="104233",
                                    details="Pakket is nog steeds niet bezorgd", clock=clock)
    assert events == RESET
    new = await added(shop, before)
    [ticket] = new["tickets"]
    assert (ticket["kind"], ticket["order_id"], ticket["details"], ticket["channel"]) == (
        "delivery_problem", order["id"], "Pakket is nog steeds niet bezorgd", "whatsapp")
    assert aware(ticket["promised_by"]) == TUESDAY_10
    assert [(m["response"], m.get("ticket"), m.get("carrier"), m.get("deadline"), m.get("amount")) for m in messages] == [
        ("utter_delivery_ticket", ticket["id"], "PostNL", "morgen voor 10:00", None),
        ("utter_goodwill_granted", None, None, None, "€5,00")]
    assert [(d["kind"], d["amount_cents"], d["order_id"], d["role"], d["reason"]) for d in new["decisions"]] == [
        ("goodwill_voucher", 500, order["id"], "bot", "late delivery")]
    assert [(a["decision"], a["allowed"]) for a in new["audit_log"]] == [("goodwill_voucher", True)]
    assert [(c["topic"], c["summary"]) for c in new["contact_history"]] == [
        ("delivery_problem", f"ticket {ticket['id']}")]

    # the same customer again: a new ticket, but the bot may give one voucher a year
    before = await snapshot(shop)
    messages, _ = await answer("delivery_problem", sanne, channel="whatsapp", order_number="104233",
                               details="Nog steeds niets", clock=clock)
    assert responses(messages) == ["utter_delivery_ticket"]
    new = await added(shop, before)
    assert len(new["tickets"]) == 1 and new["decisions"] == []
    [audit] = new["audit_log"]
    assert (audit["decision"], audit["allowed"], audit["escalate_to"]) == ("goodwill_voucher", False, "agent")
    assert len(await rows(shop, Decision, Decision.customer_id == sanne)) == 1


async def test_delivery_problem_on_an_order_in_time_gets_a_ticket_but_no_voucher(shop):
    emma = await cid(shop, "K10003")  # 126354: on its way, promised in 2 days
    before = await snapshot(shop)
    messages, _ = await answer("delivery_problem", emma, "en", order_number="126354", details="wrong address")
    assert responses(messages) == ["utter_delivery_ticket"] and messages[0]["carrier"] == "DHL"
    new = await added(shop, before)
    assert [t["kind"] for t in new["tickets"]] == ["delivery_problem"]
    assert new["decisions"] == [] and new["audit_log"] == []


@pytest.mark.parametrize("number,order_number,response", [
    ("K10001", "104100", "utter_return_created"),
    ("K10003", "121212", "utter_return_window_passed"),
    ("K10001", "104233", "utter_return_not_delivered"),
])
async def test_returns_within_30_days_of_delivery(shop, number, order_number, response):
    customer = await cid(shop, number)
    before = await snapshot(shop)
    messages, _ = await answer("return_item", customer, order_number=order_number)
    assert [(m["response"], m["order_number"]) for m in messages] == [(response, order_number)]
    new = await added(shop, before)
    if response == "utter_return_created":
        [ticket] = new["tickets"]
        assert (ticket["kind"], ticket["data"]) == ("return", {"label_to": "email"})
        assert (messages[0]["ticket"], messages[0]["email"]) == (ticket["id"], "sanne.devries@example.nl")
    else:
        assert nothing_written(new)


# == 13. action_topic without a question or without a customer ==================================

async def test_stopped_question_is_answered_with_nothing(shop):
    sanne = await cid(shop, "K10001")
    before = await snapshot(shop)
    messages, events = await answer(None, sanne, order_number="104233")
    assert messages == [] and events == RESET
    assert nothing_written(await added(shop, before))


async def test_no_records_without_knowing_the_customer(shop):
    before = await snapshot(shop)
    messages, events = await answer("order_status", None, order_number="104233")
    assert responses(messages) == ["utter_not_identified"] and events == RESET
    messages, events = await answer("order_status", 999999, order_number="104233")
    assert responses(messages) == ["utter_not_identified"]
    assert events == RESET + [SlotSet("customer_id", None), SlotSet("customer_name", None)]
    assert nothing_written(await added(shop, before))


# == 14. "no" stops the form, except as the answer to the retention offer =========================

@pytest.mark.parametrize("topic,requested", [
    ("request_refund", "customer_id"), ("request_refund", "order_number"), ("request_refund", "otp_code"),
    ("request_refund", "amount"), ("payment_arrangement", "instalments"), ("update_preferences", "preference"),
])
async def test_no_stops_the_form(topic, requested):
    slots = {"topic": topic, "customer_id": "1", "requested_slot": requested}
    messages, events = await run(ValidateTopicForm(), tracker("nee", intent="deny", slots=slots, active_loop=FORM))
    assert responses(messages) == ["utter_form_stopped"]
    assert events == RESET + [SlotSet("topic", None), SlotSet("requested_slot", None), ActiveLoop(None)]


@pytest.mark.parametrize("text,requested", [("K10016", "customer_id"), ("the full amount", "amount"), ("€12,50", "amount")])
async def test_an_answer_read_as_no_is_still_the_answer(shop, text, requested):
    """The NLU may read "K10016" or "the full amount" as deny: the value in it decides, the form goes on."""
    slots = {"topic": "request_refund", "requested_slot": requested, "customer_id": None if requested == "customer_id" else "1"}
    messages, events = await run(ValidateTopicForm(), tracker(text, intent="deny", slots=slots, active_loop=FORM))
    assert "utter_form_stopped" not in responses(messages)
    assert ActiveLoop(None) not in events


async def test_no_to_the_retention_offer_is_an_answer():
    slots = {"topic": "cancel_contract", "customer_id": "1", "details": "te duur", "retention_offer": "voucher",
             "requested_slot": "retention_accepted"}
    messages, events = await run(ValidateTopicForm(), tracker("nee", intent="deny", slots=slots, active_loop=FORM))
    assert messages == []
    assert events == [SlotSet("retention_accepted", False), SlotSet("requested_slot", None)]
    messages, events = await run(ValidateTopicForm(), tracker("ja", intent="affirm", slots=slots, active_loop=FORM))
    assert events == [SlotSet("retention_accepted", True), SlotSet("requested_slot", None)]


async def test_a_description_starting_with_no_is_the_description():
    slots = {"topic": "complaint", "customer_id": "1", "requested_slot": "details"}
    text = "nee, het pakket is nooit gekomen"
    messages, events = await run(ValidateTopicForm(), tracker(text, intent="deny", slots=slots, active_loop=FORM))
    assert messages == []
    assert events == [SlotSet("details", text), SlotSet("requested_slot", None)]


# == 11. "how long still?" =========================================================================

@at_monday
async def test_response_time_tells_the_open_promise_and_tickets_honestly(shop, clock):
    from actions.dialogue import ActionResponseTime
    from bot.records.repository import Records

    repo = Records(shop)
    sanne = await cid(shop, "K10001")
    conversation = f"c-rt-{uuid.uuid4().hex[:8]}"
    t = lambda: Tracker(conversation, {"customer_id": str(sanne), "language": "nl"}, {}, [], False, None, {}, "action_listen")  # noqa: E731

    # nothing promised to this conversation yet: the open tickets of the customer, with deadlines
    late = await repo.create_ticket(sanne, "complaint", details="te laat", promised_by=MONDAY - timedelta(hours=2))
    messages, _ = await run(ActionResponseTime(clock=clock), t())
    said = {m["ticket"]: (m["response"], m["deadline"]) for m in messages if m.get("ticket")}
    assert said[late.id] == ("utter_response_time_ticket_late", "vandaag voor 08:00")  # we say we are late

    # a promise made at handoff; a new one replaces it, and that one is what we answer with
    await repo.add_promise(conversation, sanne, "handoff_wait", "vandaag voor 11:00", MONDAY + timedelta(hours=1),
                           now=clock.now())
    await repo.add_promise(conversation, sanne, "handoff_wait", "vandaag voor 13:00", MONDAY + timedelta(hours=3),
                           now=clock.now())
    messages, _ = await run(ActionResponseTime(clock=clock), t())
    assert (messages[0]["response"], messages[0]["deadline"]) == ("utter_response_time_promise", "vandaag voor 13:00")
    assert [p.status for p in await repo.promises(conversation)] == ["renewed", "open"]

    # a person answered in time: the promise is kept and no longer told
    assert await repo.settle_promises(conversation, clock.now()) == 1
    assert [p.status for p in await repo.promises(conversation)] == ["renewed", "kept"]
    await repo.close_ticket(late.id)


async def test_a_refund_never_exceeds_what_is_left_on_the_order(shop):
    sanne = await cid(shop, "K10001")  # order 104100: €19.95, within the bot's mandate
    messages, _ = await answer("request_refund", sanne, order_number="104100", amount="10")
    assert responses(messages) == ["utter_refund_granted"]
    messages, _ = await answer("request_refund", sanne, order_number="104100", amount="15")
    assert responses(messages) == ["utter_refund_more_than_left"]
    assert (messages[0]["refunded"], messages[0]["left"]) == ("€10,00", "€9,95")
    messages, _ = await answer("request_refund", sanne, order_number="104100", amount="all")
    assert responses(messages) == ["utter_refund_granted"] and messages[0]["amount"] == "€9,95"
    messages, _ = await answer("request_refund", sanne, order_number="104100", amount="all")
    assert responses(messages) == ["utter_refund_nothing_left"]
    assert [d["amount_cents"] for d in await rows(shop, Decision, Decision.customer_id == sanne)] == [1000, 995]
