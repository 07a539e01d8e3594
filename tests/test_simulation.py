"""The promise simulation (scripts/simulate_promises.py) itself: the days it runs on, how long it
runs, and the alternative estimator it measures, at exact values."""

from __future__ import annotations

import dataclasses
import importlib.util
import random
import sys
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot.people import HandoffConfig, QueueView
from bot.people.estimate import wait_estimate
from bot.promises.state import PromiseConfig

AMS = ZoneInfo("Europe/Amsterdam")
MONDAY_10 = datetime(2026, 11, 23, 10, 0, tzinfo=AMS)


@pytest.fixture(scope="module")
def sim():
    path = Path(__file__).resolve().parent.parent / "scripts" / "simulate_promises.py"
    spec = importlib.util.spec_from_file_location("simulate_promises", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["simulate_promises"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop("simulate_promises", None)


def test_the_days_are_working_days_from_monday_2_november_at_nine(sim):
    config = HandoffConfig.load()
    days = sim.Days(config.queues["general"].levels, 60, 2000)
    assert days[0] == datetime(2026, 11, 2, 9, 0, tzinfo=AMS)
    assert days[4] == datetime(2026, 11, 6, 9, 0, tzinfo=AMS)    # Friday
    assert days[5] == datetime(2026, 11, 9, 9, 0, tzinfo=AMS)    # then Monday: no weekend
    christmas_week = [d.date().isoformat() for d in (days[i] for i in range(35, 40))]
    assert christmas_week == ["2026-12-21", "2026-12-22", "2026-12-23", "2026-12-24", "2026-12-28"]  # no holidays


def test_a_quiet_queue_runs_more_days_until_enough_were_promised(sim):
    config, promises = HandoffConfig.load(), PromiseConfig.load()
    quiet = sim.SCENARIOS[0]
    days = sim.Days(config.queues["general"].levels, 1, 40)
    result = sim.run(quiet, random.Random(7), config, promises, days)
    assert result["promised"] >= 40 and result["days"] > 1
    one_day_less = sim.run(quiet, random.Random(7), config, promises,
                           sim.Days(config.queues["general"].levels, result["days"] - 1, 0))
    assert one_day_less["days"] == result["days"] - 1
    assert one_day_less["promised"] < 40 <= result["promised"]


def test_the_capped_estimator_promises_at_most_its_multiple_of_the_median_future(sim):
    """One colleague 6 minutes into a conversation; measured times 1..20 minutes: what is left is 1..14
    minutes, the median future 8. The 95% future is 14 minutes; capped at 1.7x the median (13.6)
    the promise is 13."""
    config = dataclasses.replace(HandoffConfig.load(), quantile=0.95)
    view = QueueView("general", position=1, agents=1, free=0, handling_minutes=7, busy_minutes=(6.0,),
                     handled=tuple(float(h) for h in range(1, 21)))
    levels = config.queues["general"].levels
    assert wait_estimate(view, levels, config, MONDAY_10).minutes == 14
    assert sim.capped(1.7)(view, levels, config, MONDAY_10).minutes == 13
    assert sim.capped(3.0)(view, levels, config, MONDAY_10).minutes == 14  # a cap above the 95% future: no change
