"""Handing a conversation to people: configuration, the shared queue, and honest wait estimates.

Everything lives in Redis, so any gateway process can serve any conversation and any desk:

  <p>:conv:<key>               field `state`: bot | waiting | with_agent | closed
  <p>:handoff:<key>            the handoff item (JSON, see docs/handoff-contract.md)
  <p>:handoff:waiting          zset of waiting conversations (score: when they started waiting)
  <p>:handoff:agent:<user>     set of conversations an agent has claimed
  <p>:handoff:handled:<queue>  list of measured handling times in seconds (newest first)
  <p>:desk:online              zset agent username -> presence expiry (epoch s)
  <p>:desk:agent:<user>        the online agent's AgentInfo (JSON), expires with the presence
  <p>:desk:events              pub/sub channel: desk events for every gateway's SSE streams

Configured in config/handoff.yml (HANDOFF_FILE overrides the path).
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import re
import statistics
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, AsyncIterator

from aiohttp import web

from bot.policy.hours import ServiceLevels, ServiceLevelError, describe, read_yaml
from bot.policy.mandate import MandateTable
from bot.shared.settings import PROJECT_ROOT

STATES = ("bot", "waiting", "with_agent", "closed")
REASONS = ("asked", "mandate", "misunderstood", "complaint", "cancellation", "angry", "urgent", "transfer")
PRESENCE_SECONDS = 60


class HandoffConfigError(ValueError):
    pass


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


# ----------------------------------------------------------------------------- configuration

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
    no_agent_response_hours: float
    after_hours_minutes: int

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
            measured_sample=int(max(1, number(estimate, "measured_sample", 50, "estimate"))),
            minimum_minutes=int(number(estimate, "minimum_minutes", 2, "estimate")),
            round_to_minutes=int(max(1, number(estimate, "round_to_minutes", 5, "estimate"))),
            no_agent_response_hours=number(estimate, "no_agent_response_hours", 2, "estimate"),
            after_hours_minutes=int(number(estimate, "after_hours_minutes", 60, "estimate")),
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


def _roles(mandates: MandateTable) -> tuple[str, ...]:
    roles = getattr(mandates, "roles", None)
    return tuple(roles() if callable(roles) else roles or ("bot", "agent", "senior_agent", "supervisor"))


# ----------------------------------------------------------------------------- mood

_ANGRY = re.compile(
    r"\b(belachelijk\w*|schandalig\w*|schande|waardeloo\w+|woedend|kwaad|boos|klote|verdomme|godverdomme|"
    r"oplichter\w*|oplichting|bedrogen|onacceptabel|te gek voor woorden|ridiculous|outrageous|disgrac\w+|"
    r"furious|angry|useless|scam\w*|rubbish|unacceptable|pathetic|fed up|sick of)\b",
    re.IGNORECASE,
)
_URGENT = re.compile(r"\b(dringend|spoed\w*|urgent\w*|asap|zo snel mogelijk|noodgeval|emergency|right now|nu meteen)\b",
                     re.IGNORECASE)


def mood(text: str) -> str | None:
    """'angry', 'urgent' or None, from words, '!!!' and shouting in capitals."""
    letters = [ch for ch in text if ch.isalpha()]
    shouting = len(letters) >= 12 and sum(ch.isupper() for ch in letters) / len(letters) >= 0.7
    if _ANGRY.search(text) or "!!!" in text or shouting:
        return "angry"
    if _URGENT.search(text):
        return "urgent"
    return None


# ----------------------------------------------------------------------------- estimates

@dataclass(frozen=True)
class Estimate:
    kind: str                 # live (agents online), no_agents (open, nobody who may), closed
    deadline: datetime        # what we promise
    minutes: int | None       # live: "about N minutes"
    position: int             # 1 = next
    agents: int               # online agents who may take it
    handling_minutes: float   # the median handling time used

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["deadline"] = self.deadline.isoformat()
        return data


def round_up(minutes: float, step: int) -> int:
    return int(math.ceil(minutes / step) * step) if minutes > 0 else step


# ----------------------------------------------------------------------------- the store

_CLAIM = """
local raw = redis.call('GET', KEYS[1])
if not raw then return -1 end
local item = cjson.decode(raw)
if item['state'] ~= 'waiting' then return 0 end
item['state'] = 'with_agent'
item['claimed_by'] = ARGV[1]
item['claimed_at'] = tonumber(ARGV[2])
redis.call('SET', KEYS[1], cjson.encode(item))
redis.call('ZREM', KEYS[2], ARGV[3])
redis.call('SADD', KEYS[3], ARGV[3])
redis.call('HSET', KEYS[4], 'state', 'with_agent')
return 1
"""


class Handoffs:
    def __init__(self, redis, prefix: str, config: HandoffConfig) -> None:
        self._redis = redis
        self._prefix = prefix
        self.config = config
        self._claim = redis.register_script(_CLAIM)

    def _k(self, *parts: str) -> str:
        return ":".join((self._prefix, *parts))

    # -- reading -----------------------------------------------------------------------------
    async def state(self, conv: str) -> str:
        return (await self._redis.hget(self._k("conv", conv), "state")) or "bot"

    async def get(self, conv: str) -> dict[str, Any] | None:
        raw = await self._redis.get(self._k("handoff", conv))
        return self._decorate(json.loads(raw)) if raw else None

    def _decorate(self, item: dict[str, Any], now: float | None = None) -> dict[str, Any]:
        now = now or time.time()
        waited = max(0.0, now - float(item.get("waiting_since") or item.get("created") or now)) / 60
        if item.get("state") == "waiting":
            item["priority"] = int(round(float(item.get("priority_base") or 0) + self.config.per_waiting_minute * waited))
        item["waiting_minutes"] = int(waited)
        return item

    async def _items(self, convs: list[str]) -> list[dict[str, Any]]:
        if not convs:
            return []
        raws = await self._redis.mget([self._k("handoff", c) for c in convs])
        now = time.time()
        return [self._decorate(json.loads(raw), now) for raw in raws if raw]

    async def waiting(self) -> list[dict[str, Any]]:
        items = [i for i in await self._items(await self._redis.zrange(self._k("handoff", "waiting"), 0, -1))
                 if i.get("state") == "waiting"]
        items.sort(key=lambda i: (-i["priority"], float(i.get("waiting_since") or 0)))
        return items

    async def assigned(self, username: str) -> list[dict[str, Any]]:
        items = await self._items(sorted(await self._redis.smembers(self._k("handoff", "agent", username))))
        return [i for i in items if i.get("state") == "with_agent" and i.get("claimed_by") == username]

    def eligible(self, item: dict[str, Any], agent: AgentInfo) -> bool:
        if self.config.rank(agent.role) < self.config.rank(item.get("role") or self.config.default_role):
            return False
        if item.get("skill") and item["skill"] not in agent.skills:
            return False
        return not item.get("language") or item["language"] in agent.languages

    # -- writing -----------------------------------------------------------------------------
    async def _save(self, item: dict[str, Any]) -> None:
        stored = {k: v for k, v in item.items() if k not in ("priority", "waiting_minutes", "can_claim")}
        await self._redis.set(self._k("handoff", item["conversation"]), json.dumps(stored, ensure_ascii=False))
        await self._redis.hset(self._k("conv", item["conversation"]), "state", item["state"])

    async def enqueue(self, conv: str, *, reason: str, language: str, customer_id: int | None = None,
                      customer_name: str = "", segment: str | None = None, churn: int | None = None,
                      topic: str | None = None, role: str | None = None, summary: str = "",
                      request: dict | None = None, ticket_id: int | None = None, channel: str = "",
                      note: str = "") -> dict[str, Any]:
        """Put the conversation in the queue (or leave it where it is when it already waits)."""
        existing = await self.get(conv)
        if existing and existing.get("state") in ("waiting", "with_agent"):
            changed = False
            if role and self.config.rank(role) > self.config.rank(existing.get("role", "")):
                existing["role"], changed = role, True
            if request and not existing.get("request"):
                existing["request"], changed = request, True
            if ticket_id and not existing.get("ticket_id"):
                existing["ticket_id"], changed = ticket_id, True
            if changed:
                await self._save(existing)
            return existing
        queue = self.config.queue_for(topic, reason)
        role = role if role in self.config.roles else self.config.default_role
        now = time.time()
        item = {
            "conversation": conv, "state": "waiting", "customer_id": customer_id, "customer_name": customer_name,
            "language": language, "reason": reason, "role": role, "skill": queue.skill, "queue": queue.name,
            "topic": topic, "summary": summary[:500], "request": request, "ticket_id": ticket_id,
            "segment": segment, "churn": churn, "channel": channel, "note": note[:500],
            "priority_base": self.config.base_priority(reason, segment, churn),
            "created": now, "waiting_since": now, "claimed_by": None, "claimed_at": None,
        }
        await self._save(item)
        await self._redis.zadd(self._k("handoff", "waiting"), {conv: now})
        await self.publish({"type": "queue"})
        await self.publish({"type": "state", "conversation": conv, "state": "waiting"})
        return self._decorate(item, now)

    async def claim(self, conv: str, agent: AgentInfo) -> dict[str, Any]:
        item = await self.get(conv)
        if item is None:
            raise HandoffError("unknown_conversation")
        if item.get("state") != "waiting":
            raise HandoffError("not_waiting", item.get("claimed_by") or item.get("state", ""))
        if not self.eligible(item, agent):
            raise HandoffError("not_eligible", item.get("role", ""))
        won = await self._claim(
            keys=[self._k("handoff", conv), self._k("handoff", "waiting"), self._k("handoff", "agent", agent.username),
                  self._k("conv", conv)],
            args=[agent.username, f"{time.time():.3f}", conv],
        )
        if int(won) != 1:
            latest = await self.get(conv)
            raise HandoffError("not_waiting", (latest or {}).get("claimed_by") or "")
        await self.publish({"type": "queue"})
        await self.publish({"type": "state", "conversation": conv, "state": "with_agent"})
        return await self.get(conv)

    async def _owned(self, conv: str, agent: AgentInfo) -> dict[str, Any]:
        item = await self.get(conv)
        if item is None:
            raise HandoffError("unknown_conversation")
        if item.get("state") != "with_agent" or item.get("claimed_by") != agent.username:
            raise HandoffError("not_yours", item.get("claimed_by") or item.get("state", ""))
        return item

    async def _release(self, item: dict[str, Any], agent: AgentInfo) -> None:
        await self._redis.srem(self._k("handoff", "agent", agent.username), item["conversation"])
        if item.get("claimed_at"):
            handled = max(1.0, time.time() - float(item["claimed_at"]))
            name = self._k("handoff", "handled", item.get("queue") or "general")
            await self._redis.lpush(name, f"{handled:.1f}")
            await self._redis.ltrim(name, 0, self.config.measured_sample - 1)

    async def transfer(self, conv: str, agent: AgentInfo, role: str | None = None, queue: str | None = None,
                       note: str = "", request: dict | None = None) -> dict[str, Any]:
        item = await self._owned(conv, agent)
        if role is not None and role not in self.config.roles:
            raise HandoffError("bad_target", f"role {role}")
        if queue is not None and queue not in self.config.queues:
            raise HandoffError("bad_target", f"queue {queue}")
        await self._release(item, agent)
        if role:
            item["role"] = role
        if queue:
            item["queue"], item["skill"] = queue, self.config.queues[queue].skill
        if request is not None:
            item["request"], item["reason"] = request, "mandate"
        item.update(state="waiting", claimed_by=None, claimed_at=None, note=note[:500],
                    transferred_by=agent.username)
        item["priority_base"] = float(item.get("priority_base") or 0) + self.config.reason_points.get("transfer", 0)
        await self._save(item)
        # keeps its place: the time it started waiting counts for priority
        await self._redis.zadd(self._k("handoff", "waiting"), {conv: float(item.get("waiting_since") or time.time())})
        await self.publish({"type": "queue"})
        await self.publish({"type": "state", "conversation": conv, "state": "waiting"})
        return await self.get(conv)

    async def finish(self, conv: str, agent: AgentInfo | None, state: str) -> dict[str, Any]:
        """End the handoff: `bot` (handed back) or `closed`. Without an agent: a waiting one."""
        if agent is not None:
            item = await self._owned(conv, agent)
            await self._release(item, agent)
        else:
            item = await self.get(conv)
            if item is None:
                raise HandoffError("unknown_conversation")
        item.update(state=state, ended_at=time.time())
        await self._save(item)
        await self._redis.zrem(self._k("handoff", "waiting"), conv)
        await self.publish({"type": "queue"})
        await self.publish({"type": "state", "conversation": conv, "state": state})
        return item

    async def promised(self, conv: str, deadline: datetime) -> None:
        """Note on the item what the customer was last promised, so agents see it in the queue."""
        item = await self.get(conv)
        if item is not None and item.get("state") in ("waiting", "with_agent"):
            item["promised_by"] = deadline.astimezone(timezone.utc).isoformat()
            await self._save(item)
            await self.publish({"type": "queue"})

    # -- presence and measurements ------------------------------------------------------------
    async def heartbeat(self, agent: AgentInfo) -> None:
        until = time.time() + PRESENCE_SECONDS
        await self._redis.set(self._k("desk", "agent", agent.username), json.dumps(agent.as_dict()),
                              ex=PRESENCE_SECONDS)
        await self._redis.zadd(self._k("desk", "online"), {agent.username: until})

    async def offline(self, agent: AgentInfo) -> None:
        await self._redis.zrem(self._k("desk", "online"), agent.username)
        await self._redis.delete(self._k("desk", "agent", agent.username))

    async def online(self) -> list[AgentInfo]:
        now = time.time()
        await self._redis.zremrangebyscore(self._k("desk", "online"), "-inf", now)
        names = await self._redis.zrange(self._k("desk", "online"), 0, -1)
        if not names:
            return []
        raws = await self._redis.mget([self._k("desk", "agent", n) for n in names])
        return [AgentInfo.from_dict(json.loads(raw)) for raw in raws if raw]

    async def handling_minutes(self, queue: str) -> float:
        raw = await self._redis.lrange(self._k("handoff", "handled", queue), 0, self.config.measured_sample - 1)
        values = [float(v) / 60 for v in raw]
        return statistics.median(values) if values else self.config.default_handling_minutes

    async def estimate(self, conv: str, now: datetime | None = None) -> Estimate:
        """How long until a person answers this waiting conversation, from live data."""
        now = now or datetime.now(timezone.utc)
        item = await self.get(conv)
        if item is None:
            raise HandoffError("unknown_conversation")
        queue = self.config.queues.get(item.get("queue") or "general") or self.config.queues["general"]
        levels = queue.levels
        handling = await self.handling_minutes(queue.name)
        waiting = await self.waiting()
        agents = [a for a in await self.online() if self.eligible(item, a)]
        ahead = 0
        for other in waiting:
            if other["conversation"] == conv:
                break
            if any(self.eligible(other, a) for a in agents) or other.get("queue") == item.get("queue"):
                ahead += 1
        position = ahead + 1
        if item.get("state") == "with_agent":
            position = 0
        if not levels.is_open(now):
            opening = levels.next_opening(now)
            deadline = opening + timedelta(minutes=self.config.after_hours_minutes)
            return Estimate("closed", deadline, None, position, len(agents), handling)
        if not agents:
            deadline = levels.add_business_hours(now, self.config.no_agent_response_hours)
            return Estimate("no_agents", _ceil_quarter(deadline), None, position, 0, handling)
        busy = 0
        for agent in agents:
            busy += 1 if await self._redis.scard(self._k("handoff", "agent", agent.username)) else 0
        free = len(agents) - busy
        if position <= free:
            minutes = float(self.config.minimum_minutes)
        else:
            rounds = math.ceil((position - free) / len(agents))
            minutes = max(float(self.config.minimum_minutes), rounds * handling)
        minutes = round_up(minutes, self.config.round_to_minutes)
        deadline = now + timedelta(minutes=minutes)
        closes = levels.opening(now.astimezone(levels.tz).date())[1]
        if deadline > closes:  # not before closing time: be honest about tomorrow
            opening = levels.next_opening(closes)
            deadline = opening + timedelta(minutes=self.config.after_hours_minutes)
            return Estimate("closed", deadline, None, position, len(agents), handling)
        return Estimate("live", deadline, minutes, position, len(agents), handling)

    # -- events ------------------------------------------------------------------------------
    async def publish(self, event: dict[str, Any]) -> None:
        await self._redis.publish(self._k("desk", "events"), json.dumps(event))

    async def subscribe(self, idle: float | None = None) -> AsyncIterator[dict[str, Any]]:
        """Desk events from every gateway. With `idle`, yields {"type": "ping"} after that many
        seconds without events (for heartbeats)."""
        pubsub = self._redis.pubsub()
        await pubsub.subscribe(self._k("desk", "events"))
        last = time.monotonic()
        try:
            while True:
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                if message and message.get("type") == "message":
                    last = time.monotonic()
                    try:
                        yield json.loads(message["data"])
                    except (TypeError, ValueError):
                        continue
                elif idle is not None and time.monotonic() - last >= idle:
                    last = time.monotonic()
                    yield {"type": "ping"}
                else:
                    await asyncio.sleep(0)
        finally:
            try:
                await asyncio.wait_for(pubsub.unsubscribe(), 2)
            except Exception:  # noqa: BLE001 - closing a connection that may be gone
                pass
            await pubsub.close()


def _ceil_quarter(moment: datetime) -> datetime:
    """Round a deadline up to the next quarter hour: 'before 15:30', never 'before 15:17'."""
    extra = (-moment.minute) % 15
    rounded = moment.replace(second=0, microsecond=0) + timedelta(minutes=extra)
    return rounded if rounded >= moment else rounded + timedelta(minutes=15)


def when_text(estimate: Estimate, language: str, now: datetime, tz) -> str:
    return describe(estimate.deadline, language, now, tz)


