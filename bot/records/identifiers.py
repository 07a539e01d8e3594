"""What identifies one customer (for finding their data and proving it is gone), and a matcher
that finds those identifiers in any text. Used by the erasure and export of the records
(bot/records/personal.py) and of Redis (bot/records/personal_redis.py)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Iterable

ERASED = "[erased]"


@dataclass
class Identifiers:
    """Everything that identifies one customer, for finding their data and proving it is gone."""

    customer_id: int
    values: set[str] = field(default_factory=set)       # customer number, email, phone, order numbers, ...
    weak: set[str] = field(default_factory=set)         # name, first name, postcode: others may share them
    conversations: set[str] = field(default_factory=set)
    addresses: set[str] = field(default_factory=set)     # what the customer writes from: phone, Telegram id,
                                                         # web chat session ids (matched exactly)

    def add(self, *values: Any, weak: bool = False) -> None:
        for value in values:
            if value is None:
                continue
            text = str(value).strip()
            if len(text) >= 3:
                (self.weak if weak else self.values).add(text)

    def add_phone(self, phone: str | None) -> None:
        if not phone:
            return
        self.add(phone, phone.lstrip("+"))
        if phone.startswith("+31") and len(phone) > 5:
            self.add("0" + phone[3:])

    def add_postcode(self, postcode: str | None) -> None:
        if not postcode:
            return
        compact = postcode.replace(" ", "")
        self.add(postcode, compact, weak=True)
        if len(compact) == 6:
            self.add(f"{compact[:4]} {compact[4:]}", weak=True)

    def matcher(self) -> "Matcher":
        """Every identifier: for scrubbing and for proving nothing is left."""
        return Matcher(self.values | self.weak | self.conversations)

    def strong_matcher(self) -> "Matcher":
        """Identifiers only this customer has: enough to take an anonymous conversation for theirs."""
        return Matcher(self.values | self.conversations)


class Matcher:
    """Finds any of the identifiers in a text, case-insensitively, not inside a longer word or
    number (so order 104233 does not match in the timestamp 1764104233.5)."""

    def __init__(self, values: Iterable[str]) -> None:
        ordered = sorted({v for v in values if v}, key=len, reverse=True)
        self.values = ordered
        self._re = re.compile(
            "(?<![0-9A-Za-z])(?:" + "|".join(re.escape(v) for v in ordered) + ")(?![0-9A-Za-z])",
            re.IGNORECASE,
        ) if ordered else None

    def search(self, text: Any) -> bool:
        return bool(self._re and text is not None and self._re.search(str(text)))

    def scrub(self, value: Any) -> Any:
        """The value with every identifier replaced by [erased] (JSON structures too)."""
        if self._re is None:
            return value
        if isinstance(value, str):
            return self._re.sub(ERASED, value)
        if isinstance(value, dict):
            return {self.scrub(k): self.scrub(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.scrub(v) for v in value]
        return value
