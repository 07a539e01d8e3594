"""Whole conversations need the pieces here (issue 11): the FAQ file, leaving a question, facts said
before or with the question, a question inside information, another topic, cancelling an order,
and no empty values in texts. The actions run directly with rasa_sdk trackers on the demo shop
(SQLite and PostgreSQL, the `shop` fixture), as in test_records_actions.py; the whole
conversations through the running stack are tests/test_conversations.py."""

from __future__ import annotations

import json

import uuid
from datetime import datetime, timedelta, timezone

import pytest
from rasa_sdk import Tracker
from rasa_sdk.events import FollowupAction, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy import update

from actions.answers import ActionFaq, ActionInform, ActionSwitchTopic
from actions.handlers import ActionAskAmount
from actions.language import ValidateSlotMappings
from actions.topics import ValidateTopicForm, leaves_question
from bot.policy import faq
from bot.policy.clock import FixedClock
from bot.policy.rules import policy
from bot.records.models import Customer, Order, Ticket
from tests.support.clock import business_monday
from tests.test_records_actions import RESET, answer, cid, order_row, responses, rows

MONDAY = business_monday()
at_monday = pytest.mark.parametrize("clock", [FixedClock(MONDAY)], ids=["monday-10h"])
DOMAIN = {"slots": {}, "forms": {"topic_form": {"required_slots": ["customer_id"]}}}


def tracker(text="", intent="inform", confidence=0.9, slots=None, ranking=None, latest_action="action_listen",
            active_loop=None, before=()) -> Tracker:
    """A tracker whose last events are the customer's message, `latest_action` and, with an active
    loop, the form's own ActionExecuted (as Rasa hands it to the form's validation)."""
    latest = {"text": text, "intent": {"name": intent, "confidence": confidence}, "entities": [],
              "intent_ranking": ranking or [{"name": intent, "confidence": confidence}]}
    events = [*before, {"event": "action", "name": "action_listen"},
              {"event": "user", "text": text, "parse_data": latest, "metadata": {}}]
    if latest_action != "action_listen":
        events.append({"event": "action", "name": latest_action})
    if active_loop:
        events.append({"event": "action", "name": active_loop})
    # a conversation of its own: identification attempts are counted per conversation (in Redis)
    return Tracker(f"c-conversation-{uuid.uuid4().hex[:12]}", dict(slots or {}), latest, events, False, None,
                   {"name": active_loop}, "topic_form" if active_loop else latest_action)


async def run(action, t: Tracker):
    dispatcher = CollectingDispatcher()
    events = await action.run(dispatcher, t, DOMAIN)
    return dispatcher.messages, events


# == the FAQ file ===============================================================================

@pytest.mark.parametrize("text,entry", [
    ("hoe lang duurt de bezorging?", "delivery_time"),
    ("hoe lang duurd de bezorgign", "delivery_time"),  # typos
    ("how long does delivery usually take?", "delivery_time"),
    ("do I have to pay for the return shipping?", "return_costs"),
    ("is retourneren gratis?", "return_costs"),
    ("how long until my refund after a return?", "refund_timing"),
    ("wanneer krijg ik mijn geld terug", "refund_timing"),
    ("how many points do I get per order?", "points_per_order"),
    ("do you sell gift cards?", "gift_cards"),     # more specific than "do you sell"
    ("what do you sell", "assortment"),
    ("wat zijn de verzendkosten", "shipping_costs"),
    ("wat zijn de bezorgkostn", "shipping_costs"),  # a typo
    ("hoe lang duurt bezorgen normaal eigenlijk bij jullie?", "delivery_time"),  # not "bezorgkosten"
    ("waar is mijn bestelling 104233", None),      # the customer's own order: the records, not the FAQ
    ("hoe lang duurt de bezorging van K10001", None),
    ("ik wil iets terugsturen", None),
    ("hoeveel punten heb ik", None),
    ("/faq", None),
])
def test_the_faq_file_recognises_the_question(text, entry):
    found = faq.match(text)
    assert (found.id if found else None) == entry


def test_faq_answers_fill_in_the_policy_and_speak_both_languages():
    entry = faq.by_id("return_costs")
    assert faq.answer(entry, "nl").startswith(f"Terugsturen is gratis binnen {policy().return_days} dagen na bezorging")
    assert faq.answer(entry, "en").startswith(f"Returns are free within {policy().return_days} days of delivery")
    assert "{" not in faq.answer(entry, "nl") + faq.answer(entry, "en")


def test_an_edited_faq_file_is_read_again_and_a_broken_one_says_where(tmp_path, monkeypatch):
    path = tmp_path / "faq.yml"
    path.write_text('entries:\n  - id: parking\n    match: {nl: ["parkeren"], en: ["parking"]}\n'
                    '    answer: {nl: "Gratis parkeren.", en: "Free parking."}\n')
    monkeypatch.setenv(faq.ENV_VAR, str(path))
    assert faq.match("kan ik bij jullie parkeren?").id == "parking"
    assert faq.match("hoe lang duurt de bezorging") is None
    path.write_text('entries:\n  - id: delivery\n    match: {nl: ["bezorging"], en: ["delivery"]}\n'
                    '    answer: {nl: "Morgen.", en: "Tomorrow."}\n')
    import os
    os.utime(path, (path.stat().st_atime, path.stat().st_mtime + 5))
    assert faq.match("kan ik bij jullie parkeren?") is None
    assert faq.answer(faq.match("wanneer is de bezorging"), "en") == "Tomorrow."
    path.write_text("entries:\n  - id: x\n    answer: {nl: hoi}\n")
    os.utime(path, (path.stat().st_atime, path.stat().st_mtime + 10))
    with pytest.raises(faq.FaqError, match="answer.en is missing"):
        faq.match("iets")


