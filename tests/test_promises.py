"""Promises kept (bot/promises): every timed statement is a record, its state decided in one
place, watched by the scheduler (arq on the real Redis) on a fixed clock: a wait with no free
colleague renewed on WhatsApp before its deadline, a ticket renewed within business hours, a
promise broken when nobody acts, a renewal that cannot be delivered retried and then broken, an
agent's own promise, two schedulers that never send one message twice, and one that picks the
work up again after a restart. Messages go out through the real Twilio sender to the fake Twilio
server; the records are the demo shop in SQLite."""

from __future__ import annotations

import asyncio
import os
import secrets
from datetime import timedelta

import aiohttp
import pytest
from redis.asyncio import Redis

from bot.delivery.outbound import Outbound
from bot.delivery.queue import Delivery
from bot.people import AgentInfo, HandoffConfig, Handoffs
from bot.people.workflow import AgentWorkflow
from bot.pipeline.conversations import ConversationStore
from bot.pipeline.transcript import Transcript
from bot.policy.clock import FixedClock
from bot.promises import state
from bot.promises import watch as watching
from bot.promises.scheduler import PromiseScheduler
from bot.promises.state import PromiseConfig
from bot.promises.watch import PromiseWatch
from bot.records.repository import Records, aware
from bot.shared.db import create_engine
from bot.shared.settings import Settings
from channels.twilio import TwilioSender, WhatsAppWindow
from tests.support.clock import business_monday, local
from tests.support.fake_twilio import FakeTwilio
from tests.support.stack import demo_shop_db
from tests.support.wait import until

REDIS_URL = os.environ.get("TEST_TWILIO_REDIS_URL", "redis://127.0.0.1:6379/12")
MONDAY = business_monday(10)
ANNA = AgentInfo("anna", "Anna de Boer", "agent", ("general", "finance"), ("nl", "en"))
JAMES = "K10015"  # English, prefers WhatsApp, +353861234515; order under way with DHL, 3 days late in the demo
TEMPLATE = "HXproactive0000000000000000000000"  # the approved WhatsApp template outside the 24-hour window


# -- the one place that decides -------------------------------------------------------------------
def test_the_state_of_a_promise_is_decided_in_one_place():
    deadline = MONDAY + timedelta(hours=2)
    assert state.answered(deadline, deadline).status == "kept"
    late = state.answered(deadline, deadline + timedelta(minutes=30))
    assert (late.status, late.reason, late.answered_at) == ("broken", "answered 30 min late",
                                                           deadline + timedelta(minutes=30))
    told = state.renewed(deadline, deadline - timedelta(minutes=5), "no colleague free in time")
    assert (told.status, told.settled_at) == ("renewed", deadline - timedelta(minutes=5))
    too_late = state.renewed(deadline, deadline + timedelta(minutes=1), "x")
    assert (too_late.status, too_late.settled_at) == ("broken", deadline)  # broken at its deadline
    assert state.expired(deadline, deadline - timedelta(seconds=1)) is None
    assert state.expired(deadline, deadline + timedelta(hours=1)).settled_at == deadline


def test_the_desk_is_warned_a_share_of_the_window_before_and_the_customer_told_before_the_deadline():
    config = PromiseConfig.load()
    day = MONDAY + timedelta(hours=8)  # an eight-hour window: warned 20% (1:36) before
    assert config.warn_at(MONDAY, day) == day - timedelta(hours=1, minutes=36)
    assert config.renew_at(MONDAY, day) == day - timedelta(minutes=5)
    short = MONDAY + timedelta(minutes=5)  # a five-minute wait: warned at once, renewed a minute before
    assert config.warn_at(MONDAY, short) == MONDAY
    assert config.renew_at(MONDAY, short) == MONDAY + timedelta(minutes=4)
    ten = MONDAY + timedelta(minutes=10)  # 20% of ten minutes: two minutes before
    assert config.renew_at(MONDAY, ten) == MONDAY + timedelta(minutes=8)
    assert config.rules("handoff_wait").renew and config.rules("complaint").renew_hours == 4
    with pytest.raises(ValueError):
        PromiseConfig.from_dict({"watch": {"lead_fraction": 1.5}})


# -- the parts, for real --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def fake():
    twilio = FakeTwilio()
    twilio.start()
    yield twilio
    twilio.stop()


@pytest.fixture(scope="module")
def shop_url(tmp_path_factory) -> str:
    return demo_shop_db(tmp_path_factory.mktemp("promises"))


