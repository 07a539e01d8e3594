"""Honest estimates, proven under load: the real wait estimator (bot/people/estimate.py
`wait_estimate`, with config/handoff.yml and the service levels) and the real promise timing
(bot/promises/state.py: renewed `renew_before` the deadline, the sweep every `every_seconds`)
against a virtual clock.

A working day (Monday 09:00-17:00): arrivals are Poisson with a morning and a lunch peak; agents
work shifts and speak Dutch and/or English; handling times are lognormal (median 7 minutes, sigma
0.5), of which the topic explains part (four topics, equally common, medians 4.4, 6.0, 8.2 and
11.2 minutes, each lognormal with sigma 0.36 around its median);
customers give up after an exponential patience. Every customer is told the estimate at arrival
(a promise); when it is about to break and nobody took them, they are told a new time from the
live queue (renewed); the promise is kept when an agent takes them in time, broken when not.

    python scripts/simulate_promises.py [--days 60] [--promises 2000] [--seed 7] [--processes 2]
    python scripts/simulate_promises.py --spread 1,2,3   # the configured estimator with other seeds

The measured handling times carry over from one day to the next, as they do in Redis (the most
recent `estimate.measured_sample` of the queue): only the first morning starts with none.

Writes docs/promises.md (the table per scenario) and docs/promises.png (the chart); with
`--spread`, docs/promises-seeds.md.
"""

from __future__ import annotations

import argparse
import bisect
import dataclasses
import heapq
import math
import multiprocessing
import os
import random
import statistics
import sys
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.people.config import HandoffConfig  # noqa: E402
from bot.people.estimate import (Ahead, Colleague, Estimate, QueueView, calibrated_quantile, dispatch_minutes, share,
                                 turn_minutes, wait_estimate)  # noqa: E402
from bot.policy.hours import ServiceLevels  # noqa: E402
from bot.promises.state import PromiseConfig  # noqa: E402

DOCS = ROOT / "docs"
FRONTIER = (0.8, 0.83, 0.85, 0.88, 0.9, 0.95)


@dataclass(frozen=True)
class Agent:
    name: str
    languages: tuple[str, ...]
    start: float  # minutes after 09:00
    end: float


@dataclass(frozen=True)
class Scenario:
    name: str
    per_hour: float               # mean arrivals per hour outside the peaks
    agents: tuple[Agent, ...]
    english: float = 0.25         # share of customers writing English
    patience_minutes: float = 25  # mean time before a customer gives up


def team(count: int, *, leaves_at: float | None = None) -> tuple[Agent, ...]:
    agents = []
    for i in range(count):
        languages = ("nl", "en") if i % 2 == 0 else ("nl",)
        start, end = (0.0, 480.0) if i % 3 else (60.0, 480.0)  # every third starts at 10:00
        if leaves_at is not None and i == 0:
            end = leaves_at
        agents.append(Agent(f"agent{i}", languages, start, end))
    return tuple(agents)


SCENARIOS = (
    Scenario("quiet", 6, team(3)),
    Scenario("normal", 14, team(4)),
    Scenario("overloaded", 26, team(4)),
    Scenario("agent leaves early", 14, team(4, leaves_at=240.0)),  # one of them at 13:00
)


def rate(minute: float, base: float) -> float:
    """Arrivals per minute: base, with a morning peak (10:00-11:30, x1.8) and a lunch peak
    (12:00-13:30, x1.5)."""
    factor = 1.8 if 60 <= minute < 150 else 1.5 if 180 <= minute < 270 else 1.0
    return base * factor / 60


@dataclass
class Customer:
    id: int
    arrived: float
    language: str
    patience: float
    deadline: float = 0.0
    first_deadline: float = 0.0
    promises: list[str] = field(default_factory=list)  # outcome of each promise made to them
    topic: str = "order_status"
    candidates: tuple[float, ...] = ()  # what the first promise would have been at each of the estimator's QUANTILES
    quantile: float = 0.0               # how sure the first promise was
    taken: float | None = None
    left: float | None = None


