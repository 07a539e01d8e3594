"""The action server's dependencies, built on first use (never at import time), once per process."""

from __future__ import annotations

from functools import lru_cache

from bot.shared.db import create_engine
from bot.policy.clock import Clock, from_env
from bot.policy.hours import ServiceLevels
from bot.policy.mandate import MandateTable
from bot.records.repository import Records


@lru_cache(maxsize=1)
def records() -> Records:
    return Records(create_engine())


@lru_cache(maxsize=1)
def clock() -> Clock:
    """The action server's clock: the system clock; fixed at $BOT_FIXED_NOW in tests (bot/policy/clock.py).
    Unit tests pass a clock to the action instead (ActionTopic(clock=FixedClock(...)))."""
    return from_env()


@lru_cache(maxsize=1)
def mandates() -> MandateTable:
    return MandateTable.load()


@lru_cache(maxsize=1)
def service_levels() -> ServiceLevels:
    return ServiceLevels.load()


@lru_cache(maxsize=1)
def handoff_config():
    from bot.people import HandoffConfig

    return HandoffConfig.load(mandates=mandates(), levels=service_levels())


@lru_cache(maxsize=1)
def identity_policy():
    from bot.policy.identity import IdentityPolicy

    return IdentityPolicy.load()