async def test_action_faq_answers_in_the_conversations_language_or_says_what_it_knows():
    messages, _ = await run(ActionFaq(), tracker("do you sell gift cards?", "faq", slots={"language": "en"}))
    assert [m["text"] for m in messages] == [faq.answer(faq.by_id("gift_cards"), "en")]
    messages, _ = await run(ActionFaq(), tracker("hebben jullie een fysieke winkel?", "faq", slots={"language": "nl"}))
    assert responses(messages) == ["utter_faq_unknown"]
    assert messages[0]["topics"] == ", ".join(faq.topics("nl")) and "cadeaukaarten" in messages[0]["topics"]


# == leaving a question =========================================================================

@pytest.mark.parametrize("requested,text,intent,leaves", [
    ("customer_id", "laat maar, doei", "goodbye", True),
    ("customer_id", "K10001 doei", "goodbye", False),                     # an answer after all
    ("customer_id", "can we continue in English?", "change_language", True),
    ("customer_id", "how long does delivery take", "faq", True),
    ("order_number", "ik wil eigenlijk iets terugsturen", "return_item", True),  # another topic
    ("order_number", "waar is mijn bestelling", "order_status", False),   # the same topic again
    ("order_number", "104233 graag", "return_item", False),
    ("amount", "bedankt", "thank", True),
    ("amount", "25 euro", "thank", False),
    ("instalments", "3 graag, dank je", "thank", False),
    ("details", "doei", "goodbye", True),
    ("details", "het pakket is nooit gekomen en ik wil nu mijn geld terug, dit is de tweede keer", "request_refund",
     False),                                                              # a description, whatever it sounds like
    ("details", "mijn pakket is nooit aangekomen, bedankt voor niks en doei", "goodbye", False),  # long: a description
    ("customer_id", "doei", "goodbye", True),
    (None, "doei", "goodbye", False),                                     # nothing was asked
])
def test_what_leaves_a_question(requested, text, intent, leaves):
    slots = {"requested_slot": requested, "topic": "order_status"}
    confidence = 0.95
    assert leaves_question(tracker(text, intent, confidence, slots=slots)) is leaves


def test_a_button_leaves_by_its_intent_and_an_unsure_intent_does_not():
    slots = {"requested_slot": "customer_id", "topic": "order_status"}
    assert leaves_question(tracker("/request_human", "request_human", 1.0, slots=slots))
    assert not leaves_question(tracker("uh dus", "goodbye", 0.3, slots=slots))


async def test_the_form_rejects_a_message_that_leaves_and_reads_nothing_when_it_comes_back(shop):
    form = ValidateTopicForm()
    slots = {"requested_slot": "customer_id", "topic": "order_status"}
    messages, events = await run(form, tracker("laat maar, doei", "goodbye", slots=slots, active_loop="topic_form"))
    assert (messages, events) == ([], [])  # rejected: the rule for goodbye answers
    # Back after a side question: the same message is not read again (no "I can't find anyone"),
    # only the next question is chosen.
    asking = [{"event": "active_loop", "name": "topic_form"}]
    messages, events = await run(form, tracker("hoe lang duurt de bezorging?", "faq", slots=slots,
                                               latest_action="action_faq", active_loop="topic_form", before=asking))
    assert messages == []
    assert events == [SlotSet("requested_slot", "customer_id")]
    # Taken up from information that asked a question too (action_inform): the message is read.
    sanne_said = await run(form, tracker("waar blijft mijn pakket, ik ben K10001", "inform",
                                         slots={"topic": "order_status"}, latest_action="action_inform",
                                         active_loop="topic_form"))
    assert any(e.get("name") == "claimed_id" for e in sanne_said[1])
    # Started by a side question's action ("when will you call me back? K10018" from someone
    # unknown): the form was not asking yet, so the message is read.
    harry_said = await run(form, tracker("when will you call me back? K10018", "ask_response_time",
                                         slots={"topic": "ask_response_time"}, latest_action="action_response_time",
                                         active_loop="topic_form"))
    assert any(e.get("name") == "claimed_id" for e in harry_said[1])


# == facts said before or with the question =====================================================

async def test_a_customer_number_said_before_the_question_is_used_when_it_comes(shop):
    sanne = await cid(shop, "K10001")
    slots_action = ValidateSlotMappings()
    assert await slots_action.extract_given_claim(CollectingDispatcher(), tracker("Hoi, ik ben K10001"), DOMAIN) \
        == {"given_claim": "K10001"}
    assert await slots_action.extract_given_claim(CollectingDispatcher(), tracker("bestelling 104233 en 1012 AB"),
                                                  DOMAIN) == {"given_claim": "104233 1012 AB"}
    assert await slots_action.extract_given_claim(
        CollectingDispatcher(), tracker("K10001", slots={"customer_id": str(sanne)}), DOMAIN) == {}
    found = await ValidateTopicForm().extract_customer_id(
        CollectingDispatcher(), tracker("waar blijft mijn pakket?", "order_status", slots={"given_claim": "K10001"}),
        DOMAIN)
    assert found["claimed_id"] == str(sanne) and found["given_claim"] is None


@pytest.mark.parametrize("text,requested,expected", [
    ("kan het in 3 termijnen?", None, 3.0),
    ("kan ik in drie maanden betalen", None, 3.0),
    ("can I pay in 4 instalments", "customer_id", 4.0),
    ("kan ik een regeling krijgen", None, None),
    ("in 99 termijnen", None, None),        # outside config/policy.yml instalments
])
async def test_instalments_said_with_the_question_are_not_asked_again(text, requested, expected):
    found = await ValidateTopicForm().extract_instalments(
        CollectingDispatcher(), tracker(text, "payment_arrangement", slots={"requested_slot": requested}), DOMAIN)
    assert found == ({"instalments": expected} if expected else {})


