"""What the scheduler does with the promises on record (bot/promises/scheduler.py runs it).

`sweep` (every few seconds, in one process at a time) looks at the unsettled promises:
- the deadline passed: broken (nobody answered and nobody told the customer a new time);
- `lead` before the deadline: the desk is warned once (the queue item rises, a banner for the
  owner and for supervisors: a `promise_at_risk` desk event);
- `renew_before` the deadline, for kinds that renew: a `renew` job (one per promise, by its id),
  waiting for the exact moment when that comes before the next sweep; the wait for a person
  (`handoff_wait`) in its last seconds, or as soon as the live queue says it cannot be kept.

`renew` tells the customer first, on the promised channel, in their language, with an apology and
a new honest time: for the wait for a person from the live queue, for everything else within
business hours from the service levels (holidays included). Only when that message was accepted
for delivery does the promise become renewed and the new time a promise of its own; when it
could not be delivered the job is tried again until the deadline passes (then: broken).

Every decision reads the injected clock, so tests run it on a fixed time.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from bot.delivery.outbound import WEBCHAT, NotDelivered, Unreachable
from bot.people.estimate import ceil_quarter
from bot.pipeline.types import BotMessage
from bot.policy.clock import Clock
from bot.policy.hours import ServiceLevels, describe
from bot.promises import callbacks as cb
from bot.promises import state
from bot.promises.state import PromiseConfig
from bot.texts import fmt, messages
from channels import registry

if TYPE_CHECKING:
    from bot.delivery.outbound import Outbound
    from bot.people.queue import Handoffs
    from bot.records.models import Promise
    from bot.records.repository import Records

log = logging.getLogger(__name__)

RENEWED, RETRY, SETTLED, TAKEN, BROKEN, WAITING = "renewed", "retry", "settled", "taken", "broken", "waiting"


@dataclass
class SweepResult:
    looked_at: int = 0
    broken: int = 0
    flagged: int = 0
    renew_due: list[tuple[int, float, float]] | None = None  # (promise id, created: for its job id, in seconds)
    remind_due: list[tuple[int, float]] | None = None  # callbacks whose reminder is due

    def as_dict(self) -> dict[str, Any]:
        return {"looked_at": self.looked_at, "broken": self.broken, "flagged": self.flagged,
                "renew_due": [p for p, *_ in self.renew_due or []], "remind_due": [p for p, _ in self.remind_due or []]}


class PromiseWatch:
    def __init__(self, records: "Records", outbound: "Outbound", handoffs: "Handoffs", clock: Clock,
                 config: PromiseConfig | None = None, levels: ServiceLevels | None = None,
                 callbacks_config: "cb.CallbackConfig | None" = None) -> None:
        self.records = records
        self.outbound = outbound
        self.handoffs = handoffs
        self.clock = clock
        self.config = config or state.config()
        self.levels = levels or ServiceLevels.load()
        self.callbacks = callbacks_config or cb.config()

    # -- the sweep -----------------------------------------------------------------------------
    async def sweep(self) -> SweepResult:
        now = self.clock.now()
        result = SweepResult(renew_due=[], remind_due=[])
        for promise in await self.records.unsettled_promises(now + timedelta(days=60)):
            result.looked_at += 1
            if now >= promise.deadline:
                reason = ("the customer could not be told a new time" if self.config.rules(promise.kind).renew
                          else "deadline passed without an answer")
                if await self.records.expire_promise(promise.id, now, reason):
                    result.broken += 1
                    log.warning("promise %s (%s) broken: %s", promise.id, promise.kind, reason)
                    await self._desk_event("promise_broken", promise)
                continue
            if now >= self.config.warn_at(promise.created_at, promise.deadline) and promise.flagged_at is None:
                if await self.records.flag_promise(promise.id, now):
                    result.flagged += 1
                    await self._flag(promise)
            if (promise.kind == "callback" and promise.window_start is not None and promise.reminded_at is None
                    and now >= promise.window_start - self.callbacks.reminder):
                result.remind_due.append((promise.id, promise.created_at.timestamp()))
            if promise.status == state.OPEN and self.config.rules(promise.kind).renew:
                at = self.config.renew_at(promise.created_at, promise.deadline, promise.kind)
                if now >= at or (promise.kind == "handoff_wait" and promise.flagged_at is not None
                                 and await self._lost(promise, now)):
                    result.renew_due.append((promise.id, promise.created_at.timestamp(), 0.0))
                elif at <= now + timedelta(seconds=self.config.every_seconds):
                    # due before the next sweep: a job that waits for the exact moment
                    result.renew_due.append((promise.id, promise.created_at.timestamp(), (at - now).total_seconds()))
        return result

    async def _lost(self, promise: "Promise", now: datetime) -> bool:
        """A wait for a person that the live queue says cannot be kept any more: even an early
        future (bot/people/estimate.py SOONEST) comes after the deadline, or nobody who may take it
        is online, or it is closing time. Then the customer hears the new time now, not in the last
        seconds."""
        item = await self.handoffs.get(promise.conversation) if promise.conversation else None
        if item is None or item.get("state") != "waiting":
            return False
        estimate = await self.handoffs.estimate(promise.conversation, now)
        if estimate.kind != "live" or estimate.soonest_minutes is None:
            return True
        return now + timedelta(minutes=estimate.soonest_minutes) > promise.deadline

    async def _flag(self, promise: "Promise") -> None:
        if promise.conversation and promise.kind == "handoff_wait":
            await self.handoffs.at_risk(promise.conversation, promise.deadline)
        await self._desk_event("promise_at_risk", promise)

    async def _desk_event(self, kind: str, promise: "Promise") -> None:
        await self.handoffs.publish({
            "type": kind, "promise": promise.id, "kind": promise.kind, "conversation": promise.conversation,
            "ticket": promise.ticket_id, "deadline": promise.deadline.isoformat(), "owed_by": promise.owed_by,
            "queue": promise.queue,
        })

    # -- a callback's reminder -------------------------------------------------------------------
    def _callback_levels(self) -> ServiceLevels:
        queue = self.handoffs.config.queues.get(self.callbacks.queue) or self.handoffs.config.queues["general"]
        return queue.levels

    async def remind(self, promise_id: int) -> str:
        """"Reminder: we'll call you today between 10:00 and 11:00": once, shortly before the window."""
        promise = await self.records.promise(promise_id)
        if promise is None or promise.status not in state.UNSETTLED or promise.window_start is None:
            return SETTLED
        now = self.clock.now()
        if now >= promise.deadline or not await self.records.mark_reminded(promise.id, now):
            return TAKEN
        ticket = await self.records.ticket(promise.ticket_id) if promise.ticket_id else None
        phone = ((ticket.data or {}).get("phone") if ticket else None) or ""
        lang = promise.language or "nl"
        tz = self._callback_levels().tz
        text = messages.text("callback_reminder", lang, window=cb.window_text(promise.window_start, promise.deadline,
                                                                              lang, now, tz), phone=phone)
        if not await self.tell(promise, text):
            await self.records.unmark_reminded(promise.id)
            return RETRY
        return "reminded"

    # -- a renewal -----------------------------------------------------------------------------
    async def renew(self, promise_id: int) -> str:
        """Tell the customer a new time before the promise breaks. The outcome: renewed, retry
        (not delivered, time left), settled (answered meanwhile), taken (another process has it),
        waiting (the wait is no longer in the queue), broken (too late)."""
        promise = await self.records.promise(promise_id)
        if promise is None or promise.status not in state.UNSETTLED:
            return SETTLED
        now = self.clock.now()
        if now >= promise.deadline:
            await self.records.expire_promise(promise.id, now, "the customer could not be told a new time")
            return BROKEN
        if promise.status != state.OPEN or not await self.records.claim_renewal(promise.id):
            return TAKEN
        try:
            found = await self._new_time(promise, now)
            if found is None:
                await self.records.release_renewal(promise.id)
                return WAITING
            deadline, text, reason, window_start = found
            if not await self.tell(promise, text):
                await self.records.release_renewal(promise.id)
                return RETRY
        except BaseException:
            await self.records.release_renewal(promise.id)
            raise
        renewed = await self.records.renew_promise(promise.id, now, deadline, text, reason, window_start)
        if renewed is not None and promise.conversation and promise.kind == "handoff_wait":
            await self.handoffs.promised(promise.conversation, deadline)
        log.info("promise %s (%s) renewed as %s", promise.id, promise.kind, renewed.id if renewed else None)
        await self._desk_event("promise_renewed", promise)
        return RENEWED

    async def _new_time(self, promise: "Promise", now: datetime) -> tuple[datetime, str, str, datetime | None] | None:
        lang = promise.language or "nl"
        channel = registry.label(promise.channel or WEBCHAT, lang)
        if promise.kind == "handoff_wait":
            item = await self.handoffs.get(promise.conversation) if promise.conversation else None
            if item is None or item.get("state") != "waiting":
                return None  # claimed (kept when it was) or no longer waiting for a person
            estimate = await self.handoffs.estimate(promise.conversation, now)
            step = timedelta(minutes=self.handoffs.config.round_to_minutes)
            deadline = max(estimate.deadline, promise.deadline + step)  # later than the time that is failing
            text = messages.text("promise_renewed_wait", lang, deadline=describe(deadline, lang, now, self.levels.tz),
                                 channel=channel)
            return deadline, text, "no colleague free in time", None
        hours = self.config.rules(promise.kind).renew_hours
        deadline = ceil_quarter(self.levels.add_business_hours(max(now, promise.deadline), hours))
        when = describe(deadline, lang, now, self.levels.tz)
        if promise.kind == "callback" and promise.window_start is not None:
            levels = self._callback_levels()
            free = cb.free_windows(levels, await self.records.callback_windows(now), now, self.callbacks, count=1)
            if free:
                start, end = free[0]
                text = messages.text("promise_renewed_callback", lang,
                                     deadline=cb.window_text(start, end, lang, now, levels.tz))
                return end, text, "not called in the window", start
            text = messages.text("promise_renewed_callback", lang, deadline=when)
        elif promise.kind == "callback":
            text = messages.text("promise_renewed_callback", lang, deadline=when)
        elif promise.kind == "agent":
            text = messages.text("promise_renewed_agent", lang, deadline=when, channel=channel)
        else:
            text = messages.text("promise_renewed_ticket", lang, deadline=when, channel=channel,
                                 kind=fmt.label(fmt.TICKET_KINDS, promise.kind, lang), ticket=promise.ticket_id or "")
        return deadline, text, f"not answered in time; {hours:g} business hours more", None

    async def tell(self, promise: "Promise", text: str) -> bool:
        """On the promised channel: where the customer is when that is where they wrote (the
        conversation's own routing, web chat to their preferred channel when away), else at
        their address on that channel. False when it could not be delivered."""
        key = promise.conversation
        try:
            if key:
                conv = await self.outbound.store.get(key)
                if not promise.channel or promise.channel in (conv.get("last_channel"), WEBCHAT):
                    await self.outbound.to_conversation(key, text, "bot")
                    return True
            customer = await self.records.customer(promise.customer_id) if promise.customer_id else None
            address = registry.address_of(customer, promise.channel) if customer and promise.channel else None
            if not address or not self.outbound.can_send(promise.channel):
                log.warning("promise %s: no way to reach the customer on %s", promise.id, promise.channel)
                return False
            row = await self.outbound.transcript.log(key, "bot", text, promise.channel) if key else None
            result = await self.outbound.send(key, promise.channel, address, [BotMessage(text)], [row],
                                              what="new time of a promise")
            return result.status != "failed"
        except (Unreachable, NotDelivered) as exc:
            log.warning("promise %s: the new time was not delivered (%s)", promise.id, exc)
            return False