# the topics of the conversations: how much longer or shorter than the median their handling is (log),
# and the spread around each topic's own median; together lognormal with median 7 and sigma 0.5
TOPICS = {"order_status": -0.47, "loyalty_points": -0.16, "return_item": 0.16, "delivery_problem": 0.47}
TOPIC_SIGMA = math.sqrt(0.5 ** 2 - statistics.pvariance(TOPICS.values()))


Rule = Callable[[QueueView, ServiceLevels, HandoffConfig, datetime], Estimate]


def capped(times: float) -> Rule:
    """An estimator tried against the gap in the quiet queue (not the configured one): the promise is
    the configured share of the futures, but at most `times` the median future."""
    def rule(view: QueueView, levels: ServiceLevels, config: HandoffConfig, now: datetime) -> Estimate:
        if view.position > view.free and view.agents:
            turns = dispatch_minutes(view) if view.team else turn_minutes(view)
            target = min(share(turns, view.quantile or config.quantile), times * share(turns, 0.5))
            # the share of futures within the target, as the quantile wait_estimate rounds from
            view = dataclasses.replace(view, quantile=(bisect.bisect_right(turns, target) - 0.5) / len(turns))
        return wait_estimate(view, levels, config, now)
    return rule


def by_place(one: float, further: float) -> Rule:
    """Another one tried: a less sure promise for the customer who waits for one colleague to finish
    (`one`), a surer one further back in line (`further`)."""
    def rule(view: QueueView, levels: ServiceLevels, config: HandoffConfig, now: datetime) -> Estimate:
        quantile = one if view.position - view.free <= 1 else further
        return wait_estimate(dataclasses.replace(view, quantile=quantile), levels, config, now)
    return rule


# the other estimators measured against every scenario (docs/promises.md "Other estimators tried")
def fixed(quantile: float) -> dict:
    """Always this share, whatever the queue's record says."""
    return {"quantile": quantile, "least_quantile": quantile, "surest_quantile": quantile}


ALTERNATIVES = (
    ("the 85% future, without the dispatch (the estimator until 4 December 2026)", {**fixed(0.85), "dispatch": False},
     wait_estimate),
    ("the 85% future", fixed(0.85), wait_estimate),
    ("the 88% future", fixed(0.88), wait_estimate),
    ("calibrated, without the dispatch", {"dispatch": False}, wait_estimate),
    ("0.8 waiting for one colleague to finish, 0.9 further back", fixed(0.85), by_place(0.8, 0.9)),
)