@pytest.mark.parametrize("text,expected", [
    ("ik wil €19,95 terug van bestelling 104100", "19.95"),
    ("refund 12.50 euro for 104100 please", "12.50"),
    ("ik wil geld terug voor 104100", None),    # an order number is no amount
])
async def test_an_amount_said_with_the_question_is_not_asked_again(text, expected):
    found = await ValidateTopicForm().extract_amount(
        CollectingDispatcher(), tracker(text, "request_refund", slots={"requested_slot": None}), DOMAIN)
    assert found == ({"amount": expected} if expected else {})


async def test_a_question_that_tells_what_happened_is_its_description():
    form = ValidateTopicForm()
    said = "mijn airfryer is na twee weken al kapot en niemand reageert"
    assert await form.extract_details(CollectingDispatcher(), tracker(said, "complaint", slots={"topic": "complaint"}),
                                      DOMAIN) == {"details": said}
    assert await form.extract_details(CollectingDispatcher(), tracker("ik heb een klacht", "complaint",
                                                                      slots={"topic": "complaint"}), DOMAIN) == {}


# == a question inside information, another topic ==============================================

async def test_information_that_also_asks_something_answers_the_question():
    ranking = [{"name": "inform", "confidence": 0.55}, {"name": "order_status", "confidence": 0.31}]
    _, events = await run(ActionInform(), tracker("waar blijft mijn pakket, ik ben K10001", "inform", 0.55,
                                                  ranking=ranking))
    assert events == [SlotSet("topic", "order_status"), FollowupAction("topic_form")]
    messages, events = await run(ActionInform(), tracker("K10001", "inform", 0.55, ranking=ranking))
    assert responses(messages) == ["utter_inform_ack"] and events == []


async def test_another_topic_keeps_who_the_customer_is_and_its_description():
    said = "laat maar, ik wil een klacht indienen over de bezorger die mijn pakket kapot gooide"
    _, events = await run(ActionSwitchTopic(), tracker(said, "complaint", slots={"customer_id": "7"}))
    assert SlotSet("topic", "complaint") in events and SlotSet("details", said) in events
    assert SlotSet("requested_slot", None) in events and not any(e["name"] == "customer_id" for e in events)


async def test_an_answered_question_tells_the_gateway_so(shop):
    from actions.handlers import ActionTopic

    sanne = await cid(shop, "K10001")
    dispatcher = CollectingDispatcher()
    await ActionTopic().run(dispatcher, tracker(slots={"topic": "loyalty_points", "customer_id": str(sanne)}), DOMAIN)
    assert [m["response"] for m in dispatcher.messages] == ["utter_loyalty_rewards", None]
    assert dispatcher.messages[-1]["custom"] == {"topic_done": "loyalty_points"}
    dispatcher = CollectingDispatcher()
    await ActionTopic().run(dispatcher, tracker(slots={"topic": "loyalty_points"}), DOMAIN)  # nobody identified
    assert [(m["response"], m.get("custom") or None) for m in dispatcher.messages] == [("utter_not_identified", None)]


# == cancelling an order ========================================================================

@at_monday
async def test_cancelling_an_order_that_has_not_shipped_asks_a_colleague_with_a_deadline(shop, clock):
    olivia = await cid(shop, "K10005")
    messages, events = await answer("cancel_order", olivia, "en", channel="webchat", clock=clock, order_number="131313")
    assert responses(messages) == ["utter_order_cancel_requested"] and events == RESET
    [ticket] = await rows(shop, Ticket, Ticket.customer_id == olivia, Ticket.kind == "cancellation")
    assert ticket["order_id"] == (await order_row(shop, "131313"))["id"] and ticket["status"] == "open"
    assert messages[0]["deadline"] == "tomorrow before 10:00" and messages[0]["ticket"] == ticket["id"]


@pytest.mark.parametrize("number,order_number,response", [
    ("K10003", "126354", "utter_order_cancel_shipped"),
    ("K10001", "104100", "utter_order_cancel_delivered"),
])
async def test_an_order_on_its_way_or_delivered_cannot_be_cancelled_and_says_what_can(shop, number, order_number,
                                                                                       response):
    customer = await cid(shop, number)
    messages, _ = await answer("cancel_order", customer, order_number=order_number)
    assert responses(messages) == [response] and messages[0]["return_days"] == policy().return_days
    assert await rows(shop, Ticket, Ticket.customer_id == customer, Ticket.kind == "cancellation") == []


# == no empty values ===========================================================================

async def test_an_order_without_carrier_is_told_without_one(shop):
    emma = await cid(shop, "K10003")
    async with shop.begin() as conn:
        await conn.execute(update(Order.__table__).where(Order.order_number == "126354").values(
            carrier=None, tracking_code=None))
    messages, _ = await answer("order_status", emma, "en", order_number="126354")
    assert responses(messages) == ["utter_order_status_shipped_plain"]
    assert "carrier" not in messages[0] or messages[0]["carrier"] in ("-", None)


async def test_nothing_outstanding_is_said_instead_of_asking_for_an_amount_of_nothing(shop):
    from actions.deps import mandates, records
    from bot.policy.decisions import Decisions

    anouk = await cid(shop, "K10009")
    assert await Decisions(records(), mandates()).open_cents(anouk) == 0  # the demo: everything paid
    messages, events = await run(ActionAskAmount(), tracker(slots={"customer_id": str(anouk),
                                                                   "topic": "payment_arrangement", "language": "nl"}))
    assert responses(messages) == ["utter_nothing_open"]
    assert SlotSet("requested_slot", None) in events and SlotSet("topic", None) in events


