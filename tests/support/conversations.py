"""The dialogue test suite's format and checks: whole conversations written in YAML
(tests/conversations/*.yml, explained in tests/conversations/README.md), and what is checked on
every reply of the bot.

Two kinds of checks:
- the turn's own (`contains`, `faq`, `time`, `asks`, `handoff`, `records`, ...), written in the file;
- the global ones, on every turn of every conversation: a reply came; it is no dead end (the
  fallback, "I can't find anyone with those details", ...); it is in the conversation's language;
  it asks for nothing the customer already said (or answered) in this conversation; it shows no
  empty or meaningless value ("-", "None", "€0,00", "{", a lone "?").

What the bot says is recognised from its own texts: the responses in domain.yml (a Dutch and an
English variant each), the gateway's sentences (bot/texts/messages.py) and the FAQ answers
(config/faq.yml). Running a conversation against the stack is tests/support/conversation_run.py.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
SUITE = ROOT / "tests" / "conversations"
KNOWN_FAILURES = SUITE / "known_failures.yml"
LANGUAGES = ("nl", "en")
CHANNELS = ("webchat", "whatsapp", "sms")

# The patterns of issue 11 ("What goes wrong today"), by number.
PATTERNS = {
    1: "wrong topic: the message is taken for a nearby topic",
    2: "dead end inside a question (bye, thanks, a person, another language, another question)",
    3: "asked twice: a fact or an answer the customer already gave",
    4: "wrong language",
    5: "a question about time gets no concrete time",
    6: "two questions at once: one answered, or neither",
    7: "wrong or empty values in texts",
}

CONVERSATION_KEYS = {"id", "language", "customer", "channel", "page_language", "login", "topic", "patterns",
                     "summary", "turns"}
TURN_KEYS = {"say", "click", "lang", "contains", "contains_any", "not_contains", "faq", "time", "asks",
             "not_asks", "handoff", "records", "gives", "dead_end_ok", "silent_ok", "pattern", "note"}
RECORD_KEYS = {"ticket", "no_ticket", "decision", "no_decision", "preferred_channel", "consent", "email", "phone",
               "language"}


class FormatError(ValueError):
    pass


@dataclass
class Turn:
    say: str | None = None                 # what the customer types ({code}: the one-time code they got)
    click: str | None = None               # or: the title of a button of the bot's last reply
    lang: str | None = None                # from this turn on, replies are expected in this language
    contains: list[str] = field(default_factory=list)
    contains_any: list[list[str]] = field(default_factory=list)
    not_contains: list[str] = field(default_factory=list)
    faq: list[str] = field(default_factory=list)
    time: bool = False
    asks: list[str] = field(default_factory=list)
    not_asks: list[str] = field(default_factory=list)
    handoff: bool | None = None
    records: dict[str, Any] = field(default_factory=dict)
    gives: list[str] = field(default_factory=list)
    dead_end_ok: bool = False
    silent_ok: bool = False
    pattern: int | None = None
    note: str = ""

    @property
    def shown(self) -> str:
        return self.say if self.say is not None else f"[clicks: {self.click}]"


@dataclass
class Conversation:
    id: str
    language: str
    customer: str
    turns: list[Turn]
    channel: str = "webchat"
    page_language: str | None = None       # the widget's customData.language (none: like rasa-webchat)
    login: bool = False                    # a web login the business's site signed (customData user_hash)
    topic: str = ""
    patterns: list[int] = field(default_factory=list)
    summary: str = ""
    source: str = ""


def _as_list(value: Any) -> list:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _turn(raw: Any, where: str) -> Turn:
    if not isinstance(raw, dict):
        raise FormatError(f"{where}: a turn is a mapping with `say` or `click`")
    unknown = set(raw) - TURN_KEYS
    if unknown:
        raise FormatError(f"{where}: unknown key(s) {sorted(unknown)}; known: {sorted(TURN_KEYS)}")
    if ("say" in raw) == ("click" in raw):
        raise FormatError(f"{where}: exactly one of `say` and `click`")
    groups = raw.get("contains_any")
    if groups is not None:
        groups = _as_list(groups)
        groups = [_as_list(g) for g in groups] if groups and isinstance(groups[0], list) else [groups]
    for name in ("asks", "not_asks"):
        for thing in _as_list(raw.get(name)):
            if thing not in QUESTIONS:
                raise FormatError(f"{where}: {name}: unknown question {thing!r}; known: {sorted(QUESTIONS)}")
    for thing in _as_list(raw.get("gives")):
        if thing not in QUESTIONS:
            raise FormatError(f"{where}: gives: unknown fact {thing!r}; known: {sorted(QUESTIONS)}")
    for entry in _as_list(raw.get("faq")):
        if entry not in faq_answers():
            raise FormatError(f"{where}: faq: no entry {entry!r} in config/faq.yml")
    records = raw.get("records") or {}
    if set(records) - RECORD_KEYS:
        raise FormatError(f"{where}: records: unknown key(s) {sorted(set(records) - RECORD_KEYS)}")
    lang = raw.get("lang")
    if lang is not None and lang not in LANGUAGES:
        raise FormatError(f"{where}: lang must be one of {LANGUAGES}")
    pattern = raw.get("pattern")
    if pattern is not None and pattern not in PATTERNS:
        raise FormatError(f"{where}: pattern must be one of {sorted(PATTERNS)}")
    return Turn(
        say=None if raw.get("say") is None else str(raw["say"]), click=raw.get("click"), lang=lang,
        contains=[str(s) for s in _as_list(raw.get("contains"))],
        contains_any=[[str(s) for s in g] for g in (groups or [])],
        not_contains=[str(s) for s in _as_list(raw.get("not_contains"))],
        faq=_as_list(raw.get("faq")), time=bool(raw.get("time")), asks=_as_list(raw.get("asks")),
        not_asks=_as_list(raw.get("not_asks")), handoff=raw.get("handoff"), records=records,
        gives=_as_list(raw.get("gives")), dead_end_ok=bool(raw.get("dead_end_ok")),
        silent_ok=bool(raw.get("silent_ok")), pattern=pattern, note=str(raw.get("note") or ""))


def load(directory: Path = SUITE) -> list[Conversation]:
    """Every conversation of the suite, in file order; a FormatError names the file and the place."""
    found: list[Conversation] = []
    seen: dict[str, str] = {}
    for path in sorted(directory.glob("*.yml")):
        if path.name == KNOWN_FAILURES.name:
            continue
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for n, raw in enumerate(data.get("conversations") or [], 1):
            where = f"{path.name} conversation {n}"
            if not isinstance(raw, dict):
                raise FormatError(f"{where}: a conversation is a mapping")
            unknown = set(raw) - CONVERSATION_KEYS
            if unknown:
                raise FormatError(f"{where}: unknown key(s) {sorted(unknown)}; known: {sorted(CONVERSATION_KEYS)}")
            cid = str(raw.get("id") or "")
            if not re.fullmatch(r"[a-z0-9][a-z0-9-]*", cid):
                raise FormatError(f"{where}: id must be lowercase letters, digits and dashes, got {cid!r}")
            if cid in seen:
                raise FormatError(f"{where}: id {cid!r} is also used in {seen[cid]}")
            seen[cid] = path.name
            where = f"{path.name} {cid}"
            if raw.get("language") not in LANGUAGES:
                raise FormatError(f"{where}: language must be one of {LANGUAGES}")
            if not re.fullmatch(r"K\d{5}", str(raw.get("customer") or "")):
                raise FormatError(f"{where}: customer must be a demo customer number such as K10001")
            channel = raw.get("channel", "webchat")
            if channel not in CHANNELS:
                raise FormatError(f"{where}: channel must be one of {CHANNELS}")
            if raw.get("page_language") not in (None, *LANGUAGES):
                raise FormatError(f"{where}: page_language must be one of {LANGUAGES}")
            patterns = _as_list(raw.get("patterns"))
            if any(p not in PATTERNS for p in patterns):
                raise FormatError(f"{where}: patterns must be among {sorted(PATTERNS)}")
            turns = [_turn(t, f"{where} turn {i}") for i, t in enumerate(raw.get("turns") or [], 1)]
            if not turns:
                raise FormatError(f"{where}: no turns")
            if channel != "webchat" and any(t.click for t in turns):
                raise FormatError(f"{where}: `click` is for the web chat (on SMS/WhatsApp the customer types)")
            found.append(Conversation(
                id=cid, language=raw["language"], customer=raw["customer"], turns=turns, channel=channel,
                page_language=raw.get("page_language"), login=bool(raw.get("login")),
                topic=str(raw.get("topic") or ""), patterns=patterns, summary=str(raw.get("summary") or ""),
                source=path.name))
    return found


def known_failures(path: Path = KNOWN_FAILURES) -> dict[str, str]:
    """Conversations the bot does not pass yet: id -> why (tests/conversations/known_failures.yml)."""
    if not path.exists():
        return {}
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    return {str(k): str(v) for k, v in (data.get("known_failures") or {}).items()}


# -- what the bot says: its own texts, by language ---------------------------------------------

def _template_regex(text: str) -> re.Pattern:
    out = []
    for part in re.split(r"(\{\{|\}\}|\{[a-z_]+\})", text):
        if part == "{{":
            out.append(re.escape("{"))
        elif part == "}}":
            out.append(re.escape("}"))
        elif re.fullmatch(r"\{[a-z_]+\}", part):
            out.append("(.+?)")
        else:
            out.append(re.escape(part))
    return re.compile("".join(out), re.S)


@dataclass(frozen=True)
class Template:
    name: str
    language: str
    text: str
    regex: re.Pattern


@lru_cache(maxsize=1)
def templates() -> tuple[Template, ...]:
    """Every text the bot writes from a template: domain.yml responses, bot/texts/messages.py and
    the FAQ answers, each with its language."""
    from bot.texts.messages import TEXTS

    found: list[Template] = []
    domain = yaml.safe_load((ROOT / "domain.yml").read_text(encoding="utf-8"))
    for name, variants in (domain.get("responses") or {}).items():
        for variant in variants:
            text = variant.get("text")
            if not text:
                continue
            conditions = variant.get("condition") or []
            lang = next((c.get("value") for c in conditions if c.get("name") == "language"), "nl")
            found.append(Template(name, lang, text, _template_regex(text)))
    for name, variants in TEXTS.items():
        if len(set(variants.values())) < len(variants):
            continue  # one text for both languages (Telegram's welcome): says nothing about the language
        for lang, text in variants.items():
            found.append(Template(f"messages.{name}", lang, text, _template_regex(text)))
    for entry, answers in faq_answers().items():
        for lang, text in answers.items():
            found.append(Template(f"faq.{entry}", lang, text, re.compile(re.escape(text))))
    return tuple(found)


@lru_cache(maxsize=1)
def faq_answers() -> dict[str, dict[str, str]]:
    """config/faq.yml: id -> {language: the answer as the customer reads it}."""
    from bot.policy.rules import policy

    rules = policy()
    data = yaml.safe_load((ROOT / "config" / "faq.yml").read_text(encoding="utf-8")) or {}
    return {entry["id"]: {lang: text.format(brand=rules.brand, return_days=rules.return_days)
                          for lang, text in entry["answer"].items()}
            for entry in data.get("entries") or []}


def message_languages(text: str) -> set[str]:
    """The languages one message of the bot is in: those of the templates it is written from, else
    what the project's detector says; empty when it cannot be told."""
    text = text.strip()
    if not text:
        return set()
    matched = {t.language for t in templates() if t.regex.fullmatch(text)}
    if matched:
        return matched
    from bot.shared.language import detect

    found = detect(text)
    return {found} if found else set()


