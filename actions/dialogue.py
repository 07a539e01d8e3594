"""Dialogue repair and channel moves."""

from __future__ import annotations

import re

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, FollowupAction, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from bot.shared import control
from bot.texts import fmt, messages
from actions.callbacks import open_callbacks
from actions.deps import clock as process_clock, handoff_config, records
from bot.policy.clock import Clock
from bot.policy.rules import policy
from channels import registry
from bot.policy.hours import describe
from bot.records.repository import aware

REPHRASE = "action_rephrase_or_handoff"
HANDOFF = "action_handoff"


class ActionRephraseOrHandoff(Action):
    """First misunderstanding: ask to rephrase. Second in a row: offer a person."""

    def name(self) -> str:
        return REPHRASE

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        if self._previous_turn_was_also_a_fallback(tracker):
            mode = handoff_config().misunderstood  # config/handoff.yml triggers.misunderstood
            if mode == "direct":
                return [FollowupAction(HANDOFF)]
            if mode == "offer":
                return [FollowupAction("utter_offer_human")]
        if self._the_form_answers_it(tracker):
            return []  # the form's question comes again in a form that answers it (action_ask_retention_accepted)
        if await answer_about_callback(dispatcher, tracker):
            return []
        dispatcher.utter_message(response="utter_ask_rephrase")
        return []

    @staticmethod
    def _the_form_answers_it(tracker: Tracker) -> bool:
        """ "Wat kunnen jullie me dan bieden?" asked at the retention offer: the offer is explained."""
        from actions.topics import OFFER_QUESTION

        return ((tracker.active_loop or {}).get("name") == "topic_form"
                and tracker.get_slot("requested_slot") == "retention_accepted"
                and bool(OFFER_QUESTION.search(tracker.latest_message.get("text") or "")))

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
        if registry.channel(channel) is None and channel != "phone":
            dispatcher.utter_message(response="utter_ask_channel")
            return []
        # Continuing on a channel means writing back there and being known by its address.
        writes_back = registry.identifies_sender(channel)
        if writes_back and not tracker.get_slot("customer_id"):
            # Writing first to a number or account means knowing whose it is: only once verified
            # (config/identity.yml). A claim never sends anything to the customer's channels.
            dispatcher.utter_message(response="utter_continue_needs_verified")
            return []
        dispatcher.utter_message(response="utter_continue_on_channel")
        if writes_back:
            # The gateway writes first on the new channel (bot/pipeline/service.py `_continue_on`).
            dispatcher.utter_message(json_message=control.payload(control.ContinueOn(channel)))
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
            dispatcher.utter_message(response="utter_greet", brand=policy().brand)  # config/policy.yml
        return []


def handoff_payload(reason: str, **details: object) -> dict:
    """What tells the gateway to hand the conversation to a person (bot/shared/control.py Handoff).
    The gateway answers with the honest wait, computed from the live queue."""
    known = {k: v for k, v in details.items() if k in ("topic", "role", "summary", "request", "ticket") and v is not None}
    extra = {k: v for k, v in details.items() if k not in known and v is not None}
    return control.payload(control.Handoff(reason, **known, extra=extra))


class ActionHandoff(Action):
    """The customer asked for a person, or accepted the offer of one after misunderstandings."""

    def name(self) -> str:
        return HANDOFF

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        reason = "asked"
        for event in reversed(tracker.events[:-1]):
            if event.get("event") == "action" and event.get("name") not in ("action_listen", HANDOFF, None):
                if event.get("name") in ("utter_offer_human", REPHRASE):
                    reason = "misunderstood"
                break
        if reason == "asked" and not handoff_config().asked:
            dispatcher.utter_message(response="utter_no_handoff")
            return []
        dispatcher.utter_message(json_message=handoff_payload(reason, topic=tracker.get_slot("topic")))
        return []


class ActionResponseTime(Action):
    """"How long still?": the promises we made and the tickets that wait, with their deadlines.
    While a person is being waited for the gateway answers this itself, with a fresh estimate.
    The time: the clock passed in (tests), else the process's (actions.deps.clock)."""

    def __init__(self, clock: Clock | None = None) -> None:
        self._clock = clock

    def name(self) -> str:
        return "action_response_time"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        customer_id = tracker.get_slot("customer_id")
        if customer_id and callback_time(tracker.latest_message.get("text") or ""):
            # "can it be in the afternoon instead?" about the callback on record
            callbacks = await open_callbacks(customer_id)
            if callbacks and await note_callback_time(dispatcher, tracker, callbacks[-1]):
                return []
        said = await tell_response_time(dispatcher, tracker, self._clock or process_clock(), customer_id)
        if said:
            return []
        if not customer_id:
            if (tracker.active_loop or {}).get("name"):
                # inside another question: who it is comes first there anyway
                dispatcher.utter_message(text=messages.text("response_time_who", tracker.get_slot("language") or "nl"))
                return []
            # Nothing on this conversation, and we don't know who asks: find out, then look (topic_form)
            return [SlotSet("topic", "ask_response_time"), FollowupAction("topic_form")]
        dispatcher.utter_message(response="utter_response_time_nothing")
        return []


