"""Reading a customer's reply to a survey question, in Dutch or English.

`read(text, low, high)` for a scale question: a score (a number in the scale, as digits or a
word: "7", "een 8", "8/10", "zeven", "eight out of ten"), a skip, a stop, a number outside the scale
(asked again once), or anything else (a real question or remark: the survey is left and the
message answered as usual). `read_comment` for the open question; `read_choice` for the
anonymous choice.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

SCORE, SKIP, STOP, OUT_OF_RANGE, OTHER, TEXT = "score", "skip", "stop", "out_of_range", "other", "text"

_WORDS = {
    "nul": 0, "zero": 0, "een": 1, "één": 1, "eén": 1, "one": 1, "twee": 2, "two": 2, "drie": 3, "three": 3,
    "vier": 4, "four": 4, "vijf": 5, "five": 5, "zes": 6, "six": 6, "zeven": 7, "seven": 7, "acht": 8,
    "eight": 8, "negen": 9, "nine": 9, "tien": 10, "ten": 10,
}
# words around a score that change nothing: "ik geef een 8", "I'd say 9 out of 10", "cijfer 7"
_FILLER = {
    "ik", "geef", "geef je", "je", "jullie", "een", "a", "an", "i", "i'd", "id", "say", "give", "would", "it", "you",
    "score", "cijfer", "punt", "punten", "points", "point", "mijn", "my", "is", "dat", "wordt", "het", "then",
    "dan", "zou", "zeggen", "maybe", "misschien", "hmm", "uh", "eh", "ok", "oke", "okay", "oké", "nou", "well",
    "van", "de", "out", "of", "uit", "op", "on", "scale", "schaal", "rate", "denk", "think", "so", "zo",
}
_SKIP = re.compile(
    r"^\W*(skip|overslaan|sla (maar )?over|sla deze over|volgende|next|pass|geen idee|no idea|weet ik niet|"
    r"i don'?t know|dunno|geen mening|no opinion|n\.?v\.?t\.?|n/?a|-+|\.+)\W*$", re.I)
_STOP = re.compile(
    r"^\W*(stop|stoppen|stop maar|klaar|genoeg|geen zin|geen tijd|nee dank ?je( wel)?|nee bedankt|no thanks?|"
    r"no thank you|niet nu|not now|quit|end|cancel|annuleer|annuleren|laat maar|liever niet|rather not|"
    r"geen vragen( meer)?|no (more )?questions)\W*$", re.I)
_NUMBER = re.compile(r"\d+")


@dataclass(frozen=True)
class Reply:
    kind: str
    value: int | None = None
    text: str = ""


def _plain(text: str) -> str:
    return " ".join(text.strip().split())


def read(text: str, low: int, high: int) -> Reply:
    plain = _plain(text)
    if _SKIP.match(plain):
        return Reply(SKIP)
    if _STOP.match(plain):
        return Reply(STOP)
    words = re.findall(r"[\w'éë]+|\d+|/", plain.lower())
    if not words or len(words) > 8:
        return Reply(OTHER)
    scores: list[int] = []
    rest: list[str] = []
    for word in words:
        if word.isdigit():
            scores.append(int(word))
        elif word in _WORDS and not (word in ("een", "a", "one") and scores == [] and len(words) > 1):
            scores.append(_WORDS[word])
        elif word in _FILLER or word == "/":
            continue
        else:
            rest.append(word)
    # "8/10", "9 out of 10", "8 van de 10": the scale's top is not a second score
    if len(scores) == 2 and scores[1] in (5, 7, 10) and scores[1] == high and re.search(r"/|out of|van de|uit", plain.lower()):
        scores = scores[:1]
    if len(scores) != 1 or rest:
        return Reply(OTHER)
    value = scores[0]
    if any(len(w) > 2 for w in words if w.isdigit()):
        return Reply(OTHER)  # an order or customer number, not a score
    return Reply(SCORE, value) if low <= value <= high else Reply(OUT_OF_RANGE, value)


def read_comment(text: str) -> Reply:
    plain = _plain(text)
    if _SKIP.match(plain):
        return Reply(SKIP)
    if _STOP.match(plain):
        return Reply(STOP)
    return Reply(TEXT, text=plain[:2000])


_NAMED = re.compile(r"^\W*(ja|yes|yep|ok(e|ay)?|oké|prima|goed|sure|mag|dat mag|koppel(en)?( mag)?|link( them)?|"
                    r"met (mijn )?naam|with my name|named)\W*$", re.I)
_ANONYMOUS = re.compile(r"^\W*(nee|no|nope|anoniem|anonymous|liever anoniem|rather anonymous|niet koppelen|"
                        r"don'?t link( them)?|zonder naam|without my name)\W*$", re.I)


def read_choice(text: str) -> Reply:
    """"named" (value 0), "anonymous" (value 1), a stop, or something else."""
    plain = _plain(text)
    if _NAMED.match(plain):
        return Reply(SCORE, 0)
    if _ANONYMOUS.match(plain):
        return Reply(SCORE, 1)
    if _SKIP.match(plain) or _STOP.match(plain):
        return Reply(STOP)
    return Reply(OTHER)
