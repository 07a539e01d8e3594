"""Answers that need no form: the FAQ (config/faq.yml), information given without a question,
and switching to another question while one is being asked."""

from __future__ import annotations

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, FollowupAction, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.topics import (CUSTOMER_NUMBER, DESCRIPTION_MIN_WORDS, EMAIL, ORDER_NUMBER, POSTCODE, TOPIC_SLOTS, is_follow_up,
                           other_topic)
from bot.policy import faq

# Slots of the question being asked that another question makes meaningless; who the customer is
# (and an identification in progress) stays.
SWITCH_CLEARS = ("details", "amount", "instalments", "retention_accepted", "retention_offer", "preference",
                 "otp_code")
# An intent this likely in DIET's ranking under `inform` means the message asked a question too.
QUESTION_IN_INFORM = 0.1
QUESTION_IN_INFORM_ASKED = 0.05


class ActionFaq(Action):
    """The answer from config/faq.yml (bot/policy/faq.py finds the entry the message asks about);
    for a question the file does not cover, what it does cover and a person."""

    def name(self) -> str:
        return "action_faq"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> list[EventType]:
        lang = tracker.get_slot("language") or "nl"
        entry = faq.match(tracker.latest_message.get("text") or "")
        if entry is not None:
            dispatcher.utter_message(text=faq.answer(entry, lang))
            return []
        dispatcher.utter_message(response="utter_faq_unknown", topics=", ".join(faq.topics(lang)))
        return []


def _words_besides_identifiers(text: str) -> int:
    for pattern in (CUSTOMER_NUMBER, EMAIL, POSTCODE, ORDER_NUMBER):
        text = pattern.sub(" ", text)
    return len(text.split())


class ActionInform(Action):
    """Information without an obvious question ("K10001", "mijn mail is ..."): noted (the claim is
    remembered, actions/language.py). When the same message also asks something ("waar blijft mijn
    pakket, ik ben K10001"), that question is answered instead of asking what it is about."""

    def name(self) -> str:
        return "action_inform"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> list[EventType]:
        text = tracker.latest_message.get("text") or ""
        ranking = tracker.latest_message.get("intent_ranking") or []
        topic = tracker.get_slot("topic")
        if topic in TOPIC_SLOTS and is_follow_up(text) and ORDER_NUMBER.search(text):
            # "and what about order 121212?" after an answered question: that question, for this order
            return [SlotSet("order_number", ORDER_NUMBER.search(text).group(1)), FollowupAction("topic_form")]
        if _words_besides_identifiers(text) >= 3:
            # a question mark says there is a question: a weaker reading of it is enough
            needed = QUESTION_IN_INFORM_ASKED if "?" in text else QUESTION_IN_INFORM
            for candidate in ranking[:4]:
                name = candidate.get("name")
                if name in TOPIC_SLOTS and float(candidate.get("confidence") or 0) >= needed:
                    return [SlotSet("topic", name), FollowupAction("topic_form")]
        if topic in TOPIC_SLOTS and not tracker.get_slot("customer_id") and given_identity(text) \
                and _asked_recently(tracker):
            # "ok, ik ben klant K10019" after the question it belongs to (an order status told from
            # an order number + postcode, or a question left while being asked who it is): go on with it
            return [SlotSet("claim_order", None), FollowupAction("topic_form")]
        dispatcher.utter_message(response="utter_inform_ack")
        return []


def given_identity(text: str) -> bool:
    return bool(CUSTOMER_NUMBER.search(text) or EMAIL.search(text))


def _asked_recently(tracker: Tracker, turns: int = 3) -> bool:
    """Whether the bot answered or asked about the current topic within the last few user turns."""
    users = 0
    for event in reversed(tracker.events):
        if event.get("event") == "user":
            users += 1
            if users > turns:
                return False
        elif event.get("event") == "action" and event.get("name") in ("topic_form", "action_topic"):
            return users >= 1
    return False


class ActionSwitchTopic(Action):
    """Asked one thing, the customer asks another ("laat maar, ik wil eigenlijk iets terugsturen"):
    the new question is taken up, keeping who they are; the form then asks what it needs."""

    def name(self) -> str:
        return "action_switch_topic"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> list[EventType]:
        intent = tracker.latest_message.get("intent", {}).get("name")
        if intent == tracker.get_slot("topic") or intent not in TOPIC_SLOTS:
            # "laat dat retour maar, ik wil mijn geld terug": the other topic the message names
            intent = other_topic(tracker)
        if intent not in TOPIC_SLOTS:
            return []
        events: list[EventType] = [SlotSet(slot, None) for slot in SWITCH_CLEARS]
        events += [SlotSet("topic", intent), SlotSet("requested_slot", None)]
        text = (tracker.latest_message.get("text") or "").strip()
        if "details" in TOPIC_SLOTS[intent] and not text.startswith("/") \
                and _words_besides_identifiers(text) >= DESCRIPTION_MIN_WORDS:
            events.append(SlotSet("details", text[:2000]))
        return events
