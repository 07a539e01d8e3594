"""Slots filled on every turn, whatever the dialogue does (Rasa runs this after each user message):
the language, the customer when the channel address already tells who it is, and an order
number mentioned anywhere in the conversation."""

from __future__ import annotations

import re

from typing import Any

from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.forms import ValidationAction
from rasa_sdk.types import DomainDict

from actions.common import entity_values, latest_user_metadata
from actions.deps import records
from actions.topics import CUSTOMER_NUMBER, EMAIL, ORDER_NUMBER, POSTCODE, TOPIC_SLOTS, KeepSideSlots, is_follow_up
from bot.shared import language
from channels import registry



# a customer who says they want to complain is filing a complaint, whatever it is about
EXPLICIT_COMPLAINT = re.compile(r"\b(klacht (?:indienen|in ?dienen|doen|melden)|wil (?:een klacht|klagen)|ik klaag|"
                                r"(?:file|make|lodge|submit) a complaint|want to complain|wish to complain|"
                                r"formal complaint|formele klacht)\b", re.IGNORECASE)


class ValidateSlotMappings(KeepSideSlots, ValidationAction):
    """Fills `language`: an explicit request (entity) first, then the gateway's detection
    (message metadata), then our own detection for clients that send no metadata."""

    async def required_slots(self, domain_slots, dispatcher, tracker, domain) -> list[str]:
        return ["language", "topic", "customer_id", "order_number", "given_claim"]

    async def extract_given_claim(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        # A customer number, an e-mail address, or an order number with its postcode said before any
        # question: remembered, and used when a question needs to know who this is (topic_form),
        # so it is never asked for again. Inside a question the form reads the message itself.
        if (tracker.active_loop or {}).get("name") or tracker.get_slot("customer_id") or tracker.get_slot("claimed_id"):
            return {}
        text = tracker.latest_message.get("text") or ""
        if text.startswith("/"):
            return {}
        found = CUSTOMER_NUMBER.search(text) or EMAIL.search(text)
        if found:
            return {"given_claim": found.group(0)}
        order, postcode = ORDER_NUMBER.search(text), POSTCODE.search(text)
        if order and postcode:
            return {"given_claim": f"{order.group(1)} {postcode.group(0)}"}
        return {}

    async def validate_given_claim(self, value, dispatcher, tracker, domain) -> dict[str, Any]:
        return {"given_claim": value}

    async def extract_topic(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        # A new question starts a new topic; inside a form the answers never change it.
        if (tracker.active_loop or {}).get("name"):
            return {}
        intent = tracker.latest_message.get("intent", {}).get("name")
        previous = tracker.get_slot("topic")
        if previous in TOPIC_SLOTS and intent in TOPIC_SLOTS and is_follow_up(tracker.latest_message.get("text") or ""):
            return {}  # "ook niet voor de bestelling die onderweg is?": the same question, about that
        if intent == "delivery_problem" and EXPLICIT_COMPLAINT.search(tracker.latest_message.get("text") or ""):
            # "Ik wil een klacht indienen. De bezorger gooide ...": what the customer asks for wins
            return {"topic": "complaint"}
        return {"topic": intent} if intent in TOPIC_SLOTS else {}

    async def validate_topic(self, value, dispatcher, tracker, domain) -> dict[str, Any]:
        return {"topic": value}

    async def extract_customer_id(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        if tracker.get_slot("customer_id"):
            return {}
        meta = latest_user_metadata(tracker)
        channel, address = meta.get("channel"), meta.get("address")
        # Only where the address proves who is writing (a phone number, a Telegram account:
        # channels/registry.py), or a web login the business's site signed. A web chat session
        # or an e-mail address proves nothing.
        if not address or not (registry.identifies_sender(channel) or meta.get("verified_identity")):
            return {}
        customer = await records().by_identity(channel, str(address))
        if customer is None:
            return {}
        return {"customer_id": str(customer.id), "customer_name": customer.greeting_name}

    async def validate_customer_id(self, value, dispatcher, tracker, domain) -> dict[str, Any]:
        return {"customer_id": value}

    async def extract_order_number(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        # Not while a one-time code is asked: a code must never become an order number.
        if tracker.get_slot("requested_slot") in ("otp_code", "id_code", "amount", "instalments", "details"):
            return {}
        found = [v for v in entity_values(tracker, "order_number") if ORDER_NUMBER.fullmatch(v)]
        if not found:
            match = ORDER_NUMBER.search(tracker.latest_message.get("text") or "")
            found = [match.group(1)] if match else []
        return {"order_number": found[-1]} if found and found[-1] != tracker.get_slot("order_number") else {}

    async def validate_order_number(self, value, dispatcher, tracker, domain) -> dict[str, Any]:
        return {"order_number": value}

    async def extract_language(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        requested = [v for v in entity_values(tracker, "language") if v in language.SUPPORTED]
        if requested:
            return {"language": requested[-1]}
        hinted = latest_user_metadata(tracker).get("language")
        if hinted in language.SUPPORTED:
            return {"language": hinted}
        text = tracker.latest_message.get("text") or ""
        if text.startswith("/"):
            return {}
        detected = language.detect(text)
        return {"language": detected} if detected else {}

    async def validate_language(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        return {"language": value if value in language.SUPPORTED else language.DEFAULT_LANGUAGE}
