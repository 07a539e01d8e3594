"""The handoff queue in real Redis: routing by mandate, priority, claims, and wait estimates
against a scripted queue (agents online, measured handling times, business hours), at a clock the
test sets (Monday 10:00 open, Friday 20:00 closed), so each wait is one exact text."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml
from redis.asyncio import Redis

from bot.people import AgentInfo, HandoffConfig, HandoffConfigError, HandoffError, Handoffs, QueueView, mood
from bot.people.estimate import wait_estimate, wait_text
from bot.pipeline.conversations import ConversationStore
from bot.policy.hours import describe
from bot.records.retention import purge_provisional
from tests.support.wait import until

AMS = ZoneInfo("Europe/Amsterdam")
MONDAY_10 = datetime(2026, 11, 23, 10, 0, tzinfo=AMS)      # a Monday, open
MONDAY_1650 = datetime(2026, 11, 23, 16, 50, tzinfo=AMS)   # 10 minutes before closing
FRIDAY_20 = datetime(2026, 11, 27, 20, 0, tzinfo=AMS)      # closed: answer on Monday
CHRISTMAS = datetime(2026, 12, 25, 11, 0, tzinfo=AMS)      # a Friday, but a public holiday

ANNA = AgentInfo("anna", "Anna de Boer", "agent", ("general", "finance"), ("nl", "en"))
BRAM = AgentInfo("bram", "Bram Smit", "agent", ("general",), ("nl",))
SEN = AgentInfo("senna", "Senna Vos", "senior_agent", ("general", "finance"), ("nl", "en"))


class Clock:
    """The time the test says it is; `now()` like bot/policy/clock.py's Clock."""

    def __init__(self, at: datetime) -> None:
        self.at = at

    def now(self) -> datetime:
        return self.at

    def set(self, at: datetime) -> None:
        self.at = at

    def advance(self, **delta: float) -> None:
        self.at += timedelta(**delta)


@pytest.fixture
def clock() -> Clock:
    return Clock(MONDAY_10 - timedelta(minutes=2))  # customers come in just before ten


@pytest.fixture
async def handoffs(redis_url, clock):
    redis = Redis.from_url(redis_url, decode_responses=True)
    prefix = f"t{uuid.uuid4().hex[:8]}"
    store = Handoffs(redis, prefix, HandoffConfig.load(), clock=clock)
    yield store
    keys = [k async for k in redis.scan_iter(f"{prefix}:*")]
    if keys:
        await redis.delete(*keys)
    await redis.close(close_connection_pool=True)


async def enqueue(store: Handoffs, **kw) -> str:
    """One customer more in the queue, a second after the one before."""
    store.clock.advance(seconds=1)
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
        ({**raw, "estimate": {"quantile": 1.5}}, "estimate.quantile: expected a share between 0.5 and 1"),
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
    handoffs.clock.advance(minutes=3)
    item = await handoffs.transfer(conv, ANNA, role="senior_agent", note="€200: boven mijn mandaat",
                                   request={"decision": "refund", "amount_cents": 20000})
    assert (item["state"], item["role"], item["request"]["amount_cents"]) == ("waiting", "senior_agent", 20000)
    assert await handoffs.assigned("anna") == []
    await handoffs.claim(conv, SEN)
    assert [i["conversation"] for i in await handoffs.assigned("senna")] == [conv]
    handoffs.clock.advance(minutes=9)
    await handoffs.finish(conv, SEN, "bot")
    assert await handoffs.state(conv) == "bot"
    assert await handoffs.handling_minutes("finance") == 6  # Anna's 3 and Senna's 9 minutes, not the default 8
    with pytest.raises(HandoffError) as again:
        await handoffs.finish(conv, SEN, "closed")
    assert again.value.code == "not_yours"