class World:
    """One gateway's parts around the records: conversation store, people's queue, the one
    outbound path (real Twilio sender to the fake), the agent workflow and the promise watch."""

    def __init__(self, redis, prefix, records, http, fake, clock, config=None, template: str = "") -> None:
        settings = Settings(redis_url=REDIS_URL, key_prefix=prefix, public_base_url="https://bot.example.com",
                            twilio_account_sid=fake.account_sid, twilio_auth_token=fake.auth_token,
                            twilio_sms_number="+3197010000001", twilio_whatsapp_number="+14155238886",
                            twilio_api_url=fake.base_url, twilio_whatsapp_template_sid=template)
        self.window = WhatsAppWindow(redis, prefix)
        sender = TwilioSender(http, settings, self.window.last_inbound, backoff=(0.01,),
                              timeout=aiohttp.ClientTimeout(total=2))
        senders = {"whatsapp": sender.view("whatsapp"), "sms": sender.view("sms")}
        self.clock = clock
        self.records = records
        self.store = ConversationStore(redis, prefix)
        self.handoffs = Handoffs(redis, prefix, HandoffConfig.load(), clock=clock)
        transcript = Transcript(self.store, records)
        self.outbound = Outbound(self.store, records, transcript, Delivery(senders, records, retry_for=2), senders)
        self.workflow = AgentWorkflow(self.store, records, self.handoffs, self.outbound, transcript)
        self.watch = PromiseWatch(records, self.outbound, self.handoffs, clock, config)

    async def whatsapp_customer(self, number: str, lang: str = "en", wrote: bool = True) -> tuple[str, object]:
        customer = await self.records.by_customer_number(number)
        conv = "c" + secrets.token_hex(8)
        await self.store.update(conv, last_channel="whatsapp", last_address=customer.phone, language=lang,
                                customer_id=str(customer.id))
        if wrote:
            await self.window.record(customer.phone)  # inside the 24-hour window
        return conv, customer


@pytest.fixture
async def world(fake, shop_url):
    fake.clear()
    redis = Redis.from_url(REDIS_URL, decode_responses=True, socket_timeout=5)
    prefix = "pr" + secrets.token_hex(4)
    engine = create_engine(shop_url)
    http = aiohttp.ClientSession()
    made = World(redis, prefix, Records(engine), http, fake, FixedClock(MONDAY), template=TEMPLATE)
    made.redis, made.prefix = redis, prefix
    yield made
    await http.close()
    await engine.dispose()
    async for key in redis.scan_iter(match=f"{prefix}:*"):
        await redis.delete(key)
    await redis.close(close_connection_pool=True)


def bodies(fake, phone: str) -> list[str]:
    return [m.get("Body") or m.get("ContentVariables", "") for m in fake.messages if m["To"] == f"whatsapp:{phone}"]


async def statuses(records: Records, conv: str) -> list[tuple[str, str]]:
    return [(p.kind, p.status) for p in await records.promises(conv)]


# -- renewed before it breaks ---------------------------------------------------------------------
async def test_a_wait_nobody_takes_is_renewed_on_whatsapp_before_its_deadline_then_kept(world, fake):
    conv, james = await world.whatsapp_customer(JAMES)
    await world.handoffs.heartbeat(ANNA)  # online and free: the shortest wait, five minutes
    replies = await world.workflow.start(conv, "whatsapp", {"reason": "asked"}, "en")
    assert replies[-1].text == ("You're next in line: a colleague will respond in about 5 minutes "
                                "(by today before 10:05 at the latest).")
    [wait] = await world.records.promises(conv)
    assert (wait.kind, wait.status, wait.deadline, wait.channel, wait.language, wait.owed_by) == (
        "handoff_wait", "open", MONDAY + timedelta(minutes=5), "whatsapp", "en", "queue:general")

    # 10:00: a five-minute window is flagged at once (the item rises in the queue); not renewed yet
    swept = await world.watch.sweep()
    assert (swept.flagged, swept.renew_due) == (1, [])
    assert (await world.handoffs.get(conv))["at_risk"] == wait.deadline.isoformat()
    assert (await world.watch.sweep()).flagged == 0  # once

    # 10:03, Anna still online and free (the desk's heartbeat): it can still be kept, not renewed yet
    world.clock.advance(minutes=3)
    await world.handoffs.heartbeat(ANNA)
    assert (await world.watch.sweep()).renew_due == []
    # 10:04:30: the last moment (10 seconds before the deadline) comes before the next sweep: a job for then
    world.clock.advance(seconds=90)
    await world.handoffs.heartbeat(ANNA)
    swept = await world.watch.sweep()
    assert swept.renew_due == [(wait.id, wait.created_at.timestamp(), 20.0)]
    # 10:04:50, nobody claimed it: the customer hears the new time first, on WhatsApp
    world.clock.advance(seconds=20)
    assert await world.watch.renew(wait.id) == watching.RENEWED
    assert bodies(fake, james.phone) == [
        "Sorry, this is taking longer than I told you: no colleague is free yet. New estimate: today before "
        "10:10. The answer will come via WhatsApp."]
    old, new = await world.records.promises(conv)
    assert (old.status, old.settled_at, old.reason) == ("renewed", MONDAY + timedelta(minutes=4, seconds=50),
                                                        "no colleague free in time")
    assert old.settled_at < old.deadline  # told before the old time passed
    assert (new.status, new.deadline, new.renewed_from, new.renewals) == (
        "open", MONDAY + timedelta(minutes=10), old.id, 1)
    item = await world.handoffs.get(conv)
    assert item["promised_by"] == new.deadline.isoformat() and "at_risk" not in item
    assert await world.watch.renew(wait.id) == watching.SETTLED  # asked again: nothing sent twice
    assert len(bodies(fake, james.phone)) == 1

    # 10:07 Anna takes it: the new time is kept
    world.clock.advance(minutes=2, seconds=10)
    await world.handoffs.heartbeat(ANNA)
    await world.workflow.claim(conv, ANNA)
    assert await statuses(world.records, conv) == [("handoff_wait", "renewed"), ("handoff_wait", "kept")]