# Responses that leave the customer where they were: the fallback, "I didn't understand",
# "I can't find anyone", "I can't help with that". A turn expecting one says `dead_end_ok`.
# The format hints ("that doesn't look like an order number") count too: given to "bye" or "thanks"
# they are the bot taking a way out of the question for a wrong answer.
DEAD_ENDS = ("utter_default", "utter_ask_rephrase", "utter_offer_human", "utter_identify_failed",
             "utter_identify_give_up", "utter_identify_code_give_up", "utter_identify_limited", "utter_out_of_scope",
             "utter_not_identified", "utter_preference_unclear", "utter_no_handoff", "utter_claim_order_not_found",
             "utter_order_not_found", "utter_invalid_order_number", "utter_amount_format", "utter_instalments_format",
             "utter_otp_format", "utter_otp_wrong", "messages.bad_request")


@lru_cache(maxsize=1)
def dead_end_regexes() -> tuple[tuple[str, re.Pattern], ...]:
    return tuple((t.name, t.regex) for t in templates() if t.name in DEAD_ENDS)


def dead_end(text: str) -> str | None:
    """The dead-end response `text` contains, if any."""
    for name, regex in dead_end_regexes():
        if regex.search(text):
            return name
    return None


# -- empty or meaningless values ---------------------------------------------------------------