async def test_estimate_from_a_scripted_queue(handoffs, clock):
    # nobody online in business hours: an answer within the configured response time
    first = await enqueue(handoffs)
    clock.set(MONDAY_10)
    estimate = await handoffs.estimate(first)
    assert (estimate.kind, estimate.at) == ("no_agents", MONDAY_10)
    assert handoffs.wait_text(estimate, "nl", "WhatsApp") == (
        "Er is nu geen collega online die dit mag afhandelen. Je krijgt vandaag voor 12:00 antwoord via "
        "WhatsApp; je hoeft hier niet te wachten.")

    # Anna online and free: the first in line gets the minimum wait
    await handoffs.heartbeat(ANNA)
    estimate = await handoffs.estimate(first)
    assert (estimate.kind, estimate.position, estimate.agents, estimate.minutes) == ("live", 1, 1, 5)
    assert handoffs.wait_text(estimate, "nl", "WhatsApp") == (
        "Je bent als eerste aan de beurt: een collega reageert binnen ongeveer 5 minuten (uiterlijk vandaag voor 10:05).")
    assert handoffs.wait_text(estimate, "en", "WhatsApp") == (
        "You're next in line: a colleague will respond in about 5 minutes (by today before 10:05 at the latest).")

    # two more wait; Anna is busy with another one (for a minute now); every measured handling time 12 minutes
    for seconds in (720, 720, 720):
        await handoffs._redis.lpush(handoffs._k("handoff", "handled", "general"), seconds)
    busy = await enqueue(handoffs)
    clock.set(MONDAY_10 - timedelta(minutes=1))
    await handoffs.claim(busy, ANNA)
    second, third = await enqueue(handoffs), await enqueue(handoffs)
    clock.set(MONDAY_10)
    estimate = await handoffs.estimate(third)
    assert estimate.handling_minutes == 12
    assert (estimate.position, estimate.agents) == (3, 1)
    assert estimate.minutes == 35  # Anna: 11 more minutes for hers, then 12 for each before: 35 (above 20: steps of 5)
    assert handoffs.wait_text(estimate, "nl", "WhatsApp") == (
        "Je bent nummer 3 in de rij; er zijn nu 1 collega('s) online die dit mogen afhandelen. De verwachte "
        "wachttijd is ongeveer 35 minuten (uiterlijk vandaag voor 10:35).")
    assert (await handoffs.estimate(second)).minutes == 25  # 11 + 12 = 23: in steps of 5
    assert (await handoffs.estimate(first)).minutes == 11   # hers ends in 11: up to 20 in whole minutes

    # Bram comes online too: two agents share the queue
    await handoffs.heartbeat(BRAM)
    estimate = await handoffs.estimate(third)
    # Bram takes the first at once; Anna's ends in 11 (she takes the second); Bram's in 12: the third's turn
    assert (estimate.agents, estimate.minutes) == (2, 12)

    # an English customer: only Anna may, so Bram does not count
    english = await enqueue(handoffs, language="en")
    assert (await handoffs.estimate(english)).agents == 1

    # a wait that runs past closing time is not promised for today
    clock.set(MONDAY_1650)
    await handoffs.heartbeat(ANNA)
    await handoffs.heartbeat(BRAM)  # still online at ten to five
    late = await handoffs.estimate(third)
    assert late.kind == "closed"
    assert handoffs.wait_text(late, "nl", "WhatsApp") == (
        "Onze collega's zijn er nu niet. Je krijgt morgen voor 10:00 antwoord via WhatsApp; je kunt dit gesprek "
        "gerust verlaten.")


async def handle(store: Handoffs, clock, topic: str, minutes: float, times: int, agent: AgentInfo = BRAM) -> None:
    """`times` conversations on `topic`, each taken by `agent` and closed after `minutes`."""
    for _ in range(times):
        conv = await enqueue(store, topic=topic)
        await store.claim(conv, agent)
        clock.advance(minutes=minutes)
        await store.finish(conv, agent, "closed")


