"""The honest wait: how long until a person answers a waiting conversation.

Pure functions of what the queue looks like (the conversation's place, the online agents who may
take it and how many of them are free, the measured handling time), the queue's service levels
and `now`, passed in: nothing here reads the clock or Redis (bot/people/queue.py gathers the
live data and calls these)."""

from __future__ import annotations

import heapq
import math
import random
import statistics
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any, Callable, Iterable
from zoneinfo import ZoneInfo

from bot.people.config import HandoffConfig
from bot.people.types import AgentInfo
from bot.policy.hours import ServiceLevels, describe
from bot.texts import messages


@dataclass(frozen=True)
class Estimate:
    kind: str                 # live (agents online), no_agents (open, nobody who may), closed
    deadline: datetime        # what we promise
    minutes: int | None       # live: "about N minutes"
    position: int             # 1 = next; 0 = already with an agent
    agents: int               # online agents who may take it
    handling_minutes: float   # the median handling time used
    at: datetime              # the moment this was estimated (the `now` it was given)
    queue: str                # the queue the conversation waits in
    soonest_minutes: float | None = None  # live: an early future (SOONEST), unrounded: can it still be kept?
    quantile: float | None = None  # live: how sure the promise is (the share of the futures within it)
    candidates: tuple[float, ...] = ()  # live: the minutes it would have promised at each of QUANTILES

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["deadline"], data["at"] = self.deadline.isoformat(), self.at.isoformat()
        return data


@dataclass(frozen=True)
class Colleague:
    """An online colleague as the estimate of one waiting conversation sees them."""
    may_take: bool                  # may take that conversation (language, skill, mandate)
    spent: float | None             # minutes into the conversation they took first; None: free
    handled: tuple[float, ...] = ()  # the measured times of that conversation's topic (empty: the queue's)


@dataclass(frozen=True)
class Ahead:
    """A conversation before it in line that one of the online colleagues may take."""
    takers: tuple[int, ...]          # which of the view's `team` may take it
    handled: tuple[float, ...] = ()  # the measured times of its topic (empty: the queue's)


@dataclass(frozen=True)
class QueueView:
    """The live queue as one waiting conversation sees it."""
    queue: str                # its queue's name
    position: int             # 1 = next; 0 = already with an agent
    agents: int               # online agents who may take it
    free: int                 # of those, the ones without a conversation
    handling_minutes: float   # median measured handling time of its queue
    busy_minutes: tuple[float, ...] = ()  # per busy agent who may take it: minutes into their current conversation
    handled: tuple[float, ...] = ()       # the measured handling times (minutes) of its queue, the recent sample
    # by topic (`estimate.by_topic`): the measured handling times of the topic of each busy agent's
    # conversation (aligned with busy_minutes) and of each conversation before it in line, in order;
    # an empty one (a topic with too few measurements, or none) counts as the queue's `handled`
    busy_handled: tuple[tuple[float, ...], ...] = ()
    ahead_handled: tuple[tuple[float, ...], ...] = ()
    # the queue's own dispatch (`estimate.dispatch`): every online colleague, also the ones who may not
    # take it, and every conversation before it that one of them may take, in order; with these the
    # futures play out who takes what (a Dutch-only colleague takes the Dutch customers ahead of an
    # English one), without them the colleagues who may take it take everyone ahead
    team: tuple[Colleague, ...] = ()
    line: tuple[Ahead, ...] = ()
    quantile: float | None = None  # how sure to promise (`calibrated_quantile`); None: the configured quantile


def ahead_of(conv: str, item: dict[str, Any], waiting: Iterable[dict[str, Any]], agents: list[AgentInfo],
             eligible: Callable[[dict[str, Any], AgentInfo], bool]) -> list[dict[str, Any]]:
    """The waiting conversations before it (in priority order) that the same agents could take, or
    that wait in the same queue."""
    ahead = []
    for other in waiting:
        if other["conversation"] == conv:
            break
        if any(eligible(other, a) for a in agents) or other.get("queue") == item.get("queue"):
            ahead.append(other)
    return ahead