def simulate(scenario: Scenario, rng: random.Random, config: HandoffConfig, promises: PromiseConfig,
             monday: datetime, handled: list[float] | None = None,
             by_topic: dict[str, list[float]] | None = None, rule: Rule = wait_estimate,
             record: list[tuple[tuple[float, ...], float]] | None = None) -> list[Customer]:
    levels = config.queues["general"].levels
    events: list[tuple[float, int, str, object]] = []
    seq = 0

    def push(at: float, kind: str, data: object) -> None:
        nonlocal seq
        seq += 1
        heapq.heappush(events, (at, seq, kind, data))

    # arrivals (thinning of a Poisson process with the peak rate)
    peak = rate(60, scenario.per_hour)
    t, customers = 0.0, []
    while True:
        t += rng.expovariate(peak)
        if t >= 480:
            break
        if rng.random() < rate(t, scenario.per_hour) / peak:
            c = Customer(len(customers), t, "en" if rng.random() < scenario.english else "nl",
                         rng.expovariate(1 / scenario.patience_minutes), topic=rng.choice(list(TOPICS)))
            customers.append(c)
            push(t, "arrive", c)
    for agent in scenario.agents:
        push(agent.start, "shift_start", agent)
        push(agent.end, "shift_end", agent)

    online: set[Agent] = set()
    busy: dict[Agent, Customer] = {}
    waiting: list[Customer] = []
    handled = [] if handled is None else handled  # the queue's measured handling times, kept across days
    by_topic = {} if by_topic is None else by_topic  # and per topic (bot/people/queue.py)
    record = [] if record is None else record  # the queue's recent waits and what they were promised (bot/people/queue.py)
    calibration = [calibrated_quantile(record, config)]
    sweep = promises.every_seconds / 60

    def eligible(agent: Agent, c: Customer) -> bool:
        return c.language in agent.languages

    def estimate(c: Customer, now: float) -> Estimate:
        agents = [a for a in sorted(online, key=lambda a: a.name) if eligible(a, c)]
        ahead = []
        for other in waiting:
            if other is c:
                break
            if any(eligible(a, other) for a in agents):
                ahead.append(other)
        sample = handled[-config.measured_sample:]

        def times(topic: str) -> tuple[float, ...]:  # bot/people/queue.py `topic_handled_minutes`
            own = by_topic.get(topic, [])[-config.measured_sample:]
            return tuple(own) if config.by_topic and len(own) >= config.topic_min_sample else ()

        taken = sorted((a for a in agents if a in busy), key=lambda a: busy[a].taken or now)
        view = QueueView("general", len(ahead) + 1, len(agents), len([a for a in agents if a not in busy]),
                         statistics.median(sample) if sample else config.default_handling_minutes,
                         busy_minutes=tuple(now - (busy[a].taken or now) for a in taken),
                         handled=tuple(sample), busy_handled=tuple(times(busy[a].topic) for a in taken),
                         ahead_handled=tuple(times(other.topic) for other in ahead))
        if config.dispatch:  # bot/people/queue.py: every online colleague, every conversation ahead one of them may take
            crew = sorted(online, key=lambda a: a.name)
            team = tuple(Colleague(eligible(a, c), None if a not in busy else now - (busy[a].taken or now),
                                   times(busy[a].topic) if a in busy else ()) for a in crew)
            line = []
            for other in waiting:
                if other is c:
                    break
                takers = tuple(i for i, a in enumerate(crew) if eligible(a, other))
                if takers:
                    line.append(Ahead(takers, times(other.topic)))
            view = dataclasses.replace(view, team=team, line=tuple(line))
        view = dataclasses.replace(view, quantile=calibration[0])
        return rule(view, levels, config, monday + timedelta(minutes=now))

    def minutes(moment: datetime) -> float:
        return (moment - monday).total_seconds() / 60

    def lost(c: Customer, now: float) -> bool:
        """bot/promises/watch.py `_lost`: even an early future comes after the deadline."""
        found = estimate(c, now)
        return found.kind != "live" or found.soonest_minutes is None or now + found.soonest_minutes > c.deadline

    def promise(c: Customer, now: float, after: float | None = None) -> None:
        deadline = estimate(c, now).deadline
        if after is not None:  # a new time: later than the one that is failing (bot/promises/watch.py)
            deadline = max(deadline, monday + timedelta(minutes=after + config.round_to_minutes))
        c.deadline = minutes(deadline)
        created = monday + timedelta(minutes=now)
        # the sweep looks from the desk's warning on (every `every_seconds`); the last moment is exact (a deferred job)
        warn = minutes(promises.warn_at(created, deadline))
        push(math.ceil(max(warn, now) / sweep) * sweep, "check", (c, len(c.promises)))
        push(minutes(promises.renew_at(created, deadline, "handoff_wait")), "renew", (c, len(c.promises)))
        c.promises.append("open")

    def next_for(agent: Agent, now: float) -> None:
        for c in waiting:
            if eligible(agent, c):
                waiting.remove(c)
                c.taken = now
                if c.promises and c.candidates:  # the claim adds the first promise's candidates and the wait
                    record.append((c.candidates, now - c.arrived))
                    del record[:-config.measured_sample]
                    calibration[0] = calibrated_quantile(record, config)
                if c.promises and c.promises[-1] == "open":
                    c.promises[-1] = "kept" if now <= c.deadline + 1e-9 else "broken"
                busy[agent] = c
                push(now + rng.lognormvariate(math.log(7) + TOPICS[c.topic], TOPIC_SIGMA), "done", agent)
                return

    while events:
        now, _, kind, data = heapq.heappop(events)
        if kind == "arrive":
            c = data
            waiting.append(c)
            push(now + c.patience, "abandon", c)
            free = [a for a in sorted(online, key=lambda a: a.name) if a not in busy and eligible(a, c)]
            if free:
                next_for(free[0], now)
            else:
                first = estimate(c, now)
                c.candidates, c.quantile = first.candidates, first.quantile or 0.0
                promise(c, now)
                c.first_deadline = c.deadline
        elif kind in ("check", "renew"):
            c, index = data
            if c.taken is None and c.left is None and index == len(c.promises) - 1 and c.promises[-1] == "open":
                if now >= c.deadline:
                    c.promises[-1] = "broken"
                elif kind == "renew" or lost(c, now):
                    c.promises[-1] = "renewed"
                    promise(c, now, after=c.deadline)
                else:
                    push(now + sweep, "check", data)  # still possible by the live queue: looked at again
        elif kind == "abandon":
            c = data
            if c.taken is None and c in waiting:
                waiting.remove(c)
                c.left = now
                if c.promises and c.promises[-1] == "open":
                    c.promises[-1] = "broken" if now > c.deadline else "abandoned"
        elif kind == "done":
            agent = data
            c = busy.pop(agent)
            handled.append(now - (c.taken or now))
            by_topic.setdefault(c.topic, []).append(now - (c.taken or now))
            if agent in online:
                next_for(agent, now)
        elif kind == "shift_start":
            online.add(data)
            next_for(data, now)
        elif kind == "shift_end":
            online.discard(data)
    for c in customers:  # still waiting at closing time: those promises (before closing) broke
        if c.taken is None and c.left is None and c.promises and c.promises[-1] == "open":
            c.promises[-1] = "broken" if c.deadline <= 480 else "open_after_closing"
    return customers


