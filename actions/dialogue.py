"""Dialogue repair and channel moves."""

from __future__ import annotations

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, FollowupAction
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

REPHRASE = "action_rephrase_or_handoff"


class ActionRephraseOrHandoff(Action):
    """First misunderstanding: ask to rephrase. Second in a row: offer a person."""

    def name(self) -> str:
        return REPHRASE

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        if self._previous_turn_was_also_a_fallback(tracker):
            return [FollowupAction("utter_offer_human")]
        dispatcher.utter_message(response="utter_ask_rephrase")
        return []

    @staticmethod
    def _previous_turn_was_also_a_fallback(tracker: Tracker) -> bool:
        users_seen = 0
        for event in reversed(tracker.events):
            if event.get("event") == "user":
                users_seen += 1
                if users_seen == 2:
                    return False
            elif event.get("event") == "action" and users_seen == 1:
                if event.get("name") == REPHRASE:
                    return True
                if event.get("name") not in ("action_listen", None):
                    return False
        return False


class ActionContinueOnChannel(Action):
    def name(self) -> str:
        return "action_continue_on_channel"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        channel = tracker.get_slot("channel")
        if channel not in ("whatsapp", "sms", "telegram", "webchat", "email", "phone"):
            dispatcher.utter_message(response="utter_ask_channel")
            return []
        dispatcher.utter_message(response="utter_continue_on_channel")
        if channel in ("whatsapp", "sms", "telegram") and tracker.get_slot("customer_id"):
            # The gateway writes first on the new channel (bot/service.py `_continue_on`).
            dispatcher.utter_message(json_message={"continue_on": channel})
        return []


class ActionGreet(Action):
    """Greets by name once we know who the customer is, on every channel."""

    def name(self) -> str:
        return "action_greet"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        name = tracker.get_slot("customer_name")
        if name:
            dispatcher.utter_message(response="utter_greet_known", customer_name=name)
        else:
            dispatcher.utter_message(response="utter_greet")
        return []
