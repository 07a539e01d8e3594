"""Custom actions, run directly with rasa_sdk trackers (rasa test never runs actions)."""

from __future__ import annotations

from rasa_sdk import Tracker
from rasa_sdk.events import FollowupAction, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.dialogue import ActionContinueOnChannel, ActionRephraseOrHandoff
from actions.language import ValidateSlotMappings

DOMAIN = {"slots": {"language": {"type": "categorical", "mappings": [{"type": "custom"}]}}}


def tracker(text="", intent="inform", entities=(), slots=None, events=None, metadata=None):
    latest = {"text": text, "intent": {"name": intent, "confidence": 0.9}, "entities": list(entities)}
    user_event = {"event": "user", "text": text, "parse_data": latest, "metadata": metadata or {}}
    return Tracker(
        "c-test", dict(slots or {}), latest, list(events or []) + [user_event], False, None,
        {"name": None}, "action_listen",
    )


async def run(action, t):
    dispatcher = CollectingDispatcher()
    events = await action.run(dispatcher, t, {"slots": {}, "forms": {}, **DOMAIN})
    return dispatcher.messages, events


async def test_language_from_gateway_metadata():
    _, events = await run(ValidateSlotMappings(), tracker("ok", metadata={"language": "en"}, slots={"language": "nl"}))
    assert events == [SlotSet("language", "en")]


async def test_explicit_language_request_wins_over_metadata():
    t = tracker("kan het in het engels", intent="change_language",
                entities=[{"entity": "language", "value": "en"}], metadata={"language": "nl"})
    _, events = await run(ValidateSlotMappings(), t)
    assert events == [SlotSet("language", "en")]


async def test_language_detected_without_metadata_and_kept_when_unclear():
    _, events = await run(ValidateSlotMappings(), tracker("could you please tell me where my parcel is"))
    assert events == [SlotSet("language", "en")]
    _, events = await run(ValidateSlotMappings(), tracker("ok", slots={"language": "en"}))
    assert events == []


async def test_rephrase_first_then_offer_a_person():
    first_messages, first_events = await run(ActionRephraseOrHandoff(), tracker("blorp", intent="nlu_fallback"))
    assert [m["response"] for m in first_messages] == ["utter_ask_rephrase"] and first_events == []
    earlier = [
        {"event": "user", "text": "blorp", "parse_data": {}},
        {"event": "action", "name": "action_rephrase_or_handoff"},
        {"event": "action", "name": "action_listen"},
    ]
    messages, events = await run(ActionRephraseOrHandoff(), tracker("fnarg", intent="nlu_fallback", events=earlier))
    assert messages == [] and events == [FollowupAction("utter_offer_human")]


async def test_continue_on_channel_asks_which_channel_when_unknown():
    messages, _ = await run(ActionContinueOnChannel(), tracker(slots={"channel": None}))
    assert [m["response"] for m in messages] == ["utter_ask_channel"]
    messages, _ = await run(ActionContinueOnChannel(), tracker(slots={"channel": "whatsapp", "customer_id": "7"}))
    assert [m["response"] for m in messages] == ["utter_continue_on_channel", None]
    assert messages[1]["custom"] == {"continue_on": "whatsapp"}


async def test_continue_on_another_channel_needs_a_verified_customer():
    # a claim (or nothing) never makes the bot write to a number or account (config/identity.yml)
    for channel in ("whatsapp", "sms", "telegram"):
        messages, _ = await run(ActionContinueOnChannel(), tracker(slots={"channel": channel}))
        assert [(m["response"], bool(m.get("custom"))) for m in messages] == [("utter_continue_needs_verified", False)]