def counted(c: Customer) -> bool:
    """A customer whose wait promise counts: one was made, and it did not end in them leaving before
    its deadline or in closing time."""
    return bool(c.promises) and c.promises[0] not in ("abandoned", "open_after_closing")


def summarise(customers: list[Customer]) -> dict:
    outcomes = [o for c in customers for o in c.promises if o not in ("abandoned", "open_after_closing")]
    # a customer's wait promise counts once: kept (first time), renewed in time (then kept or not), broken
    first = [c.promises[0] for c in customers if counted(c)]
    finals = [c.promises[-1] for c in customers if c.promises and c.promises[-1] not in ("abandoned", "open_after_closing")]
    told = [c for c in customers if c.promises and c.taken is not None]
    waits = [c.taken - c.arrived for c in told]
    promised = [c.first_deadline - c.arrived for c in told]
    early = [c.deadline - c.taken for c in told if c.taken <= c.deadline]
    late = [c.taken - c.deadline for c in told if c.taken > c.deadline]
    n = len(first) or 1
    return {
        "customers": len(customers), "promised": len(first), "served_at_once": sum(1 for c in customers if not c.promises),
        "kept": sum(1 for o in first if o == "kept") / n,
        "renewed": sum(1 for o in first if o == "renewed") / n,
        "broken": sum(1 for o in first if o == "broken") / n,
        "kept_or_renewed": sum(1 for o in first if o in ("kept", "renewed")) / n,
        "final_broken": sum(1 for o in finals if o == "broken") / (len(finals) or 1),
        "all_promises": len(outcomes),
        "median_wait": statistics.median(waits) if waits else 0.0,
        "median_promise": statistics.median(promised) if promised else 0.0,
        "ratio": (statistics.median(promised) / statistics.median(waits)) if waits and statistics.median(waits) else 0.0,
        "median_early": statistics.median(early) if early else 0.0,
        "median_late": statistics.median(late) if late else 0.0,
        "abandoned": sum(1 for c in customers if c.left is not None) / (len(customers) or 1),
        "quantile": statistics.median(c.quantile for c in told) if told else 0.0,
    }


JOBS: list[tuple] = []  # the runs: scenario, settings, estimator (and the seed, `spread`)
_SHARED: dict = {}