async def test_handling_times_per_topic_make_the_wait_behind_a_quick_question_short(handoffs, clock):
    # the morning's measurements: 20 order questions of 3 minutes, 20 delivery problems of 15 (the queue's median: 9)
    clock.set(MONDAY_10 - timedelta(hours=3))
    await handle(handoffs, clock, "order_status", 3, 20)
    await handle(handoffs, clock, "delivery_problem", 15, 19)
    assert await handoffs.topic_handled_minutes("general", "delivery_problem") == ()  # 19: too few to count on their own
    await handle(handoffs, clock, "delivery_problem", 15, 1)
    assert await handoffs.topic_handled_minutes("general", "delivery_problem") == (15.0,) * 20
    assert await handoffs.handling_minutes("general") == 9

    # 10:00 Anna is the only one online, one minute into an order question; a customer waits next in line
    clock.set(MONDAY_10 - timedelta(minutes=1, seconds=1))
    current = await enqueue(handoffs, topic="order_status")
    await handoffs.claim(current, ANNA)
    clock.set(MONDAY_10 - timedelta(seconds=1))
    waiting = await enqueue(handoffs)
    await handoffs.heartbeat(ANNA)
    estimate = await handoffs.estimate(waiting)
    # what is left of a 3-minute question after one: 2 minutes (never promised under `minimum_minutes`, 2)
    assert (estimate.position, estimate.agents, estimate.minutes, estimate.deadline) == (
        1, 1, 2, MONDAY_10 + timedelta(minutes=2))
    assert handoffs.wait_text(estimate, "en", "WhatsApp") == (
        "You're next in line: a colleague will respond in about 2 minutes (by today before 10:02 at the latest).")
    # a delivery problem before it in line counts with the delivery problems' 15 minutes: 2 + 15 = 17
    clock.set(MONDAY_10 - timedelta(seconds=2))
    await handoffs.finish(waiting, None, "bot")
    ahead = await enqueue(handoffs, topic="delivery_problem")
    behind = await enqueue(handoffs)
    estimate = await handoffs.estimate(behind)
    assert (estimate.position, estimate.minutes, estimate.deadline) == (2, 17, MONDAY_10 + timedelta(minutes=17))

    # without topics (`estimate.by_topic: false`) every conversation counts with the queue's mix of 3 and 15
    pooled = Handoffs(handoffs._redis, handoffs._prefix, dataclasses.replace(handoffs.config, by_topic=False),
                      clock=clock)
    assert (await pooled.estimate(behind)).minutes == 30       # 14 + 15 (85 of 100 futures): 29, in steps of 5
    assert (await pooled.estimate(ahead)).minutes == 14        # Anna's might be a delivery problem: 14 more minutes
    assert (await handoffs.estimate(ahead)).minutes == 2


async def test_a_colleague_busy_in_another_queue_counts_with_that_queues_topic_times(handoffs, clock):
    # refunds (the finance queue) take 4 minutes; the general queue's conversations 15
    clock.set(MONDAY_10 - timedelta(hours=3))
    await handle(handoffs, clock, "request_refund", 4, 20, agent=ANNA)
    await handle(handoffs, clock, "delivery_problem", 15, 20)
    assert await handoffs.topic_handled_minutes("finance", "request_refund") == (4.0,) * 20
    assert await handoffs.topic_handled_minutes("general", "request_refund") == ()
    # 10:00 Anna (general and finance) is one minute into a refund; a customer of the general queue waits
    clock.set(MONDAY_10 - timedelta(minutes=1, seconds=1))
    refund = await enqueue(handoffs, topic="request_refund")
    assert (await handoffs.get(refund))["queue"] == "finance"
    await handoffs.claim(refund, ANNA)
    clock.set(MONDAY_10 - timedelta(seconds=1))
    waiting = await enqueue(handoffs)
    await handoffs.heartbeat(ANNA)
    estimate = await handoffs.estimate(waiting)
    assert (estimate.queue, estimate.handling_minutes, estimate.minutes) == ("general", 15, 3)  # 4 - 1, not 15 - 1


