"""The handoff queue in real Redis: routing by mandate, priority, claims, and wait estimates
against a scripted queue (agents online, measured handling times, business hours)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml
from redis.asyncio import Redis

from bot.people.handoff import AgentInfo, HandoffConfig, HandoffConfigError, HandoffError, Handoffs, mood
from bot.policy.hours import ServiceLevels, describe
from bot.policy.mandate import MandateTable
from tests.support.wait import until

AMS = ZoneInfo("Europe/Amsterdam")
MONDAY_10 = datetime(2026, 11, 23, 10, 0, tzinfo=AMS)      # a Monday, open
MONDAY_1650 = datetime(2026, 11, 23, 16, 50, tzinfo=AMS)   # 10 minutes before closing
FRIDAY_20 = datetime(2026, 11, 27, 20, 0, tzinfo=AMS)      # closed: answer on Monday
CHRISTMAS = datetime(2026, 12, 25, 11, 0, tzinfo=AMS)      # a Friday, but a public holiday

ANNA = AgentInfo("anna", "Anna de Boer", "agent", ("general", "finance"), ("nl", "en"))
BRAM = AgentInfo("bram", "Bram Smit", "agent", ("general",), ("nl",))
SEN = AgentInfo("senna", "Senna Vos", "senior_agent", ("general", "finance"), ("nl", "en"))


@pytest.fixture
async def handoffs(redis_url):
    redis = Redis.from_url(redis_url, decode_responses=True)
    prefix = f"t{uuid.uuid4().hex[:8]}"
    store = Handoffs(redis, prefix, HandoffConfig.load())
    yield store
    keys = [k async for k in redis.scan_iter(f"{prefix}:*")]
    if keys:
        await redis.delete(*keys)
    await redis.close(close_connection_pool=True)


async def enqueue(store: Handoffs, **kw) -> str:
    conv = f"c{uuid.uuid4().hex}"
    kw.setdefault("reason", "asked")
    kw.setdefault("language", "nl")
    await store.enqueue(conv, **kw)
    return conv


def test_config_loads_and_refuses_mistakes(tmp_path: Path):
    config = HandoffConfig.load()
    assert config.roles == ("agent", "senior_agent", "supervisor")
    assert config.queue_for("request_refund", "mandate").name == "finance"
    assert config.queue_for(None, "complaint").name == "complaints"
    assert config.queue_for("order_status", "asked").name == "general"
    raw = yaml.safe_load(Path("config/handoff.yml").read_text())
    for broken, message in (
        ({**raw, "default_role": "bot"}, "default_role"),
        ({**raw, "topics": {"complaint": "nowhere"}}, "topics.complaint"),
        ({**raw, "triggers": {**raw["triggers"], "misunderstood": "maybe"}}, "misunderstood"),
        ({**raw, "queues": {"finance": {"skill": "finance"}}}, "general"),
        ({**raw, "estimate": {"default_handling_minutes": -1}}, "default_handling_minutes"),
    ):
        path = tmp_path / "h.yml"
        path.write_text(yaml.safe_dump(broken))
        with pytest.raises(HandoffConfigError, match=message):
            HandoffConfig.load(path)


def test_complaints_queue_has_its_own_saturday_hours():
    config = HandoffConfig.load()
    saturday = datetime(2026, 11, 28, 11, 0, tzinfo=AMS)
    assert config.queues["complaints"].levels.is_open(saturday)
    assert not config.queues["general"].levels.is_open(saturday)


@pytest.mark.parametrize("text,expected", [
    ("Dit is echt belachelijk, al drie weken niks", "angry"),
    ("WAAR BLIJFT MIJN PAKKET NOU", "angry"),
    ("Waar is mijn pakket!!!", "angry"),
    ("This is unacceptable", "angry"),
    ("het is dringend, ik heb het morgen nodig", "urgent"),
    ("waar is mijn bestelling", None),
    ("I want a refund please", None),
    ("OK", None),
])
def test_mood(text, expected):
    assert mood(text) == expected


async def test_routing_by_mandate_skill_and_language(handoffs):
    refund = await enqueue(handoffs, reason="mandate", role="senior_agent", topic="request_refund",
                           request={"decision": "refund", "amount_cents": 20000})
    english = await enqueue(handoffs, language="en", topic="order_status")
    item = await handoffs.get(refund)
    assert (item["role"], item["queue"], item["skill"], item["state"]) == ("senior_agent", "finance", "finance", "waiting")
    assert not handoffs.eligible(item, ANNA)          # an agent may not grant a €200 refund
    assert handoffs.eligible(item, SEN)
    assert not handoffs.eligible(await handoffs.get(english), BRAM)   # Bram speaks no English
    assert handoffs.eligible(await handoffs.get(english), ANNA)
    with pytest.raises(HandoffError) as refused:
        await handoffs.claim(refund, ANNA)
    assert refused.value.code == "not_eligible"
    assert (await handoffs.claim(refund, SEN))["claimed_by"] == "senna"


async def test_priority_segment_churn_and_reason(handoffs):
    plain = await enqueue(handoffs, segment="regular", churn=0)
    gold = await enqueue(handoffs, segment="gold", churn=0)
    leaving = await enqueue(handoffs, segment="regular", churn=80)
    angry = await enqueue(handoffs, reason="angry", segment="regular", churn=0)
    order = [i["conversation"] for i in await handoffs.waiting()]
    assert order == [leaving, gold, angry, plain]  # 40, 30, 20, 0


async def test_two_agents_claim_at_once_exactly_one_wins(handoffs):
    for _ in range(5):
        conv = await enqueue(handoffs)
        results = await asyncio.gather(handoffs.claim(conv, ANNA), handoffs.claim(conv, BRAM),
                                       return_exceptions=True)
        winners = [r for r in results if isinstance(r, dict)]
        losers = [r for r in results if isinstance(r, HandoffError)]
        assert len(winners) == 1 and len(losers) == 1
        assert losers[0].code == "not_waiting"
        assert await handoffs.state(conv) == "with_agent"
        assert conv not in [i["conversation"] for i in await handoffs.waiting()]


async def test_transfer_keeps_place_and_finish_measures_handling(handoffs):
    conv = await enqueue(handoffs, topic="request_refund")
    await handoffs.claim(conv, ANNA)
    with pytest.raises(HandoffError) as not_yours:
        await handoffs.transfer(conv, BRAM, role="senior_agent")
    assert not_yours.value.code == "not_yours"
    item = await handoffs.transfer(conv, ANNA, role="senior_agent", note="€200: boven mijn mandaat",
                                   request={"decision": "refund", "amount_cents": 20000})
    assert (item["state"], item["role"], item["request"]["amount_cents"]) == ("waiting", "senior_agent", 20000)
    assert await handoffs.assigned("anna") == []
    await handoffs.claim(conv, SEN)
    assert [i["conversation"] for i in await handoffs.assigned("senna")] == [conv]
    await handoffs.finish(conv, SEN, "bot")
    assert await handoffs.state(conv) == "bot"
    assert await handoffs.handling_minutes("finance") < 1  # measured: seconds, not the default 8
    with pytest.raises(HandoffError) as again:
        await handoffs.finish(conv, SEN, "closed")
    assert again.value.code == "not_yours"


async def test_estimate_from_a_scripted_queue(handoffs):
    # nobody online in business hours: an answer within the configured response time
    first = await enqueue(handoffs)
    estimate = await handoffs.estimate(first, now=MONDAY_10)
    assert estimate.kind == "no_agents"
    assert describe(estimate.deadline, "nl", MONDAY_10, AMS) == "vandaag voor 12:00"

    # Anna online and free: the first in line gets the minimum wait
    await handoffs.heartbeat(ANNA)
    estimate = await handoffs.estimate(first, now=MONDAY_10)
    assert (estimate.kind, estimate.position, estimate.agents, estimate.minutes) == ("live", 1, 1, 5)

    # three more wait; Anna is busy with one; measured handling time 12 minutes
    for seconds in (600, 720, 900):
        await handoffs._redis.lpush(handoffs._k("handoff", "handled", "general"), seconds)
    busy = await enqueue(handoffs)
    await handoffs.claim(busy, ANNA)
    second, third = await enqueue(handoffs), await enqueue(handoffs)
    estimate = await handoffs.estimate(third, now=MONDAY_10)
    assert estimate.handling_minutes == 12
    assert (estimate.position, estimate.agents) == (3, 1)
    assert estimate.minutes == 40  # 3 rounds of 12 minutes, rounded up to 5

    # Bram comes online too: two agents share the queue
    await handoffs.heartbeat(BRAM)
    estimate = await handoffs.estimate(third, now=MONDAY_10)
    assert (estimate.agents, estimate.minutes) == (2, 15)  # Bram takes the first; then 1 round of 12

    # an English customer: only Anna may, so Bram does not count
    english = await enqueue(handoffs, language="en")
    assert (await handoffs.estimate(english, now=MONDAY_10)).agents == 1

    # a wait that runs past closing time is not promised for today
    late = await handoffs.estimate(third, now=MONDAY_1650)
    assert late.kind == "closed"
    assert describe(late.deadline, "nl", MONDAY_1650, AMS) == "morgen voor 10:00"


async def test_estimate_outside_hours_and_on_holidays(handoffs):
    conv = await enqueue(handoffs)
    await handoffs.heartbeat(ANNA)
    friday = await handoffs.estimate(conv, now=FRIDAY_20)
    assert friday.kind == "closed"
    assert describe(friday.deadline, "en", FRIDAY_20, AMS) == "Monday 30 November before 10:00"
    christmas = await handoffs.estimate(conv, now=CHRISTMAS)
    assert christmas.kind == "closed"   # Christmas and Boxing Day are closed; then the weekend
    assert describe(christmas.deadline, "nl", CHRISTMAS, AMS) == "maandag 28 december voor 10:00"


async def test_presence_expires(handoffs):
    await handoffs.heartbeat(ANNA)
    assert [a.username for a in await handoffs.online()] == ["anna"]
    await handoffs.offline(ANNA)
    assert await handoffs.online() == []


async def test_events_reach_subscribers(handoffs):
    events = handoffs.subscribe(idle=0.5)
    first = asyncio.ensure_future(events.__anext__())

    async def subscribed() -> bool:
        [(_, count)] = await handoffs._redis.pubsub_numsub(handoffs._k("desk", "events"))
        return count >= 1

    await until(subscribed, what="the subscription to desk events")
    conv = await enqueue(handoffs)
    assert (await asyncio.wait_for(first, 5)) == {"type": "queue"}
    assert (await asyncio.wait_for(events.__anext__(), 5)) == {"type": "state", "conversation": conv, "state": "waiting"}
    assert (await asyncio.wait_for(events.__anext__(), 5)) == {"type": "ping"}
    await events.aclose()