def wait_estimate(view: QueueView, levels: ServiceLevels, config: HandoffConfig, now: datetime) -> Estimate:
    """Outside opening hours: after the next opening. Open but nobody online who may: within the
    configured response time. Otherwise the time the `quantile` (config/handoff.yml) of the
    likely futures of the live queue stays within (`turn_minutes`): up to `exact_minutes` the
    first whole minute after it (told as the minutes until then), above in steps of
    `round_to_minutes`, unless that runs past closing time (then: after the next opening,
    not a promise for today that cannot be kept)."""
    position, agents, handling = view.position, view.agents, view.handling_minutes

    def estimate(kind: str, deadline: datetime, minutes: int | None = None, soonest: float | None = None,
                 quantile: float | None = None, candidates: tuple[float, ...] = ()) -> Estimate:
        return Estimate(kind, deadline, minutes, position, agents, handling, now, view.queue, soonest, quantile, candidates)

    if not levels.is_open(now):
        opening = levels.next_opening(now)
        return estimate("closed", opening + timedelta(minutes=config.after_hours_minutes))
    if not agents:
        return estimate("no_agents", ceil_quarter(levels.add_business_hours(now, config.no_agent_response_hours)))
    quantile = view.quantile or config.quantile
    turns = dispatch_minutes(view) if view.team else None
    if (turns[0] == 0.0) if turns is not None else position <= view.free:  # a colleague is free, has yet to see it
        minutes, soonest = float(max(config.minimum_minutes, config.free_minutes)), 0.0
        options = []  # not a share of futures: not in the queue's record (`calibrated_quantile`)
    else:
        turns = turns or turn_minutes(view)
        options = [max(float(config.minimum_minutes), share(turns, q)) for q in QUANTILES]
        minutes, soonest = max(float(config.minimum_minutes), share(turns, quantile)), share(turns, SOONEST)
    deadline, rounded = promise_at(minutes, now, config)
    closes = levels.opening(now.astimezone(levels.tz).date())[1]
    if deadline > closes:  # not before closing time: be honest about tomorrow
        opening = levels.next_opening(closes)
        return estimate("closed", opening + timedelta(minutes=config.after_hours_minutes))
    candidates = tuple(round((promise_at(m, now, config)[0] - now).total_seconds() / 60, 3) for m in options)
    return estimate("live", deadline, rounded, soonest, quantile, candidates)


def promise_at(minutes: float, now: datetime, config: HandoffConfig) -> tuple[datetime, int]:
    """The deadline of a wait of `minutes` from `now`, and the minutes the customer is told."""
    if minutes > config.exact_minutes:  # "about 25 minutes": steps of `round_to_minutes`
        rounded = round_up(minutes, config.round_to_minutes)
        return ceil_minute(now + timedelta(minutes=rounded)), rounded  # "by 10:42": never a time the text rounds down
    # the first whole minute after the estimate, and the minutes until it as the customer reads them
    deadline = ceil_minute(now + timedelta(minutes=minutes))
    return deadline, max(1, round((deadline - now).total_seconds() / 60))


QUANTILES = tuple(round(0.7 + i / 100, 2) for i in range(26))  # the shares a promise may be made at: 0.7 to 0.95


def calibrated_quantile(record: Iterable[tuple[tuple[float, ...], float]], config: HandoffConfig) -> float:
    """How sure the queue's promises can be: the surest of QUANTILES, from `least_quantile` up
    to `surest_quantile`, at which the recent customers' promises would have been at most
    `promise_over_wait` times their waits (median over median). `record` holds, per recent
    customer who waited, what the estimate would have promised at each of QUANTILES (the
    estimate's `candidates`) and how long they waited (minutes). With fewer than
    `calibrate_after` of them: the configured `quantile`."""
    record = [(c, w) for c, w in record if len(c) == len(QUANTILES)]
    if len(record) < config.calibrate_after:
        return config.quantile
    wait = statistics.median(w for _, w in record)
    allowed = [i for i, q in enumerate(QUANTILES) if config.least_quantile - 1e-9 <= q <= config.surest_quantile + 1e-9]
    if not allowed or wait <= 0:
        return config.quantile
    best = allowed[0]
    for i in allowed:
        if statistics.median(c[i] for c, _ in record) <= config.promise_over_wait * wait:
            best = i
    return QUANTILES[best]


def wait_text(estimate: Estimate, language: str, tz: ZoneInfo, channel: str) -> str:
    """What the customer is told, in their language; `channel` is the name of the channel the
    answer comes on ("WhatsApp"), for the waits where they need not stay."""
    values = dict(deadline=describe(estimate.deadline, language, estimate.at, tz), minutes=estimate.minutes,
                  position=estimate.position, agents=estimate.agents, channel=channel)
    if estimate.kind == "live":
        return messages.text("wait_next" if estimate.position <= 1 else "wait_live", language, **values)
    return messages.text("wait_no_agents" if estimate.kind == "no_agents" else "wait_closed", language, **values)


