"""The one clock and the one time zone.

Every rule that depends on the time (order ages, "today", deadlines, "vandaag voor 15:30") asks a
`Clock` instead of the wall clock, so a test can fix the time. There is one time zone: the one of
the service levels (config/service_levels.yml `timezone`, or $SERVICE_LEVELS_FILE's).

    clock = Clock()                          # the system clock
    clock.now()                              # aware, UTC
    clock.today()                            # the calendar date in the configured zone
    clock.date_of(order.delivered_at)        # a stored time (UTC; naive means UTC) as a local date
    FixedClock(at(2026, 3, 2, 10, 0))        # tests: Monday 2 March 2026, 10:00 local time

`from_env()` builds the clock of a process: the system clock, or, only when $BOT_FIXED_NOW is set
(an ISO 8601 moment with its offset, e.g. "2026-03-02T10:00:00+01:00"), a clock fixed at that
moment. BOT_FIXED_NOW is for tests that start a whole process (the action server, the gateway);
never set it in production. Nothing else reads it.
"""

from __future__ import annotations

import os
from datetime import date, datetime, timedelta, timezone, tzinfo
from functools import lru_cache

FIXED_NOW_ENV = "BOT_FIXED_NOW"


@lru_cache(maxsize=1)
def local_zone() -> tzinfo:
    """The time zone of config/service_levels.yml (read once per process)."""
    from bot.policy.hours import ServiceLevels

    return ServiceLevels.load().tz


class Clock:
    """The system clock. `tz`: the zone for `today`/`local` (default: the configured one)."""

    def __init__(self, tz: tzinfo | None = None) -> None:
        self._tz = tz

    @property
    def tz(self) -> tzinfo:
        return self._tz or local_zone()

    def now(self) -> datetime:
        """This moment, timezone-aware, in UTC."""
        return datetime.now(timezone.utc)

    def local(self, moment: datetime | None = None) -> datetime:
        """`moment` (default: now) in the configured zone; a naive moment counts as UTC."""
        moment = self.now() if moment is None else moment
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=timezone.utc)
        return moment.astimezone(self.tz)

    def today(self) -> date:
        """Today's calendar date in the configured zone."""
        return self.local().date()

    def date_of(self, value: datetime | date | None) -> date | None:
        """A stored time (UTC; SQLite hands it back naive) as a calendar date in the zone; a date as is."""
        if value is None:
            return None
        if not isinstance(value, datetime):
            return value
        return self.local(value).date()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.tz})"


class FixedClock(Clock):
    """A clock that stands still at `moment` (aware) until `advance` moves it: for tests."""

    def __init__(self, moment: datetime, tz: tzinfo | None = None) -> None:
        super().__init__(tz)
        self.set(moment)

    def now(self) -> datetime:
        return self._moment

    def set(self, moment: datetime) -> "FixedClock":
        """Put the clock at another (aware) moment."""
        if moment.tzinfo is None:
            raise ValueError(f"a fixed clock needs an aware moment (with its offset), got {moment!r}")
        self._moment = moment.astimezone(timezone.utc)
        return self

    def advance(self, **delta: float) -> "FixedClock":
        """Move the clock on: clock.advance(hours=2)."""
        self._moment += timedelta(**delta)
        return self

    def __repr__(self) -> str:
        return f"FixedClock({self._moment.isoformat()}, {self.tz})"


def at(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    """A wall-clock moment in the configured zone (for tests and examples), aware."""
    return datetime(year, month, day, hour, minute, tzinfo=local_zone())


def from_env() -> Clock:
    """The clock of a process: fixed at $BOT_FIXED_NOW when set (tests only), else the system clock."""
    fixed = os.environ.get(FIXED_NOW_ENV, "").strip()
    if not fixed:
        return Clock()
    try:
        moment = datetime.fromisoformat(fixed)
    except ValueError:
        raise ValueError(f"{FIXED_NOW_ENV} must be an ISO 8601 moment like 2026-03-02T10:00:00+01:00, "
                         f"got {fixed!r}") from None
    if moment.tzinfo is None:
        raise ValueError(f"{FIXED_NOW_ENV} needs an offset (like +01:00 or Z), got {fixed!r}")
    return FixedClock(moment)


SYSTEM = Clock()  # the default wherever no clock is passed in
