"""The wait estimate plays out the queue's own dispatch (a Dutch-only colleague takes the Dutch
customers before an English one), and its queue's record of waits sets how sure a promise is
(`estimate.calibrated_quantile`): pure functions at a fixed `now`, and the record in real Redis
(kept by the claim, once per wait), at a clock the test sets."""

from __future__ import annotations

import dataclasses
import json
import uuid
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.people import AgentInfo, HandoffConfig, Handoffs, QueueView
from bot.people.estimate import QUANTILES, Ahead, Colleague, calibrated_quantile, wait_estimate
from tests.test_handoff import ANNA, BRAM, Clock, handoffs  # noqa: F401 - the fixture, with this module's clock

AMS = ZoneInfo("Europe/Amsterdam")
MONDAY_10 = datetime(2026, 11, 23, 10, 0, tzinfo=AMS)


@pytest.fixture
def clock() -> Clock:
    return Clock(MONDAY_10 - timedelta(minutes=5))


async def anna_busy_and_one_waiting(handoffs: Handoffs, clock: Clock) -> str:
    """Every measured time 10 minutes; at 10:00 Anna (the only one online) takes a conversation and
    one more customer waits: that one's conversation."""
    for seconds in (600, 600, 600):
        await handoffs._redis.lpush(handoffs._k("handoff", "handled", "general"), seconds)
    busy = f"c{uuid.uuid4().hex}"
    await handoffs.enqueue(busy, reason="asked", language="nl")
    clock.set(MONDAY_10)
    await handoffs.heartbeat(ANNA)
    await handoffs.claim(busy, ANNA)
    conv = f"c{uuid.uuid4().hex}"
    await handoffs.enqueue(conv, reason="asked", language="nl")
    return conv


def english_behind_two_dutch(**changes) -> QueueView:
    """Anna (Dutch and English) just took a 10-minute conversation, Bram (Dutch only) has 8 minutes
    left of his; two Dutch customers (6 minutes each) wait before an English one."""
    view = QueueView("general", position=3, agents=1, free=0, handling_minutes=10, busy_minutes=(0.0,),
                     handled=(10.0,), busy_handled=((10.0,),), ahead_handled=((6.0,), (6.0,)),
                     team=(Colleague(True, 0.0, (10.0,)), Colleague(False, 2.0, (10.0,))),
                     line=(Ahead((0, 1), (6.0,)), Ahead((0, 1), (6.0,))))
    return dataclasses.replace(view, **changes)


def test_the_dispatch_lets_a_dutch_only_colleague_take_the_dutch_customers_ahead():
    config = HandoffConfig.load()
    levels = config.queues["general"].levels
    # Bram is free at 8 and takes the first Dutch one, Anna at 10 the second: at 16 Anna's next is the English one
    estimate = wait_estimate(english_behind_two_dutch(), levels, config, MONDAY_10)
    assert (estimate.kind, estimate.minutes, estimate.deadline) == ("live", 16, MONDAY_10 + timedelta(minutes=16))
    # without the dispatch Anna alone takes both: 10 + 6 + 6 = 22, above 20 in steps of 5
    assert wait_estimate(english_behind_two_dutch(team=(), line=()), levels, config, MONDAY_10).minutes == 25
    # a colleague who is free takes the first in line at once: Bram, free, takes both Dutch ones (now and
    # at 6), so Anna's next, at 10, is the English one
    free_bram = english_behind_two_dutch(team=(Colleague(True, 0.0, (10.0,)), Colleague(False, None)))
    assert wait_estimate(free_bram, levels, config, MONDAY_10).minutes == 10
    # Anna free and nobody ahead she may take: a colleague is free for it (`free_minutes`)
    anna_free = english_behind_two_dutch(position=1, free=1, busy_minutes=(), busy_handled=(), ahead_handled=(),
                                         team=(Colleague(True, None), Colleague(False, 2.0, (10.0,))), line=())
    free = wait_estimate(anna_free, levels, config, MONDAY_10)
    assert (free.minutes, free.candidates) == (config.free_minutes, ())  # not a share of futures: not recorded


def test_the_estimate_tells_what_it_would_have_promised_at_every_share():
    config = HandoffConfig.load()
    levels = config.queues["general"].levels
    # Anna just took a conversation; the measured times are 1, 2, ..., 20 minutes: at share q the promise is
    # the q-th of them (never under 2 minutes), to the whole minute after it
    view = QueueView("general", position=1, agents=1, free=0, handling_minutes=10.5, busy_minutes=(0.0,),
                     handled=tuple(float(m) for m in range(1, 21)), team=(Colleague(True, 0.0),))
    estimate = wait_estimate(view, levels, config, MONDAY_10)
    assert len(estimate.candidates) == len(QUANTILES) == 26
    assert (estimate.quantile, estimate.minutes) == (0.85, estimate.candidates[QUANTILES.index(0.85)])
    assert estimate.candidates == tuple(sorted(estimate.candidates))
    surer = wait_estimate(dataclasses.replace(view, quantile=0.95), levels, config, MONDAY_10)
    assert (surer.quantile, surer.minutes) == (0.95, estimate.candidates[-1])
    assert surer.minutes > estimate.minutes