EMPTY_VALUES = [
    (re.compile(r"(^|\s)-(?=\s|[.,;:)]|$)", re.M), 'a lone "-"'),
    (re.compile(r"\b(None|null|undefined|NaN|nan)\b"), "None/null"),
    (re.compile(r"[{}]"), "a template brace"),
    (re.compile(r"€\s?0[.,]00(?!\d)"), "€0,00"),
    (re.compile(r"(^|\s)\?(?=\s|[.,;:)]|$)", re.M), 'a lone "?"'),
    (re.compile(r"#(?![\w])"), "a # without a number"),
    (re.compile(r"\(\s*\)"), "empty brackets"),
    (re.compile(r"[^\s•]  +[^\s]"), "a double space (a missing value)"),
    (re.compile(r"\w \s*[,.](?=\s|$)"), "a space before a comma or full stop (a missing value)"),
]


def empty_value(text: str) -> str | None:
    for regex, what in EMPTY_VALUES:
        match = regex.search(text)
        if match:
            start = max(0, match.start() - 25)
            return f"{what}: …{text[start:match.end() + 25]}…"
    return None


# -- questions the bot asks, and the facts the customer gives ----------------------------------

# What a question asks for (nl, en), recognised in a sentence ending in "?" or an imperative ask.
QUESTIONS: dict[str, tuple[str, str]] = {
    "new_contact": (r"nieuwe? (e-?mail ?adres|e-?mail|telefoonnummer|nummer|adres)",
                    r"new (e-?mail address|e-?mail|phone number|number|address)"),
    "customer_id": (r"klantnummer|e-?mail ?adres|wie je bent|wie u bent",
                    r"customer number|e-?mail address|who you are"),
    "postcode": (r"postcode", r"postcode|post code|postal code|zip"),
    "code": (r"(?<![-\w])code\b", r"(?<![-\w])code\b"),  # not "track & trace-code"
    "order_number": (r"welke bestelling|bestelnummer|ordernummer", r"which order|order number"),
    "amount": (r"\bbedrag\b|hoeveel (wil je |geld )?(terug|betalen)|hoeveel euro",
               r"how much|\bamount\b"),
    "instalments": (r"termijn", r"instal?lments?|how many (payments|months|parts)"),
    "details": (r"wat (er )?(is )?gebeurd|wat is er (precies )?(gebeurd|mis)|vertel|beschrijf|wat ging er mis",
                r"what happened|tell me|describe|what went wrong|what's wrong|what is wrong"),
    "reason": (r"waarom|reden", r"\bwhy\b|reason"),
    "channel": (r"welk kanaal|via welk", r"which channel"),
    "phone": (r"welk (telefoon)?nummer|op welk nummer", r"which (phone )?number|what number"),
    "preference": (r"wat wil je (aan)?passen|wat wil je wijzigen", r"what would you like to change"),
}
_ASK_START = re.compile(r"^(typ|type|noem|name|kies|choose|vertel|tell|geef|give|stuur|send)\b", re.I)
# open questions ("anything else?") ask for no fact and may come back
_OPEN = re.compile(r"waarmee kan ik|kan ik (je )?(nog )?(iets|ergens)|nog (meer|iets)|wat kan ik|help je graag|"
                   r"how can i help|what else|anything else|can i help|help you with|what can i do|"
                   r"lukt het niet in één keer|can't pay it all at once", re.I)

