"""Fixed moments for tests that fix the clock (bot/policy/clock.py), and the words the customer
reads for a day.

The moments lie a few days after the real date, so that the demo data (dated relative to the day
it is loaded) still makes sense, and in the future, so that nothing stamped with the real time
(desk presence, a record's creation) looks later than "now":

    monday = business_monday()          # 10:00 local on a Monday, Monday and Tuesday business days
    friday = evening_before(monday)     # the Friday before it, 20:00 local: closed until Monday 09:00
    day_words(monday, "nl")             # "maandag 7 december"

Each test then asserts the one text that follows from its moment.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from bot.policy.clock import Clock, local_zone
from bot.policy.hours import ServiceLevels

# written out here, not taken from the code under test
WEEKDAYS = {"nl": ("maandag", "dinsdag", "woensdag", "donderdag", "vrijdag", "zaterdag", "zondag"),
            "en": ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")}
MONTHS = {"nl": ("januari", "februari", "maart", "april", "mei", "juni", "juli", "augustus", "september",
                 "oktober", "november", "december"),
          "en": ("January", "February", "March", "April", "May", "June", "July", "August", "September",
                 "October", "November", "December")}


def local(day: date, hour: int, minute: int = 0) -> datetime:
    """`hour:minute` on `day`, wall-clock time in the configured zone, aware."""
    return datetime.combine(day, time(hour, minute), local_zone())


def business_monday(hour: int = 10, minute: int = 0, *, at_least_days: int = 4) -> datetime:
    """`hour:minute` on the first Monday at least `at_least_days` after today (in the configured
    zone) on which the service is open all of Monday and Tuesday (no public holiday), so that the
    Friday before it (`evening_before`) lies in the future too."""
    levels = ServiceLevels.load()
    day = Clock().today() + timedelta(days=at_least_days)
    day += timedelta(days=(7 - day.weekday()) % 7)
    while not all(levels.opening(d) for d in (day, day + timedelta(days=1))):
        day += timedelta(days=7)
    return local(day, hour, minute)


def evening_before(monday: datetime, hour: int = 20) -> datetime:
    """The Friday before `monday`, at `hour` local (after closing time)."""
    friday = monday.astimezone(local_zone()).date() - timedelta(days=3)
    assert friday.weekday() == 4, friday
    return local(friday, hour)


def day_words(moment: datetime, language: str) -> str:
    """The day as a customer reads it when it is not today or tomorrow: 'maandag 7 december'."""
    day = moment.astimezone(local_zone())
    return f"{WEEKDAYS[language][day.weekday()]} {day.day} {MONTHS[language][day.month - 1]}"
