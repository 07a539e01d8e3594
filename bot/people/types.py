"""What every part of bot/people shares: the agent acting in the desk, the error a desk action
raises, the reasons and states of a handoff, and the clock."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from typing import Any, Callable, Protocol, Union

STATES = ("bot", "waiting", "with_agent", "closed")
REASONS = ("asked", "mandate", "misunderstood", "complaint", "cancellation", "angry", "urgent", "transfer")


class HandoffError(Exception):
    """A desk action that does not fit the conversation's state."""

    def __init__(self, code: str, detail: str = "") -> None:
        super().__init__(f"{code}: {detail}" if detail else code)
        self.code = code
        self.detail = detail


@dataclass(frozen=True)
class AgentInfo:
    username: str
    name: str
    role: str
    skills: tuple[str, ...] = ()
    languages: tuple[str, ...] = ("nl",)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "AgentInfo":
        return cls(str(data["username"]), str(data.get("name") or data["username"]), str(data["role"]),
                   tuple(data.get("skills") or ()), tuple(data.get("languages") or ()))

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["skills"], data["languages"] = list(self.skills), list(self.languages)
        return data


# -- the clock ---------------------------------------------------------------------------------
# Anything with `now()` returning an aware datetime (bot/policy/clock.py's Clock), or a plain
# callable returning one. Handoffs reads the time only through it, so tests fix the time.

class Clock(Protocol):
    def now(self) -> datetime: ...


ClockLike = Union[Clock, Callable[[], datetime]]


class SystemClock:
    """The real time, in UTC."""

    def now(self) -> datetime:
        return datetime.now(timezone.utc)


class _CallableClock:
    def __init__(self, func: Callable[[], datetime]) -> None:
        self._func = func

    def now(self) -> datetime:
        return self._func()


def as_clock(clock: ClockLike | None) -> Clock:
    """A clock from what the caller passed: None is the system clock."""
    if clock is None:
        from bot.policy.clock import Clock as SystemWide  # the one system clock

        return SystemWide()
    if hasattr(clock, "now"):
        return clock  # type: ignore[return-value]
    if callable(clock):
        return _CallableClock(clock)
    raise TypeError(f"a clock needs now() or to be callable, not {type(clock).__name__}")


def utc_now(clock: Clock) -> datetime:
    """The clock's time as an aware UTC datetime (a naive one is refused: its zone is a guess)."""
    moment = clock.now()
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("the clock returned a naive datetime; an aware one is needed")
    return moment.astimezone(timezone.utc)
