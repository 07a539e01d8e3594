"""The shared handoff queue in Redis and its state machine: bot -> waiting -> with_agent ->
bot | closed (and with_agent -> waiting on a transfer). Any gateway process can serve any
conversation and any desk.

This module is the only writer of these keys (the conversation hash `<p>:conv:<key>` belongs to
bot/pipeline/conversations.py and is never written here):

  <p>:handoff:<key>            the handoff item (JSON, see docs/handoff-contract.md); its `state`
                               is THE handoff state (no item: `bot`)
  <p>:handoff:waiting          zset of waiting conversations (score: when they started waiting)
  <p>:handoff:agent:<user>     set of conversations an agent has claimed
  <p>:handoff:handled:<queue>  list of measured handling times in seconds (newest first)
  <p>:handoff:handled-topic:<queue>:<topic>  the same for one topic of the queue (`estimate.by_topic`)
  <p>:handoff:promised:<queue> list of the recent waits (JSON {"c": what the first wait promise would
                               have been at each of estimate.QUANTILES, "w": the wait in minutes}, newest
                               first): how sure the queue's promises can be (`calibrated_quantile`)
  <p>:desk:online              zset agent username -> presence expiry (epoch s)
  <p>:desk:agent:<user>        the online agent's AgentInfo (JSON), expires with the presence
  <p>:desk:events              pub/sub channel: desk events for every gateway's SSE streams

Every time it needs comes from the clock passed in (`clock`), so tests fix the time.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from datetime import datetime, timezone
from typing import Any, AsyncIterator

from bot.people.config import HandoffConfig
from bot.people.estimate import (Ahead, Colleague, Estimate, QueueView, ahead_of, calibrated_quantile,
                                 wait_estimate, wait_text)
from bot.people.types import AgentInfo, ClockLike, HandoffError, as_clock, utc_now

PRESENCE_SECONDS = 60
ACTIVE = ("waiting", "with_agent")

_CLAIM = """
local raw = redis.call('GET', KEYS[1])
if not raw then return -1 end
local item = cjson.decode(raw)
if item['state'] ~= 'waiting' then return 0 end
item['state'] = 'with_agent'
item['claimed_by'] = ARGV[1]
item['claimed_at'] = tonumber(ARGV[2])
if type(item['candidates']) == 'table' and tonumber(item['candidates_at']) then
  -- the first wait promise made to it, with how long it waited: the queue's record (once, with the claim)
  local waited = (tonumber(ARGV[2]) - tonumber(item['candidates_at'])) / 60
  redis.call('LPUSH', KEYS[4], cjson.encode({c = item['candidates'], w = waited}))
  redis.call('LTRIM', KEYS[4], 0, tonumber(ARGV[4]) - 1)
end
item['candidates'] = nil
item['candidates_at'] = nil
redis.call('SET', KEYS[1], cjson.encode(item))
redis.call('ZREM', KEYS[2], ARGV[3])
redis.call('SADD', KEYS[3], ARGV[3])
return 1
"""


AT_RISK_POINTS = 10_000  # a promise about to break puts its conversation above every other


def handoff_key(prefix: str, conv: str) -> str:
    return f"{prefix}:handoff:{conv}"


async def state_of(redis, prefix: str, conv: str) -> str:
    """The conversation's handoff state, for readers without a Handoffs (e.g. retention)."""
    raw = await redis.get(handoff_key(prefix, conv))
    return (json.loads(raw).get("state") if raw else None) or "bot"


