"""One form for every question that needs the customer's records: `topic_form`.

The `topic` slot (set from the intent) decides which slots the form asks for, in order:
who the customer is (customer number, email, or order number + postcode), then what the topic
needs (an order of theirs, a one-time code for sensitive changes, an amount, a reason ...).
When everything is known, `action_topic` (actions/handlers.py) answers from the records.

Contract for the slot extractors below: they look at the latest message only, return {} when
the message says nothing about their slot, and speak only when their slot was asked for.
"""

from __future__ import annotations

import re
import time
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import ActiveLoop, EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions import limits

from bot.shared import control
from bot.texts import fmt, messages
from channels import registry
from actions.common import entity_values, latest_user_metadata
from actions.deps import identity_policy, records
from bot.policy.rules import policy

CUSTOMER_NUMBER = re.compile(r"\b[kK]\s?-?(\d{5})\b")
EMAIL = re.compile(r"[\w.+-]+@[\w-]+(\.[\w-]+)+")
ORDER_NUMBER = re.compile(r"(?<![\d+])([1-9]\d{5})(?!\d)")
POSTCODE = re.compile(r"\b([1-9]\d{3})\s?([a-zA-Z]{2})\b")
CODE = re.compile(r"(?<!\d)(\d{4})(?!\d)")
AMOUNT = re.compile(r"(\d{1,5}(?:[.,]\d{1,2})?)")
WHOLE = re.compile(r"\b(alles|hele bedrag|volledig|alle|all|everything|full|whole|total)\b", re.I)
INSTALMENTS_SAID = re.compile(
    r"\b(\d{1,2}|een|één|twee|drie|vier|vijf|zes|zeven|acht|negen|tien|elf|twaalf|one|two|three|four|five|six|"
    r"seven|eight|nine|ten|eleven|twelve)\s*(x\s*)?(termijn|maand|keer|delen|instal|month|payment|part)", re.I)
MONEY_SAID = re.compile(r"€\s*(\d{1,5}(?:[.,]\d{1,2})?)|(?<![\d.,])(\d{1,5}(?:[.,]\d{1,2})?)\s*(?:euro|eur\b|€)"
                        r"|(?<![\d.,])(\d{1,5}[.,]\d{2})(?![\d.,])", re.I)
# the question's own message counts as its description when it says this much (not "ik heb een klacht")
DESCRIPTION_MIN_WORDS = 7
# a reason for leaving, said with the wish to leave ("... want bij de concurrent is alles goedkoper")
REASON = re.compile(r"\b(want|omdat|aangezien|doordat|vanwege|because|since|as|due to|goedkoper|duurder|te duur|"
                    r"cheaper|expensive|slecht|bad|poor|niet tevreden|unhappy|not happy|concurrent|competitor|"
                    r"elsewhere|ergens anders|prices?|prijzen|service|kwaliteit|quality)\b", re.I)
MAX_ID_ATTEMPTS = 3
UNKNOWN = "none"  # claimed_id of a claim that matches no customer: treated exactly like a real one

TOPIC_SLOTS: dict[str, list[str]] = {
    "order_status": ["customer_id", "order_number"],
    "delivery_problem": ["customer_id", "order_number", "details"],
    "return_item": ["customer_id", "order_number"],
    "request_refund": ["customer_id", "order_number", "otp_code", "amount"],
    "invoice_question": ["customer_id"],
    "payment_arrangement": ["customer_id", "amount", "instalments"],
    "loyalty_points": ["customer_id"],
    "update_preferences": ["customer_id", "preference", "otp_code"],
    "cancel_contract": ["customer_id", "details", "retention_accepted"],
    "complaint": ["customer_id", "details"],
    "cancel_order": ["customer_id", "order_number"],
    # "how long still?" from someone not known yet: who it is first (actions/dialogue.py)
    "ask_response_time": ["customer_id"],
    # "bel me terug": the number and a free window (actions/callbacks.py), then it is booked
    "request_callback": ["customer_id", "callback_phone", "callback_slot"],
}
# the questions about an order that, for a customer with one order under way, are about that one
ONE_ORDER_TOPICS = ("order_status", "delivery_problem", "cancel_order")
# What the customer may say instead of answering the question the bot asked (the form rejects the
# turn and a rule answers it: data/rules/forms.yml). Another topic switches to it; a side question
# (FAQ, opening hours, "how long still?") is answered and the bot comes back to its question.
LEAVE_INTENTS = {"goodbye", "thank", "request_human", "change_language", "faq", "opening_hours",
                 "ask_response_time", "bot_challenge", "request_callback", "continue_on_channel", "out_of_scope"}
# A description (what happened, why you leave) is anything typed, except these, said briefly.
LEAVE_DESCRIPTION_INTENTS = {"goodbye", "thank", "request_human", "change_language"}
LEAVE_MIN_CONFIDENCE = 0.5
# "laat dat retour maar, ik wil mijn geld terug voor 104100": another topic, even with a value in it
CHANGE_OF_MIND = re.compile(r"\b(laat (dat|dit|het|die)?\s*\w* ?maar|eigenlijk|liever|toch (niet|maar)|bedacht|"
                            r"actually|instead|rather|changed my mind|forget (that|the)|never mind)\b", re.I)
# "momentje", "one sec": the customer looks it up; no failed attempt, no dead end
ONE_SEC = re.compile(r"\b(one sec(ond)?|just a (sec|second|moment)|momentje|moment(je)? graag|ff wachten|even wachten|"
                     r"hold on|hang on|let me (check|look)|ik zoek het (even|ff) op)\b", re.I)
WAIT_A_MOMENT = re.compile(r"^\W*(oke?\W+|ok\W+|ja\W+|yes\W+)?(moment(je)?|even (zoeken|kijken|wachten)|ff zoeken|"
                           r"wacht (even|ff)|één moment|een moment|one (sec|second|moment)|just a (sec|second|moment)|"
                           r"hold on|hang on|wait a (sec|second|moment)|let me (check|look))\b", re.I)
