"""Two questions in one message ("Waar blijft mijn pakket? En kost retourneren iets?").

Rasa classifies a message as one intent, so the gateway splits: a message of several sentences
(or joined by "en ook", "and also" ...) is read part by part with Rasa's NLU (POST /model/parse,
which touches no conversation). When at least two parts ask different questions, the parts go to
Rasa one after the other in the same turn: side questions first (the FAQ, opening hours, "how long
still?", "are you a bot?": answered at once), then the first question about the customer's own case.
A second question about their case waits until the first is answered (the action server says so
with the control message `TopicDone`) and is then asked for the customer, within `PENDING_SECONDS`.
Parts that ask nothing ("ik ben K10001") go with the case question, so nothing said is lost.

Pure: `parts` and `plan` do no I/O; bot/pipeline/service.py does the asking.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# answered at once, whatever else is going on (data/rules/forms.yml answers them inside a question too)
SIDE_INTENTS = frozenset({"faq", "opening_hours", "ask_response_time", "bot_challenge"})
# a question about the customer's own case (actions/topics.py TOPIC_SLOTS; tests keep them equal)
CASE_INTENTS = frozenset({"order_status", "delivery_problem", "return_item", "request_refund", "invoice_question",
                          "payment_arrangement", "loyalty_points", "update_preferences", "cancel_contract",
                          "complaint", "cancel_order", "request_callback"})
# who the customer says they are ("ik ben K10001", "my email is ..."): never a question of its own
# (the same shapes as actions/topics.py CUSTOMER_NUMBER and EMAIL)
_CLAIM = re.compile(r"\b[kK]\s?-?\d{5}\b|[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
# side questions answered from the customer's records (their promises, tickets and callbacks)
NEEDS_WHO = frozenset({"ask_response_time"})
MIN_CONFIDENCE = 0.6
STATEMENT_MIN_CONFIDENCE = 0.85
MAX_PARTS = 4
PENDING_SECONDS = 15 * 60

_SPLIT = re.compile(
    r"(?<=[?!.])\s+(?=\S)"
    r"|\s*[,;]?\s+(?:en ook|en verder|oh en|o en|ook nog|daarnaast|and also|also|oh and|plus|besides that)\s+",
    re.IGNORECASE)


# "Is mijn stofzuiger al onderweg en staat er nog een factuur open?": two questions in one sentence,
# the second starting again with a question word or verb (only inside a sentence that asks: "?")
_INNER = re.compile(
    r"\s*,?\s+(?:en|and)\s+(?=(?:staat|staan|is|zijn|kan|kun|kunnen|mag|moet|heb|hebben|wanneer|waar|hoe|hoeveel|"
    r"wat|krijg|komt|wordt|zit|klopt|do|does|did|can|could|are|was|will|when|where|how|what|have|has|should|"
    r"would)\b)", re.IGNORECASE)
INNER_MIN_WORDS = 3


def _inner(piece: str) -> list[str]:
    if not piece.rstrip().endswith("?"):
        return [piece]
    halves = [h.strip(" ,;") for h in _INNER.split(piece)]
    if len(halves) < 2 or any(len(h.split()) < INNER_MIN_WORDS for h in halves):
        return [piece]
    return halves


_JOINED = re.compile(r"^(en|and|also|ook|verder|daarnaast|plus|oh)\b", re.IGNORECASE)


def parts(text: str) -> list[str]:
    """The sentences of `text` (and the parts joined by "en ook", "and also" ...); [text] when it is
    one. Short pieces ("K10001", "Hoi!") are kept: they go with the question they belong to."""
    pieces = [p.strip(" ,;") for p in _SPLIT.split(text or "")]
    pieces = [half for p in pieces if p for half in _inner(p)]
    asking = [p for p in pieces if len(p.split()) >= 2 or p.endswith("?")]
    return pieces if len(asking) >= 2 and len(pieces) <= MAX_PARTS + 2 else [text]


def worth_reading(piece: str) -> bool:
    """Whether a piece could ask something on its own (else it only goes with a question)."""
    return len(piece.split()) >= 2 or piece.endswith("?")


def _separate(piece: str) -> bool:
    """A second question about the customer's case must be asked as one: a question mark, or
    joined by "en ook", "and also" ... (else it is the same case told in more sentences)."""
    return piece.rstrip().endswith("?") or bool(_JOINED.match(piece))


@dataclass(frozen=True)
class Plan:
    now: list[str]      # sent to Rasa in this order, in this turn
    later: list[str]    # case questions asked once the one before is answered


def _question(piece: str, parse: dict) -> str | None:
    """Which question `piece` asks: its intent, and for the FAQ which entry; None: no question."""
    intent = parse.get("intent") or {}
    name, confidence = intent.get("name"), float(intent.get("confidence") or 0)
    if _CLAIM.search(piece) and not piece.rstrip().endswith("?"):
        return None  # "I'm Harry Wilson, K10018": who asks, whatever the model reads in it
    # a piece that does not ask ("Goedemorgen, met Koen van Café De Zwaan") must be read surely
    needed = MIN_CONFIDENCE if piece.rstrip().endswith("?") else STATEMENT_MIN_CONFIDENCE
    if confidence < needed or name not in SIDE_INTENTS | CASE_INTENTS:
        return None
    if name == "faq":
        from bot.policy import faq

        entry = faq.match(piece)
        return f"faq:{entry.id}" if entry else name
    return name


def plan(pieces: list[str], parses: list[dict]) -> Plan | None:
    """How to ask `pieces` (with their NLU readings); None: send the message whole, as one."""
    asked = [(piece, _question(piece, parse)) for piece, parse in zip(pieces, parses)]
    questions = {name for _, name in asked if name}
    if len(questions) < 2:
        return None
    side, cases, rest, seen = [], [], [], set()
    for piece, name in asked:
        if name is None or name in seen:
            rest.append(piece)  # asks nothing, or the same question again: goes with the case question
            continue
        if name in CASE_INTENTS and cases and not _separate(piece):
            rest.append(piece)  # more about the same case ("Ik wil klagen. De bezorger gooide ...")
            continue
        if name not in CASE_INTENTS and not (name.startswith("faq:") or piece.rstrip().endswith("?")):
            rest.append(piece)  # a side question must be one: an FAQ the file knows, or asked with "?"
            continue
        seen.add(name)
        (cases if name in CASE_INTENTS else side).append(piece)
    if len(side) + len(cases) < 2:
        return None
    claims = [p for p in rest if _CLAIM.search(p)]
    looks_up = [i for i, piece in enumerate(side) if dict(asked).get(piece) in NEEDS_WHO]
    if claims and looks_up:
        # a side question that looks at the records goes first and needs to know who asks
        # ("when will you call me back? I'm Harry, K10018")
        side[looks_up[0]] = _in_order(pieces, side[looks_up[0]], claims)
        rest = [p for p in rest if p not in claims]
    if cases and rest:
        # identification and details go with the case question, in the order they were written
        cases[0] = _in_order(pieces, cases[0], rest)
    elif rest:
        side[-1] = " ".join([side[-1], *rest])
    return Plan(now=side + cases[:1], later=cases[1:])


def _in_order(pieces: list[str], main: str, extra: list[str]) -> str:
    return " ".join(p for p in pieces if p == main or p in extra)