def _days(days: "Days", promises: PromiseConfig, seed: int) -> None:
    _SHARED.update(days=days, promises=promises, seed=seed)


def _job(index: int) -> dict:
    scenario, config, rule = JOBS[index]
    return run(scenario, random.Random(_SHARED["seed"]), config, _SHARED["promises"], _SHARED["days"], rule)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--promises", type=int, default=2000, help="and more days until this many were promised")
    parser.add_argument("--processes", type=int, default=os.cpu_count() or 1, help="runs at once")
    parser.add_argument("--spread", help="only the configured estimator, with each of these seeds (1,2,3): "
                                         "writes docs/promises-seeds.md")
    args = parser.parse_args()
    if args.spread:
        return spread([int(seed) for seed in args.spread.split(",")], args)
    config, promises = HandoffConfig.load(), PromiseConfig.load()
    levels = config.queues["general"].levels
    days = Days(levels, args.days, args.promises)
    # every run on the same days, from the same seed: the scenarios and settings differ, not the luck
    JOBS.extend((scenario, config, wait_estimate) for scenario in SCENARIOS)
    JOBS.extend((scenario, dataclasses.replace(config, by_topic=False), wait_estimate) for scenario in SCENARIOS[:2])
    # the same normal days at fixed shares: how sure a promise is against how long it is
    JOBS.extend((SCENARIOS[1], dataclasses.replace(config, **fixed(q)), wait_estimate) for q in FRONTIER)
    JOBS.extend((scenario, dataclasses.replace(config, **changes), rule)
                for _, changes, rule in ALTERNATIVES for scenario in SCENARIOS)
    context = multiprocessing.get_context("fork")  # the jobs (closures among them) stay in this process's memory
    with context.Pool(args.processes, initializer=_days, initargs=(days, promises, args.seed)) as pool:
        done = iter(pool.map(_job, range(len(JOBS))))
    results = {scenario.name: next(done) for scenario in SCENARIOS}
    pooled = {scenario.name: next(done) for scenario in SCENARIOS[:2]}
    frontier = [(q, next(done)) for q in FRONTIER]
    others = [(label, {scenario.name: next(done) for scenario in SCENARIOS}) for label, _, _ in ALTERNATIVES]
    write(results, frontier, pooled, others, config, promises, args)
    for name, r in results.items():
        print(f"{name:20} kept {r['kept']:.1%} renewed {r['renewed']:.1%} broken {r['broken']:.1%} "
              f"kept-or-renewed {r['kept_or_renewed']:.1%} promise/wait {r['ratio']:.2f}")
    return 0


def _seeded(index: int) -> dict:
    scenario, config, rule, seed = JOBS[index]
    return run(scenario, random.Random(seed), config, _SHARED["promises"], _SHARED["days"], rule)