async def test_a_business_is_addressed_by_its_name(shop):
    hoekstra = (await rows(shop, Customer, Customer.customer_number == "K10013"))[0]
    sanne = (await rows(shop, Customer, Customer.customer_number == "K10001"))[0]
    assert Customer(name=hoekstra["name"], segment=hoekstra["segment"]).greeting_name == "Kantoorservice Hoekstra B.V."
    assert Customer(name=sanne["name"], segment=sanne["segment"]).greeting_name == "Sanne"


# == a callback on record ======================================================================

@at_monday
async def test_a_callback_on_record_is_named_when_the_customer_asks_for_one(shop, clock):
    from actions.dialogue import ActionRequestCallback

    harry = await cid(shop, "K10018")  # the demo: to be called back tomorrow at 10:00
    [ticket] = await rows(shop, Ticket, Ticket.customer_id == harry, Ticket.kind == "callback")
    messages, _ = await run(ActionRequestCallback(clock=clock),
                            tracker("when will you call me back?", "request_callback",
                                    slots={"customer_id": str(harry), "language": "en"}))
    assert [(m["response"], m["deadline"], m["ticket"]) for m in messages] == [
        ("utter_response_time_callback", "tomorrow before 10:00", ticket["id"])]
    two_days_later = FixedClock(MONDAY + timedelta(days=2))
    messages, _ = await run(ActionRequestCallback(clock=two_days_later),
                            tracker("bel me terug", "request_callback", slots={"customer_id": str(harry)}))
    assert [m["response"] for m in messages] == ["utter_response_time_callback_late"]
    messages, events = await run(ActionRequestCallback(clock=clock), tracker("bel me terug", "request_callback"))
    # nobody known: a callback is booked (who it is first, then the number and a window)
    assert messages == [] and events == [SlotSet("topic", "request_callback"), FollowupAction("topic_form")]
    messages, events = await run(ActionRequestCallback(clock=clock), tracker("wanneer bellen jullie me terug?",
                                                                             "request_callback"))
    assert events == [SlotSet("topic", "ask_response_time"), FollowupAction("topic_form")]  # a time on record


@pytest.mark.parametrize("text,wanted", [
    ("can it be in the afternoon instead?", {"part": "afternoon"}),
    ("kan het ook 's middags?", {"part": "afternoon"}),
    ("kan het morgenochtend?", {"part": "morning"}),
    ("bel me vanavond maar", {"part": "evening"}),
    ("liever na 15:00", {"said": "na 15:00"}),
    ("call me on friday after 2pm", {"said": "on friday after 2pm"}),
    ("when will you call me back?", None),
    ("wanneer bellen jullie me terug?", None),
])
def test_the_time_a_customer_prefers_for_a_callback(text, wanted):
    from actions.dialogue import callback_time

    assert callback_time(text) == wanted


@at_monday
@pytest.mark.parametrize("action_name,intent", [("ActionRequestCallback", "request_callback"),
                                                ("ActionResponseTime", "ask_response_time")])
async def test_a_preferred_time_for_the_callback_on_record_is_noted_on_it(shop, clock, action_name, intent):
    import actions.dialogue

    harry = await cid(shop, "K10018")  # the demo: to be called back tomorrow at 10:00
    [ticket] = await rows(shop, Ticket, Ticket.customer_id == harry, Ticket.kind == "callback")
    action = getattr(actions.dialogue, action_name)(clock=clock)
    messages, _ = await run(action, tracker("can it be in the afternoon instead?", intent,
                                            slots={"customer_id": str(harry), "language": "en"}))
    assert [m["text"] for m in messages] == [
        "Noted: you'd rather be called in the afternoon. I've passed it on to the colleague who calls you "
        f"back (#{ticket['id']}); if that isn't possible, they'll let you know."]
    [after] = await rows(shop, Ticket, Ticket.id == ticket["id"])
    assert after["data"]["preferred_time"] == "in the afternoon"
    assert after["status"] == "open"


@pytest.mark.parametrize("order_number,changes,response", [
    ("126354", {"promised_date": None}, "utter_order_status_shipped_no_date"),
    ("126354", {"promised_date": None, "carrier": None}, "utter_order_status_other"),
    ("131313", {"promised_date": None}, "utter_order_status_placed_no_date"),
])
async def test_an_order_without_an_expected_date_is_told_without_one(shop, order_number, changes, response):
    customer = (await order_row(shop, order_number))["customer_id"]
    async with shop.begin() as conn:
        await conn.execute(update(Order.__table__).where(Order.order_number == order_number).values(**changes))
    messages, _ = await answer("order_status", customer, "en", order_number=order_number)
    assert responses(messages) == [response]


# == from the dialogue suite's findings ========================================================

async def test_a_customer_with_one_order_under_way_is_not_asked_which(shop):
    olivia = await cid(shop, "K10005")  # one order, 131313, placed
    form = ValidateTopicForm()
    slots = {"topic": "order_status", "customer_id": str(olivia), "requested_slot": None}
    _, events = await run(form, tracker("when will my order arrive?", "order_status", slots=slots,
                                        active_loop="topic_form"))
    assert SlotSet("order_number", "131313") in events
    assert events[-1] == SlotSet("requested_slot", None)  # nothing left to ask
    sanne = await cid(shop, "K10001")  # 104233 under way, and delivered ones: still only one under way
    _, events = await run(form, tracker("waar blijft mijn pakket", "order_status",
                                        slots={**slots, "customer_id": str(sanne)}, active_loop="topic_form"))
    assert SlotSet("order_number", "104233") in events


