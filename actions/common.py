"""Helpers shared by the action modules."""

from __future__ import annotations

from typing import Any

from rasa_sdk import Tracker


def latest_user_event(tracker: Tracker) -> dict[str, Any]:
    for event in reversed(tracker.events):
        if event.get("event") == "user":
            return event
    return {}


def latest_user_metadata(tracker: Tracker) -> dict[str, Any]:
    """The metadata the gateway attached to the customer's last message (channel, language)."""
    return latest_user_event(tracker).get("metadata") or {}


def entity_values(tracker: Tracker, entity: str) -> list[str]:
    return [
        str(e.get("value"))
        for e in tracker.latest_message.get("entities", [])
        if e.get("entity") == entity and e.get("value") is not None
    ]