FACTS: dict[str, re.Pattern] = {
    "customer_id": re.compile(r"\b[kK]\s?-?\d{5}\b|[\w.+-]+@[\w-]+(\.[\w-]+)+"),
    "postcode": re.compile(r"\b[1-9]\d{3}\s?[a-zA-Z]{2}\b"),
    "code": re.compile(r"^\D{0,40}(?<!\d)\d{4}(?!\d)\D{0,40}$"),
    "order_number": re.compile(r"(?<![\d+])[1-9]\d{5}(?!\d)"),
    "amount": re.compile(r"€\s?\d|\b\d+([.,]\d{1,2})?\s?(euro|eur)\b|\b(alles|het hele bedrag|het volledige bedrag|"
                         r"everything|the full amount|full amount|the whole amount|all of it|the lot)\b", re.I),
    "instalments": re.compile(r"\b(\d{1,2}|twee|drie|vier|vijf|zes|two|three|four|five|six)\s*(termijnen|termijn|"
                              r"keer|maanden|delen|instal?lments?|months|payments|parts|goes)\b", re.I),
    "channel": re.compile(r"whatsapp|\bsms\b|telegram|\be-?mail\b|\bmail\b|\bapp\b", re.I),
    "phone": re.compile(r"\+?\d[\d\s-]{8,}\d"),
}


