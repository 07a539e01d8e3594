"""Questions about one order: the order number is asked once and then remembered."""

from __future__ import annotations

import re
from typing import Any

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

ORDER_NUMBER = re.compile(r"(?<!\d)([1-9]\d{5})(?!\d)")
TOPICS = ("order_status", "delivery_problem", "return_item", "request_refund", "invoice_question")


def find_order_number(text: str) -> str | None:
    match = ORDER_NUMBER.search(text or "")
    return match.group(1) if match else None


class ValidateOrderNumberForm(FormValidationAction):
    def name(self) -> str:
        return "validate_order_number_form"

    async def extract_order_number(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        # Customers often type only the digits, or with text the NLU does not tag.
        if tracker.get_slot("requested_slot") != "order_number":
            return {}
        found = find_order_number(tracker.latest_message.get("text") or "")
        return {"order_number": found} if found else {}

    async def validate_order_number(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        found = find_order_number(str(value))
        if found:
            return {"order_number": found}
        dispatcher.utter_message(response="utter_invalid_order_number")
        return {"order_number": None}


class ActionOrderFollowup(Action):
    """Answers the order question that started the form (the `order_topic` slot)."""

    def name(self) -> str:
        return "action_order_followup"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        topic = tracker.get_slot("order_topic")
        if topic not in TOPICS:
            topic = "order_status"
        dispatcher.utter_message(response=f"utter_{topic}")
        return []
