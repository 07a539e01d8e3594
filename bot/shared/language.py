"""Which language a customer writes in: Dutch (default) or English.

One implementation, used by the gateway (to pick the language of its own messages and to tell
Rasa) and by the action server (when a message arrives without the gateway's metadata).

The decision for one message is, in order:
1. an explicit request ("in English please", "kan het in het Nederlands?") wins;
2. short messages (one or two words) are decided by a small lexicon of unambiguous words,
   because statistical detectors guess on "ok", "hallo" or "no";
3. longer messages by lingua when it is confident;
4. otherwise nothing: the caller keeps the language it already had.

A conversation keeps its language (`choose`): only an explicit request, or a message of at least
`SWITCH_MIN_WORDS` words that the detector is sure of, changes it. Short messages ("oke thx",
"ok", "hiya") never flip a conversation; they decide only the first message of a conversation.
"""

from __future__ import annotations

import re
from functools import lru_cache

DUTCH = "nl"
ENGLISH = "en"
DEFAULT_LANGUAGE = DUTCH
SUPPORTED = (DUTCH, ENGLISH)

_MIN_CONFIDENCE = 0.75
# switching a conversation that already has a language takes this many words and this confidence
SWITCH_MIN_WORDS = 4
_SWITCH_CONFIDENCE = 0.8
_SWITCH_LEXICON_WORDS = 3  # or this many words of the other language's lexicon and none of the current's

_EXPLICIT = [
    (ENGLISH, re.compile(
        r"\b(in|into|to|switch to|speak|talk|spreek|praat|kan het in( het)?|graag in( het)?|"
        r"liever in( het)?)\s+(het\s+)?(english|engels)\b"
        r"|\b(english|engels)\s+(please|pls|plz|graag|alsjeblieft|aub|a\.u\.b\.?)\b"
        r"|^\s*(english|engels)\s*[?!.]*\s*$"
        r"|\bdo you speak english\b|\bspreek je engels\b|\bspreekt u engels\b",
        re.IGNORECASE)),
    (DUTCH, re.compile(
        r"\b(in|into|to|switch to|speak|talk|spreek|praat|kan het in( het)?|graag in( het)?|"
        r"liever in( het)?)\s+(het\s+)?(dutch|nederlands|hollands)\b"
        r"|\b(dutch|nederlands)\s+(please|pls|plz|graag|alsjeblieft|aub|a\.u\.b\.?)\b"
        r"|^\s*(dutch|nederlands)\s*[?!.]*\s*$"
        r"|\bdo you speak dutch\b|\bspreek je nederlands\b|\bspreekt u nederlands\b",
        re.IGNORECASE)),
]

# Words that settle a one- or two-word message. Words shared by both languages
# (ok, hey, sorry, top, order) are left out on purpose.
_LEXICON = {
    DUTCH: {
        "hoi", "hallo", "hallootjes", "hee", "goedemorgen", "goedemiddag", "goedenavond",
        "dag", "doei", "ja", "jawel", "nee", "neen", "bedankt", "dankjewel", "dankuwel",
        "dank", "graag", "prima", "klopt", "bestelling", "pakket", "pakketje", "factuur",
        "retour", "terugbetaling", "klacht", "medewerker", "mens", "tot", "ziens", "fijn",
        "waar", "wanneer", "hulp", "alsjeblieft", "aub", "mijn", "ik", "niet", "geen",
        "oke", "oké", "okee", "dankje", "bedankt", "thnx", "mn", "ff", "effe", "hoe", "wat", "welke",
        "jij", "je", "jullie", "heb", "hebben", "kan", "kun", "wil", "moet", "graag", "helaas", "maar",
        "nog", "ook", "toch", "even", "ben", "het", "een", "de", "en", "van", "te", "vraag",
        "groetjes", "gr", "hoor", "zeker", "goed", "lekker", "morgen", "vandaag", "gisteren",
    },
    ENGLISH: {
        "hi", "hello", "yes", "yeah", "yep", "no", "nope", "thanks", "thank", "thx", "cheers",
        "bye", "goodbye", "please", "invoice", "parcel", "package", "refund", "complaint",
        "human", "agent", "person", "help", "where", "when", "my", "not", "good", "morning",
        "evening", "great", "fine", "hiya", "hey", "howdy", "ty", "thnks", "thanx", "pls", "plz", "okay",
        "sure", "cool", "how", "what", "which", "you", "have", "can", "want", "need", "still", "also",
        "the", "a", "and", "of", "question", "regards", "today", "tomorrow", "yesterday",
        "cheers", "mate", "lovely", "brilliant", "alright", "right",
    },
}