async def test_estimate_outside_hours_and_on_holidays(handoffs, clock):
    clock.set(FRIDAY_20)
    conv = await enqueue(handoffs)
    await handoffs.heartbeat(ANNA)
    friday = await handoffs.estimate(conv)
    assert friday.kind == "closed"
    assert handoffs.wait_text(friday, "en", "SMS") == (
        "Our colleagues aren't in right now. You'll get an answer Monday 30 November before 10:00 via SMS; "
        "feel free to leave this conversation.")
    assert handoffs.wait_text(friday, "nl", "SMS") == (
        "Onze collega's zijn er nu niet. Je krijgt maandag 30 november voor 10:00 antwoord via SMS; je kunt dit "
        "gesprek gerust verlaten.")
    christmas = await handoffs.estimate(conv, now=CHRISTMAS)  # an explicit moment wins over the clock
    assert christmas.kind == "closed"   # Christmas and Boxing Day are closed; then the weekend
    assert describe(christmas.deadline, "nl", CHRISTMAS, AMS) == "maandag 28 december voor 10:00"


def test_the_estimate_is_a_pure_function_of_the_queue_the_hours_and_now():
    config = HandoffConfig.load()
    levels = config.queues["general"].levels
    view = QueueView(queue="general", position=4, agents=2, free=1, handling_minutes=9)
    estimate = wait_estimate(view, levels, config, MONDAY_10)
    # nothing measured: 9 minutes each; the free one takes the first at once, at 9 minutes both take
    # the second and third, at 18 the fourth's turn (in whole minutes up to 20)
    assert (estimate.kind, estimate.minutes, estimate.deadline) == ("live", 18, MONDAY_10 + timedelta(minutes=18))
    assert wait_text(estimate, "nl", AMS, "WhatsApp") == (
        "Je bent nummer 4 in de rij; er zijn nu 2 collega('s) online die dit mogen afhandelen. De verwachte "
        "wachttijd is ongeveer 18 minuten (uiterlijk vandaag voor 10:18).")
    # what a busy colleague has already spent counts: 7 of 9 minutes gone, the fourth's turn at 11
    spent = QueueView(queue="general", position=4, agents=2, free=1, handling_minutes=9, busy_minutes=(7.0,),
                      handled=(9.0,))
    assert wait_estimate(spent, levels, config, MONDAY_10).minutes == 11
    assert wait_estimate(view, levels, config, MONDAY_10) == estimate  # same input, same answer
    # up to 20 minutes the deadline is the first whole minute after the estimate, and the customer hears
    # the minutes until it: 5.2 minutes from 10:00:40 ends at 10:05:52, so "before 10:06", in about 5 minutes
    late_start = MONDAY_10 + timedelta(seconds=40)
    for handled, minutes, deadline in ((5.2, 5, "10:06"), (4.1, 4, "10:05")):
        one = QueueView(queue="general", position=1, agents=1, free=0, handling_minutes=handled, busy_minutes=(0.0,),
                        handled=(handled,))
        found = wait_estimate(one, levels, config, late_start)
        assert (found.minutes, found.deadline) == (minutes, MONDAY_10.replace(minute=int(deadline[3:])))
        assert wait_text(found, "en", AMS, "WhatsApp") == (
            f"You're next in line: a colleague will respond in about {minutes} minutes (by today before {deadline} at the latest).")
    nobody = QueueView(queue="general", position=1, agents=0, free=0, handling_minutes=8)
    odd = datetime(2026, 11, 23, 10, 7, tzinfo=AMS)
    assert wait_estimate(nobody, levels, config, odd).deadline == datetime(2026, 11, 23, 12, 15, tzinfo=AMS)
    assert wait_estimate(view, levels, config, FRIDAY_20).deadline == datetime(2026, 11, 30, 10, 0, tzinfo=AMS)


