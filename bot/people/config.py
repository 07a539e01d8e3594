"""config/handoff.yml (HANDOFF_FILE overrides the path): who may take a conversation, the triggers,
the queues with their skills and hours, how topics route to queues, priority points and the
settings of the wait estimate. Checked when loaded: a mistake is refused with where it is."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.people.types import AgentInfo
from bot.policy.hours import ServiceLevelError, ServiceLevels, read_yaml
from bot.policy.mandate import MandateTable
from bot.shared.settings import PROJECT_ROOT


class HandoffConfigError(ValueError):
    pass


@dataclass(frozen=True)
class Queue:
    name: str
    skill: str
    titles: dict[str, str]
    levels: ServiceLevels


@dataclass(frozen=True)
class Trigger:
    handoff: bool
    min_churn: int | None = None
    segments: tuple[str, ...] = ()

    def applies(self, churn: int | None, segment: str | None) -> bool:
        if not self.handoff:
            return False
        if self.min_churn is None and not self.segments:
            return True
        return (self.min_churn is not None and (churn or 0) >= self.min_churn) or (segment in self.segments)


@dataclass(frozen=True)
class HandoffConfig:
    default_role: str
    roles: tuple[str, ...]
    asked: bool
    mandate: bool
    misunderstood: str
    complaint: Trigger
    cancellation: Trigger
    angry: bool
    urgent: bool
    queues: dict[str, Queue]
    topics: dict[str, str]
    segment_points: dict[str, float]
    churn_weight: float
    per_waiting_minute: float
    reason_points: dict[str, float]
    default_handling_minutes: float
    measured_sample: int
    minimum_minutes: int
    round_to_minutes: int
    exact_minutes: int
    free_minutes: int
    quantile: float
    no_agent_response_hours: float
    after_hours_minutes: int
    by_topic: bool = True         # handling times measured per topic as well (an order question is quicker than a refund)
    topic_min_sample: int = 20    # a topic's own times count once this many are measured
    least_quantile: float = 0.75   # calibrated (`estimate.calibrated_quantile`): from this sure ...
    surest_quantile: float = 0.95  # ... up to this sure, as sure as the median promise allows ...
    promise_over_wait: float = 1.95  # ... staying within this many times the median wait
    calibrate_after: int = 50      # once this many waits are measured (before: `quantile`)
    dispatch: bool = True          # the futures play out who takes what (a Dutch-only colleague takes the Dutch customers)

    @classmethod
    def load(cls, path: str | Path | None = None, mandates: MandateTable | None = None,
             levels: ServiceLevels | None = None) -> "HandoffConfig":
        path = Path(path or os.environ.get("HANDOFF_FILE") or PROJECT_ROOT / "config" / "handoff.yml")
        data = read_yaml(path, HandoffConfigError)
        try:
            return cls.from_dict(data, mandates or MandateTable.load(), levels or ServiceLevels.load())
        except HandoffConfigError as exc:
            raise HandoffConfigError(f"{exc} (in {path})") from exc

    @classmethod
    def from_dict(cls, data: dict, mandates: MandateTable, levels: ServiceLevels) -> "HandoffConfig":
        if not isinstance(data, dict):
            raise HandoffConfigError("expected a mapping at the top")
        roles = tuple(r for r in _roles(mandates) if r != "bot")
        default_role = data.get("default_role", roles[0] if roles else "agent")
        if default_role not in roles:
            raise HandoffConfigError(f"default_role: {default_role!r} is not a person's role in the mandate table {roles}")
        triggers = data.get("triggers") or {}
        misunderstood = str(triggers.get("misunderstood", "offer"))
        if misunderstood not in ("offer", "direct", "off"):
            raise HandoffConfigError("triggers.misunderstood: expected offer, direct or off")

        def trigger(name: str) -> Trigger:
            raw = triggers.get(name, False)
            if isinstance(raw, bool):
                return Trigger(raw)
            if not isinstance(raw, dict):
                raise HandoffConfigError(f"triggers.{name}: expected true/false or a mapping")
            min_churn = raw.get("min_churn")
            if min_churn is not None and (not isinstance(min_churn, int) or not 0 <= min_churn <= 100):
                raise HandoffConfigError(f"triggers.{name}.min_churn: expected a whole number 0-100")
            return Trigger(bool(raw.get("handoff", True)), min_churn, tuple(raw.get("segments") or ()))

        queues: dict[str, Queue] = {}
        for name, raw in (data.get("queues") or {"general": {"skill": "general"}}).items():
            if not isinstance(raw, dict) or not raw.get("skill"):
                raise HandoffConfigError(f"queues.{name}: needs a skill")
            queue_levels = levels
            if raw.get("hours"):
                try:
                    queue_levels = ServiceLevels.from_dict({
                        "timezone": str(levels.tz), "holidays": levels.country,
                        "business_hours": raw["hours"], "response_hours": levels.response_hours,
                    })
                except ServiceLevelError as exc:
                    raise HandoffConfigError(f"queues.{name}.hours: {exc}") from exc
            titles = raw.get("name") or {}
            queues[name] = Queue(name, str(raw["skill"]), {"nl": titles.get("nl", name), "en": titles.get("en", name)},
                                 queue_levels)
        if "general" not in queues:
            raise HandoffConfigError("queues: a `general` queue is needed")
        topics = {str(k): str(v) for k, v in (data.get("topics") or {}).items()}
        for topic, queue in topics.items():
            if queue not in queues:
                raise HandoffConfigError(f"topics.{topic}: unknown queue {queue!r}")
        priority = data.get("priority") or {}
        estimate = data.get("estimate") or {}

        def number(section: dict, name: str, default: float, where: str) -> float:
            value = section.get(name, default)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise HandoffConfigError(f"{where}.{name}: expected a number of at least 0")
            return value

        def flag(section: dict, name: str, default: bool, where: str) -> bool:
            value = section.get(name, default)
            if not isinstance(value, bool):
                raise HandoffConfigError(f"{where}.{name}: expected true or false")
            return value

        def fraction(section: dict, name: str, default: float, where: str) -> float:
            value = number(section, name, default, where)
            if not 0.5 <= value < 1:
                raise HandoffConfigError(f"{where}.{name}: expected a share between 0.5 and 1 (0.95: 19 of 20 in time)")
            return value

        least = fraction(estimate, "least_quantile", 0.75, "estimate")
        surest = fraction(estimate, "surest_quantile", 0.95, "estimate")
        if not 0.7 <= least <= surest <= 0.95:
            raise HandoffConfigError("estimate: expected 0.7 <= least_quantile <= surest_quantile <= 0.95")
        if number(estimate, "promise_over_wait", 1.95, "estimate") < 1:
            raise HandoffConfigError("estimate.promise_over_wait: expected at least 1 (a promise is not shorter than the wait)")

        return cls(
            default_role=default_role, roles=roles,
            asked=bool(triggers.get("asked", True)), mandate=bool(triggers.get("mandate", True)),
            misunderstood=misunderstood, complaint=trigger("complaint"), cancellation=trigger("cancellation"),
            angry=bool(triggers.get("angry", False)), urgent=bool(triggers.get("urgent", False)),
            queues=queues, topics=topics,
            segment_points={str(k): float(v) for k, v in (priority.get("segments") or {}).items()},
            churn_weight=number(priority, "churn_weight", 0.5, "priority"),
            per_waiting_minute=number(priority, "per_waiting_minute", 1, "priority"),
            reason_points={str(k): float(v) for k, v in (priority.get("reasons") or {}).items()},
            default_handling_minutes=max(1.0, number(estimate, "default_handling_minutes", 8, "estimate")),
            measured_sample=int(max(1, number(estimate, "measured_sample", 200, "estimate"))),
            minimum_minutes=int(number(estimate, "minimum_minutes", 2, "estimate")),
            round_to_minutes=int(max(1, number(estimate, "round_to_minutes", 5, "estimate"))),
            exact_minutes=int(number(estimate, "exact_minutes", 20, "estimate")),
            free_minutes=int(number(estimate, "free_minutes", 5, "estimate")),
            quantile=fraction(estimate, "quantile", 0.85, "estimate"),
            no_agent_response_hours=number(estimate, "no_agent_response_hours", 2, "estimate"),
            after_hours_minutes=int(number(estimate, "after_hours_minutes", 60, "estimate")),
            by_topic=flag(estimate, "by_topic", True, "estimate"),
            topic_min_sample=int(max(1, number(estimate, "topic_min_sample", 20, "estimate"))),
            least_quantile=least, surest_quantile=surest,
            promise_over_wait=number(estimate, "promise_over_wait", 1.95, "estimate"),
            calibrate_after=int(max(1, number(estimate, "calibrate_after", 50, "estimate"))),
            dispatch=flag(estimate, "dispatch", True, "estimate"),
        )

    # -- routing ---------------------------------------------------------------------------------
    def queue_for(self, topic: str | None, reason: str) -> Queue:
        if reason == "complaint" and "complaints" in self.queues:
            return self.queues["complaints"]
        if reason == "cancellation" and "retention" in self.queues:
            return self.queues["retention"]
        return self.queues[self.topics.get(topic or "", "general")]

    def rank(self, role: str) -> int:
        return self.roles.index(role) if role in self.roles else len(self.roles)

    def base_priority(self, reason: str, segment: str | None, churn: int | None) -> float:
        return (self.segment_points.get(segment or "", 0) + self.churn_weight * (churn or 0)
                + self.reason_points.get(reason, 0))

    def queue_of(self, item: dict[str, Any]) -> Queue:
        """The queue a handoff item waits in (`general` when its queue is no longer configured)."""
        return self.queues.get(item.get("queue") or "general") or self.queues["general"]

    def eligible(self, item: dict[str, Any], agent: AgentInfo) -> bool:
        """May this agent take the item: role high enough, the skill, the customer's language."""
        if self.rank(agent.role) < self.rank(item.get("role") or self.default_role):
            return False
        if item.get("skill") and item["skill"] not in agent.skills:
            return False
        return not item.get("language") or item["language"] in agent.languages


def _roles(mandates: MandateTable) -> tuple[str, ...]:
    roles = getattr(mandates, "roles", None)
    return tuple(roles() if callable(roles) else roles or ("bot", "agent", "senior_agent", "supervisor"))