async def test_a_wait_the_live_queue_cannot_keep_is_renewed_at_once_not_in_its_last_seconds(world, fake):
    conv, james = await world.whatsapp_customer(JAMES)
    await world.handoffs.heartbeat(ANNA)
    await world.workflow.start(conv, "whatsapp", {"reason": "asked"}, "en")
    [wait] = await world.records.promises(conv)
    assert wait.deadline == MONDAY + timedelta(minutes=5)
    assert (await world.watch.sweep()).flagged == 1
    # 10:02 Anna has left the desk (no heartbeat for two minutes): nobody online may take it, so the
    # five minutes cannot be kept; the customer is told now, three minutes before the deadline
    world.clock.advance(minutes=2)
    assert (await world.watch.sweep()).renew_due == [(wait.id, wait.created_at.timestamp(), 0.0)]
    assert await world.watch.renew(wait.id) == watching.RENEWED
    [told] = bodies(fake, james.phone)
    assert told.startswith("Sorry, this is taking longer than I told you")
    old, new = await world.records.promises(conv)
    assert (old.status, old.settled_at) == ("renewed", MONDAY + timedelta(minutes=2))
    assert new.deadline == MONDAY + timedelta(hours=2, minutes=15)  # open, nobody online: within 2 business hours


async def test_a_complaint_not_answered_in_time_is_renewed_within_business_hours(world, fake):
    conv, james = await world.whatsapp_customer(JAMES)
    deadline = local(MONDAY.date(), 16, 45)
    ticket = await world.records.create_ticket(james.id, "complaint", details="broken lamp", channel="whatsapp",
                                               promised_by=deadline, conversation=conv, language="en",
                                               queue="complaints", promise_text="complaint #{ticket}: today before 16:45",
                                               now=MONDAY)
    [promise] = await world.records.promises(conv)
    assert (promise.ticket_id, promise.text, promise.owed_by) == (ticket.id, f"complaint #{ticket.id}: today before 16:45",
                                                                  "queue:complaints")
    world.clock.set(local(MONDAY.date(), 16, 41))
    assert (await world.watch.sweep()).renew_due == [(promise.id, promise.created_at.timestamp(), 0.0)]
    assert await world.watch.renew(promise.id) == watching.RENEWED
    # four business hours from 16:45 on Monday (closing at 17:00): Tuesday 12:45, on the quarter
    assert bodies(fake, james.phone) == [
        f"Sorry, we won't manage to answer your complaint (#{ticket.id}) in time. A colleague will get back to "
        "you tomorrow before 12:45, via WhatsApp."]
    [ticket_now] = [t for t in await world.records.tickets(james.id, kind="complaint") if t.id == ticket.id]
    assert aware(ticket_now.promised_by) == local(MONDAY.date() + timedelta(days=1), 12, 45)  # what the desk shows
    old, new = await world.records.promises(conv)
    assert (old.status, new.status, new.ticket_id, new.deadline) == (
        "renewed", "open", ticket.id, local(MONDAY.date() + timedelta(days=1), 12, 45))

    # a colleague answers on Tuesday morning: kept
    world.clock.set(local(MONDAY.date() + timedelta(days=1), 9, 30))
    await world.records.close_ticket(ticket.id, "answered", now=world.clock.now())
    assert await statuses(world.records, conv) == [("complaint", "renewed"), ("complaint", "kept")]