class Handoffs:
    def __init__(self, redis, prefix: str, config: HandoffConfig, clock: ClockLike | None = None) -> None:
        self._redis = redis
        self._prefix = prefix
        self.config = config
        self.clock = as_clock(clock)
        self._claim = redis.register_script(_CLAIM)

    def _k(self, *parts: str) -> str:
        return ":".join((self._prefix, *parts))

    def now(self) -> datetime:
        """The clock's time (aware, UTC)."""
        return utc_now(self.clock)

    def _epoch(self) -> float:
        return self.now().timestamp()

    # -- reading -----------------------------------------------------------------------------
    async def state(self, conv: str) -> str:
        """bot | waiting | with_agent | closed."""
        return await state_of(self._redis, self._prefix, conv)

    async def get(self, conv: str) -> dict[str, Any] | None:
        raw = await self._redis.get(self._k("handoff", conv))
        return self._decorate(json.loads(raw), self._epoch()) if raw else None

    def _decorate(self, item: dict[str, Any], now: float) -> dict[str, Any]:
        waited = max(0.0, now - float(item.get("waiting_since") or item.get("created") or now)) / 60
        if item.get("state") == "waiting":
            item["priority"] = int(round(float(item.get("priority_base") or 0) + self.config.per_waiting_minute * waited
                                         + (AT_RISK_POINTS if item.get("at_risk") else 0)))
        item["waiting_minutes"] = int(waited)
        return item

    async def _items(self, convs: list[str]) -> list[dict[str, Any]]:
        if not convs:
            return []
        raws = await self._redis.mget([self._k("handoff", c) for c in convs])
        now = self._epoch()
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
        return self.config.eligible(item, agent)

    # -- writing -----------------------------------------------------------------------------
    async def _save(self, item: dict[str, Any]) -> None:
        stored = {k: v for k, v in item.items() if k not in ("priority", "waiting_minutes", "can_claim")}
        await self._redis.set(self._k("handoff", item["conversation"]), json.dumps(stored, ensure_ascii=False))

    async def enqueue(self, conv: str, *, reason: str, language: str, customer_id: int | None = None,
                      customer_name: str = "", segment: str | None = None, churn: int | None = None,
                      topic: str | None = None, role: str | None = None, summary: str = "",
                      request: dict | None = None, ticket_id: int | None = None, channel: str = "",
                      note: str = "") -> dict[str, Any]:
        """Put the conversation in the queue (or leave it where it is when it already waits)."""
        existing = await self.get(conv)
        if existing and existing.get("state") in ACTIVE:
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
        now = self._epoch()
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
                  self._k("handoff", "promised", self.config.queue_of(item).name)],
            args=[agent.username, f"{self._epoch():.3f}", conv, str(self.config.measured_sample)],
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
            handled = max(1.0, self._epoch() - float(item["claimed_at"]))
            queue, topic = self._topic_of(item)
            names = [self._k("handoff", "handled", queue)]
            if self.config.by_topic and topic:
                names.append(self._k("handoff", "handled-topic", queue, topic))
            async with self._redis.pipeline(transaction=False) as pipe:
                for name in names:  # the newest `measured_sample` count
                    pipe.lpush(name, f"{handled:.1f}").ltrim(name, 0, self.config.measured_sample - 1)
                await pipe.execute()

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
        await self._redis.zadd(self._k("handoff", "waiting"), {conv: float(item.get("waiting_since") or self._epoch())})
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
        item.update(state=state, ended_at=self._epoch())
        await self._save(item)
        await self._redis.zrem(self._k("handoff", "waiting"), conv)
        await self.publish({"type": "queue"})
        await self.publish({"type": "state", "conversation": conv, "state": state})
        return item

    async def at_risk(self, conv: str, deadline: datetime) -> None:
        """The promise made to this waiting conversation is about to break (bot/promises): it
        rises to the top of the queue and the desk shows why."""
        item = await self.get(conv)
        if item is not None and item.get("state") == "waiting":
            item["at_risk"] = deadline.astimezone(timezone.utc).isoformat()
            await self._save(item)
            await self.publish({"type": "queue"})

    async def promised(self, conv: str, deadline: datetime, estimate: Estimate | None = None) -> None:
        """Note on the item what the customer was last promised, so agents see it in the queue; with
        the first live `estimate` of its wait, what it would have promised at each of QUANTILES (the
        claim adds them, with the wait, to the queue's record)."""
        item = await self.get(conv)
        if item is not None and item.get("state") in ACTIVE:
            item["promised_by"] = deadline.astimezone(timezone.utc).isoformat()
            if (estimate is not None and estimate.candidates and item.get("state") == "waiting"
                    and not item.get("candidates")):
                item["candidates"], item["candidates_at"] = list(estimate.candidates), estimate.at.timestamp()
            item.pop("at_risk", None)  # a new time was told: no longer about to break
            await self._save(item)
            await self.publish({"type": "queue"})

    # -- presence and measurements ------------------------------------------------------------
    async def heartbeat(self, agent: AgentInfo) -> None:
        until = self._epoch() + PRESENCE_SECONDS
        await self._redis.set(self._k("desk", "agent", agent.username), json.dumps(agent.as_dict()),
                              ex=PRESENCE_SECONDS)
        await self._redis.zadd(self._k("desk", "online"), {agent.username: until})

    async def offline(self, agent: AgentInfo) -> None:
        await self._redis.zrem(self._k("desk", "online"), agent.username)
        await self._redis.delete(self._k("desk", "agent", agent.username))

    async def online(self) -> list[AgentInfo]:
        await self._redis.zremrangebyscore(self._k("desk", "online"), "-inf", self._epoch())
        names = await self._redis.zrange(self._k("desk", "online"), 0, -1)
        if not names:
            return []
        raws = await self._redis.mget([self._k("desk", "agent", n) for n in names])
        return [AgentInfo.from_dict(json.loads(raw)) for raw in raws if raw]

    async def handled_minutes(self, queue: str) -> list[float]:
        """The measured handling times of a queue, in minutes (the most recent `measured_sample`)."""
        raw = await self._redis.lrange(self._k("handoff", "handled", queue), 0, self.config.measured_sample - 1)
        return [float(v) / 60 for v in raw]

    async def topic_handled_minutes(self, queue: str, topic: str | None) -> tuple[float, ...]:
        """The measured handling times of one topic of a queue, in minutes; none until
        `topic_min_sample` are measured (then the queue's own count)."""
        if not (self.config.by_topic and topic):
            return ()
        raw = await self._redis.lrange(self._k("handoff", "handled-topic", queue, topic), 0,
                                       self.config.measured_sample - 1)
        return tuple(float(v) / 60 for v in raw) if len(raw) >= self.config.topic_min_sample else ()

    async def record(self, queue: str) -> list[tuple[tuple[float, ...], float]]:
        """The queue's recent waits: what the first promise would have been at each of QUANTILES,
        and the wait (minutes), newest first."""
        raw = await self._redis.lrange(self._k("handoff", "promised", queue), 0, self.config.measured_sample - 1)
        record = []
        for value in raw:
            try:
                data = json.loads(value)
                record.append((tuple(float(c) for c in data["c"]), float(data["w"])))
            except (TypeError, ValueError, KeyError):
                continue  # one unreadable entry does not stop the estimate
        return record

    async def handling_minutes(self, queue: str) -> float:
        values = await self.handled_minutes(queue)
        return statistics.median(values) if values else self.config.default_handling_minutes

    async def estimate(self, conv: str, now: datetime | None = None) -> Estimate:
        """How long until a person answers this waiting conversation, from live data (at the
        clock's time unless `now` is given)."""
        now = now or self.now()
        item = await self.get(conv)
        if item is None:
            raise HandoffError("unknown_conversation")
        queue = self.config.queue_of(item)
        everyone = await self.online()
        agents = [a for a in everyone if self.eligible(item, a)]
        # per online agent: minutes into the conversation they took first (the likeliest to end first), and
        # its queue and topic (whose measured times count for it)
        first: dict[str, tuple[float, tuple[str, str | None]]] = {}
        for agent in everyone if self.config.dispatch else agents:
            claimed = [i for i in await self.assigned(agent.username) if i.get("claimed_at")]
            if claimed:
                taken = min(claimed, key=lambda i: float(i["claimed_at"]))
                first[agent.username] = (max(0.0, (now.timestamp() - float(taken["claimed_at"])) / 60),
                                         self._topic_of(taken))
        busy = sorted((first[a.username] for a in agents if a.username in first), key=lambda b: b[0], reverse=True)
        waiting = [] if item.get("state") == "with_agent" else await self.waiting()
        ahead = ahead_of(conv, item, waiting, agents, self.eligible) if waiting else []
        # the queue's own dispatch: every conversation before it that one of the online agents may take
        line = []
        for other in waiting if self.config.dispatch else []:
            if other["conversation"] == conv:
                break
            takers = tuple(i for i, a in enumerate(everyone) if self.eligible(other, a))
            if takers:
                line.append((takers, other))
        keys = ({t for _, t in busy} | {self._topic_of(other) for other in ahead}
                | {t for _, t in first.values()} | {self._topic_of(other) for _, other in line})
        times: dict[tuple[str, str | None], tuple[float, ...]] = {}
        for key in keys:
            times[key] = await self.topic_handled_minutes(*key)
        handled = await self.handled_minutes(queue.name)
        team: tuple[Colleague, ...] = ()
        if self.config.dispatch and item.get("state") == "waiting":
            team = tuple(Colleague(self.eligible(item, a), first[a.username][0] if a.username in first else None,
                                   times[first[a.username][1]] if a.username in first else ()) for a in everyone)
        view = QueueView(queue=queue.name,
                         position=0 if item.get("state") == "with_agent" else len(ahead) + 1,
                         agents=len(agents), free=len(agents) - len(busy),
                         handling_minutes=statistics.median(handled) if handled else self.config.default_handling_minutes,
                         busy_minutes=tuple(s for s, _ in busy), handled=tuple(handled),
                         busy_handled=tuple(times[t] for _, t in busy),
                         ahead_handled=tuple(times[self._topic_of(other)] for other in ahead),
                         team=team, line=tuple(Ahead(takers, times[self._topic_of(other)]) for takers, other in line),
                         quantile=calibrated_quantile(await self.record(queue.name), self.config))
        return wait_estimate(view, queue.levels, self.config, now)

    def _topic_of(self, item: dict[str, Any]) -> tuple[str, str | None]:
        return item.get("queue") or self.config.queue_of(item).name, _topic(item)

    def wait_text(self, estimate: Estimate, language: str, channel: str) -> str:
        """The estimate as the customer reads it (times in its queue's zone)."""
        levels = (self.config.queues.get(estimate.queue) or self.config.queues["general"]).levels
        return wait_text(estimate, language, levels.tz, channel)

    # -- events ------------------------------------------------------------------------------
    async def publish(self, event: dict[str, Any]) -> None:
        await self._redis.publish(self._k("desk", "events"), json.dumps(event))

    async def subscribe(self, idle: float | None = None) -> AsyncIterator[dict[str, Any]]:
        """Desk events from every gateway. With `idle`, yields {"type": "ping"} after that many
        seconds without events (for heartbeats; a monotonic timer, not the clock)."""
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


def _topic(item: dict[str, Any]) -> str | None:
    """The topic a handoff item's handling time is measured under (the bot's `topic` slot), when
    it is a plain name."""
    topic = item.get("topic")
    if isinstance(topic, str) and 0 < len(topic) <= 40 and all(c.isalnum() or c in "_-" for c in topic):
        return topic.lower()
    return None