def test_the_record_of_waits_sets_how_sure_a_promise_is():
    config = HandoffConfig.load()  # promise_over_wait 1.95, least 0.75, surest 0.95, after 50 waits
    # every customer waited 1 minute; at the i-th share (0.70 + i/100) they would have been promised i/4 minutes
    record = [(tuple(i / 4 for i in range(len(QUANTILES))), 1.0)] * 50
    # at most 1.95 times the wait: i/4 <= 1.95 up to i = 7, the 0.77 share
    assert calibrated_quantile(record, config) == 0.77
    assert calibrated_quantile(record[:49], config) == config.quantile == 0.85  # 49 waits: not yet
    # median over median: half of them waited 3 minutes and were promised 3 times as long
    longer = [(tuple(3 * i / 4 for i in range(len(QUANTILES))), 3.0)] * 25 + record[:25]
    assert calibrated_quantile(longer, config) == 0.77  # median wait 2, median promise (i/4 + 3i/4)/2 = i/2 <= 3.9
    # never less sure than `least_quantile`, never surer than `surest_quantile`
    assert calibrated_quantile(record, dataclasses.replace(config, least_quantile=0.8)) == 0.8
    exact = [(tuple(1.0 for _ in QUANTILES), 1.0)] * 50
    assert calibrated_quantile(exact, config) == 0.95
    assert calibrated_quantile(exact, dataclasses.replace(config, surest_quantile=0.9)) == 0.9
    # an entry of another length (an older grid) does not count
    assert calibrated_quantile(record + [((1.0,), 1.0)] * 10, config) == 0.77


async def test_the_claim_records_the_first_promise_with_the_wait_once(handoffs, clock):
    conv = await anna_busy_and_one_waiting(handoffs, clock)
    first = await handoffs.estimate(conv)
    assert (first.kind, first.quantile, first.minutes) == ("live", 0.85, 10)  # nothing recorded yet: 0.85
    await handoffs.promised(conv, first.deadline, first)
    clock.advance(minutes=4)
    later = await handoffs.estimate(conv)
    await handoffs.promised(conv, later.deadline, later)  # told again ("how long still?"): the first one counts
    clock.advance(minutes=3)
    await handoffs.heartbeat(BRAM)
    await handoffs.claim(conv, BRAM)
    raw = await handoffs._redis.lrange(handoffs._k("handoff", "promised", "general"), 0, -1)
    assert [json.loads(r) for r in raw] == [{"c": list(first.candidates), "w": 7.0}]
    assert (await handoffs.record("general")) == [(first.candidates, 7.0)]
    assert "candidates" not in await handoffs.get(conv)
    # handed back to the queue and claimed again: not counted twice
    await handoffs.transfer(conv, BRAM)
    await handoffs.claim(conv, BRAM)
    assert await handoffs._redis.llen(handoffs._k("handoff", "promised", "general")) == 1


async def test_the_estimate_promises_as_surely_as_the_queues_record_allows(handoffs, clock):
    conv = await anna_busy_and_one_waiting(handoffs, clock)
    key = handoffs._k("handoff", "promised", "general")
    # 50 waits of 1 minute that would have been promised i/4 minutes at the i-th share: the 0.77 share
    entry = json.dumps({"c": [i / 4 for i in range(len(QUANTILES))], "w": 1.0})
    await handoffs._redis.lpush(key, *[entry] * 50)
    assert (await handoffs.estimate(conv)).quantile == 0.77
    # promises that were as long as the waits: the surest share
    await handoffs._redis.delete(key)
    await handoffs._redis.lpush(key, *[json.dumps({"c": [1.0] * len(QUANTILES), "w": 1.0})] * 50, "not json")
    assert (await handoffs.estimate(conv)).quantile == 0.95


async def test_the_estimate_plays_out_the_dispatch_of_the_live_queue(handoffs, clock):
    # every measured time 10 minutes; Bram (Dutch only) took his 2 minutes before Anna took hers
    for seconds in (600, 600, 600):
        await handoffs._redis.lpush(handoffs._k("handoff", "handled", "general"), seconds)
    bram_s, anna_s = f"c{uuid.uuid4().hex}", f"c{uuid.uuid4().hex}"
    await handoffs.enqueue(bram_s, reason="asked", language="nl")
    await handoffs.enqueue(anna_s, reason="asked", language="nl")
    waiting = []
    for language in ("nl", "nl", "en"):  # in this order, a second apart
        clock.advance(seconds=1)
        waiting.append(f"c{uuid.uuid4().hex}")
        await handoffs.enqueue(waiting[-1], reason="asked", language=language)
    clock.set(MONDAY_10 - timedelta(minutes=2))
    await handoffs.claim(bram_s, BRAM)
    clock.set(MONDAY_10)
    await handoffs.claim(anna_s, ANNA)
    await handoffs.heartbeat(ANNA)
    await handoffs.heartbeat(BRAM)
    english = waiting[-1]
    estimate = await handoffs.estimate(english)
    # Bram takes the first Dutch one at 8, Anna the second at 10, and the English one at 20
    assert (estimate.position, estimate.agents, estimate.minutes) == (3, 1, 20)
    assert estimate.deadline == MONDAY_10 + timedelta(minutes=20)
    # without the dispatch: Anna alone takes all three, 10 + 10 + 10 = 30
    alone = Handoffs(handoffs._redis, handoffs._prefix, dataclasses.replace(handoffs.config, dispatch=False),
                     clock=clock)
    assert (await alone.estimate(english)).minutes == 30
    # the Dutch one second in line: Bram at 8 takes the first, Anna at 10 this one
    assert (await handoffs.estimate(waiting[1])).minutes == 10