async def test_priority_and_waiting_minutes_grow_with_the_clock(handoffs, clock):
    conv = await enqueue(handoffs, segment="gold")
    assert ((await handoffs.get(conv))["priority"], (await handoffs.get(conv))["waiting_minutes"]) == (30, 0)
    clock.advance(minutes=25)
    [item] = await handoffs.waiting()
    assert (item["priority"], item["waiting_minutes"]) == (55, 25)


async def test_presence_expires(handoffs, clock):
    await handoffs.heartbeat(ANNA)
    assert [a.username for a in await handoffs.online()] == ["anna"]
    await handoffs.offline(ANNA)
    assert await handoffs.online() == []
    await handoffs.heartbeat(BRAM)
    clock.advance(seconds=59)
    assert [a.username for a in await handoffs.online()] == ["bram"]
    clock.advance(seconds=2)  # no heartbeat for over a minute: gone
    assert await handoffs.online() == []


async def test_a_clock_is_anything_with_now_or_a_callable_and_must_be_aware(handoffs):
    redis, config = handoffs._redis, handoffs.config
    assert Handoffs(redis, "t", config, clock=lambda: FRIDAY_20).now() == FRIDAY_20.astimezone(timezone.utc)
    assert Handoffs(redis, "t", config, clock=Clock(MONDAY_10)).now() == MONDAY_10
    assert Handoffs(redis, "t", config).now().tzinfo is timezone.utc
    with pytest.raises(ValueError, match="naive"):
        Handoffs(redis, "t", config, clock=lambda: datetime(2026, 11, 23, 10, 0)).now()


async def test_the_handoff_state_is_kept_only_in_the_handoff_keys(handoffs, redis_url):
    """One owner each: the queue writes its own keys, never the conversation hash
    (bot/pipeline/conversations.py's); a conversation without a handoff is with the bot."""
    redis, prefix = handoffs._redis, handoffs._prefix
    store, session = ConversationStore(redis, prefix), uuid.uuid4().hex
    conv = await store.key_for("webchat", session)
    before = await store.get(conv)
    assert "state" not in before and await handoffs.state(conv) == "bot"
    await handoffs.enqueue(conv, reason="asked", language="nl")
    assert await handoffs.state(conv) == "waiting"
    await handoffs.claim(conv, ANNA)
    assert await handoffs.state(conv) == "with_agent"
    await handoffs.promised(conv, MONDAY_10)
    await handoffs.finish(conv, ANNA, "closed")
    assert await handoffs.state(conv) == "closed"
    assert await store.get(conv) == before
    keys = sorted([k async for k in redis.scan_iter(f"{prefix}:*")])
    assert keys == sorted([f"{prefix}:conv:{conv}", f"{prefix}:identity:webchat:{session}",
                           f"{prefix}:handoff:{conv}", f"{prefix}:handoff:handled:general"])


async def test_retention_keeps_an_anonymous_conversation_that_waits_for_a_person(handoffs, engine):
    """bot/records/retention.py reads the handoff state from the queue's keys."""
    redis, prefix = handoffs._redis, handoffs._prefix
    store = ConversationStore(redis, prefix)
    now = datetime(2026, 11, 23, 3, 30, tzinfo=timezone.utc)
    waits = await store.key_for("webchat", uuid.uuid4().hex)
    idle = await store.key_for("webchat", uuid.uuid4().hex)
    for conv in (waits, idle):
        await store.update(conv, created=f"{(now - timedelta(days=40)).timestamp():.3f}")
    await handoffs.enqueue(waits, reason="asked", language="nl")
    purged = await purge_provisional(engine, redis, prefix, now, days=30)
    assert purged["conversations"] == 1
    assert await store.get(idle) == {} and (await store.get(waits))["last_channel"] == "webchat"
    await handoffs.finish(waits, None, "closed")
    assert (await purge_provisional(engine, redis, prefix, now, days=30))["conversations"] == 1
    assert await store.get(waits) == {}


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