async def test_the_order_whose_product_the_customer_named_is_not_asked_for(shop):
    daan = await cid(shop, "K10002")  # 118902 (Robotstofzuiger Compact, delivered) and three other orders
    form = ValidateTopicForm()
    slots = {"topic": "order_status", "customer_id": str(daan), "requested_slot": None}
    opening = {"event": "user", "text": "Hallo, klantnummer K10002. Is mijn robotstofzuiger al onderweg?",
               "parse_data": {}, "metadata": {}}
    _, events = await run(form, tracker("8422", "inform", slots=slots, active_loop="topic_form", before=[opening]))
    assert SlotSet("order_number", "118902") in events
    # no product named and no single order under way: which order is asked
    plain = {**opening, "text": "Hallo, klantnummer K10002. Waar is mijn pakket?"}
    _, events = await run(form, tracker("8422", "inform", slots=slots, active_loop="topic_form", before=[plain]))
    assert not any(e.get("name") == "order_number" for e in events)
    assert SlotSet("requested_slot", "order_number") in events


@pytest.mark.parametrize("text,description,named", [
    ("Is mijn robotstofzuiger al onderweg?", "Robotstofzuiger Compact", True),
    ("de stofzuiger doet het niet", "Robotstofzuiger Compact", True),
    ("where is my air fryer", "Airfryer XL 5L", True),
    ("waar is mijn pakket", "Robotstofzuiger Compact", False),
    ("mijn bestelling is onderweg", "Bluetooth oordopjes", False),
    ("de lamp", "Wandlamp Noor", False),  # too short a word to tell products apart
])
def test_a_product_named_in_the_chat(text, description, named):
    from actions.topics import names_product

    assert names_product(text, description) is named


@pytest.mark.parametrize("text,intent,accepted", [
    ("ok a voucher sounds good, I'll stay", "inform", True),
    ("prima, dan blijf ik", "affirm", True),
    ("no problem, I'll stay", "deny", True),
    ("nee, ik wil toch opzeggen", "affirm", False),
    ("no thanks, cancel it", "thank", False),
    ("ja", "affirm", True),
])
async def test_the_retention_offer_is_answered_in_words(text, intent, accepted):
    found = await ValidateTopicForm().extract_retention_accepted(
        CollectingDispatcher(), tracker(text, intent, slots={"requested_slot": "retention_accepted"}), DOMAIN)
    assert found == {"retention_accepted": accepted}


async def test_looking_up_the_customer_number_is_no_failed_attempt():
    dispatcher = CollectingDispatcher()
    found = await ValidateTopicForm().extract_customer_id(
        dispatcher, tracker("oke, momentje", "affirm", slots={"requested_slot": "customer_id", "id_attempts": 1}),
        DOMAIN)
    assert found == {"id_attempts": 1}
    assert [m["text"] for m in dispatcher.messages] == ["Geen haast, neem de tijd."]


def test_changing_ones_mind_leaves_even_with_a_value():
    slots = {"requested_slot": "order_number", "topic": "return_item"}
    said = "laat dat retour maar, ik wil gewoon mijn geld terug voor bestelling 104100"
    assert leaves_question(tracker(said, "request_refund", 0.95, slots=slots))
    assert not leaves_question(tracker("ik wil mijn geld terug voor bestelling 104100", "request_refund", 0.95,
                                       slots=slots))


async def test_how_long_still_from_someone_unknown_asks_who_it_is_first(shop):
    from actions.dialogue import ActionResponseTime

    messages, events = await run(ActionResponseTime(), tracker("ik zou gisteren antwoord krijgen, hoe lang nog?",
                                                               "ask_response_time"))
    assert messages == [] and events == [SlotSet("topic", "ask_response_time"), FollowupAction("topic_form")]
    milan = await cid(shop, "K10022")  # the demo: an open complaint whose promised answer was not kept
    messages, _ = await answer("ask_response_time", milan)
    assert "utter_response_time_ticket_late" in responses(messages)


@pytest.mark.parametrize("said,response", [
    ("ik wil mijn e-mailadres wijzigen", "utter_ask_preference_email"),
    ("can I change my phone number", "utter_ask_preference_phone"),
    ("ik wil voortaan via een ander kanaal", "utter_ask_preference_channel"),
    ("ik wil iets aanpassen in mijn gegevens", "utter_ask_preference"),
])
async def test_the_field_to_change_is_not_asked_when_it_was_said(said, response):
    from actions.topics import ActionAskPreference

    messages, _ = await run(ActionAskPreference(), tracker(said, "update_preferences"))
    assert responses(messages) == [response]


def test_an_open_delivery_problem_says_what_the_colleague_decides():
    """"Will you send a new one or refund me?" about a reported delivery problem: the colleague's
    decision and when, not only "you'll get an answer"; late, the plain admission."""
    from types import SimpleNamespace
    from actions.dialogue import ticket_response

    now = datetime(2026, 3, 2, 10, 0, tzinfo=timezone.utc)
    def ticket(kind, hours):
        return SimpleNamespace(kind=kind, promised_by=now + timedelta(hours=hours))
    assert ticket_response(ticket("delivery_problem", 8), now) == "utter_response_time_delivery"
    assert ticket_response(ticket("delivery_problem", -1), now) == "utter_response_time_ticket_late"
    assert ticket_response(ticket("complaint", 8), now) == "utter_response_time_ticket"
    assert ticket_response(ticket("callback", 8), now) == "utter_response_time_callback"


# == a follow-up that leans on the question before ==============================================