async def test_a_promise_nobody_acts_on_is_broken_at_its_deadline(world, fake):
    config = PromiseConfig.from_dict({"kinds": {"return": {"renew": False}}})
    watch = PromiseWatch(world.records, world.outbound, world.handoffs, world.clock, config)
    conv, james = await world.whatsapp_customer(JAMES)
    deadline = MONDAY + timedelta(hours=2)
    await world.records.create_ticket(james.id, "return", promised_by=deadline, conversation=conv, now=MONDAY)
    world.clock.set(deadline - timedelta(minutes=1))
    assert (await watch.sweep()).renew_due == []  # this kind is not renewed by the bot
    assert await statuses(world.records, conv) == [("return", "open")]
    world.clock.set(deadline + timedelta(minutes=7))
    assert (await watch.sweep()).broken == 1
    [promise] = await world.records.promises(conv)
    assert (promise.status, promise.settled_at, promise.reason) == ("broken", deadline,
                                                                    "deadline passed without an answer")
    assert bodies(fake, james.phone) == []


async def test_a_ticket_answered_late_is_broken_and_one_in_time_kept(world):
    conv, james = await world.whatsapp_customer(JAMES)
    early = await world.records.create_ticket(james.id, "return", promised_by=MONDAY + timedelta(hours=1),
                                              conversation=conv, now=MONDAY)
    late = await world.records.create_ticket(james.id, "cancellation", promised_by=MONDAY + timedelta(hours=1),
                                             conversation=conv, now=MONDAY)
    await world.records.close_ticket(early.id, now=MONDAY + timedelta(minutes=59))
    await world.records.close_ticket(late.id, now=MONDAY + timedelta(minutes=90))
    kept, broken = await world.records.promises(conv)
    assert (kept.status, kept.answered_at) == ("kept", MONDAY + timedelta(minutes=59))
    assert (broken.status, broken.reason) == ("broken", "answered 30 min late")


async def test_a_renewal_that_cannot_be_delivered_is_retried_then_the_promise_breaks(world, fake):
    async with aiohttp.ClientSession() as http:
        await _not_delivered(World(world.redis, world.prefix, world.records, http, fake, world.clock), fake)


async def _not_delivered(world, fake):
    conv, james = await world.whatsapp_customer(JAMES, wrote=False)  # outside the window, and no template here
    await world.records.add_promise(conv, james.id, "agent", "Anna gets back to you at 11:00",
                                    MONDAY + timedelta(hours=1), channel="whatsapp", language="en", now=MONDAY)
    [promise] = await world.records.promises(conv)
    world.clock.set(MONDAY + timedelta(minutes=57))
    assert await world.watch.renew(promise.id) == watching.RETRY
    assert await statuses(world.records, conv) == [("agent", "open")]  # the claim was released
    world.clock.set(MONDAY + timedelta(minutes=61))
    assert await world.watch.renew(promise.id) == watching.BROKEN
    [promise] = await world.records.promises(conv)
    assert (promise.status, promise.reason) == ("broken", "the customer could not be told a new time")
    assert bodies(fake, james.phone) == []


async def test_an_agent_promises_a_time_in_the_desk_and_keeps_it_by_replying(world, fake):
    conv, james = await world.whatsapp_customer(JAMES)
    await world.handoffs.heartbeat(ANNA)
    await world.workflow.start(conv, "whatsapp", {"reason": "asked"}, "en")
    await world.workflow.claim(conv, ANNA)
    tomorrow = local(MONDAY.date() + timedelta(days=1), 12, 0)
    promise = await world.workflow.promise(conv, ANNA, tomorrow, "I'll check with the warehouse.")
    assert (promise.kind, promise.owed_by, promise.deadline) == ("agent", "agent:anna", tomorrow)
    assert bodies(fake, james.phone)[-1] == (
        "Anna will get back to you tomorrow before 12:00, via WhatsApp. I'll check with the warehouse.")
    world.clock.set(local(MONDAY.date() + timedelta(days=1), 11, 0))
    await world.workflow.reply(conv, ANNA, "The warehouse found it: it ships today.")
    assert (await world.records.promise(promise.id)).status == "kept"


