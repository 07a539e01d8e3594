"""How a message sounds: angry or urgent, from a small Dutch and English lexicon, '!!!' and
shouting in capitals. The gateway checks it before Rasa (config/handoff.yml triggers.angry and
triggers.urgent decide whether that hands the conversation to a person).

(The module is `moods`, not `mood`: bot.people exports the function `mood`, which would hide a
submodule of the same name.)"""

from __future__ import annotations

import re

ANGRY = re.compile(
    r"\b(belachelijk\w*|schandalig\w*|schande|waardeloo\w+|woedend|kwaad|boos|klote|verdomme|godverdomme|"
    r"oplichter\w*|oplichting|bedrogen|onacceptabel|te gek voor woorden|ridiculous|outrageous|disgrac\w+|"
    r"furious|angry|useless|scam\w*|rubbish|unacceptable|pathetic|fed up|sick of)\b",
    re.IGNORECASE,
)
URGENT = re.compile(r"\b(dringend|spoed\w*|urgent\w*|asap|zo snel mogelijk|noodgeval|emergency|right now|nu meteen)\b",
                    re.IGNORECASE)


def mood(text: str) -> str | None:
    """'angry', 'urgent' or None, from words, '!!!' and shouting in capitals."""
    letters = [ch for ch in text if ch.isalpha()]
    shouting = len(letters) >= 12 and sum(ch.isupper() for ch in letters) / len(letters) >= 0.7
    if ANGRY.search(text) or "!!!" in text or shouting:
        return "angry"
    if URGENT.search(text):
        return "urgent"
    return None
