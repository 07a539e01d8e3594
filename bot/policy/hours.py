"""Business hours, Dutch public holidays and honest deadlines ("morgen voor 10:00").

Configured in config/service_levels.yml (SERVICE_LEVELS_FILE overrides the path).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo

import holidays as holiday_calendars
import yaml

from bot.shared.settings import PROJECT_ROOT

DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
DAY_NAMES = {
    "nl": ("maandag", "dinsdag", "woensdag", "donderdag", "vrijdag", "zaterdag", "zondag"),
    "en": ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"),
}
MONTHS = {
    "nl": ("januari", "februari", "maart", "april", "mei", "juni", "juli", "augustus",
           "september", "oktober", "november", "december"),
    "en": ("January", "February", "March", "April", "May", "June", "July", "August",
           "September", "October", "November", "December"),
}


DEFAULT_TIMEZONE = "Europe/Amsterdam"  # when service_levels.yml names none; the one zone: bot/policy/clock.py


class ServiceLevelError(ValueError):
    pass


def _clock(value: str, where: str) -> time:
    try:
        hours, minutes = str(value).split(":")
        return time(int(hours), int(minutes))
    except (ValueError, TypeError) as exc:
        raise ServiceLevelError(f"{where}: expected HH:MM, got {value!r}") from exc


def read_yaml(path: Path, error: type[Exception]) -> dict:
    """A configuration file's YAML mapping ({} when empty); `error` when unreadable or not YAML."""
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise error(f"cannot read {path}: {exc}") from exc


@dataclass(frozen=True)
class ServiceLevels:
    tz: ZoneInfo
    country: str
    hours: dict[int, tuple[time, time]]  # weekday -> (open, close)
    response_hours: dict[str, float]

    @classmethod
    def from_dict(cls, data: dict) -> "ServiceLevels":
        try:
            tz = ZoneInfo(data.get("timezone", DEFAULT_TIMEZONE))
        except Exception as exc:  # ZoneInfoNotFoundError and invalid keys
            raise ServiceLevelError(f"timezone: unknown time zone {data.get('timezone')!r}") from exc
        hours: dict[int, tuple[time, time]] = {}
        for name, span in (data.get("business_hours") or {}).items():
            if name not in DAYS:
                raise ServiceLevelError(f"business_hours: unknown day {name!r}")
            if span is None:
                continue
            if not isinstance(span, list) or len(span) != 2:
                raise ServiceLevelError(f"business_hours.{name}: expected [open, close]")
            opens, closes = _clock(span[0], f"business_hours.{name}"), _clock(span[1], f"business_hours.{name}")
            if closes <= opens:
                raise ServiceLevelError(f"business_hours.{name}: closes before it opens")
            hours[DAYS.index(name)] = (opens, closes)
        if not hours:
            raise ServiceLevelError("business_hours: at least one open day is needed")
        response = {}
        for kind, value in (data.get("response_hours") or {}).items():
            if not isinstance(value, (int, float)) or value <= 0:
                raise ServiceLevelError(f"response_hours.{kind}: expected a positive number of hours")
            response[kind] = float(value)
        return cls(tz, str(data.get("holidays", "NL")), hours, response)

    @classmethod
    def load(cls, path: str | Path | None = None) -> "ServiceLevels":
        path = Path(path or os.environ.get("SERVICE_LEVELS_FILE") or PROJECT_ROOT / "config" / "service_levels.yml")
        data = read_yaml(path, ServiceLevelError)
        try:
            return cls.from_dict(data)
        except ServiceLevelError as exc:
            raise ServiceLevelError(f"{exc} (in {path})") from exc

    # -- calendar ------------------------------------------------------------------------------
    def is_holiday(self, day: date) -> bool:
        return day in _calendar(self.country, day.year)

    def opening(self, day: date) -> tuple[datetime, datetime] | None:
        span = self.hours.get(day.weekday())
        if span is None or self.is_holiday(day):
            return None
        return (datetime.combine(day, span[0], self.tz), datetime.combine(day, span[1], self.tz))

    def is_open(self, moment: datetime) -> bool:
        local = moment.astimezone(self.tz)
        span = self.opening(local.date())
        return span is not None and span[0] <= local < span[1]

    def next_opening(self, moment: datetime) -> datetime:
        local = moment.astimezone(self.tz)
        for offset in range(0, 30):
            span = self.opening(local.date() + timedelta(days=offset))
            if span and local < span[1]:
                return max(span[0], local)
        raise ServiceLevelError("no business hours in the next 30 days")

    def add_business_hours(self, start: datetime, hours: float) -> datetime:
        """The moment `hours` of business time after `start`."""
        remaining = timedelta(hours=hours)
        cursor = start.astimezone(self.tz)
        for _ in range(400):
            cursor = self.next_opening(cursor)
            close = self.opening(cursor.date())[1]
            available = close - cursor
            if remaining <= available:
                return cursor + remaining
            remaining -= available
            cursor = close
        raise ServiceLevelError("deadline too far away")

    def deadline(self, kind: str, start: datetime) -> datetime:
        return self.add_business_hours(start, self.response_hours.get(kind, 8.0))