# -- the scheduler: arq on the real Redis ---------------------------------------------------------
async def test_two_schedulers_never_send_one_renewal_twice(world, fake):
    conv, james = await world.whatsapp_customer(JAMES)
    await world.records.add_promise(conv, james.id, "agent", "Anna gets back to you at 11:00",
                                    MONDAY + timedelta(hours=1), channel="whatsapp", language="en", now=MONDAY)
    [promise] = await world.records.promises(conv)
    world.clock.set(MONDAY + timedelta(minutes=56))
    # two gateway processes: their own scheduler and watch, the same records and Redis
    one = PromiseScheduler(REDIS_URL, world.prefix, world.watch, burst=True, poll_delay=0.05)
    two = PromiseScheduler(REDIS_URL, world.prefix, PromiseWatch(world.records, world.outbound, world.handoffs,
                                                                 world.clock), burst=True, poll_delay=0.05)
    try:
        # both sweeps find it due; the job id makes it one job
        assert [await s.enqueue_renewal(promise.id, promise.created_at.timestamp()) for s in (one, two)] == [True, False]
        await asyncio.gather(one.run_burst(), two.run_burst())
        # and the state guard: renewing by hand in both at once tells the customer once
        assert await asyncio.gather(world.watch.renew(promise.id), two.watch.renew(promise.id)) == [
            watching.SETTLED, watching.SETTLED]
    finally:
        await one.stop()
        await two.stop()
    assert bodies(fake, james.phone) == [
        "Sorry, it's taking a little longer than we promised you. You'll hear from us today before 15:00, via "
        "WhatsApp."]


async def test_two_processes_renewing_at_once_tell_the_customer_once(world, fake):
    conv, james = await world.whatsapp_customer(JAMES)
    await world.records.add_promise(conv, james.id, "agent", "Anna gets back to you at 11:00",
                                    MONDAY + timedelta(hours=1), channel="whatsapp", language="en", now=MONDAY)
    [promise] = await world.records.promises(conv)
    world.clock.set(MONDAY + timedelta(minutes=56))
    second = PromiseWatch(world.records, world.outbound, world.handoffs, world.clock)
    outcomes = sorted(await asyncio.gather(world.watch.renew(promise.id), second.renew(promise.id)))
    assert outcomes in ([watching.RENEWED, watching.TAKEN], [watching.RENEWED, watching.SETTLED])
    assert len(bodies(fake, james.phone)) == 1


async def test_the_scheduler_picks_up_its_jobs_after_a_restart(world, fake):
    conv, james = await world.whatsapp_customer(JAMES)
    await world.records.add_promise(conv, james.id, "agent", "Anna gets back to you at 11:00",
                                    MONDAY + timedelta(hours=1), channel="whatsapp", language="en", now=MONDAY)
    [promise] = await world.records.promises(conv)
    world.clock.set(MONDAY + timedelta(minutes=56))
    before = PromiseScheduler(REDIS_URL, world.prefix, world.watch)
    assert await before.enqueue_renewal(promise.id, promise.created_at.timestamp())  # queued, then the gateway stops before running it
    await before.stop()
    assert bodies(fake, james.phone) == []
    config = PromiseConfig.from_dict({"watch": {"every_seconds": 1}})
    after = PromiseScheduler(REDIS_URL, world.prefix, PromiseWatch(world.records, world.outbound, world.handoffs,
                                                                   world.clock, config), poll_delay=0.05)
    after.start()
    try:
        await until(lambda: bodies(fake, james.phone), timeout=15)
    finally:
        await after.stop()
    assert len(bodies(fake, james.phone)) == 1
    assert [p.status for p in await world.records.promises(conv)] == ["renewed", "open"]


# -- an agent's promise in two clicks ---------------------------------------------------------------
def test_the_agents_presets_fall_within_the_hours():
    from bot.policy.hours import ServiceLevels

    levels = ServiceLevels.load()
    tuesday = MONDAY.date() + timedelta(days=1)
    assert state.preset_deadline("1h", levels, MONDAY + timedelta(minutes=7)) == local(MONDAY.date(), 11, 15)
    assert state.preset_deadline("1h", levels, local(MONDAY.date(), 16, 30)) == local(tuesday, 9, 30)  # past closing
    assert state.preset_deadline("today", levels, MONDAY) == local(MONDAY.date(), 17, 0)
    assert state.preset_deadline("tomorrow", levels, MONDAY) == local(tuesday, 12, 0)
    friday_evening = local(MONDAY.date() - timedelta(days=3), 20, 0)
    assert state.preset_deadline("today", levels, friday_evening) == local(MONDAY.date(), 12, 0)  # closed: Monday