@pytest.mark.parametrize("text,follows", [
    ("ook niet voor de bestelling die nog onderweg is?", True),
    ("en voor bestelling 104233?", True),
    ("what about order 126354?", True),
    ("and for the one that's still on its way?", True),
    ("waar blijft mijn bestelling?", False),
    ("en hoe zit het met mijn factuur?", False),         # another topic: a new question
    ("and what about my points?", False),
    ("en voor bestelling 104233, kan ik die retour sturen?", False),
    ("ik wil ook mijn punten weten, en voor de rest alles goed", False),
])
def test_a_follow_up_is_recognised(text, follows):
    from actions.topics import is_follow_up

    assert is_follow_up(text) is follows


async def test_a_follow_up_keeps_the_question_just_answered():
    from actions.language import ValidateSlotMappings

    slots = {"topic": "invoice_question", "customer_id": "7"}
    extracted = await ValidateSlotMappings().extract_topic(
        CollectingDispatcher(), tracker("ook niet voor de bestelling die nog onderweg is?", "order_status", slots=slots), DOMAIN)
    assert extracted == {}  # the topic stays invoice_question
    extracted = await ValidateSlotMappings().extract_topic(
        CollectingDispatcher(), tracker("waar blijft mijn bestelling die nog onderweg is?", "order_status", slots=slots), DOMAIN)
    assert extracted == {"topic": "order_status"}


@at_monday
async def test_the_invoice_of_the_order_under_way_when_asked_about_it(shop, clock):
    from actions.handlers import ActionTopic

    sanne = await cid(shop, "K10001")
    slots = {"topic": "invoice_question", "customer_id": str(sanne), "language": "nl"}
    dispatcher = CollectingDispatcher()
    await ActionTopic(clock=clock).run(
        dispatcher, tracker("ook niet voor de bestelling die nog onderweg is?", "order_status", slots=slots), DOMAIN)
    [said] = [m for m in dispatcher.messages if m["response"]]
    assert (said["response"], said["order_number"], said["invoice"], said["amount"], said["status"]) == (
        "utter_invoice_of_order", "104233", "F2026-00305", "€89,95", "betaald")
    dispatcher = CollectingDispatcher()
    await ActionTopic(clock=clock).run(dispatcher, tracker("staat er nog iets open?", "invoice_question", slots=slots), DOMAIN)
    assert [m["response"] for m in dispatcher.messages if m["response"]] == ["utter_invoices"]  # all of them


@pytest.mark.parametrize("text,amount", [
    ("€19,95", "19.95"), ("19.95 euro", "19.95"), ("20", "20"), ("12,50 graag", "12.50"),
    ("ik wil gewoon mijn geld terug voor bestelling 104100, het hoesje gooi ik weg", None),  # an order number
    ("K10001", None), ("1012 AB", None),
])
def test_an_amount_is_never_an_order_or_customer_number(text, amount):
    from actions.topics import amount_in

    found = amount_in(text)
    assert (None if found is None else str(found)) == amount


async def test_a_long_answer_without_an_amount_asks_again_without_a_format_lecture():
    dispatcher = CollectingDispatcher()
    found = await ValidateTopicForm().extract_amount(dispatcher, tracker(
        "nee wacht, ik wil gewoon mijn geld terug voor bestelling 104100", "request_refund",
        slots={"requested_slot": "amount"}), DOMAIN)
    assert found == {} and dispatcher.messages == []
    found = await ValidateTopicForm().extract_amount(dispatcher, tracker("veel", "inform", slots={"requested_slot": "amount"}), DOMAIN)
    assert found == {"amount": None} and [m["response"] for m in dispatcher.messages] == ["utter_amount_format"]
    found = await ValidateTopicForm().extract_amount(dispatcher, tracker("alles", "inform", slots={"requested_slot": "amount"}), DOMAIN)
    assert found == {"amount": "all"}


@at_monday
async def test_a_refund_on_an_order_whose_delivery_problem_is_open_is_left_to_that_case(shop, clock):
    from actions.handlers import ActionAskAmount
    from bot.records.repository import Records

    aoife = await cid(shop, "K10017")  # order 148719, delivered according to the carrier
    [order] = await rows(shop, Order, Order.order_number == "148719")
    deadline = MONDAY + timedelta(hours=7)
    case = await Records(shop).create_ticket(aoife, "delivery_problem", details="nothing here", order_id=order["id"],
                                             promised_by=deadline)
    slots = {"topic": "request_refund", "customer_id": str(aoife), "order_number": "148719", "language": "en"}
    messages, events = await run(ActionAskAmount(clock=clock), tracker("will you send a new one or do I get a refund?",
                                                                       "request_refund", slots=slots))
    assert [(m["response"], m["ticket"], m["deadline"]) for m in messages] == [
        ("utter_response_time_delivery", case.id, "today before 17:00")]
    assert SlotSet("topic", None) in events and SlotSet("requested_slot", None) in events


@pytest.mark.parametrize("text,intent,topic", [
    ("Ik wil een klacht indienen. De bezorger gooide mijn pakket over het hek en nu is de lamp kapot.",
     "delivery_problem", "complaint"),
    ("I want to file a complaint, the driver threw my parcel over the fence", "delivery_problem", "complaint"),
    ("de bezorger gooide mijn pakket over het hek en nu is de lamp kapot", "delivery_problem", "delivery_problem"),
    ("mijn pakket is niet aangekomen", "delivery_problem", "delivery_problem"),
])
async def test_a_customer_who_says_they_complain_files_a_complaint(text, intent, topic):
    from actions.language import ValidateSlotMappings

    found = await ValidateSlotMappings().extract_topic(CollectingDispatcher(), tracker(text, intent), DOMAIN)
    assert found == {"topic": topic}