# the actions that answer a side question inside a question (data/rules/forms.yml); the form then
# asks its question again without reading the message once more
SIDE_STEPS = {"action_faq", "utter_language_switched", "utter_opening_hours", "action_opening_hours", "action_response_time",
              "utter_iamabot", "utter_out_of_scope", "action_continue_on_channel"}
# Slots that belong to one question and are cleared when it is answered.
# "ook niet voor de bestelling die onderweg is?", "and what about order 126354?": the question just
# answered, about something else (actions/language.py extract_topic keeps the topic)
FOLLOW_UP = re.compile(
    r"^\W*(?:(?:oh|ok(?:e|ay)?|en|maar|and|but)\W+)?(?:ook(?: niet)? voor|en voor|en (?:die|de|het) van|en hoe zit het met|"
    r"hoe zit het (?:dan )?met|en met|geldt dat ook voor|"
    r"what about|how about|and (?:for|what about)|also for|same for|not even for|even for|does that go for)\b",
    re.IGNORECASE)
FOLLOW_UP_MAX_WORDS = 14
# an order described instead of numbered: the one under way
UNDER_WAY = re.compile(r"\b(onderweg|nog niet (?:bezorgd|binnen|aangekomen|geleverd)|on (?:its|the) way|under way|"
                       r"not (?:yet )?(?:arrived|delivered)|in transit|still coming)\b", re.IGNORECASE)


_WORD = re.compile(r"[a-zà-ÿ]+")
PRODUCT_WORD_MIN = 5


def names_product(text: str, description: str) -> bool:
    """Whether `text` names the product of an order line ("mijn robotstofzuiger", "the air fryer",
    "de stofzuiger" for "Robotstofzuiger Compact"): a word of 5+ letters inside a word of the
    description or the other way round, spaces ignored ("air fryer" = "airfryer")."""
    said = _WORD.findall((text or "").lower())
    said += ["".join(pair) for pair in zip(said, said[1:])]
    product = _WORD.findall((description or "").lower())
    product += ["".join(pair) for pair in zip(product, product[1:])]
    return any(len(w) >= PRODUCT_WORD_MIN and len(p) >= PRODUCT_WORD_MIN and (w in p or p in w)
               for w in said for p in product)


def topic_messages(tracker: Tracker, limit: int = 6) -> list[str]:
    """What the customer wrote since the last question was answered (action_topic), newest first."""
    texts: list[str] = []
    for event in reversed(tracker.events):
        if event.get("event") == "action" and event.get("name") == "action_topic":
            break
        if event.get("event") == "user" and not (event.get("text") or "").startswith("/"):
            texts.append(event.get("text") or "")
            if len(texts) >= limit:
                break
    return texts


# asking what the retention offer is, or for more ("wat kunnen jullie me dan bieden?", "is that all?")
OFFER_QUESTION = re.compile(
    r"\bwat (?:kunnen|kun|kan|willen|gaan) (?:jullie|je|u)\b.{0,20}\b(?:bieden|doen|geven|aanbieden)\b|"
    r"\bwat (?:bieden|bied) (?:jullie|je|u)\b|\bis dat alles\b|\bniet meer dan dat\b|\bkan het (?:niet )?beter\b|"
    r"\bwat krijg ik (?:dan|ervoor)\b|\bwat levert (?:het|dat) (?:me|mij) op\b|\bmeer korting\b|"
    r"\bwhat (?:else )?(?:can|could|would|will) you (?:offer|do|give)\b|\bwhat do you offer\b|\bis that all\b|"
    r"\bnothing better\b|\banything (?:better|more)\b|\bwhat(?:'s| is) in it for me\b|\bwhat do i get\b|"
    r"\bcan you do better\b", re.IGNORECASE)


# what a follow-up is about: another order (the question stays), or another topic (a new question)
_ABOUT_AN_ORDER = re.compile(r"(?<![\d+])[1-9]\d{5}(?!\d)|\b(bestelling|order|pakket|parcel|package|levering|"
                             r"delivery|die|that one|the other|de andere|the one|dat ding|hem|it)\b", re.IGNORECASE)
_ANOTHER_TOPIC = re.compile(r"\b(factuur|facturen|invoices?|punten|points|retour|terugsturen|send (?:it )?back|return|"
                            r"refund|geld terug|money back|klacht|complaint|regeling|arrangement|instalments?|termijnen|"
                            r"opzeggen|cancel|annuleren|voorkeur|preferences?|account)\b", re.IGNORECASE)


def is_follow_up(text: str) -> bool:
    """A short question that leans on the one before for another order ("ook niet voor de
    bestelling die nog onderweg is?", "what about order 126354?"); one that names another topic
    ("en hoe zit het met mijn factuur?") is a new question."""
    text = text or ""
    return (bool(FOLLOW_UP.search(text)) and len(text.split()) <= FOLLOW_UP_MAX_WORDS
            and bool(_ABOUT_AN_ORDER.search(text)) and not _ANOTHER_TOPIC.search(text))


PER_TOPIC = ["details", "amount", "instalments", "retention_accepted", "preference", "otp_code", "id_attempts",
             "claimed_id", "id_code", "callback_phone", "callback_slot", "callback_offer", "callback_phone_asked"]