# -- the team's figures -------------------------------------------------------------------------------
def test_the_promise_report_counts_per_kind_queue_and_week_with_the_delays_of_the_broken_ones():
    from types import SimpleNamespace

    from bot.policy.clock import local_zone
    from bot.reports.promises import as_csv, percentile, promise_figures

    def p(id, kind, queue, status, deadline, answered=None, renewed_from=None):
        return SimpleNamespace(id=id, kind=kind, queue=queue, status=status, deadline=deadline, answered_at=answered,
                               renewed_from=renewed_from)

    mon = MONDAY  # 10:00
    rows = [
        p(1, "handoff_wait", "general", "kept", mon + timedelta(minutes=5), mon + timedelta(minutes=3)),
        p(2, "handoff_wait", "general", "broken", mon + timedelta(hours=1), mon + timedelta(hours=1, minutes=20)),
        p(3, "handoff_wait", "general", "broken", mon + timedelta(hours=2)),  # told a new time too late ...
        p(4, "handoff_wait", "general", "kept", mon + timedelta(hours=3), mon + timedelta(hours=2, minutes=45),
          renewed_from=3),  # ... and answered at 12:45: 45 minutes after the first deadline
        p(5, "complaint", "complaints", "renewed", mon + timedelta(days=1)),
        p(6, "complaint", "complaints", "open", mon + timedelta(days=2)),
        p(7, "handoff_wait", "general", "broken", mon + timedelta(days=1)),  # still no answer at `now`
        p(8, "handoff_wait", "general", "kept", mon - timedelta(days=3), mon - timedelta(days=3)),  # the week before
    ]
    now = mon + timedelta(days=1, minutes=90)
    report = promise_figures(rows, now, local_zone())
    assert report["total"] == {"open": 1, "kept": 3, "renewed": 1, "broken": 3, "total": 8,
                               "kept_or_renewed_share": round(4 / 7, 4),
                               "broken_delay_median_minutes": 45.0, "broken_delay_p90_minutes": 90.0}
    wait = report["by_kind"]["handoff_wait"]
    assert (wait["kept"], wait["broken"], wait["kept_or_renewed_share"]) == (3, 3, 0.5)
    assert report["by_kind"]["complaint"]["kept_or_renewed_share"] == 1.0
    week = mon.astimezone(local_zone()).isocalendar()
    this, before = f"{week[0]}-W{week[1]:02d}", f"{week[0]}-W{week[1] - 1:02d}"
    assert list(report["by_week"]) == [before, this]
    assert report["by_week"][before]["kept"] == 1
    assert [(r["kind"], r["queue"], r["week"], r["total"]) for r in report["rows"]] == [
        ("complaint", "complaints", this, 2), ("handoff_wait", "general", before, 1),
        ("handoff_wait", "general", this, 5)]
    assert as_csv(report).splitlines()[0] == ("kind,queue,week,open,kept,renewed,broken,total,kept_or_renewed_share,"
                                              "broken_delay_median_minutes,broken_delay_p90_minutes")
    assert [percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 0.9), percentile([5], 0.5), percentile([], 0.5)] == [9, 5, None]


# -- callbacks that happen -----------------------------------------------------------------------------
async def book(world, conv, customer, start, end, lang="en"):
    return await world.records.create_ticket(
        customer.id, "callback", channel="whatsapp", promised_by=end, conversation=conv, language=lang,
        queue="general", answer_channel="whatsapp", promise_text="booked", now=world.clock.now(), window_start=start,
        data={"phone": customer.phone, "window_start": start.isoformat(), "window_end": end.isoformat(),
              "attempts": 0, "language": lang})