_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)
# Identifiers say nothing about the language they are typed in: "sanne.devries@example.nl" is not English.
_IDENTIFIERS = re.compile(r"[\w.+-]+@[\w-]+(\.[\w-]+)+|https?://\S+|www\.\S+|\b[kK]\s?-?\d{5}\b"
                          r"|\b[1-9]\d{3}\s?[a-zA-Z]{2}\b")


@lru_cache(maxsize=1)
def _detector():
    from lingua import Language, LanguageDetectorBuilder

    return (
        LanguageDetectorBuilder.from_languages(Language.DUTCH, Language.ENGLISH)
        .with_preloaded_language_models()
        .build()
    )


def warm_up() -> None:
    """Load the language models now instead of on the first message."""
    _detector()


def explicit_request(text: str) -> str | None:
    """The language the customer explicitly asks for, if any."""
    for language, pattern in _EXPLICIT:
        if pattern.search(text):
            return language
    return None


def _words(text: str) -> list[str]:
    return [w.lower() for w in _WORD.findall(_IDENTIFIERS.sub(" ", text))]


def _lexicon_vote(words: list[str]) -> str | None:
    votes = {lang: sum(w in lexicon for w in words) for lang, lexicon in _LEXICON.items()}
    best = max(votes, key=votes.get)
    if votes[best] and votes[best] > min(votes.values()):
        return best
    return None


def _detected(words: list[str], min_confidence: float) -> str | None:
    from lingua import Language

    values = _detector().compute_language_confidence_values(" ".join(words))
    top = values[0]
    if top.value < min_confidence:
        return None
    return DUTCH if top.language == Language.DUTCH else ENGLISH


def detect(text: str) -> str | None:
    """The language of `text`, or None when it cannot be told with confidence."""
    if text.lstrip().startswith("/"):  # a button's payload (/intent{"slot": ...}) or a command: no language
        return None
    requested = explicit_request(text)
    if requested:
        return requested
    words = _words(text)
    if not words:
        return None
    if len(words) <= 2:
        return _lexicon_vote(words)
    return _detected(words, _MIN_CONFIDENCE) or (_lexicon_vote(words) if len(words) < SWITCH_MIN_WORDS else None)


def switches_to(text: str, current: str) -> str | None:
    """The other language when `text` clearly asks for or is written in it, else None: an explicit
    request, or at least SWITCH_MIN_WORDS words the detector is sure of."""
    if text.lstrip().startswith("/"):
        return None
    requested = explicit_request(text)
    if requested:
        return requested if requested != current else None
    words = _words(text)
    if len(words) < SWITCH_MIN_WORDS:
        return None
    found = _detected(words, _SWITCH_CONFIDENCE)
    votes = {lang: sum(w in lexicon for w in words) for lang, lexicon in _LEXICON.items()}
    if found and found != current and votes[found] >= votes[current]:
        return found
    other = ENGLISH if current == DUTCH else DUTCH
    if votes[other] >= _SWITCH_LEXICON_WORDS and not votes[current]:
        return other
    return None


def choose(text: str, current: str | None) -> str:
    """The language to answer `text` in. A conversation with a language (`current`) keeps it unless
    the message clearly switches (`switches_to`); without one, the message decides, else Dutch."""
    if current in SUPPORTED:
        return switches_to(text, current) or current
    return detect(text) or DEFAULT_LANGUAGE