def carries_value(slot: str, text: str, intent: str | None) -> bool:
    """Whether `text` holds a value for `slot` (then it is an answer, whatever the intent says)."""
    if slot in ("customer_id", "postcode"):
        return bool(CUSTOMER_NUMBER.search(text) or EMAIL.search(text) or ORDER_NUMBER.search(text)
                    or POSTCODE.search(text))
    if slot == "order_number":
        return bool(ORDER_NUMBER.search(text))
    if slot in ("id_code", "otp_code"):
        return bool(CODE.search(text))
    if slot == "amount":
        return bool(WHOLE.search(text)) or amount_in(text) is not None
    if slot == "instalments":
        return parse_count(text) is not None
    if slot == "retention_accepted":
        return intent in ("affirm", "deny", "cancel_contract")
    if slot == "preference":
        return bool(EMAIL.search(text) or CONSENT_OFF.search(text) or CONSENT_ON.search(text))
    if slot == "callback_phone":
        from actions.callbacks import OTHER_NUMBER, PHONE

        return bool(PHONE.search(text) or OTHER_NUMBER.search(text)) or intent in ("affirm", "deny")
    if slot == "callback_slot":
        from actions.callbacks import SLOT_WORDS

        return bool(SLOT_WORDS.search(text))
    return False


def last_action(tracker: Tracker) -> str | None:
    """The action that ran before the form that runs now (Rasa hands the validation a tracker that
    already ends with the form's own ActionExecuted: that one is skipped)."""
    skipped = False
    for event in reversed(tracker.events):
        if event.get("event") != "action":
            continue
        if not skipped and event.get("name") == "topic_form":
            skipped = True
            continue
        return event.get("name")
    return None


def was_asking(tracker: Tracker) -> bool:
    """Whether topic_form was active when the last action before it ran (a side step inside the
    question), not started by that action ("how long still?" from someone unknown)."""
    active, last_action_index = None, None
    events = tracker.events
    for i, event in enumerate(events):
        if event.get("event") == "action" and event.get("name") != "topic_form":
            last_action_index = i
    for event in events[: last_action_index or 0]:
        if event.get("event") == "active_loop":
            active = event.get("name")
    return active == "topic_form"


def other_topic(tracker: Tracker, min_confidence: float = 0.2) -> str | None:
    """The likeliest topic in the NLU ranking other than the one being asked about."""
    current = tracker.get_slot("topic")
    for candidate in tracker.latest_message.get("intent_ranking") or [tracker.latest_message.get("intent") or {}]:
        name = candidate.get("name")
        if name in TOPIC_SLOTS and name != current and name not in LEAVE_INTENTS \
                and float(candidate.get("confidence") or 0) >= min_confidence:
            return name
    return None


def leaves_question(tracker: Tracker) -> bool:
    """The customer, asked for something by topic_form, said something else: goodbye, thanks, a
    person please, another language, another question or topic."""
    requested = tracker.get_slot("requested_slot")
    if not requested:
        return False
    intent = tracker.latest_message.get("intent", {}) or {}
    name, confidence = intent.get("name"), float(intent.get("confidence") or 0)
    text = (tracker.latest_message.get("text") or "").strip()
    leaving = LEAVE_INTENTS | (set(TOPIC_SLOTS) - {tracker.get_slot("topic")})
    if text.startswith("/"):  # a button: its intent is what was chosen
        return name in leaving
    if WAIT_A_MOMENT.search(text) or ONE_SEC.search(text):
        return False  # "thanks, one sec": looking it up (the extractor says: take your time)
    if requested == "details":
        return name in LEAVE_DESCRIPTION_INTENTS and confidence >= 0.8 and len(text.split()) <= 8
    if requested == "retention_accepted" and (
            OFFER_QUESTION.search(text)
            or ((LEAVES.search(text) or STAYS_FOR_SURE.search(text)) and name not in ("request_human", "change_language"))):
        # about the offer ("wat kunnen jullie me dan bieden?": action_ask_retention_accepted explains),
        # or its answer ("nee, dan zeg ik toch op", whatever topic the NLU reads in it)
        return False
    if CHANGE_OF_MIND.search(text) and other_topic(tracker):
        return True  # another topic after all, whatever value the message also holds (it is kept)
    if name not in leaving or confidence < LEAVE_MIN_CONFIDENCE:
        return False
    return not carries_value(requested, text, name)

NUMBER_WORDS = {
    "een": 1, "één": 1, "one": 1, "twee": 2, "two": 2, "drie": 3, "three": 3, "vier": 4, "four": 4,
    "vijf": 5, "five": 5, "zes": 6, "six": 6, "zeven": 7, "seven": 7, "acht": 8, "eight": 8,
    "negen": 9, "nine": 9, "tien": 10, "ten": 10, "elf": 11, "eleven": 11, "twaalf": 12, "twelve": 12,
}
CHANNEL_WORDS = {
    "whatsapp": "whatsapp", "sms": "sms", "telegram": "telegram", "e-mail": "email", "email": "email",
    "mail": "email", "chat": "webchat", "webchat": "webchat",
}
CONSENT_OFF = re.compile(
    r"\b(geen (berichten|mail|mails|e-?mails?|sms'?jes|nieuwsbrief|reclame\w*|aanbiedingen|marketing\w*)( meer)?"
    r"|niet meer (mailen|appen|benaderen)|no (more )?(marketing|offers|promotions|newsletters?)"
    r"|stop (sending|sturen)( me)? (offers|aanbiedingen|reclame)"
    r"|afmelden|uitschrijven|no (more )?(messages|mail|e-?mails|texts)|don'?t (message|contact|email) me"
    r"|unsubscribe|opt ?out|stop (met )?(berichten|mailen|messages))\b", re.I)
STAYS_FOR_SURE = re.compile(r"\b(i'?ll stay|i will stay|stay then|sounds good|dan blijf ik|ik blijf|blijf ik|klinkt goed|"
                            r"vraag (het|maar)|please ask)\b", re.I)
STAYS = re.compile(r"\b(deal|prima|top|akkoord|doe maar|graag|ja|yes|ok(e|ay)?|sure)\b", re.I)
LEAVES = re.compile(r"\b(toch opzeggen|wil (echt )?opzeggen|nee|no|niet blijven|cancel (anyway|it|my account)|still cancel|"
                    r"want to (cancel|leave)|geen interesse)\b", re.I)