async def test_a_callback_is_reminded_listed_not_reached_tried_again_and_done(world, fake):
    from bot.promises.callbacks import CallbackDesk

    conv, james = await world.whatsapp_customer(JAMES)
    desk = CallbackDesk(world.watch)
    day = MONDAY.date()
    start, end = (await desk.windows(1))[0]
    assert (start, end) == (local(day, 11), local(day, 12))  # 10:00 now: 10:30 at the earliest, on the hour
    ticket = await book(world, conv, james, start, end)
    listing = await desk.listing("en")
    [row] = [r for r in listing["later"] if r["ticket"] == ticket.id]
    assert (row["window"], row["phone"], row["attempts"]) == ("today between 11:00 and 12:00", james.phone, 0)

    # 10:45: the reminder, once, on WhatsApp; the callback is now due
    world.clock.set(local(day, 10, 45))
    swept = await world.watch.sweep()
    [promise] = await world.records.promises_of_ticket(ticket.id)
    assert swept.remind_due == [(promise.id, promise.created_at.timestamp())]
    assert await world.watch.remind(promise.id) == "reminded"
    assert await world.watch.remind(promise.id) == watching.TAKEN
    assert (await world.watch.sweep()).remind_due == []
    assert bodies(fake, james.phone) == [f"Reminder: we'll call you today between 11:00 and 12:00 on {james.phone}."]
    assert [r["ticket"] for r in (await desk.listing("en"))["due"]] == [ticket.id]

    # 11:20 not reached: kept (we called in time), tried again after two hours, the customer told
    world.clock.set(local(day, 11, 20))
    result = await desk.not_reached(ticket.id, "anna")
    assert (result["attempts"], result["window_start"]) == (1, local(day, 14).isoformat())
    assert bodies(fake, james.phone)[-1] == "We just called you but couldn't reach you. We'll try again today between 14:00 and 15:00."
    first, retry = await world.records.promises_of_ticket(ticket.id)
    assert (first.status, retry.status, retry.deadline, retry.window_start) == ("kept", "open", local(day, 15), local(day, 14))

    # 14:10 done: the retry is kept, the ticket closed, off the list
    world.clock.set(local(day, 14, 10))
    assert (await desk.done(ticket.id, "anna"))["status"] == "closed"
    assert [p.status for p in await world.records.promises_of_ticket(ticket.id)] == ["kept", "kept"]
    assert all(r["ticket"] != ticket.id for rows in (await desk.listing("en")).values() for r in rows)


async def test_a_callback_moved_by_an_agent_tells_the_customer_and_renews_the_promise(world, fake):
    from bot.promises.callbacks import CallbackDesk, CallbackError

    conv, james = await world.whatsapp_customer(JAMES)
    desk = CallbackDesk(world.watch)
    day = MONDAY.date()
    ticket = await book(world, conv, james, local(day, 11), local(day, 12))
    with pytest.raises(CallbackError):
        await desk.moved(ticket.id, "anna", local(day, 20))  # no window at 20:00
    await desk.moved(ticket.id, "anna", local(day, 15))
    assert bodies(fake, james.phone) == [
        f"Unfortunately we have to move your callback: we'll now call you today between 15:00 and 16:00 on {james.phone}."]
    old, new = await world.records.promises_of_ticket(ticket.id)
    assert (old.status, old.reason, new.status, new.deadline) == ("renewed", "moved by anna", "open", local(day, 16))
    assert aware((await world.records.ticket(ticket.id)).promised_by) == local(day, 16)


async def test_a_callback_not_made_in_its_window_is_moved_before_it_breaks(world, fake):
    conv, james = await world.whatsapp_customer(JAMES)
    day = MONDAY.date()
    ticket = await book(world, conv, james, local(day, 11), local(day, 12))
    world.clock.set(local(day, 11, 56))  # nobody called: five minutes before the window closes
    [promise] = await world.records.promises_of_ticket(ticket.id)
    assert await world.watch.renew(promise.id) == watching.RENEWED
    assert bodies(fake, james.phone) == [
        "Sorry, we can't call you back at the time we agreed. We'll call you today between 13:00 and 14:00."]
    _, new = await world.records.promises_of_ticket(ticket.id)
    assert (new.window_start, new.deadline) == (local(day, 13), local(day, 14))
    assert (await world.records.ticket(ticket.id)).data["window_start"] == local(day, 13).isoformat()


# -- proactive care ----------------------------------------------------------------------------------
def template_bodies(fake, phone: str) -> list[str]:
    import json

    return [json.loads(m["ContentVariables"])["1"] for m in fake.messages
            if m["To"] == f"whatsapp:{phone}" and m.get("ContentSid") == TEMPLATE]