# a question about a time already promised ("when will you call me back?", "wanneer bellen jullie?")
ASKS_WHEN = re.compile(r"\b(wanneer|hoe laat|hoelang|hoe lang|when|what time|how long)\b", re.I)
# a message about being called back ("when are you ringing me back?", "wanneer bellen jullie?")
ABOUT_A_CALLBACK = re.compile(r"\b(?:call|ring|phone)(?:ing|ed|s)? (?:me )?back\b|\bcall ?back\b|\bterug ?(?:bel|gebeld)|"
                              r"\bbellen jullie\b|\bbel(?:t|len)? (?:je|jullie|u) (?:me|mij)\b", re.IGNORECASE)
_PART_OF_DAY = {
    "morning": re.compile(r"(?:\b|morgen)(?:morning|ochtend|'?s\s?ochtends|voor de middag|before noon)\b", re.I),
    "afternoon": re.compile(r"(?:\b|morgen)(?:afternoon|middag|'?s\s?middags|na de lunch|after lunch|na de middag)\b", re.I),
    "evening": re.compile(r"(?:\b|morgen)(?:evening|tonight|avond|vanavond|'?s\s?avonds|after work|na het werk|na werktijd)\b", re.I),
}
_PART_OF_DAY_TEXT = {
    "morning": {"nl": "'s ochtends", "en": "in the morning"},
    "afternoon": {"nl": "'s middags", "en": "in the afternoon"},
    "evening": {"nl": "'s avonds", "en": "in the evening"},
}
_CLOCK_TIME = re.compile(
    r"\b(?:after|before|around|at|na|voor|rond|om|tussen)\s+\d{1,2}(?:[:.]\d{2})?(?:\s*(?:uur|u|am|pm|h))?"
    r"(?:\s+(?:en|and)\s+\d{1,2}(?:[:.]\d{2})?(?:\s*(?:uur|u|am|pm|h))?)?", re.I)
_DAY = re.compile(r"\b(?:(?:on\s+)?(?:monday|tuesday|wednesday|thursday|friday)|(?:op\s+)?(?:maandag|dinsdag|woensdag|donderdag|vrijdag)"
                  r"|tomorrow|morgen|overmorgen|next week|volgende week)\b", re.I)


def callback_time(text: str) -> dict[str, str] | None:
    """When the customer would rather be called, as said ("in the afternoon", "na 15:00",
    "on Friday"): {part: morning|afternoon|evening} and/or {said: the words}; None when no time
    is named."""
    found: dict[str, str] = {}
    for part, pattern in _PART_OF_DAY.items():
        if pattern.search(text):
            found["part"] = part
            break
    said = [m.group(0).strip() for m in (_DAY.search(text), _CLOCK_TIME.search(text)) if m]
    if said:
        found["said"] = " ".join(said)
    return found or None


async def note_callback_time(dispatcher: CollectingDispatcher, tracker: Tracker, ticket) -> bool:
    """A time the customer prefers for the callback on record is noted on its ticket (the colleague
    sees it) and confirmed; whether there was one."""
    wanted = callback_time(tracker.latest_message.get("text") or "")
    if not wanted:
        return False
    lang = tracker.get_slot("language") or "nl"
    words = [_PART_OF_DAY_TEXT[wanted["part"]][lang if lang in ("nl", "en") else "nl"]] if "part" in wanted else []
    if "said" in wanted:
        words.append(wanted["said"])
    when = " ".join(words)
    await records().note_on_ticket(ticket.id, preferred_time=when)
    dispatcher.utter_message(text=messages.text("callback_time_noted", lang, when=when, ticket=ticket.id))
    return True


async def answer_about_callback(dispatcher: CollectingDispatcher, tracker: Tracker) -> bool:
    """A message not understood, but about the callback on record: "can it be in the afternoon
    instead?" is noted on it, "when are you ringing me back?" gets its time; whether it was."""
    customer_id = tracker.get_slot("customer_id")
    text = tracker.latest_message.get("text") or ""
    asks_about_it = bool(ABOUT_A_CALLBACK.search(text))
    if not customer_id or not (asks_about_it or callback_time(text)):
        return False
    callbacks = await open_callbacks(customer_id)
    if not callbacks:
        return False
    ticket = callbacks[-1]
    if await note_callback_time(dispatcher, tracker, ticket):
        return True
    if not asks_about_it:
        return False
    clock, lang = process_clock(), tracker.get_slot("language") or "nl"
    dispatcher.utter_message(response=ticket_response(ticket, clock.now()), ticket=ticket.id,
                             deadline=describe(aware(ticket.promised_by), lang, clock.now(), clock.tz))
    return True


