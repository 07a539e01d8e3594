"""Opening hours from the configuration (issue 12): the week grouped, whether people are there now
(holidays included) and a queue with hours of its own, in Dutch and English, at fixed moments."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.dialogue import ActionOpeningHours
from bot.policy.clock import FixedClock
from bot.policy.hours import ServiceLevels, at, now_text, week_text

TZ = ZoneInfo("Europe/Amsterdam")
MONDAY_10 = datetime(2026, 12, 7, 10, 0, tzinfo=TZ)
FRIDAY_20 = datetime(2026, 12, 4, 20, 0, tzinfo=TZ)
CHRISTMAS = datetime(2026, 12, 25, 10, 0, tzinfo=TZ)   # a Friday, a public holiday
WEEK = {"monday": ["09:00", "17:00"], "tuesday": ["09:00", "17:00"], "wednesday": ["09:00", "17:00"],
        "thursday": ["09:00", "17:00"], "friday": ["09:00", "17:00"]}


def levels(hours: dict) -> ServiceLevels:
    return ServiceLevels.from_dict({"timezone": "Europe/Amsterdam", "holidays": "NL", "business_hours": hours,
                                    "response_hours": {}})


@pytest.mark.parametrize("hours,nl,en", [
    (WEEK, "maandag t/m vrijdag 9:00–17:00", "Monday to Friday 9:00–17:00"),
    ({**WEEK, "saturday": ["10:00", "14:00"]}, "maandag t/m vrijdag 9:00–17:00 en zaterdag 10:00–14:00",
     "Monday to Friday 9:00–17:00 and Saturday 10:00–14:00"),
    ({"monday": ["09:00", "17:00"], "tuesday": ["09:00", "17:00"], "thursday": ["08:30", "12:00"]},
     "maandag en dinsdag 9:00–17:00 en donderdag 8:30–12:00", "Monday and Tuesday 9:00–17:00 and Thursday 8:30–12:00"),
])
def test_the_week_is_told_grouped(hours, nl, en):
    assert (week_text(levels(hours), "nl"), week_text(levels(hours), "en")) == (nl, en)


@pytest.mark.parametrize("moment,nl,en", [
    (MONDAY_10, "Nu zijn ze er, tot 17:00.", "They're there now, until 17:00."),
    (FRIDAY_20, "Nu zijn ze er niet; ze zijn er weer maandag 7 december om 9:00.",
     "They're not there now; they're back Monday 7 December at 9:00."),
    (CHRISTMAS, "Nu zijn ze er niet (het is een feestdag); ze zijn er weer maandag 28 december om 9:00.",
     "They're not there now (it is a public holiday); they're back Monday 28 December at 9:00."),
    (datetime(2026, 12, 7, 7, 30, tzinfo=TZ), "Nu zijn ze er niet; ze zijn er weer vandaag om 9:00.",
     "They're not there now; they're back today at 9:00."),
])
def test_whether_people_are_there_now(moment, nl, en):
    week = levels(WEEK)
    assert (now_text(week, "nl", moment), now_text(week, "en", moment)) == (nl, en)


def test_at_names_the_day():
    assert at(datetime(2026, 12, 8, 9, 0, tzinfo=TZ), "nl", MONDAY_10, TZ) == "morgen om 9:00"
    assert at(datetime(2026, 12, 8, 9, 0, tzinfo=TZ), "en", MONDAY_10, TZ) == "tomorrow at 9:00"


@pytest.mark.parametrize("lang,text", [
    ("nl", "Ik ben er altijd. Onze collega's zijn er maandag t/m vrijdag 9:00–17:00, niet op feestdagen. "
           "Nu zijn ze er niet; ze zijn er weer maandag 7 december om 9:00. "
           "Klachten: maandag t/m vrijdag 9:00–17:00 en zaterdag 10:00–14:00."),
    ("en", "I'm always here. Our colleagues are available Monday to Friday 9:00–17:00, except on public holidays. "
           "They're not there now; they're back Monday 7 December at 9:00. "
           "Complaints: Monday to Friday 9:00–17:00 and Saturday 10:00–14:00."),
])
async def test_the_opening_hours_answer_comes_from_the_configuration(lang, text):
    """config/service_levels.yml (Monday-Friday 9-17, NL holidays) and config/handoff.yml (the
    complaints queue also on Saturday morning), on a Friday evening."""
    dispatcher = CollectingDispatcher()
    tracker = Tracker("c-hours", {"language": lang}, {}, [], False, None, {}, "action_listen")
    await ActionOpeningHours(clock=FixedClock(FRIDAY_20)).run(dispatcher, tracker, {})
    assert [m["text"] for m in dispatcher.messages] == [text]
