"""Keeps the `language` slot right on every turn (Rasa runs this after each user message)."""

from __future__ import annotations

from typing import Any

from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.forms import ValidationAction
from rasa_sdk.types import DomainDict

from actions.common import entity_values, latest_user_metadata
from bot import language


class ValidateSlotMappings(ValidationAction):
    """Fills `language`: an explicit request (entity) first, then the gateway's detection
    (message metadata), then our own detection for clients that send no metadata."""

    async def required_slots(self, domain_slots, dispatcher, tracker, domain) -> list[str]:
        return ["language"]

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