def ticket_response(ticket, now) -> str:
    """The text for an open ticket's promise: "we call you back" for a callback, else "you'll get an
    answer"; the late variant (admitting it, offering a person) once its deadline passed."""
    base = "utter_response_time_callback" if ticket.kind == "callback" else "utter_response_time_ticket"
    if aware(ticket.promised_by) < now:
        return f"{base}_late"
    # a delivery problem: what the colleague decides (send it again or refund), not just "an answer"
    return "utter_response_time_delivery" if ticket.kind == "delivery_problem" else base


async def tell_response_time(dispatcher: CollectingDispatcher, tracker: Tracker, clock: Clock,
                             customer_id: str | None) -> bool:
    """The promises made on this conversation and the customer's open tickets with a deadline,
    late ones admitted; whether anything was said."""
    lang = tracker.get_slot("language") or "nl"
    now, tz = clock.now(), clock.tz
    repo = records()
    promises = [p for p in await repo.open_promises(tracker.sender_id) if p.ticket_id is None]  # tickets below
    tickets = [t for t in await repo.tickets(int(customer_id), status="open") if t.promised_by] if customer_id else []
    customer = await repo.customer(int(customer_id)) if tickets else None
    channel = registry.label(customer.preferred_channel if customer else "webchat", lang)  # where the answer comes
    said = False
    for promise in promises[-1:]:
        deadline = aware(promise.deadline)
        key = "utter_response_time_promise" if deadline >= now else "utter_response_time_late"
        dispatcher.utter_message(response=key, deadline=describe(deadline, lang, now, tz))
        said = True
    for ticket in tickets[-3:]:
        deadline = aware(ticket.promised_by)
        dispatcher.utter_message(response=ticket_response(ticket, now), ticket=ticket.id, channel=channel,
                                 kind=fmt.label(fmt.TICKET_KINDS, ticket.kind, lang),
                                 deadline=describe(deadline, lang, now, tz))
        said = True
    return said


class ActionRequestCallback(ActionResponseTime):
    """"Bel me terug": a callback already on record is named with its time (and admitted when it
    is late); otherwise one is booked (topic_form with the topic request_callback)."""

    def name(self) -> str:
        return "action_request_callback"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        customer_id = tracker.get_slot("customer_id")
        if not customer_id and ASKS_WHEN.search(tracker.latest_message.get("text") or ""):
            # "when will you call me back?": who it is first, then what is on record
            return [SlotSet("topic", "ask_response_time"), FollowupAction("topic_form")]
        if customer_id:
            clock = self._clock or process_clock()
            lang = tracker.get_slot("language") or "nl"
            now, tz = clock.now(), clock.tz
            open_ones = await open_callbacks(customer_id)
            if open_ones:
                ticket = open_ones[-1]
                if await note_callback_time(dispatcher, tracker, ticket):
                    return []
                dispatcher.utter_message(response=ticket_response(ticket, now), ticket=ticket.id,
                                         deadline=describe(aware(ticket.promised_by), lang, now, tz))
                return []
        # nothing on record: book one (who it is, the number, a free window: actions/callbacks.py)
        return [SlotSet("topic", "request_callback"), FollowupAction("topic_form")]


class ActionOpeningHours(Action):
    """When people are there, from the configuration (config/service_levels.yml business hours and
    public holidays; a queue with hours of its own in config/handoff.yml is named with them), and
    whether they are there now. The time: the clock passed in (tests), else the process's."""

    def __init__(self, clock: Clock | None = None) -> None:
        self._clock = clock

    def name(self) -> str:
        return "action_opening_hours"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        from actions.deps import service_levels
        from bot.policy.hours import now_text, week_text

        lang = tracker.get_slot("language") or "nl"
        now = (self._clock or process_clock()).now()
        levels = service_levels()
        general = week_text(levels, lang)
        lines = [messages.text("opening_hours", lang, week=general, now=now_text(levels, lang, now))]
        for queue in handoff_config().queues.values():
            own = week_text(queue.levels, lang)
            if own != general:  # e.g. complaints also on Saturday morning
                lines.append(messages.text("opening_hours_queue", lang, queue=queue.titles.get(lang, queue.name), week=own))
        dispatcher.utter_message(text=" ".join(lines))
        return []