CONSENT_ON = re.compile(r"\b(wel berichten|aanmelden|berichten ontvangen|yes,? messages|subscribe|opt in|receive messages)\b", re.I)


def is_verified(tracker: Tracker) -> bool:
    until = tracker.get_slot("verified_until")
    return bool(until) and float(until) > time.time()


def parse_amount(text: str) -> Decimal | None:
    match = AMOUNT.search(text.replace("€", " "))
    if not match:
        return None
    try:
        value = Decimal(match.group(1).replace(",", "."))
    except InvalidOperation:
        return None
    return value if value > 0 else None


# numbers that are no amount: order and customer numbers, postcodes, codes
_NO_AMOUNT = re.compile(r"(?<![\d+])[1-9]\d{5}(?!\d)|\b[kK]\s?-?\d{5}\b|\b[1-9]\d{3}\s?[a-zA-Z]{2}\b")
_BARE_AMOUNT = re.compile(r"(?<![\d.,])(\d{1,5}(?:[.,]\d{1,2})?)(?![\d])")
AMOUNT_ATTEMPT_MAX_WORDS = 4


def amount_in(text: str) -> Decimal | None:
    """The amount in an answer to "how much?": "€19,95", "19.95 euro", "20"; never an order number
    ("geld terug voor bestelling 104100"), a customer number or a postcode."""
    said = MONEY_SAID.search(text)
    if said:
        return parse_amount(next(g for g in said.groups() if g))
    bare = _BARE_AMOUNT.search(_NO_AMOUNT.sub(" ", text))
    return parse_amount(bare.group(1)) if bare else None


def parse_count(text: str) -> int | None:
    match = re.search(r"\b(\d{1,2})\b", text)
    if match:
        return int(match.group(1))
    for word in re.findall(r"[a-zéë]+", text.lower()):
        if word in NUMBER_WORDS:
            return NUMBER_WORDS[word]
    return None


def parse_preference(text: str, tracker: Tracker) -> str | None:
    """What the customer wants to change, as 'field=value'."""
    emails = entity_values(tracker, "email")
    if not emails and EMAIL.search(text):
        emails = [EMAIL.search(text).group(0)]
    if emails:
        return f"email={emails[0].lower()}"
    phones = entity_values(tracker, "phone_number")
    if phones:
        from bot.records.importer import normalize_phone

        try:
            return f"phone={normalize_phone(phones[0])}"
        except ValueError:
            return None
    if CONSENT_OFF.search(text):
        return "consent_proactive=no"
    if CONSENT_ON.search(text):
        return "consent_proactive=yes"
    languages = [v for v in entity_values(tracker, "language") if v in ("nl", "en")]
    if languages:
        return f"language={languages[0]}"
    channels = [v for v in entity_values(tracker, "channel") if registry.channel(v)]
    if not channels:
        channels = [CHANNEL_WORDS[w] for w in re.findall(r"[a-z-]+", text.lower()) if w in CHANNEL_WORDS]
    if channels:
        return f"preferred_channel={channels[0]}"
    return None


class KeepSideSlots:
    """rasa_sdk keeps only the slots a validation action is responsible for (its required
    slots). Our extractors also set slots on the side (the customer's name, a pending order
    number, attempts, verification time); keep those too."""

    SIDE_SLOTS = ("customer_name", "id_order_number", "id_attempts", "verified_until", "postcode", "order_number",
                  "claimed_id", "claim_order", "customer_id", "given_claim", "details", "amount", "instalments",
                  "retention_offer", "callback_phone_asked")

    async def get_validation_events(self, dispatcher, tracker: Tracker, domain) -> list[EventType]:
        events = await super().get_validation_events(dispatcher, tracker, domain)
        handled = {event["name"] for event in events}
        for name, value in tracker.slots_to_validate().items():
            if name in self.SIDE_SLOTS and name not in handled:
                events.append(SlotSet(name, value))
        return events


async def _callback_slots(slots: list[str], tracker: Tracker) -> list[str]:
    """A callback on record already: nothing to ask (action_topic names it). Every window full: no
    window to ask (action_topic books it within the service level)."""
    from actions import callbacks
    from actions.deps import clock
    from actions.callbacks import open_callbacks

    if await open_callbacks(tracker.get_slot("customer_id")):
        return ["customer_id"]
    if not tracker.get_slot("callback_slot") and not await callbacks.windows(clock().now(), count=1):
        return [s for s in slots if s != "callback_slot"]
    return slots