async def test_a_late_order_is_told_first_through_the_template_once_and_never_without_consent(world, fake):
    from bot.promises.proactive import ProactiveCare, ProactiveConfig
    from bot.records.models import Order, ProactiveMessage
    from sqlalchemy import select

    james = await world.records.by_customer_number(JAMES)
    async with world.records.session() as s:
        order = (await s.execute(select(Order).where(Order.customer_id == james.id, Order.status == "shipped"))).scalar()
    care = ProactiveCare(world.records, world.outbound, world.clock,
                         ProactiveConfig.from_dict({"invoice_reminder": {"enabled": False}, "reach_out": {"enabled": False}}))
    await world.records.update_preferences(james.id, consent_proactive=False)
    await care.run()
    assert bodies(fake, james.phone) == [] and template_bodies(fake, james.phone) == []  # nothing without consent
    await world.records.update_preferences(james.id, consent_proactive=True)

    world.clock.set(local(MONDAY.date(), 22, 0))  # quiet hours: nothing
    await care.run()
    assert template_bodies(fake, james.phone) == []
    world.clock.set(MONDAY)
    await care.run()
    # James never wrote: outside the 24-hour window, so the approved template carries the text
    expected = (f"Hi James, your order {order.order_number} should have been delivered "
                f"{fmt_day(order.promised_date)} but hasn't arrived yet. We're sorry. We're looking into it with DHL "
                f"(tracking {order.tracking_code}); if it doesn't arrive soon we'll send it again or refund you. "
                "Questions? Just reply to this message.")
    assert template_bodies(fake, james.phone) == [expected]
    await care.run()  # once
    assert len(template_bodies(fake, james.phone)) == 1
    async with world.records.session() as s:
        row = (await s.execute(select(ProactiveMessage).where(ProactiveMessage.ref == f"order:{order.order_number}"))).scalar()
    assert (row.kind, row.channel, row.status) == ("late_delivery", "whatsapp", "sent")
    conv = await world.store.customer_conversation(james.id)
    assert [e["text"] for e in await world.records.transcript(conv)][-1] == expected  # in the transcript too


def fmt_day(day) -> str:
    from bot.texts import fmt

    return fmt.day(day, "en")


async def test_stop_switches_proactive_messages_off_on_every_channel(world, fake):
    from bot.pipeline.service import ConversationService
    from bot.pipeline.types import Inbound

    service = ConversationService(world.store, None, world.records, world.handoffs, world.outbound, clock=world.clock)
    james = await world.records.by_customer_number(JAMES)
    await world.records.update_preferences(james.id, consent_proactive=True)
    outcome = await service.handle(Inbound("whatsapp", james.phone, "STOP", message_id="m-" + secrets.token_hex(4)))
    assert [m.text for m in outcome.replies] == [
        "Understood: you won't get any messages from us that you didn't ask for, on any channel. We'll still answer "
        "your questions."]
    assert (await world.records.customer(james.id)).consent_proactive is False  # one setting: every channel
    await world.records.update_preferences(james.id, consent_proactive=True)
    outcome = await service.handle(Inbound("sms", james.phone, "geen berichten meer", message_id="m-" + secrets.token_hex(4)))
    assert (await world.records.customer(james.id)).consent_proactive is False
    # "stop" alone in the web chat is not an opt-out (it may end a question there)
    from bot.promises.proactive import is_stop
    assert [is_stop("stop", "webchat"), is_stop("Stop!", "sms"), is_stop("stop met berichten", "webchat"),
            is_stop("stop de bestelling", "whatsapp")] == [False, True, True, False]


async def test_a_customer_at_risk_becomes_a_task_for_a_person_not_a_message(world, fake):
    from bot.promises.proactive import ProactiveCare, ProactiveConfig
    from bot.records.models import ChurnScore

    care = ProactiveCare(world.records, world.outbound, world.clock,
                         ProactiveConfig.from_dict({"late_delivery": {"enabled": False},
                                                    "invoice_reminder": {"enabled": False},
                                                    "reach_out": {"churn_threshold": 60}}))
    james = await world.records.by_customer_number(JAMES)
    async with world.records.session() as s, s.begin():
        score = await s.get(ChurnScore, james.id)
        score.score, score.reasons = 72, [{"reason": "late delivery"}, {"reason": "complaint last month"}]
    before = len(fake.messages)
    counts = await care.run()
    assert counts["reach_out"] >= 1
    [task] = await world.records.tickets(james.id, kind="reach_out", status="open")
    assert task.details.startswith("churn score 72: late delivery, complaint last month")
    assert len(fake.messages) == before  # a task, never a message from the bot
    await care.run()
    assert len(await world.records.tickets(james.id, kind="reach_out", status="open")) == 1  # one open at a time


def test_a_business_words_its_proactive_messages_itself_and_a_broken_placeholder_falls_back():
    from bot.promises.proactive import ProactiveConfig

    config = ProactiveConfig.from_dict({"texts": {
        "proactive_invoice_due": {"nl": "Hoi {name}, {invoice} ({amount}) vervalt {due}.", "en": "Hi {nickname}"},
        "stop_confirmed": {"nl": "not a text a business may change"}}})
    values = dict(name="Sanne", invoice="F2026-00102", amount="€ 49,90", due="morgen")
    assert config.text("proactive_invoice_due", "nl", **values) == "Hoi Sanne, F2026-00102 (€ 49,90) vervalt morgen."
    assert config.text("proactive_invoice_due", "en", **values).startswith("Hi Sanne, a friendly reminder: invoice F2026")
    assert [key for key, _ in config.texts] == ["proactive_invoice_due"]