def spread(seeds: list[int], args) -> int:
    """The configured estimator in every scenario with other seeds: how much of the result is luck."""
    config, promises = HandoffConfig.load(), PromiseConfig.load()
    days = Days(config.queues["general"].levels, args.days, args.promises)
    JOBS[:] = [(scenario, config, wait_estimate, seed) for seed in seeds for scenario in SCENARIOS]
    with multiprocessing.get_context("fork").Pool(args.processes, initializer=_days,
                                                  initargs=(days, promises, 0)) as pool:
        done = iter(pool.map(_seeded, range(len(JOBS))))
    table = {seed: {scenario.name: next(done) for scenario in SCENARIOS} for seed in seeds}
    lines = [
        "# Honest estimates under load: other seeds", "",
        "`python scripts/simulate_promises.py --spread " + ",".join(map(str, seeds)) + "`: the configured estimator",
        "(docs/promises.md, seed 7) in every scenario with other seeds: the same days, other arrivals, handling",
        "times and patience. Each cell: kept outright / median promise over median wait (customers promised).", "",
        "| seed | " + " | ".join(s.name for s in SCENARIOS) + " | goal parts NOT met |",
        "|---|" + "---|" * len(SCENARIOS) + "---|",
    ]
    for seed, results in table.items():
        missed = [goal for goal, ok in goals(results).items() if not ok]
        lines.append(f"| {seed} | " + " | ".join(f"{r['kept']:.1%} / {r['ratio']:.2f} ({r['promised']})" for r in results.values())
                     + f" | {'; '.join(missed) or 'none'} |")
    kept = [results["normal"]["kept"] for results in table.values()]
    ratios = [r["ratio"] for results in table.values() for r in results.values()]
    lines += ["", f"Kept outright under normal load: {min(kept):.1%} to {max(kept):.1%} (mean {statistics.mean(kept):.1%}); "
                  f"median promise over median wait: {min(ratios):.2f} to {max(ratios):.2f} over every scenario and seed.",
              "Kept or renewed in time: " + ", ".join(sorted({f"{r['kept_or_renewed']:.1%}" for results in table.values()
                                                              for r in results.values()})) + ".", ""]
    (DOCS / "promises-seeds.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))
    return 0


@dataclass
class Days:
    """The working days a scenario runs on (Mondays to Fridays from 2 November 2026, no holidays):
    at least `least`, and more until `promises` customers were promised a time (a quiet queue
    promises 8 a day: 60 days leave its median ratio to the luck of the draw)."""
    levels: ServiceLevels
    least: int
    promises: int
    starts: list[datetime] = field(default_factory=list)

    def __getitem__(self, i: int) -> datetime:
        day = (self.starts[-1] + timedelta(days=1)).date() if self.starts else datetime(2026, 11, 2).date()
        while len(self.starts) <= i:
            opening = self.levels.opening(day)
            if opening and opening[0].hour == 9:
                self.starts.append(datetime.combine(day, datetime.min.time(), self.levels.tz).replace(hour=9))
            day += timedelta(days=1)
        return self.starts[i]


def run(scenario: Scenario, rng: random.Random, config: HandoffConfig, promises: PromiseConfig,
        days: Days, rule: Rule = wait_estimate) -> dict:
    """The scenario day after day (every run on the same days), with the measured handling times
    carried from day to day (as the queue keeps them in Redis)."""
    customers: list[Customer] = []
    handled: list[float] = []
    record: list[tuple[tuple[float, ...], float]] = []
    by_topic: dict[str, list[float]] = {}
    day = promised = 0
    while day < days.least or promised < days.promises:
        today = simulate(scenario, rng, config, promises, days[day], handled, by_topic, rule, record)
        customers.extend(today)
        promised += sum(1 for c in today if counted(c))
        del handled[:-config.measured_sample]
        for times in by_topic.values():
            del times[:-config.measured_sample]
        day += 1
    return {**summarise(customers), "days": day}


def goals(results: dict) -> dict[str, bool]:
    """Issue 12's goal, part by part, for the results of every scenario."""
    normal = results.get("normal", {})
    return {
        "kept or renewed in time >= 95% in every scenario": all(r["kept_or_renewed"] >= 0.95 for r in results.values()),
        "kept outright >= 90% under normal load": normal.get("kept", 0) >= 0.90,
        "median promise <= 2x the actual wait under normal load": normal.get("ratio", 99) <= 2,
        "median promise <= 2x the actual wait in every scenario": all(r["ratio"] <= 2 for r in results.values()),
    }


def write(results: dict, frontier: list, pooled: dict, others: list, config: HandoffConfig, promises: PromiseConfig, args) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(results)
    fig, (ax, ratio) = plt.subplots(1, 2, figsize=(11, 4), gridspec_kw={"width_ratios": (3, 2)})
    bottom = [0.0] * len(names)
    for key, colour, label in (("kept", "#15803d", "kept / gehouden"), ("renewed", "#d97706", "renewed / vernieuwd"),
                               ("broken", "#b91c1c", "broken / gebroken")):
        values = [results[n][key] * 100 for n in names]
        ax.bar(names, values, bottom=bottom, color=colour, label=label)
        bottom = [b + v for b, v in zip(bottom, values)]
    ax.axhline(95, color="black", linestyle="--", linewidth=1)
    ax.set_ylabel("% of wait promises / % van de wachtbeloftes")
    ax.set_title("Wait promises per scenario / Wachtbeloftes per scenario")
    ax.legend(loc="lower left")
    ax.tick_params(axis="x", labelsize=8)
    ratio.bar(names, [results[n]["ratio"] for n in names], color="#1d4ed8")
    ratio.axhline(2, color="black", linestyle="--", linewidth=1)
    ratio.set_ylabel("median promise / median wait")
    ratio.set_title("Promise vs wait / Belofte t.o.v. wachttijd")
    ratio.tick_params(axis="x", labelsize=8, labelrotation=20)
    for i, n in enumerate(names):
        ratio.annotate(f"{results[n]['ratio']:.2f}", (i, results[n]["ratio"]), ha="center", va="bottom", fontsize=8)
    fig.tight_layout()
    fig.savefig(DOCS / "promises.png", dpi=110)
    lines = [
        "# Honest estimates under load (simulation)", "",
        "Produced by `python scripts/simulate_promises.py` (the real estimator `bot/people/estimate.py` with",
        "config/handoff.yml and the service levels, and the promise timing of `bot/promises/state.py`, on a",
        f"virtual clock): at least {args.days} working days per scenario, and more until {args.promises} customers were promised",
        f"a time (the quiet queue promises about 8 a day), seed {args.seed}. Arrivals Poisson with a morning",
        "peak (10:00-11:30, x1.8) and a lunch peak (12:00-13:30, x1.5); agents on shifts (every third from 10:00),",
        "half of them Dutch and English, half Dutch only; 25% of the customers write English; handling lognormal,",
        "median 7 min, sigma 0.5, of which the topic explains part (four topics, equally common, medians 4.4, 6.0,",
        "8.2 and 11.2 min, sigma 0.36 around each); patience exponential, mean 25 min. A customer an agent takes",
        "at once gets no promise. The estimator counts each busy colleague's conversation and each one before",
        f"the customer in line with the times measured for its topic (`estimate.by_topic`, once {config.topic_min_sample} are measured).",
        "Its futures play out the queue's dispatch (`estimate.dispatch`): every online colleague takes the first",
        "one in line they may take, so a Dutch-only colleague takes the Dutch customers before an English one.",
        f"How sure a promise is comes from the queue's record of its last {config.measured_sample} waits (`estimate.calibrated_quantile`):",
        f"the surest share from {config.least_quantile} to {config.surest_quantile} at which those customers would have been promised at",
        f"most {config.promise_over_wait}x their wait (median over median); {config.quantile} until {config.calibrate_after} waits are measured.",
        f"The measured handling times and the record carry over from day to day, as in Redis. A wait",
        f"is renewed {promises.wait_renew_before.total_seconds():.0f} s before its deadline at the latest, earlier when the live queue says it",
        "cannot be kept any more.",
        "", "Goal (issue 12): >= 95% of wait promises kept or renewed in time in every scenario, >= 90% kept",
        "outright under normal load, the median promise at most 2x the actual wait.", "",
        "| scenario | days | customers | promised | kept | renewed in time | broken | kept or renewed | median wait | median promise | promise / wait | share promised at (median) | abandoned |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in results.items():
        lines.append(f"| {name} | {r['days']} | {r['customers']} | {r['promised']} | {r['kept']:.1%} | {r['renewed']:.1%} | "
                     f"{r['broken']:.1%} | {r['kept_or_renewed']:.1%} | {r['median_wait']:.1f} min | "
                     f"{r['median_promise']:.1f} min | {r['ratio']:.2f} | {r['quantile']:.2f} | {r['abandoned']:.1%} |")
    met = goals(results)
    lines += ["", "Against the goal:", ""]
    lines += [f"- {goal}: {'met' if ok else 'NOT met'}" for goal, ok in met.items()]
    lines += [
        "", "## How sure a promise is, against how long it is (normal load, one fixed share instead of the calibrated one)", "",
        "The estimator promises the time that this share of the likely futures stays within (futures resampled",
        "from the measured handling times and what each busy colleague has already spent). A higher share keeps",
        "more promises outright and makes them longer:", "",
        "| quantile | kept | renewed in time | broken | median wait | median promise | promise / wait |",
        "|---|---|---|---|---|---|---|",
    ]
    for quantile, r in frontier:
        lines.append(f"| {quantile} | {r['kept']:.1%} | {r['renewed']:.1%} | {r['broken']:.1%} | {r['median_wait']:.1f} min | "
                     f"{r['median_promise']:.1f} min | {r['ratio']:.2f} |")
    lines += [
        "", "## What the topic adds (`estimate.by_topic: false`: every conversation counts with the queue's times)", "",
        "| scenario | estimator | kept | renewed in time | broken | median promise | promise / wait |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, r in pooled.items():
        for label, x in (("by topic", results[name]), ("the queue's times only", r)):
            lines.append(f"| {name} | {label} | {x['kept']:.1%} | {x['renewed']:.1%} | {x['broken']:.1%} | "
                         f"{x['median_promise']:.1f} min | {x['ratio']:.2f} |")
    lines += [
        "", "## Other estimators tried (every scenario: kept outright / median promise over median wait)", "",
        "| estimator | " + " | ".join(results) + " | goal parts NOT met |",
        "|---|" + "---|" * len(results) + "---|",
    ]
    for label, other in [("configured: calibrated, with the dispatch", results)] + others:
        missed = [goal for goal, ok in goals(other).items() if not ok]
        lines.append(f"| {label} | " + " | ".join(f"{r['kept']:.1%} / {r['ratio']:.2f}" for r in other.values())
                     + f" | {'; '.join(missed) or 'none'} |")
    lines += [
        "", "Why one fixed share does not do: in a quiet queue the customer who waits, waits for one of two or three",
        "busy colleagues to finish, and what is left of a conversation varies more, against its median, than a",
        "place further back in line (a sum of several conversations): a promise kept 85 to 90 times in 100 is",
        "then over twice the median wait, while under normal load a share that keeps 90% outright stays under",
        "2x. The calibrated estimator holds every queue to its own record instead: a quiet queue promises less",
        "surely (its customers are renewed more often, never left without a time), a busy one more surely.",
        "Without the dispatch the English customers' promises count the colleague who speaks English taking",
        "every Dutch customer ahead as well; the day an agent leaves early (from 13:00 one colleague speaks",
        "English) that makes them longest.",
    ]
    plain = dict(others).get("calibrated, without the dispatch")
    if plain:
        lines += ["", "What playing out the dispatch adds, with the same record (kept outright, without -> with): " + ", ".join(
            f"{name} {plain[name]['kept']:.1%} -> {results[name]['kept']:.1%}" for name in results) + "."]
    both = [q for q, r in frontier if r["kept"] >= 0.90 and r["ratio"] <= 2]
    if both:
        lines += ["", f"Under normal load both \">= 90% kept outright\" and \"median promise <= 2x the wait\" hold at "
                      f"{', '.join(str(q) for q in both)}."]
    else:
        lines += [
            "", "No share meets both \">= 90% kept outright\" and \"median promise <= 2x the wait\" under normal load here:",
            "the time until one of the busy colleagues finishes varies too much (handling lognormal with sigma 0.5)",
            "for a promise that is both kept 9 times in 10 and at most twice the typical wait. The configured share",
            "keeps the promise first; the customer whose wait runs longer hears a new time before the old one passes.",
        ]
    if not all(met.values()):
        lines += ["", "Not every goal is met: the lines marked NOT met above are the gap that is left."]
    lines += [
        "", "The first estimator (rounds of the median handling time, in steps of 5 minutes) kept 93.0% under",
        "normal load at a promise of 2.96x the wait, 4.14x when quiet.",
    ]
    lines += ["", "With other seeds (how much of this is luck): [promises-seeds.md](promises-seeds.md),",
              "`python scripts/simulate_promises.py --spread 1,2,3,4,5,6`."]
    lines += ["", "![Wait promises per scenario](promises.png)", ""]
    (DOCS / "promises.md").write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())