class ValidateTopicForm(KeepSideSlots, FormValidationAction):
    def name(self) -> str:
        return "validate_topic_form"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> list[EventType]:
        # "No" to any question of the form stops it, except where no is an answer (the
        # retention offer: no means "cancel anyway"; a description may start with "no").
        # action_topic then does nothing.
        requested = tracker.get_slot("requested_slot")
        intent = tracker.latest_message.get("intent", {}).get("name")
        previous = last_action(tracker)
        if previous in SIDE_STEPS and was_asking(tracker):
            # Back at the question after a side step (data/rules/forms.yml): the last message was
            # answered there, so nothing is read from it; only which question comes next.
            next_slot = await self.next_requested_slot(dispatcher, tracker, domain)
            return [next_slot] if next_slot else []
        if previous in (None, "action_listen") and leaves_question(tracker):
            return []  # the form rejects the turn: a rule answers what the customer said instead
        text = tracker.latest_message.get("text") or ""
        if requested and requested not in ("retention_accepted", "details") and intent == "deny" \
                and not carries_value(requested, text, intent):  # "K10016" read as "no" is still the answer
            dispatcher.utter_message(response="utter_form_stopped")
            return [SlotSet(slot, None) for slot in PER_TOPIC] + [
                SlotSet("topic", None), SlotSet("requested_slot", None), ActiveLoop(None)]
        events = await super().run(dispatcher, tracker, domain)
        return await self._the_one_open_order(events, dispatcher, tracker, domain)

    async def _the_one_open_order(self, events: list, dispatcher, tracker: Tracker, domain) -> list:
        """"When is my order coming?" from a customer with one order under way: that order, not
        "which order?" (a number they typed always wins)."""
        slots = {**tracker.slots, **{e["name"]: e["value"] for e in events if e.get("event") == "slot"}}
        if slots.get("requested_slot") != "order_number" or slots.get("order_number") or not slots.get("customer_id"):
            return events
        orders = await records().recent_orders(int(slots["customer_id"]), limit=10)
        # "is mijn robotstofzuiger al onderweg?": the one order with that product
        named = [o for o in orders if any(names_product(text, line.description) for line in o.lines
                                          for text in topic_messages(tracker))]
        under_way = [o for o in orders if o.status in ("placed", "shipped")]
        if len(named) == 1:
            chosen = named[0]
        elif not named and slots.get("topic") in ONE_ORDER_TOPICS and len(under_way) == 1:
            chosen = under_way[0]
        else:
            return events
        events = [e for e in events if not (e.get("event") == "slot" and e["name"] in ("requested_slot", "order_number"))]
        events.append(SlotSet("order_number", chosen.order_number))
        tracker.add_slots(events)
        next_slot = await self.next_requested_slot(dispatcher, tracker, domain)
        return events + ([next_slot] if next_slot else [])

    async def required_slots(
        self, domain_slots: list[str], dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[str]:
        topic = tracker.get_slot("topic")
        slots = list(TOPIC_SLOTS.get(topic, ["customer_id"]))
        if tracker.get_slot("customer_id") is None:
            if topic == "order_status" and shows_claimed_order(tracker):
                return []  # order number + postcode proved this order: action_topic shows what that allows
            if tracker.get_slot("claimed_id"):
                slots.insert(0, "id_code")  # who they say they are, proven by a code sent to the records
            elif tracker.get_slot("id_order_number"):
                slots.insert(0, "postcode")  # an order number was given: its postcode identifies
        if topic == "payment_arrangement" and tracker.get_slot("instalments") and tracker.get_slot("amount") is None:
            slots.remove("amount")  # "kan het in 3 termijnen?": for what is open now (action_topic)
        if topic == "request_callback" and tracker.get_slot("customer_id"):
            slots = await _callback_slots(slots, tracker)
        if "otp_code" in slots:
            needs_code = topic != "update_preferences" or str(tracker.get_slot("preference") or "").startswith(("email=", "phone="))
            if is_verified(tracker) or not needs_code:
                slots.remove("otp_code")
        return slots

    # -- who is it ----------------------------------------------------------------------------
    # A claim (customer number, email, order number + postcode) proves nothing about who types it.
    # It never sets customer_id: that needs a one-time code sent to a channel the records hold, and
    # until then the answers are the same whether the claimed customer exists or not.
    async def extract_customer_id(self, dispatcher, tracker: Tracker, domain) -> dict[str, Any]:
        if tracker.get_slot("customer_id"):
            return {}
        requested = tracker.get_slot("requested_slot")
        asked = requested in ("customer_id", "postcode")
        text = tracker.latest_message.get("text") or ""
        given = tracker.get_slot("given_claim")
        if given and not tracker.get_slot("claimed_id") and not carries_value("customer_id", text, None):
            text = given  # said before the question came (actions/language.py remembers it)
        number = CUSTOMER_NUMBER.search(text)
        email = EMAIL.search(text)
        order = ORDER_NUMBER.search(text)
        postcode = POSTCODE.search(text)
        pending_order = tracker.get_slot("id_order_number")
        if not (number or email or (postcode and (order or pending_order))):
            if requested == "id_code":
                return {}  # the code extractor answers
            if asked and (WAIT_A_MOMENT.search(text) or ONE_SEC.search(text)):
                dispatcher.utter_message(text=messages.text("take_your_time", tracker.get_slot("language") or "nl"))
                return {"id_attempts": int(tracker.get_slot("id_attempts") or 0)}  # no attempt counted
            if order and asked:
                # An order number alone is not enough to know who this is: ask the postcode.
                return {"id_order_number": order.group(1), "order_number": order.group(1)}
            if not asked:
                return {}
            attempts = int(tracker.get_slot("id_attempts") or 0) + 1
            dispatcher.utter_message(response="utter_identify_give_up" if attempts >= MAX_ID_ATTEMPTS
                                     else "utter_identify_failed")
            return {"id_attempts": attempts, "id_order_number": None, "postcode": None}
        wait = await attempt(tracker)
        if wait:
            dispatcher.utter_message(response="utter_identify_limited", minutes=max(1, -(-wait // 60)))
            return {"id_order_number": None, "postcode": None, "claimed_id": None}
        repo = records()
        customer = None
        if number:
            customer = await repo.by_customer_number(f"K{number.group(1)}")
        elif email:
            customer = await repo.by_email(email.group(0))
        else:
            order_number = order.group(1) if order else pending_order
            customer = await repo.by_order_and_postcode(order_number, postcode.group(0))
            if tracker.get_slot("topic") == "order_status" and identity_policy().order_postcode:
                # the claim proves this one order, and no more (see config/identity.yml)
                if customer is None:
                    await failed(tracker)
                    dispatcher.utter_message(response="utter_claim_order_not_found", order_number=order_number)
                    return {"id_order_number": None, "postcode": None, "order_number": None}
                return {"claim_order": order_number, "order_number": order_number,
                        "id_order_number": None, "postcode": None}
        if customer is None:
            await failed(tracker)
        await send_identification_code(customer, tracker)
        # Tells the gateway that someone claims an identity (the desk shows the level).
        dispatcher.utter_message(json_message=control.payload(control.IdentityLevel("claimed")))
        return {"claimed_id": str(customer.id) if customer else UNKNOWN, "id_code": None,
                "id_order_number": None, "postcode": None, "id_attempts": 0, "given_claim": None}

    async def extract_id_code(self, dispatcher, tracker: Tracker, domain) -> dict[str, Any]:
        if tracker.get_slot("requested_slot") != "id_code" or tracker.get_slot("customer_id"):
            return {}
        text = tracker.latest_message.get("text") or ""
        if text.startswith("/"):
            return {}  # a button or command: the dialogue answers that
        if CUSTOMER_NUMBER.search(text) or EMAIL.search(text) or POSTCODE.search(text) or ORDER_NUMBER.search(text):
            return {}  # a new claim instead of a code: extract_customer_id takes it
        match = CODE.search(text)
        if not match and (WAIT_A_MOMENT.search(text) or ONE_SEC.search(text)):
            dispatcher.utter_message(text=messages.text("take_your_time", tracker.get_slot("language") or "nl"))
            return {"id_code": None, "id_attempts": int(tracker.get_slot("id_attempts") or 0) or 1}  # not asked again
        if not match:
            dispatcher.utter_message(response="utter_otp_format")
            return {"id_code": None}
        claimed = tracker.get_slot("claimed_id")
        wait = await attempt(tracker)
        customer = None
        if not wait and claimed and claimed != UNKNOWN and await records().check_code(int(claimed), match.group(1)):
            customer = await records().customer(int(claimed))
        if customer is None:
            attempts = int(tracker.get_slot("id_attempts") or 0) + 1
            await failed(tracker)
            if wait:
                dispatcher.utter_message(response="utter_identify_limited", minutes=max(1, -(-wait // 60)))
            elif attempts >= identity_policy().wrong_codes:
                dispatcher.utter_message(response="utter_identify_code_give_up")
            else:
                dispatcher.utter_message(response="utter_otp_wrong")
                return {"id_code": None, "id_attempts": attempts}
            return {"id_code": None, "claimed_id": None, "id_attempts": 0}
        name = customer.greeting_name
        dispatcher.utter_message(response="utter_identified", customer_name=name)
        # Tells the gateway, which joins this conversation to the customer's on every channel.
        dispatcher.utter_message(json_message=control.payload(control.IdentifiedCustomer(customer.id, by="code")))
        return {"id_code": "ok", "customer_id": str(customer.id), "customer_name": name, "claimed_id": None,
                "verified_until": time.time() + identity_policy().code_seconds, "id_attempts": 0}

    async def validate_id_code(self, value, dispatcher, tracker, domain) -> dict[str, Any]:
        return {"id_code": value}

    async def validate_id_attempts(self, value, dispatcher, tracker, domain) -> dict[str, Any]:
        return {"id_attempts": value}

    async def extract_postcode(self, dispatcher, tracker: Tracker, domain) -> dict[str, Any]:
        return {}  # handled together with the customer in extract_customer_id

    # -- which order -------------------------------------------------------------------------
    async def extract_order_number(self, dispatcher, tracker: Tracker, domain) -> dict[str, Any]:
        if tracker.get_slot("requested_slot") != "order_number":
            return {}
        match = ORDER_NUMBER.search(tracker.latest_message.get("text") or "")
        # None (not {}) when nothing matches: validation then explains the format and the form
        # asks again, instead of rejecting the turn.
        return {"order_number": match.group(1) if match else None}

    async def validate_order_number(self, value, dispatcher, tracker: Tracker, domain) -> dict[str, Any]:
        customer_id = tracker.get_slot("customer_id")
        match = ORDER_NUMBER.search(str(value or ""))
        if not match:
            if tracker.get_slot("requested_slot") == "order_number":
                dispatcher.utter_message(response="utter_invalid_order_number")
            return {"order_number": None}
        number = match.group(1)
        if customer_id and await records().order(int(customer_id), number) is None:
            dispatcher.utter_message(response="utter_order_not_found", order_number=number)
            return {"order_number": None}
        return {"order_number": number}

    async def validate_customer_id(self, value, dispatcher, tracker: Tracker, domain) -> dict[str, Any]:
        # Once we know who it is, an order number given before must be theirs.
        order_number = tracker.get_slot("order_number")
        if value and order_number and await records().order(int(value), order_number) is None:
            return {"customer_id": value, "order_number": None}
        return {"customer_id": value}

    # -- second factor -----------------------------------------------------------------------
    async def extract_otp_code(self, dispatcher, tracker: Tracker, domain) -> dict[str, Any]:
        if tracker.get_slot("requested_slot") != "otp_code":
            return {}
        match = CODE.search(tracker.latest_message.get("text") or "")
        if not match:
            dispatcher.utter_message(response="utter_otp_format")
            return {"otp_code": None}
        if await records().check_code(int(tracker.get_slot("customer_id")), match.group(1)):
            dispatcher.utter_message(response="utter_otp_verified")
            return {"otp_code": "ok", "verified_until": time.time() + identity_policy().code_seconds}
        dispatcher.utter_message(response="utter_otp_wrong")
        return {"otp_code": None}

    async def validate_otp_code(self, value, dispatcher, tracker, domain) -> dict[str, Any]:
        return {"otp_code": value}

    async def validate_verified_until(self, value, dispatcher, tracker, domain) -> dict[str, Any]:
        return {"verified_until": value}

    # -- what exactly ------------------------------------------------------------------------
    async def extract_amount(self, dispatcher, tracker: Tracker, domain) -> dict[str, Any]:
        if tracker.get_slot("requested_slot") != "amount":
            # "ik wil €19,95 terug": an amount said with the question (or on the way) is not asked again
            text = tracker.latest_message.get("text") or ""
            said = MONEY_SAID.search(text)
            if tracker.get_slot("amount") is None and said and tracker.get_slot("requested_slot") \
                    not in ("otp_code", "id_code", "instalments"):
                amount = parse_amount(next(g for g in said.groups() if g))
                return {"amount": f"{amount:.2f}"} if amount is not None else {}
            return {}
        text = tracker.latest_message.get("text") or ""
        if WHOLE.search(text) or tracker.latest_message.get("intent", {}).get("name") == "affirm":
            return {"amount": "all"}
        amount = amount_in(text)
        if amount is None:
            if len(text.split()) > AMOUNT_ATTEMPT_MAX_WORDS:
                return {}  # no attempt at an amount ("ik wil gewoon mijn geld terug voor 104100"): asked again
            dispatcher.utter_message(response="utter_amount_format")
            return {"amount": None}
        return {"amount": f"{amount:.2f}"}

    async def validate_amount(self, value, dispatcher, tracker, domain) -> dict[str, Any]:
        if value == "all":
            return {"amount": value}
        amount = parse_amount(str(value or ""))
        return {"amount": f"{amount:.2f}" if amount is not None else None}

    async def extract_instalments(self, dispatcher, tracker: Tracker, domain) -> dict[str, Any]:
        if tracker.get_slot("requested_slot") != "instalments":
            # "kan het in 3 termijnen?": said with the question, never asked again
            if tracker.get_slot("instalments") is None:
                for said in INSTALMENTS_SAID.finditer(tracker.latest_message.get("text") or ""):
                    count = parse_count(said.group(0))  # "niet in een keer ... in 3 termijnen": the 3
                    if count in policy().instalments:
                        return {"instalments": float(count)}
            return {}
        count = parse_count(tracker.latest_message.get("text") or "")
        if count not in policy().instalments:  # config/policy.yml (the desk accepts the same range)
            dispatcher.utter_message(response="utter_instalments_format")
            return {"instalments": None}
        return {"instalments": float(count)}

    async def validate_instalments(self, value, dispatcher, tracker, domain) -> dict[str, Any]:
        return {"instalments": value}

    async def extract_details(self, dispatcher, tracker: Tracker, domain) -> dict[str, Any]:
        if tracker.get_slot("requested_slot") != "details":
            # The question's own message, when it already tells what happened ("mijn airfryer is na
            # twee weken kapot"), is the description: "what happened?" is not asked after it.
            if tracker.get_slot("requested_slot") is None and tracker.get_slot("details") is None:
                text = (tracker.latest_message.get("text") or "").strip()
                intent = tracker.latest_message.get("intent", {}).get("name")
                topic = tracker.get_slot("topic")
                words = len(CUSTOMER_NUMBER.sub(" ", EMAIL.sub(" ", text)).split())
                reason_given = topic != "cancel_contract" or REASON.search(text)  # "I want to close my account": no reason
                # the message's own topic, or the near one it was filed under ("ik wil een klacht
                # indienen, de bezorger ..." read as a delivery problem, filed as a complaint)
                same = intent == topic or {intent, topic} == {"delivery_problem", "complaint"}
                if same and not text.startswith("/") and words >= DESCRIPTION_MIN_WORDS and reason_given:
                    return {"details": text[:2000]}
            return {}
        text = (tracker.latest_message.get("text") or "").strip()
        return {"details": text[:2000]} if text and not text.startswith("/") else {}

    async def validate_details(self, value, dispatcher, tracker, domain) -> dict[str, Any]:
        return {"details": value}

    async def extract_retention_accepted(self, dispatcher, tracker: Tracker, domain) -> dict[str, Any]:
        if tracker.get_slot("requested_slot") != "retention_accepted":
            return {}
        intent = tracker.latest_message.get("intent", {}).get("name")
        text = tracker.latest_message.get("text") or ""
        if OFFER_QUESTION.search(text):
            # "wat kunnen jullie me dan bieden?": no answer yet, but no rejection either; the question
            # comes again explained (action_ask_retention_accepted)
            return {"retention_offer": tracker.get_slot("retention_offer")}
        if STAYS_FOR_SURE.search(text):
            return {"retention_accepted": True}
        if LEAVES.search(text):
            return {"retention_accepted": False}
        if STAYS.search(text):
            return {"retention_accepted": True}
        if intent == "affirm":
            return {"retention_accepted": True}
        if intent in ("deny", "cancel_contract"):
            return {"retention_accepted": False}
        return {}

    async def validate_retention_accepted(self, value, dispatcher, tracker, domain) -> dict[str, Any]:
        return {"retention_accepted": value}

    # -- a callback (actions/callbacks.py) -------------------------------------------------------
    async def extract_callback_phone(self, dispatcher, tracker: Tracker, domain) -> dict[str, Any]:
        from actions import callbacks

        if tracker.get_slot("callback_phone"):
            return {}
        return await callbacks.extract_phone(dispatcher, tracker)

    async def validate_callback_phone(self, value, dispatcher, tracker, domain) -> dict[str, Any]:
        return {"callback_phone": value}

    async def extract_callback_slot(self, dispatcher, tracker: Tracker, domain) -> dict[str, Any]:
        from actions import callbacks
        from actions.deps import clock

        return await callbacks.extract_window(dispatcher, tracker, clock())

    async def validate_callback_slot(self, value, dispatcher, tracker, domain) -> dict[str, Any]:
        return {"callback_slot": value}

    async def extract_preference(self, dispatcher, tracker: Tracker, domain) -> dict[str, Any]:
        if tracker.get_slot("preference"):
            return {}
        text = tracker.latest_message.get("text") or ""
        found = parse_preference(text, tracker)
        if found:
            return {"preference": found}
        if tracker.get_slot("requested_slot") == "preference":
            dispatcher.utter_message(response="utter_preference_unclear")
            return {"preference": None}
        return {}

    async def validate_preference(self, value, dispatcher, tracker, domain) -> dict[str, Any]:
        return {"preference": value}


def shows_claimed_order(tracker: Tracker) -> bool:
    """An order number + postcode claim proved `claim_order`; the question is about that order."""
    claimed = tracker.get_slot("claim_order")
    return bool(claimed) and tracker.get_slot("order_number") in (None, claimed)


def _client(tracker: Tracker) -> str:
    meta = latest_user_metadata(tracker)
    return str(meta.get("client") or f"{meta.get('channel')}:{meta.get('address') or tracker.sender_id}")


async def attempt(tracker: Tracker) -> int:
    """Count one identification attempt (a claim, a code) for this conversation; the seconds to wait
    when the conversation or its client is over its limit (config/identity.yml limits), else 0."""
    policy = identity_policy()
    by_client = await limits.blocked("client", _client(tracker), policy.per_client)
    by_conversation = await limits.hit("conversation", tracker.sender_id, policy.per_conversation)
    return max(by_conversation, by_client)


async def failed(tracker: Tracker) -> None:
    """A claim that matched nobody, a wrong code: counted per client address, so one visitor
    cannot try customer after customer in new conversations."""
    await limits.hit("client", _client(tracker), identity_policy().per_client)


async def send_identification_code(customer, tracker: Tracker) -> None:
    """A one-time code to a channel the records hold for `customer` (None: nobody, silently),
    at most `codes_per_customer` per window whoever asks."""
    if customer is None or otp_target(customer) is None:
        return
    if await limits.hit("codes", str(customer.id), identity_policy().codes_per_customer):
        return
    lang = tracker.get_slot("language") or "nl"
    channel, address, _ = otp_target(customer)
    await issue_code(records(), customer, channel, address, lang)


async def issue_code(repo, customer, channel: str, address: str, lang: str) -> str:
    """A one-time code to `address`, valid as long as config/policy.yml says, in the customer's language."""
    rules = policy()
    body = messages.text("one_time_code", "en" if lang == "en" else "nl", brand=rules.brand,
                         minutes=rules.code_valid_minutes)
    return await repo.issue_code(customer, channel, address, body,
                                 valid_for=timedelta(minutes=rules.code_valid_minutes))


class ActionAskIdCode(Action):
    """Asks for the identification code: the whole explanation once, after the claim; after a
    wrong code the extractor's "try again" is enough."""

    def name(self) -> str:
        return "action_ask_id_code"

    async def run(self, dispatcher, tracker: Tracker, domain) -> list[EventType]:
        if not int(tracker.get_slot("id_attempts") or 0):
            dispatcher.utter_message(response="utter_ask_id_code")
        return []


class ActionAskOrderNumber(Action):
    """Asks which order, offering the customer's recent orders as buttons."""

    def name(self) -> str:
        return "action_ask_order_number"

    async def run(self, dispatcher, tracker: Tracker, domain) -> list[EventType]:
        lang = tracker.get_slot("language") or "nl"
        customer_id = tracker.get_slot("customer_id")
        orders = await records().recent_orders(int(customer_id), limit=4) if customer_id else []
        buttons = [
            {"title": f"{o.order_number} · {fmt.day(o.placed_at, lang)} · {fmt.label(fmt.ORDER_STATUS, o.status, lang)}",
             "payload": o.order_number}
            for o in orders
        ]
        dispatcher.utter_message(response="utter_ask_order_number", buttons=buttons)
        return []


class ActionAskOtpCode(Action):
    """Sends a one-time code to a channel we already know for this customer, and asks for it."""

    def name(self) -> str:
        return "action_ask_otp_code"

    async def run(self, dispatcher, tracker: Tracker, domain) -> list[EventType]:
        lang = tracker.get_slot("language") or "nl"
        repo = records()
        customer = await repo.customer(int(tracker.get_slot("customer_id")))
        target = otp_target(customer)
        if target is None:
            dispatcher.utter_message(response="utter_otp_no_channel")
            return [ActiveLoop(None), SlotSet("requested_slot", None)]
        channel, address, masked = target
        await issue_code(repo, customer, channel, address, lang)
        dispatcher.utter_message(response="utter_ask_otp_code", channel=registry.label(channel, lang),
                                 masked=masked)
        return []


def otp_target(customer) -> tuple[str, str, str] | None:
    """Where to send a code: the preferred phone channel, else SMS, else email."""
    if customer.phone:
        channel = "whatsapp" if customer.preferred_channel == "whatsapp" else "sms"
        return channel, customer.phone, "•••• " + customer.phone[-2:]
    if customer.email:
        name, _, host = customer.email.partition("@")
        return "email", customer.email, f"{name[:1]}•••@{host}"
    return None


PREFERENCE_FIELDS = [
    ("email", re.compile(r"\b(e-?mail(adres)?|mailadres|email address)\b", re.I)),
    ("phone", re.compile(r"\b(telefoon(nummer)?|mobiel(e nummer)?|(mobile|phone) ?(number)?|06-?nummer|nummer)\b", re.I)),
    ("channel", re.compile(r"\b(kanaal|channel|voortaan via|from now on (on|via))\b", re.I)),
]


class ActionAskPreference(Action):
    """What to change: when the question already said which field ("ik wil mijn e-mailadres
    wijzigen"), only its new value is asked; else the general question."""

    def name(self) -> str:
        return "action_ask_preference"

    async def run(self, dispatcher, tracker: Tracker, domain) -> list[EventType]:
        said = " ".join([(e.get("text") or "") for e in tracker.events if e.get("event") == "user"][-4:])
        for field, pattern in PREFERENCE_FIELDS:
            if pattern.search(said):
                dispatcher.utter_message(response=f"utter_ask_preference_{field}")
                return []
        dispatcher.utter_message(response="utter_ask_preference")
        return []