DRAWS = 400     # resampled futures per estimate
SOONEST = 0.1   # "it could still be this soon": one future in ten is earlier (renew now, or wait?)


def turn_minutes(view: QueueView) -> list[float]:
    """Minutes until an agent who may take it is free for it, in each of the likely futures
    (sorted): the free agents take the first in line at once; then it is the (position - free)-th
    moment one of the agents finishes. The futures are
    resampled from the measured handling times (a bootstrap): a busy agent finishes after what is
    left of a measured time longer than the time they already spent (a conversation 6 minutes in
    is closer to its end than one just taken), and takes the next one in line for another measured
    time. By topic: a conversation's time is resampled from the times measured for its topic (an
    order question is quicker than a refund). A fixed seed: the same queue gives the same answer."""
    sample = sorted(view.handled) or [view.handling_minutes]

    def of(samples: tuple[tuple[float, ...], ...], i: int) -> list[float]:
        return sorted(samples[i]) if i < len(samples) and samples[i] else sample

    busy = view.agents - view.free
    spent = list(view.busy_minutes[:busy]) + [0.0] * max(0, busy - len(view.busy_minutes))
    left = [remaining(of(view.busy_handled, i), s) for i, s in enumerate(spent)]
    # the one each agent takes next: the free ones the first in line, then one by one as agents finish
    nexts = [of(view.ahead_handled, i) for i in range(max(0, view.position - 1))]
    rng = random.Random(0)
    turns = []
    for _ in range(DRAWS):
        # the busy ones finish what they have; the free ones take the first in line now
        finishes = [rng.choice(options) for options in left] + [rng.choice(nexts[i] if i < len(nexts) else sample)
                                                                 for i in range(view.free)]
        heapq.heapify(finishes)
        for k in range(view.free, view.position - 1):
            heapq.heapreplace(finishes, finishes[0] + rng.choice(nexts[k]))
        turns.append(finishes[0])
    return sorted(turns)


def remaining(handled: list[float], spent: float) -> list[float]:
    """What may be left of a conversation `spent` minutes in: each measured time longer than that,
    less what is spent (none longer: half the median)."""
    return [h - spent for h in handled if h > spent] or [statistics.median(handled) / 2]


def dispatch_minutes(view: QueueView) -> list[float]:
    """Like `turn_minutes`, but each future plays out the queue's dispatch: whenever a colleague is
    free (the free ones now, the busy ones after what is left of their conversation), they take the
    first conversation in line they may take, for a measured time of its topic; the customer's turn
    is the first moment a colleague who may take it finds nobody before it they may take. A colleague
    who may take neither it nor anyone left before it is no help."""
    sample = sorted(view.handled) or [view.handling_minutes]
    times = [sorted(c.handled) or sample for c in view.team]
    left = [None if c.spent is None else remaining(own, c.spent) for c, own in zip(view.team, times)]
    line = [(set(a.takers), sorted(a.handled) or sample) for a in view.line]
    rng = random.Random(0)
    turns = []
    for _ in range(DRAWS):
        free = [(0.0 if options is None else rng.choice(options), i) for i, options in enumerate(left)]
        heapq.heapify(free)
        waiting = list(range(len(line)))
        turn = math.inf
        while free:
            at, who = heapq.heappop(free)
            first = next((j for j in waiting if who in line[j][0]), None)
            if first is not None:
                waiting.remove(first)
                heapq.heappush(free, (at + rng.choice(line[first][1]), who))
            elif view.team[who].may_take:
                turn = at
                break
        turns.append(turn)
    return sorted(turns)


def share(turns: list[float], quantile: float) -> float:
    """The time `quantile` of the (sorted) futures stay within."""
    return turns[min(len(turns) - 1, max(0, math.ceil(quantile * len(turns)) - 1))]


def round_up(minutes: float, step: int) -> int:
    return int(math.ceil(minutes / step) * step) if minutes > 0 else step


def ceil_minute(moment: datetime) -> datetime:
    rounded = moment.replace(second=0, microsecond=0)
    return rounded if rounded == moment else rounded + timedelta(minutes=1)


def ceil_quarter(moment: datetime) -> datetime:
    """Round a deadline up to the next quarter hour: 'before 15:30', never 'before 15:17'."""
    extra = (-moment.minute) % 15
    rounded = moment.replace(second=0, microsecond=0) + timedelta(minutes=extra)
    return rounded if rounded >= moment else rounded + timedelta(minutes=15)