async def test_asking_what_the_offer_is_gets_it_explained_not_the_same_question(shop):
    from actions.handlers import ActionAskRetentionAccepted
    from actions.dialogue import ActionRephraseOrHandoff

    pieter = await cid(shop, "K10004")
    slots = {"topic": "cancel_contract", "customer_id": str(pieter), "language": "nl",
             "requested_slot": "retention_accepted"}
    first, _ = await run(ActionAskRetentionAccepted(), tracker("ik twijfel of ik blijf", "cancel_contract", slots=slots))
    assert [m["response"] for m in first] == ["utter_retention_offer_voucher"]
    asked = tracker("wat kunnen jullie me dan bieden?", "nlu_fallback", slots={**slots, "retention_offer": "voucher"},
                    active_loop="topic_form")
    assert not leaves_question(asked)
    rephrase, _ = await run(ActionRephraseOrHandoff(), asked)
    assert rephrase == []  # no "say it another way": the form's question answers it
    again, _ = await run(ActionAskRetentionAccepted(), asked)
    assert [(m["response"], m["amount"]) for m in again] == [("utter_retention_offer_explained", "€10,00")]


@pytest.mark.parametrize("text,intent", [("is dat alles?", "goodbye"), ("wat kunnen jullie me dan bieden?", "payment_arrangement"),
                                         ("what else can you offer me?", "nlu_fallback")])
async def test_a_question_about_the_offer_keeps_the_offer_open(shop, text, intent):
    """Read as goodbye or another topic, a question about the offer is still about the offer: the
    form goes on (no rejection, no goodbye) and asks again, explained."""
    pieter = await cid(shop, "K10004")
    slots = {"topic": "cancel_contract", "customer_id": str(pieter), "details": "te duur", "retention_offer": "voucher",
             "requested_slot": "retention_accepted", "language": "nl"}
    asked = tracker(text, intent, slots=slots, active_loop="topic_form")
    assert not leaves_question(asked)
    _, events = await run(ValidateTopicForm(), asked)
    assert SlotSet("retention_offer", "voucher") in events
    assert not any(e.get("name") == "retention_accepted" for e in events)


async def test_a_follow_up_read_as_information_asks_the_question_again_for_that_order():
    from actions.answers import ActionInform

    slots = {"topic": "order_status", "customer_id": "3", "order_number": "126354"}
    messages, events = await run(ActionInform(), tracker("and what about order 121212?", "inform", slots=slots))
    assert messages == [] and events == [SlotSet("order_number", "121212"), FollowupAction("topic_form")]


@at_monday
async def test_a_callback_time_not_understood_is_still_noted_on_the_callback(shop, clock):
    from actions.dialogue import ActionRephraseOrHandoff

    harry = await cid(shop, "K10018")
    messages, _ = await run(ActionRephraseOrHandoff(), tracker("can it be in the afternoon instead?", "nlu_fallback",
                                                               slots={"customer_id": str(harry), "language": "en"}))
    assert [m["text"][:46] for m in messages] == ["Noted: you'd rather be called in the afternoon"]


@pytest.mark.parametrize("text,intent,leaves", [
    ("nee, dan zeg ik toch op", "update_preferences", False),   # the answer, whatever topic is read in it
    ("nee, ik wil een medewerker spreken", "request_human", True),
    ("ok I'll stay then", "loyalty_points", False),
])
def test_the_answer_to_the_retention_offer_is_no_other_question(text, intent, leaves):
    slots = {"topic": "cancel_contract", "customer_id": "4", "requested_slot": "retention_accepted"}
    assert leaves_question(tracker(text, intent, slots=slots, active_loop="topic_form")) is leaves


async def test_a_complaint_told_in_the_message_filed_under_the_near_topic_is_its_description():
    text = "Ik wil een klacht indienen. De bezorger gooide mijn pakket over het hek en nu is de lamp kapot."
    found = await ValidateTopicForm().extract_details(
        CollectingDispatcher(), tracker(text, "delivery_problem", slots={"topic": "complaint"}), DOMAIN)
    assert found == {"details": text}


def test_a_question_with_information_keeps_a_weakly_read_question():
    import asyncio
    from actions.answers import ActionInform

    text = "how many loyalty points do I have? my email is emma.clarke@example.co.uk"
    ranking = [{"name": "inform", "confidence": 0.8}, {"name": "loyalty_points", "confidence": 0.08}]
    messages, events = asyncio.run(run(ActionInform(), tracker(text, "inform", 0.8, ranking=ranking)))
    assert events == [SlotSet("topic", "loyalty_points"), FollowupAction("topic_form")]
    messages, events = asyncio.run(run(ActionInform(), tracker("my email is emma.clarke@example.co.uk and I live here",
                                                               "inform", 0.8, ranking=ranking)))
    assert [m["response"] for m in messages] == ["utter_inform_ack"]


@at_monday
async def test_a_question_about_the_callback_not_understood_gets_its_time(shop, clock, monkeypatch):
    from actions import deps
    from actions.dialogue import ActionRephraseOrHandoff

    monkeypatch.setattr(deps, "clock", lambda: clock)
    import actions.dialogue as dialogue
    monkeypatch.setattr(dialogue, "process_clock", lambda: clock)
    harry = await cid(shop, "K10018")
    messages, _ = await run(ActionRephraseOrHandoff(), tracker("hi, when are you ringing me back?", "nlu_fallback",
                                                               slots={"customer_id": str(harry), "language": "en"}))
    assert [(m["response"], m["deadline"]) for m in messages] == [("utter_response_time_callback", "tomorrow before 10:00")]
    messages, _ = await run(ActionRephraseOrHandoff(), tracker("hi, when are you ringing me back?", "nlu_fallback",
                                                               slots={"language": "en"}))
    assert [m["response"] for m in messages] == ["utter_ask_rephrase"]  # nobody known: nothing on record to tell


