"""Checks for input from outside before it reaches Redis, the database, Rasa or a log.

Fuzzing found what breaks further in: a lone UTF-16 surrogate ("\\ud800", which JSON may carry)
has no UTF-8 form, so Redis, SQLite, PostgreSQL and Rasa's JSON all fail on it; PostgreSQL
refuses NUL in text; control characters in an id end up in keys and log lines; JSON nested
thousands deep makes the parser or the code walking it recurse too deep.
"""

from __future__ import annotations

import re
from typing import Any

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def encodable(value: str) -> bool:
    """True when `value` has a UTF-8 form (no lone surrogates)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def clean_token(value: Any, max_chars: int = 256) -> bool:
    """A non-empty string of at most `max_chars` characters, UTF-8 encodable, without control
    characters: fit for a Redis key, a database column and a log line."""
    return (isinstance(value, str) and 0 < len(value) <= max_chars and encodable(value)
            and not _CONTROL.search(value))


def nesting_within(data: Any, limit: int) -> bool:
    """True when the lists and dicts in `data` are nested at most `limit` deep (iterative: a
    deeply nested value cannot make this recurse)."""
    stack = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            children = value.values()
        elif isinstance(value, list):
            children = value
        else:
            continue
        if depth > limit:
            return False
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return True