def sentences(text: str) -> list[str]:
    out = []
    for line in text.splitlines():
        out.extend(s.strip() for s in re.split(r"(?<=[.?!])\s+", line) if s.strip())
    return out


def questions(text: str) -> list[str]:
    """The sentences of a reply that ask the customer something."""
    return [s for s in sentences(text) if s.endswith("?") or _ASK_START.match(s)]


def question_kinds(sentence: str, language: str) -> list[str]:
    """What one question sentence asks for."""
    col = 0 if language == "nl" else 1
    kinds = [kind for kind, patterns in QUESTIONS.items() if re.search(patterns[col], sentence, re.I)]
    if "new_contact" in kinds:  # "what is your new email address?" asks for no known fact
        kinds = ["new_contact"]
    if "code" in kinds and "customer_id" in kinds and re.search(r"klantnummer|customer number", sentence, re.I):
        kinds.remove("code")  # "confirm with a code: give your customer number"
    return kinds


def asked(text: str, language: str) -> dict[str, str]:
    """What the reply asks for: question kind -> the sentence (first one)."""
    found: dict[str, str] = {}
    for sentence in questions(text):
        for kind in question_kinds(sentence, language):
            found.setdefault(kind, sentence)
    return found


def given(text: str) -> set[str]:
    """The facts a customer message holds, recognised by their shape."""
    found = {kind for kind, regex in FACTS.items() if regex.search(text)}
    if "postcode" in found:
        found.discard("code")  # "1012 AB" is no code
    return found


def open_question(sentence: str) -> bool:
    return bool(_OPEN.search(sentence))


def normalised(sentence: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"\d+", "#", sentence.lower())).strip()


# -- a concrete time -----------------------------------------------------------------------------

_MONTHS = ("januari|februari|maart|april|mei|juni|juli|augustus|september|oktober|november|december|"
           "january|february|march|may|june|july|august|october")
TIME = re.compile(
    r"\b([01]?\d|2[0-3])[:.][0-5]\d\b"
    r"|\b(maandag|dinsdag|woensdag|donderdag|vrijdag|zaterdag|zondag|monday|tuesday|wednesday|thursday|friday|"
    r"saturday|sunday)\b"
    r"|\b(vandaag|morgen|overmorgen|gisteren|today|tomorrow|yesterday|tonight|vanavond)\b"
    rf"|\b\d{{1,2}} ({_MONTHS})\b|\b({_MONTHS}) \d{{1,2}}\b"
    r"|\b(binnen|within|in about|in|over|ongeveer|about|uiterlijk|at most|up to|tot)\s+(\d+|een|één|a|an|one|twee|"
    r"two|drie|three|vijf|five)(\s*(tot|to|-|à)\s*\d+)?\s*(minuten|minuut|uur|uren|werkdagen|werkdag|dagen|dag|"
    r"weken|minutes?|hours?|working days?|business days?|days?|weeks?)\b"
    r"|\b(de volgende werkdag|next working day|next business day)\b",
    re.I)


def has_time(text: str) -> bool:
    return bool(TIME.search(text))


def squash(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().lower()