# == booking a callback ===========================================================================

@at_monday
async def test_a_callback_is_booked_in_a_free_window_and_a_full_window_is_refused(shop, clock):
    from actions.callbacks import ActionAskCallbackPhone, ActionAskCallbackSlot
    from bot.records.models import Promise
    from bot.records.repository import aware
    from tests.support.clock import local

    emma = await cid(shop, "K10003")  # English, +447700900123, no callback on record
    slots = {"customer_id": str(emma), "language": "en", "topic": "request_callback"}
    # the known number, masked, offered first (the customer is verified: customer_id is set)
    messages, _ = await run(ActionAskCallbackPhone(), tracker(slots=slots))
    assert [(m["text"], [b["payload"] for b in m["buttons"]]) for m in messages] == [
        ("We're happy to call you back. Shall we call you on your number ending in 01 23?", ["/affirm", "/deny"])]
    # the first free windows: 10:30 at the earliest, on the hour, within 09:00-17:00
    messages, events = await run(ActionAskCallbackSlot(clock=clock), tracker(slots=slots))
    day = MONDAY.date()
    starts = [local(day, 11), local(day, 12), local(day, 13)]
    assert [b["title"] for b in messages[0]["buttons"]] == ["today 11:00–12:00", "today 12:00–13:00", "today 13:00–14:00"]
    assert [b["payload"] for b in messages[0]["buttons"]] == [s.isoformat() for s in starts]
    assert events == [SlotSet("callback_offer", json.dumps([s.isoformat() for s in starts]))]

    messages, events = await answer("request_callback", emma, "en", channel="telegram", clock=clock,
                                    callback_phone="+447700900123", callback_slot=starts[0].isoformat())
    [ticket] = await rows(shop, Ticket, Ticket.customer_id == emma, Ticket.kind == "callback")
    assert [m["text"] for m in messages] == [
        f"Booked: we'll call you today between 11:00 and 12:00 on +447700900123 (#{ticket['id']}). Shortly before, "
        "you'll get a reminder here."]
    [promise] = await rows(shop, Promise, Promise.ticket_id == ticket["id"])
    assert (promise["kind"], promise["status"], promise["queue"], promise["channel"]) == (
        "callback", "open", "general", "telegram")
    assert aware(promise["deadline"]) == local(day, 12) and aware(promise["window_start"]) == local(day, 11)
    assert ticket["data"]["phone"] == "+447700900123" and ticket["data"]["window_start"] == starts[0].isoformat()
    # asking again: the one on record is named, not a second booked
    messages, _ = await answer("request_callback", emma, "en", channel="telegram", clock=clock,
                               callback_phone="+447700900123", callback_slot=starts[1].isoformat())
    assert [(m["response"], m["deadline"]) for m in messages] == [("utter_response_time_callback", "today before 12:00")]

    # capacity 2 per window: two more customers take 11:00, the third is told it filled up
    for number in ("K10005", "K10006"):
        other = await cid(shop, number)
        await answer("request_callback", other, "nl", clock=clock, callback_phone="+31612345699",
                     callback_slot=starts[0].isoformat())
    late = await cid(shop, "K10007")
    messages, events = await answer("request_callback", late, "nl", clock=clock, callback_phone="+31612345698",
                                    callback_slot=starts[0].isoformat())
    assert [m["text"] for m in messages] == ["Dat tijdvak is net vol geraakt, sorry. Kies een ander."]
    assert FollowupAction("topic_form") in events and SlotSet("callback_slot", None) in events
    assert await rows(shop, Ticket, Ticket.customer_id == late, Ticket.kind == "callback") == []


@pytest.mark.parametrize("text,index", [
    ("2", 1), ("de tweede", 1), ("the first one", 0), ("om 13:00", 2), ("13 uur", 2), ("at 1pm", 2),
    ("today at 12", 1), ("weet ik nog niet", None), ("morgen", None),
])
def test_the_customer_picks_a_window_by_button_number_or_time(text, index):
    from bot.policy.hours import ServiceLevels
    from bot.promises import callbacks as cb
    from tests.support.clock import local

    levels = ServiceLevels.load()
    day = MONDAY.date()
    offered = [(local(day, h), local(day, h + 1)) for h in (11, 12, 13)]
    assert cb.pick(offered[1][0].isoformat(), offered, levels.tz, MONDAY) == offered[1]  # the button
    assert cb.pick(text, offered, levels.tz, MONDAY) == (offered[index] if index is not None else None)


@at_monday
async def test_another_number_for_the_callback_is_asked_once(shop, clock):
    from actions.callbacks import ActionAskCallbackPhone

    emma = await cid(shop, "K10003")
    slots = {"customer_id": str(emma), "language": "en", "topic": "request_callback", "requested_slot": "callback_phone"}
    form = ValidateTopicForm()
    dispatcher = CollectingDispatcher()
    events = await form.extract_callback_phone(dispatcher, tracker("no, another number", "deny", slots=slots,
                                                                   active_loop="topic_form"), DOMAIN)
    assert (events, dispatcher.messages) == ({"callback_phone": None, "callback_phone_asked": True}, [])
    messages, _ = await run(ActionAskCallbackPhone(), tracker(slots={**slots, "callback_phone_asked": True}))
    assert [m["text"] for m in messages] == ["Which number shall we call you on then?"]
    dispatcher = CollectingDispatcher()
    events = await form.extract_callback_phone(dispatcher, tracker("06 1234 5678", "inform", slots=slots,
                                                                   active_loop="topic_form"), DOMAIN)
    assert events == {"callback_phone": "+31612345678"}
