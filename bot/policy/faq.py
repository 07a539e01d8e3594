"""The questions customers ask around their case: config/faq.yml (FAQ_FILE overrides the path).

    faq.match("hoe lang duurt de bezorging?")      # -> Entry("delivery_time") or None
    faq.answer(entry, "en")                        # the English answer, {brand} etc. filled in
    faq.topics("nl")                               # what the file covers, for "what can I ask?"

The file is the business's to edit: it is read again when it changes, no retraining. A match line
is a set of words that must all appear in the message (a word may be the start of a longer one;
typos of one or two letters in words of five letters or more are tolerated, with rapidfuzz).
A message that names an order or a customer number is about the customer's own case, never an FAQ.

Used by the Rasa pipeline (bot/rasa_plugins/faq.py: the message becomes the intent `faq`) and by
the action server (actions/answers.py: the answer). Pure: no I/O except reading that file.
"""

from __future__ import annotations

import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path

from rapidfuzz import fuzz

from bot.shared.settings import PROJECT_ROOT

ENV_VAR = "FAQ_FILE"
DEFAULT_PATH = PROJECT_ROOT / "config" / "faq.yml"
LANGUAGES = ("nl", "en")
_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)?", re.UNICODE)
# a message about the customer's own order or account is looked up in the records, not answered here
_OWN_CASE = re.compile(r"(?<![\d+])[1-9]\d{5}(?!\d)|\b[kK]\s?-?\d{5}\b")
_TYPO_MIN_LENGTH = 5
_TYPO_SCORE = 80


class FaqError(ValueError):
    """config/faq.yml is wrong."""


@dataclass(frozen=True)
class Entry:
    id: str
    match: dict[str, tuple[tuple[str, ...], ...]]
    answer: dict[str, str]
    title: dict[str, str]


def _entry(raw: object, where: str) -> Entry:
    if not isinstance(raw, dict) or not isinstance(raw.get("id"), str):
        raise FaqError(f"{where}: an entry needs an `id`")
    match, answer = raw.get("match") or {}, raw.get("answer") or {}
    if not isinstance(match, dict) or not isinstance(answer, dict):
        raise FaqError(f"{where} ({raw['id']}): `match` and `answer` are maps by language")
    for lang in LANGUAGES:
        if not isinstance(answer.get(lang), str) or not answer[lang].strip():
            raise FaqError(f"{where} ({raw['id']}): answer.{lang} is missing")
        lines = match.get(lang) or []
        if not isinstance(lines, list) or not all(isinstance(line, str) and line.strip() for line in lines):
            raise FaqError(f"{where} ({raw['id']}): match.{lang} must be a list of phrases")
    title = raw.get("title") or {}
    return Entry(
        id=raw["id"],
        match={lang: tuple(tuple(_words(line)) for line in match.get(lang) or []) for lang in LANGUAGES},
        answer={lang: answer[lang].strip() for lang in LANGUAGES},
        title={lang: str(title.get(lang) or raw["id"].replace("_", " ")) for lang in LANGUAGES},
    )


def load(path: str | os.PathLike | None = None) -> tuple[Entry, ...]:
    import yaml

    path = Path(path or os.environ.get(ENV_VAR) or DEFAULT_PATH)
    if not path.exists():
        return ()
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    entries = data.get("entries") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise FaqError(f"{path}: expected `entries:` with a list")
    return tuple(_entry(raw, f"{path} entry {i + 1}") for i, raw in enumerate(entries))


_cache: dict[str, tuple[float, tuple[Entry, ...]]] = {}
_lock = threading.Lock()


def entries(path: str | os.PathLike | None = None) -> tuple[Entry, ...]:
    """The entries, read again when the file changed (the business edits it while the bot runs)."""
    path = Path(path or os.environ.get(ENV_VAR) or DEFAULT_PATH)
    try:
        mtime = path.stat().st_mtime
    except OSError:
        return ()
    key = str(path)
    with _lock:
        cached = _cache.get(key)
        if cached and cached[0] == mtime:
            return cached[1]
        loaded = load(path)
        _cache[key] = (mtime, loaded)
        return loaded


def _words(text: str) -> list[str]:
    return [w.lower() for w in _WORD.findall(text)]


def _has(word: str, tokens: list[str]) -> bool:
    for token in tokens:
        if token == word or (len(word) > 2 and token.startswith(word)):
            return True
        # a typo keeps about the length: "bezorgen" is no typo of "bezorgkosten"
        if (len(word) >= _TYPO_MIN_LENGTH and len(token) >= len(word) - 2
                and fuzz.ratio(word, token[: len(word) + 1]) >= _TYPO_SCORE):
            return True
    return False


def match(text: str, path: str | os.PathLike | None = None) -> Entry | None:
    """The entry whose most specific match line is all in `text`; None when none is."""
    if not isinstance(text, str) or text.lstrip().startswith("/") or _OWN_CASE.search(text):
        return None
    tokens = _words(text)
    if not tokens:
        return None
    best: tuple[float, Entry] | None = None
    for entry in entries(path):
        for lines in entry.match.values():
            for line in lines:
                score = _specificity(line)
                if line and (best is None or score > best[0]) and all(_has(w, tokens) for w in line):
                    best = (score, entry)
    return best[1] if best else None


def _specificity(line: tuple[str, ...]) -> float:
    """How specific a match line is: the letters of its content words (short words such as "do",
    "you", "hoe" count little), so "gift card" beats "do you sell"."""
    return sum(len(w) for w in line if len(w) > 3) + 0.1 * len(line)


def answer(entry: Entry, lang: str) -> str:
    from bot.policy.rules import policy

    rules = policy()
    text = entry.answer["en" if lang == "en" else "nl"]
    return text.replace("{brand}", rules.brand).replace("{return_days}", str(rules.return_days))


def by_id(entry_id: str, path: str | os.PathLike | None = None) -> Entry | None:
    return next((e for e in entries(path) if e.id == entry_id), None)


def topics(lang: str, path: str | os.PathLike | None = None) -> list[str]:
    return [e.title["en" if lang == "en" else "nl"] for e in entries(path)]