@lru_cache(maxsize=16)
def _calendar(country: str, year: int):
    return holiday_calendars.country_holidays(country, years=[year - 1, year, year + 1])


def describe(moment: datetime, language: str, now: datetime, tz: ZoneInfo) -> str:
    """'vandaag voor 15:30', 'morgen voor 10:00', 'maandag 30 november voor 10:00'."""
    local, today = moment.astimezone(tz), now.astimezone(tz).date()
    clock = local.strftime("%H:%M")
    before = "voor" if language == "nl" else "before"
    if local.date() == today:
        day = "vandaag" if language == "nl" else "today"
    elif local.date() == today + timedelta(days=1):
        day = "morgen" if language == "nl" else "tomorrow"
    else:
        lang = language if language in DAY_NAMES else "nl"
        weekday = DAY_NAMES[lang][local.weekday()]
        month = MONTHS[lang][local.month - 1]
        day = f"{weekday} {local.day} {month}"
    return f"{day} {before} {clock}"


def _day_words(moment: datetime, language: str, now: datetime, tz: ZoneInfo) -> str:
    local, today = moment.astimezone(tz), now.astimezone(tz).date()
    lang = language if language in DAY_NAMES else "nl"
    if local.date() == today:
        return "vandaag" if lang == "nl" else "today"
    if local.date() == today + timedelta(days=1):
        return "morgen" if lang == "nl" else "tomorrow"
    return f"{DAY_NAMES[lang][local.weekday()]} {local.day} {MONTHS[lang][local.month - 1]}"


def at(moment: datetime, language: str, now: datetime, tz: ZoneInfo) -> str:
    """'vandaag om 9:00', 'morgen om 9:00', 'maandag 7 december om 9:00' (at, not before)."""
    local = moment.astimezone(tz)
    word = "om" if language == "nl" else "at"
    return f"{_day_words(moment, language, now, tz)} {word} {local.hour}:{local.minute:02d}"


def _span(span: tuple[time, time]) -> str:
    return f"{span[0].hour}:{span[0].minute:02d}–{span[1].hour}:{span[1].minute:02d}"


def week_text(levels: ServiceLevels, language: str) -> str:
    """The opening hours of a week, grouped: 'maandag t/m vrijdag 9:00–17:00 en zaterdag 10:00–14:00'."""
    lang = language if language in DAY_NAMES else "nl"
    names = DAY_NAMES[lang]
    through, joiner = (" t/m ", " en ") if lang == "nl" else (" to ", " and ")
    groups: list[tuple[int, int, tuple[time, time]]] = []
    for day in range(7):
        span = levels.hours.get(day)
        if span is None:
            continue
        if groups and groups[-1][1] == day - 1 and groups[-1][2] == span:
            groups[-1] = (groups[-1][0], day, span)
        else:
            groups.append((day, day, span))
    parts = []
    for first, last, span in groups:
        days = names[first] if first == last else (
            f"{names[first]}{joiner}{names[last]}" if last == first + 1 else f"{names[first]}{through}{names[last]}")
        parts.append(f"{days} {_span(span)}")
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + joiner + parts[-1]


def now_text(levels: ServiceLevels, language: str, now: datetime) -> str:
    """Whether people are there now: 'nu wel, tot 17:00' / 'nu niet (feestdag); weer maandag 7 december om 9:00'."""
    lang = language if language in DAY_NAMES else "nl"
    local = now.astimezone(levels.tz)
    if levels.is_open(now):
        close = levels.opening(local.date())[1]
        until = f"{close.hour}:{close.minute:02d}"
        return f"Nu zijn ze er, tot {until}." if lang == "nl" else f"They're there now, until {until}."
    holiday = levels.is_holiday(local.date()) and levels.hours.get(local.weekday()) is not None
    back = at(levels.next_opening(now), lang, now, levels.tz)
    if lang == "nl":
        return f"Nu zijn ze er niet{' (het is een feestdag)' if holiday else ''}; ze zijn er weer {back}."
    return f"They're not there now{' (it is a public holiday)' if holiday else ''}; they're back {back}."
