"""The one place that decides what a promise is: open, kept, renewed or broken.

    open     told to the customer, the deadline not reached, no answer yet
    kept     the answer came in time (a person claimed the wait, replied, closed the ticket,
             marked the callback done)
    renewed  the customer was told a new time, with the reason, before the deadline passed;
             the new time is a promise of its own (`renewed_from` points back)
    broken   the deadline passed without either (or the answer came late)

Every change of state goes through the functions below (the records apply what they return with
a conditional UPDATE ... WHERE status = 'open', so two processes never settle one promise twice).
`renewing` is the short-lived claim of the process that is telling the customer the new time; it
counts as open everywhere else.

Timing: the desk is warned `lead` before the deadline (a share of the promise's window, at least
a minimum) and the customer is told the new time `renew_before` the deadline.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

OPEN, KEPT, RENEWED, BROKEN = "open", "kept", "renewed", "broken"
RENEWING = "renewing"  # internal: a process is telling the customer the new time
STATES = (OPEN, KEPT, RENEWED, BROKEN)
UNSETTLED = (OPEN, RENEWING)

CONFIG = Path(__file__).resolve().parents[2] / "config" / "promises.yml"
CONFIG_ENV = "PROMISES_FILE"


@dataclass(frozen=True)
class Outcome:
    status: str
    settled_at: datetime
    reason: str | None = None
    answered_at: datetime | None = None


def answered(deadline: datetime, at: datetime) -> Outcome:
    """The answer came at `at`: kept when in time, broken when late."""
    if at <= deadline:
        return Outcome(KEPT, at, None, at)
    late = int((at - deadline).total_seconds() // 60)
    return Outcome(BROKEN, at, f"answered {late} min late", at)


def renewed(deadline: datetime, at: datetime, reason: str) -> Outcome:
    """The customer was told a new time at `at`: renewed before the deadline; after it the
    promise was already broken (the new time is still a promise of its own)."""
    if at < deadline:
        return Outcome(RENEWED, at, reason)
    return Outcome(BROKEN, deadline, f"new time told only after the deadline ({reason})")


def expired(deadline: datetime, at: datetime, reason: str = "deadline passed without an answer") -> Outcome | None:
    """Nobody answered and nobody told the customer anything: broken once the deadline passed."""
    return Outcome(BROKEN, deadline, reason) if at >= deadline else None


@dataclass(frozen=True)
class KindRules:
    renew: bool = True
    renew_hours: float = 4.0


@dataclass(frozen=True)
class PromiseConfig:
    every_seconds: float = 30.0
    lead_fraction: float = 0.2
    min_lead: timedelta = timedelta(minutes=10)
    renew_before: timedelta = timedelta(minutes=5)
    wait_renew_before: timedelta = timedelta(seconds=10)
    retry_seconds: float = 60.0
    default: KindRules = KindRules()
    kinds: dict[str, KindRules] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> "PromiseConfig":
        watch = raw.get("watch") or {}
        default_raw = raw.get("default") or {}
        default = KindRules(bool(default_raw.get("renew", True)), float(default_raw.get("renew_hours", 4)))
        kinds = {
            name: KindRules(bool((rules or {}).get("renew", default.renew)),
                            float((rules or {}).get("renew_hours", default.renew_hours)))
            for name, rules in (raw.get("kinds") or {}).items()
        }
        config = cls(
            every_seconds=float(watch.get("every_seconds", 30)),
            lead_fraction=float(watch.get("lead_fraction", 0.2)),
            min_lead=timedelta(minutes=float(watch.get("min_lead_minutes", 10))),
            renew_before=timedelta(minutes=float(watch.get("renew_before_minutes", 5))),
            wait_renew_before=timedelta(seconds=float(watch.get("wait_renew_before_seconds", 10))),
            retry_seconds=float(watch.get("retry_seconds", 60)),
            default=default, kinds=kinds,
        )
        if not 0 <= config.lead_fraction < 1 or config.every_seconds <= 0:
            raise ValueError("promises: lead_fraction must be in [0, 1) and every_seconds positive")
        return config

    @classmethod
    def load(cls, path: str | Path | None = None) -> "PromiseConfig":
        path = Path(path or os.environ.get(CONFIG_ENV) or CONFIG)
        return cls.from_dict(yaml.safe_load(path.read_text(encoding="utf-8")) or {})

    def rules(self, kind: str) -> KindRules:
        return self.kinds.get(kind, self.default)

    def warn_at(self, created: datetime, deadline: datetime) -> datetime:
        """When the desk is warned: `lead_fraction` of the window before the deadline, at least
        `min_lead` (for a short wait that is at once)."""
        lead = max((deadline - created) * self.lead_fraction, self.min_lead)
        return max(created, deadline - lead)

    def renew_at(self, created: datetime, deadline: datetime, kind: str = "") -> datetime:
        """When the customer is told the new time at the latest: `renew_before` the deadline, for a
        short window `lead_fraction` of it but at least a minute (a 5-minute callback window: after 4
        minutes). The wait for a person (`handoff_wait`): `wait_renew_before` the deadline, since
        a colleague often comes in the last minute; the watch renews it earlier when the live queue
        says it cannot be kept (bot/promises/watch.py). With this, scripts/simulate_promises.py
        measures 90% of the waits kept outright under normal load, none broken (docs/promises.md)."""
        if kind == "handoff_wait":
            return max(created, deadline - self.wait_renew_before)
        lead = min(self.renew_before, max(timedelta(minutes=1), (deadline - created) * self.lead_fraction))
        return max(created, deadline - lead)


# an agent's promise in two clicks ("promise a time", then one of these), within the queue's hours
PRESETS = ("1h", "today", "tomorrow")


def preset_deadline(preset: str, levels: Any, now: datetime) -> datetime:
    """"1h": one business hour from now (on the quarter); "today": closing time today (when
    open; else like "tomorrow"); "tomorrow": three business hours into the next working day
    (opening 09:00: before 12:00)."""
    from bot.people.estimate import ceil_quarter

    if preset == "1h":
        return ceil_quarter(levels.add_business_hours(now, 1))
    today = levels.opening(now.astimezone(levels.tz).date())
    if preset == "today" and levels.is_open(now):
        return today[1]
    start = today[1] if levels.is_open(now) else now  # the next opening after today's
    return ceil_quarter(levels.add_business_hours(levels.next_opening(start), 3))


@lru_cache(maxsize=1)
def config() -> PromiseConfig:
    return PromiseConfig.load()
