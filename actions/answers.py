"""Answers that need no form: the FAQ (config/faq.yml), information given without a question,
and switching to another question while one is being asked."""

from __future__ import annotations

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, FollowupAction, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.topics import CUSTOMER_NUMBER, DESCRIPTION_MIN_WORDS, EMAIL, ORDER_NUMBER, POSTCODE, TOPIC_SLOTS
from bot.policy import faq

# Slots of the question being asked that another question makes meaningless; who the customer is
# (and an identification in progress) stays.
SWITCH_CLEARS = ("details", "amount", "instalments", "retention_accepted", "retention_offer", "preference",
                 "otp_code")
# An intent this likely in DIET's ranking under `inform` means the message asked a question too.
QUESTION_IN_INFORM = 0.1


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
        if _words_besides_identifiers(text) >= 3:
            for candidate in ranking[:4]:
                name = candidate.get("name")
                if name in TOPIC_SLOTS and float(candidate.get("confidence") or 0) >= QUESTION_IN_INFORM:
                    return [SlotSet("topic", name), FollowupAction("topic_form")]
        dispatcher.utter_message(response="utter_inform_ack")
        return []


class ActionSwitchTopic(Action):
    """Asked one thing, the customer asks another ("laat maar, ik wil eigenlijk iets terugsturen"):
    the new question is taken up, keeping who they are; the form then asks what it needs."""

    def name(self) -> str:
        return "action_switch_topic"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> list[EventType]:
        intent = tracker.latest_message.get("intent", {}).get("name")
        if intent not in TOPIC_SLOTS:
            return []
        events: list[EventType] = [SlotSet(slot, None) for slot in SWITCH_CLEARS]
        events += [SlotSet("topic", intent), SlotSet("requested_slot", None)]
        text = (tracker.latest_message.get("text") or "").strip()
        if "details" in TOPIC_SLOTS[intent] and not text.startswith("/") \
                and _words_besides_identifiers(text) >= DESCRIPTION_MIN_WORDS:
            events.append(SlotSet("details", text[:2000]))
        return events
