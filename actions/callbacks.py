"""Booking a callback in the dialogue ("bel me terug"): topic_form asks the number (the known one
offered first, to a verified customer only, masked) and a window (free windows within the calling
queue's hours as buttons; "morgenmiddag", "om 14:00", "de tweede" work too), then action_topic
books it (actions/handlers.py `book_callback`). The windows and their capacity:
bot/promises/callbacks.py."""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, FollowupAction, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.deps import clock as process_clock, handoff_config, records
from bot.promises import callbacks as cb
from bot.records.importer import normalize_phone
from bot.texts import messages

PHONE = re.compile(r"(?:\+|00)\d[\d\s\-./()]{7,16}\d|\b0\d[\d\s\-./]{7,12}\d\b")
OTHER_NUMBER = re.compile(r"\b(ander(e|s)? nummer|niet dat nummer|another number|different number|other number)\b", re.I)
SLOT_WORDS = re.compile(r"\b(\d{4}-\d{2}-\d{2}T|vandaag|today|morgen|tomorrow|ochtend|middag|morning|afternoon|"
                        r"maandag|dinsdag|woensdag|donderdag|vrijdag|monday|tuesday|wednesday|thursday|friday|"
                        r"eerste|tweede|derde|first|second|third|\d{1,2}[:.]\d{2}|\d{1,2}\s*(?:uur|u|h|am|pm)|"
                        r"(?:om|at|rond|around)\s+\d{1,2})\b|^\s*[1-4]\s*$", re.I)


async def open_callbacks(customer_id) -> list:
    """The customer's open callback tickets with a time promised, oldest first."""
    return [t for t in await records().tickets(int(customer_id), kind="callback", status="open") if t.promised_by]


def levels():
    config = handoff_config()
    queue = config.queues.get(cb.config().queue) or config.queues["general"]
    return queue.levels


async def windows(now: datetime, count: int | None = None) -> list[tuple[datetime, datetime]]:
    booked = await records().callback_windows(now)
    return cb.free_windows(levels(), booked, now, cb.config(), count=count)


def offered(tracker: Tracker) -> list[tuple[datetime, datetime]]:
    """The windows the last question showed (slot callback_offer: their ISO starts)."""
    try:
        starts = json.loads(tracker.get_slot("callback_offer") or "[]")
        window = cb.config().window
        return [(s, s + window) for s in (datetime.fromisoformat(x) for x in starts)]
    except (TypeError, ValueError):
        return []


async def known_phone(tracker: Tracker) -> str | None:
    """The customer's number on record, for a verified customer only (else nothing is shown)."""
    customer_id = tracker.get_slot("customer_id")
    if not customer_id:
        return None
    customer = await records().customer(int(customer_id))
    return customer.phone if customer and customer.phone else None


async def extract_phone(dispatcher: CollectingDispatcher, tracker: Tracker) -> dict[str, Any]:
    text = tracker.latest_message.get("text") or ""
    lang = tracker.get_slot("language") or "nl"
    said = PHONE.search(text)
    if said:
        try:
            return {"callback_phone": normalize_phone(said.group(0))}
        except ValueError:
            dispatcher.utter_message(text=messages.text("callback_phone_format", lang))
            return {"callback_phone": None}
    if tracker.get_slot("requested_slot") != "callback_phone":
        return {}
    intent = (tracker.latest_message.get("intent") or {}).get("name")
    known = await known_phone(tracker)
    if known and intent == "affirm" and not OTHER_NUMBER.search(text):
        return {"callback_phone": known}
    if intent == "deny" or OTHER_NUMBER.search(text):
        return {"callback_phone": None, "callback_phone_asked": True}  # the question asks for the other one
    dispatcher.utter_message(text=messages.text("callback_phone_format", lang))
    return {"callback_phone": None}


async def extract_window(dispatcher: CollectingDispatcher, tracker: Tracker, clock) -> dict[str, Any]:
    if tracker.get_slot("requested_slot") != "callback_slot":
        return {}
    text = tracker.latest_message.get("text") or ""
    now = clock.now()
    chosen = cb.pick(text, offered(tracker), levels().tz, now)
    if chosen is None:  # a day or time not among the buttons: any free window that fits it
        chosen = cb.pick(text, await windows(now, count=60), levels().tz, now)
    if chosen is None:
        dispatcher.utter_message(text=messages.text("callback_slot_unknown", tracker.get_slot("language") or "nl"))
        return {"callback_slot": None}
    return {"callback_slot": chosen[0].isoformat()}


async def still_free(start_iso: str, now: datetime) -> bool:
    start = datetime.fromisoformat(start_iso)
    free = await windows(now, count=200)
    return any(s == start for s, _ in free)


class ActionAskCallbackPhone(Action):
    """"Shall we call you on the number ending in 45 01?" (known, verified), else "which number?"."""

    def name(self) -> str:
        return "action_ask_callback_phone"

    async def run(self, dispatcher, tracker: Tracker, domain) -> list[EventType]:
        lang = tracker.get_slot("language") or "nl"
        known = await known_phone(tracker)
        if tracker.get_slot("callback_phone_asked"):  # "een ander nummer"
            dispatcher.utter_message(text=messages.text("callback_phone_other", lang))
        elif known:
            yes, other = messages.text("callback_phone_yes", lang), messages.text("callback_phone_no", lang)
            dispatcher.utter_message(text=messages.text("callback_ask_known_phone", lang, masked=cb.masked(known)),
                                     buttons=[{"title": yes, "payload": "/affirm"}, {"title": other, "payload": "/deny"}])
        else:
            dispatcher.utter_message(text=messages.text("callback_ask_phone", lang))
        return []


class ActionAskCallbackSlot(Action):
    """The first free windows as buttons (payload: the window's start), remembered for the answer."""

    def __init__(self, clock=None) -> None:
        self._clock = clock

    def name(self) -> str:
        return "action_ask_callback_slot"

    async def run(self, dispatcher, tracker: Tracker, domain) -> list[EventType]:
        lang = tracker.get_slot("language") or "nl"
        now = (self._clock or process_clock()).now()
        free = await windows(now)
        if not free:  # filled up just now: action_topic books it within the service level and says so
            return [SlotSet("callback_slot", "none"), FollowupAction("topic_form")]
        tz = levels().tz
        buttons = [{"title": cb.button_title(s, e, lang, now, tz), "payload": s.isoformat()} for s, e in free]
        dispatcher.utter_message(text=messages.text("callback_ask_slot", lang), buttons=buttons)
        return [SlotSet("callback_offer", json.dumps([s.isoformat() for s, _ in free]))]
