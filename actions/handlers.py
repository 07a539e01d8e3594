"""`action_topic`: answers the question `topic_form` gathered, from and into the records.

One handler per topic. Decisions (refunds, vouchers, arrangements) go through the mandate table
for the role `bot` (bot/policy/decisions.py, the same code the desk uses); every evaluation is
written to the audit log, and a request beyond the bot's mandate becomes a waiting request for
the lowest role that may grant it, prefilled so the customer never repeats it. The time comes
from one clock (`Context.clock`; bot/policy/clock.py), the constants from config/policy.yml.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Awaitable, Callable

from rasa_sdk import Action, Tracker
from rasa_sdk.events import ActiveLoop, EventType, FollowupAction, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy.exc import IntegrityError

from bot.shared import control
from bot.texts import fmt, messages
from channels import registry
from actions.common import latest_user_metadata
from actions.deps import clock as process_clock, handoff_config, identity_policy, mandates, records, service_levels
from actions.dialogue import handoff_payload, ticket_response
from actions.topics import OFFER_QUESTION, ORDER_NUMBER, PER_TOPIC, UNDER_WAY, is_verified, shows_claimed_order
from bot.policy import churn
from bot.policy.clock import Clock
from bot.policy.decisions import Decisions
from bot.policy.hours import describe
from bot.policy.mandate import MandateRequest, Verdict
from bot.policy.rules import policy
from bot.records.models import Customer, Order, Ticket
from bot.records.repository import Records, aware, cents, jsonable


class Clocked:
    """For an action that reads the time: from the clock passed in (tests), else the process's
    (actions.deps.clock: the system clock, or $BOT_FIXED_NOW in tests of the whole stack).
    A mixin, not an Action: rasa_sdk registers every subclass of Action as an action."""

    def __init__(self, clock: Clock | None = None) -> None:
        self._clock = clock

    @property
    def clock(self) -> Clock:
        return self._clock or process_clock()


@dataclass
class Context:
    dispatcher: CollectingDispatcher
    tracker: Tracker
    repo: Records
    customer: Customer
    lang: str
    channel: str
    clock: Clock = field(default_factory=process_clock)

    def say(self, response: str, **values: Any) -> None:
        self.dispatcher.utter_message(response=response, **values)

    def slot(self, name: str) -> Any:
        return self.tracker.get_slot(name)

    @property
    def now(self) -> datetime:
        return self.clock.now()

    @property
    def today(self) -> date:
        return self.clock.today()

    @property
    def decisions(self) -> Decisions:
        return Decisions(self.repo, mandates(), self.clock)

    def when(self, moment: datetime) -> str:
        return describe(moment, self.lang, self.now, self.clock.tz)

    async def ticket(self, kind: str, *, promised_by: datetime | None = None, **fields: Any) -> Ticket:
        """A ticket for a person on this conversation. With a deadline it is a promise too: the
        answer comes on the customer's preferred channel (what the texts say), owed by the queue
        of its kind, watched by bot/promises until it is answered."""
        fields.setdefault("channel", self.channel)
        promise: dict[str, Any] = {}
        if promised_by is not None:
            queue = handoff_config().queue_for(kind, kind).name
            label = fmt.label(fmt.TICKET_KINDS, kind, self.lang)
            promise = dict(conversation=self.tracker.sender_id, language=self.lang, queue=queue,
                           answer_channel=self.customer.preferred_channel or self.channel, now=self.now,
                           promise_text=messages.text("promise_ticket", self.lang, kind=label, ticket="{ticket}",
                                                      deadline=self.when(promised_by),
                                                      channel=self.preferred()))
        return await self.repo.create_ticket(self.customer.id, kind, promised_by=promised_by, **fields, **promise)

    def preferred(self) -> str:
        return registry.label(self.customer.preferred_channel, self.lang)

    def money(self, amount_cents: int) -> str:
        return fmt.money(amount_cents, self.lang)


def is_late(order: Order, today: date) -> bool:
    return order.status in ("placed", "shipped") and order.promised_date is not None and order.promised_date < today


async def evaluate(ctx: Context, request: MandateRequest, *, order: Order | None = None, reason: str) -> Verdict:
    """Evaluate for the bot, write the audit entry, and record the decision when granted."""
    outcome = await ctx.decisions.decide("bot", "bot", ctx.customer.id, request,
                                         order_id=order.id if order else None, reason=reason)
    return outcome.verdict


async def escalate(ctx: Context, verdict: Verdict, kind: str, summary: str, data: dict, order: Order | None = None) -> None:
    """A request beyond the bot's mandate: a prefilled waiting request for the right role."""
    levels = service_levels()
    deadline = levels.deadline("waiting_request", ctx.now)
    role = verdict.lowest_role or "supervisor"
    ticket = await ctx.ticket(
        "waiting_request", details=summary, order_id=order.id if order else None,
        channel=ctx.channel, promised_by=deadline,
        data=jsonable({"request": kind, "role": role, "reasons": verdict.as_dict()["reasons"], **data}),
    )
    ctx.say("utter_request_escalated", reason=verdict.explain(ctx.lang), role=fmt.role_name(role, ctx.lang),
            ticket=ticket.id)
    if handoff_config().mandate:
        # the gateway queues it for that role and tells the customer the honest wait
        ctx.dispatcher.utter_message(json_message=handoff_payload(
            "mandate", role=role, ticket=ticket.id, topic=ctx.slot("topic"), summary=summary,
            request=jsonable({"decision": kind, **data})))
    else:
        ctx.say("utter_escalated_deadline", deadline=ctx.when(deadline), channel=ctx.preferred())


# -- orders -----------------------------------------------------------------------------------
async def order_of(ctx: Context) -> Order | None:
    number = ctx.slot("order_number")
    order = await ctx.repo.order(ctx.customer.id, number) if number else None
    if order is None:
        ctx.say("utter_order_not_found", order_number=number or "?")
    return order


async def order_status(ctx: Context) -> list[EventType]:
    order = await order_of(ctx)
    if order is None:
        return []
    values = dict(order_number=order.order_number, carrier=order.carrier or "-",
                  tracking_code=order.tracking_code or "-", expected=fmt.day(order.promised_date, ctx.lang),
                  placed=fmt.day(order.placed_at, ctx.lang), delivered=fmt.day(order.delivered_at, ctx.lang),
                  status=fmt.label(fmt.ORDER_STATUS, order.status, ctx.lang))
    # No text shows a value the records lack: a variant without it, else the bare status.
    tracked = bool(order.carrier and order.tracking_code)
    dated = order.promised_date is not None
    if is_late(order, ctx.today):
        ctx.say("utter_order_status_late" if tracked else "utter_order_status_late_plain", **values)
    elif order.status == "shipped" and (tracked or dated):
        ctx.say(("utter_order_status_shipped" if dated else "utter_order_status_shipped_no_date") if tracked
                else "utter_order_status_shipped_plain", **values)
    elif order.status == "placed" and order.placed_at is not None:
        ctx.say("utter_order_status_placed" if dated else "utter_order_status_placed_no_date", **values)
    elif order.status == "delivered" and order.delivered_at is not None:
        ctx.say("utter_order_status_delivered", **values)
    else:
        ctx.say("utter_order_status_other", **values)
    await ctx.repo.contact(ctx.customer.id, ctx.channel, "order_status", f"order {order.order_number}")
    return []


async def delivery_problem(ctx: Context) -> list[EventType]:
    order = await order_of(ctx)
    if order is None:
        return []
    deadline = service_levels().deadline("delivery_problem", ctx.now)
    ticket = await ctx.ticket("delivery_problem", details=ctx.slot("details") or "",
                              order_id=order.id, channel=ctx.channel, promised_by=deadline)
    ctx.say("utter_delivery_ticket" if order.carrier else "utter_delivery_ticket_plain", ticket=ticket.id,
            order_number=order.order_number, carrier=order.carrier or "", deadline=ctx.when(deadline))
    if is_late(order, ctx.today):
        voucher = policy().late_delivery_voucher
        request = await ctx.decisions.request("goodwill_voucher", ctx.customer, amount=voucher)
        verdict = await evaluate(ctx, request, order=order, reason="late delivery")
        if verdict.allowed:
            ctx.say("utter_goodwill_granted", amount=ctx.money(cents(voucher)))
    await ctx.repo.contact(ctx.customer.id, ctx.channel, "delivery_problem", f"ticket {ticket.id}")
    return []


async def return_item(ctx: Context) -> list[EventType]:
    order = await order_of(ctx)
    if order is None:
        return []
    if order.status != "delivered" or order.delivered_at is None:
        ctx.say("utter_return_not_delivered", order_number=order.order_number)
        return []
    if ctx.decisions.order_age_days(order) > policy().return_days:
        ctx.say("utter_return_window_passed", order_number=order.order_number,
                delivered=fmt.day(order.delivered_at, ctx.lang))
        return []
    deadline = service_levels().deadline("return", ctx.now)
    ticket = await ctx.ticket("return", order_id=order.id, channel=ctx.channel,
                              promised_by=deadline, data={"label_to": "email"})
    if ctx.customer.email:
        ctx.say("utter_return_created", order_number=order.order_number, ticket=ticket.id, email=ctx.customer.email)
    else:
        ctx.say("utter_return_created_no_email", order_number=order.order_number, ticket=ticket.id,
                deadline=ctx.when(deadline), channel=ctx.preferred())
    await ctx.repo.contact(ctx.customer.id, ctx.channel, "return", f"ticket {ticket.id}")
    return []


async def cancel_order(ctx: Context) -> list[EventType]:
    """Cancelling one order (not the relationship: that is cancel_contract). Not yet shipped: a
    colleague cancels it, promised by the cancellation deadline; shipped or delivered: what can be
    done instead. Either way it counts in the customer's contact history (a churn signal)."""
    order = await order_of(ctx)
    if order is None:
        return []
    days = policy().return_days
    if order.status == "placed":
        deadline = service_levels().deadline("cancellation", ctx.now)
        ticket = await ctx.ticket("cancellation", details=f"cancel order {order.order_number}",
                                  order_id=order.id, channel=ctx.channel, promised_by=deadline,
                                  data={"cancel": "order", "order_number": order.order_number})
        ctx.say("utter_order_cancel_requested", order_number=order.order_number, ticket=ticket.id,
                deadline=ctx.when(deadline), channel=ctx.preferred())
    elif order.status == "shipped":
        ctx.say("utter_order_cancel_shipped", order_number=order.order_number, return_days=days)
    elif order.status == "delivered":
        ctx.say("utter_order_cancel_delivered", order_number=order.order_number, return_days=days)
    else:
        ctx.say("utter_order_already_cancelled", order_number=order.order_number)
    await ctx.repo.contact(ctx.customer.id, ctx.channel, "cancel_order", f"order {order.order_number}")
    await churn.refresh(ctx.repo.engine, ctx.customer.id, clock=ctx.clock)
    return []


async def request_refund(ctx: Context) -> list[EventType]:
    order = await order_of(ctx)
    if order is None:
        return []
    wanted = ctx.slot("amount")
    refunded, left = await ctx.decisions.refund_left(order)
    if left <= 0:
        ctx.say("utter_refund_nothing_left", order_number=order.order_number, refunded=ctx.money(refunded))
        return []
    amount_cents = left if wanted in (None, "all") else cents(wanted)
    if amount_cents > left:
        if refunded:
            ctx.say("utter_refund_more_than_left", order_number=order.order_number, refunded=ctx.money(refunded),
                    left=ctx.money(left))
        else:
            ctx.say("utter_refund_too_much", order_number=order.order_number, total=ctx.money(order.total_cents))
        return []
    request = await ctx.decisions.request("refund", ctx.customer, amount_cents=amount_cents, order=order)
    verdict = await evaluate(ctx, request, order=order, reason="requested in chat")
    if verdict.allowed:
        ctx.say("utter_refund_granted", amount=ctx.money(amount_cents), order_number=order.order_number)
    else:
        await escalate(ctx, verdict, "refund", f"refund {ctx.money(amount_cents)} for order {order.order_number}",
                       {"amount_cents": amount_cents, "order_number": order.order_number}, order)
    await ctx.repo.contact(ctx.customer.id, ctx.channel, "refund", f"order {order.order_number}")
    return []


# -- billing ----------------------------------------------------------------------------------
async def invoice_question(ctx: Context) -> list[EventType]:
    invoices = await ctx.repo.invoices(ctx.customer.id)
    if not invoices:
        ctx.say("utter_no_invoices")
        return []
    focus = await _invoice_asked_about(ctx, invoices)
    if focus is not None:
        # "en die van de bestelling die nog onderweg is?": that one invoice
        status = focus.status(ctx.today)
        key = "utter_invoice_of_order_open" if status in ("overdue", "open", "partially_paid") else "utter_invoice_of_order"
        ctx.say(key, order_number=focus.order_number, invoice=focus.invoice_number,
                amount=ctx.money(focus.amount_cents), status=fmt.label(fmt.INVOICE_STATUS, status, ctx.lang),
                due=fmt.day(focus.due_date, ctx.lang), open=ctx.money(focus.open_cents))
        await ctx.repo.contact(ctx.customer.id, ctx.channel, "invoice_question")
        return []
    # Overdue and open invoices first (they are what the customer needs), then the newest paid.
    invoices.sort(key=lambda i: ({"overdue": 0, "partially_paid": 1, "open": 1}.get(i.status(ctx.today), 2), -i.issued_at.toordinal()))
    lines = []
    for inv in invoices[:5]:
        status = inv.status(ctx.today)
        about = f" ({inv.order_number})" if inv.order_number else ""
        line = f"• {inv.invoice_number}{about}: {ctx.money(inv.amount_cents)}, {fmt.label(fmt.INVOICE_STATUS, status, ctx.lang)}"
        if status in ("overdue", "open", "partially_paid"):
            due = "vervaldatum" if ctx.lang == "nl" else "due"
            line += f" ({due} {fmt.day(inv.due_date, ctx.lang)}, {'open' if ctx.lang == 'nl' else 'outstanding'} {ctx.money(inv.open_cents)})"
        lines.append(line)
    overdue = [i for i in invoices if i.status(ctx.today) == "overdue"]
    if overdue:
        ctx.say("utter_invoices_overdue", lines="\n".join(lines),
                total=ctx.money(sum(i.open_cents for i in overdue)))
    else:
        ctx.say("utter_invoices", lines="\n".join(lines))
    await ctx.repo.contact(ctx.customer.id, ctx.channel, "invoice_question")
    return []


async def _invoice_asked_about(ctx: Context, invoices: list):
    """The invoice of the order this message names ("factuur van 104233") or describes ("de
    bestelling die nog onderweg is": the one under way); None: the question is about all of them."""
    text = ctx.tracker.latest_message.get("text") or ""
    named = ORDER_NUMBER.search(text)
    if named:
        number = named.group(1)
    elif UNDER_WAY.search(text):
        under_way = [o for o in await ctx.repo.recent_orders(ctx.customer.id, limit=10)
                     if o.status in ("placed", "shipped")]
        if len(under_way) != 1:
            return None
        number = under_way[0].order_number
    else:
        return None
    return next((i for i in invoices if i.order_number == number), None)


async def payment_arrangement(ctx: Context) -> list[EventType]:
    wanted = ctx.slot("amount")
    amount_cents = await ctx.decisions.open_cents(ctx.customer.id) if wanted in (None, "all") else cents(wanted)
    if amount_cents <= 0:
        ctx.say("utter_nothing_open")
        return []
    instalments = int(ctx.slot("instalments") or policy().instalments.min)
    request = await ctx.decisions.request("payment_arrangement", ctx.customer, amount_cents=amount_cents,
                                          instalments=instalments)
    verdict = await evaluate(ctx, request, reason="requested in chat")
    if verdict.allowed:
        per = -(-amount_cents // instalments)
        ctx.say("utter_arrangement_granted", amount=ctx.money(amount_cents), instalments=instalments,
                per=ctx.money(per))
    else:
        await escalate(ctx, verdict, "payment_arrangement",
                       f"payment arrangement {ctx.money(amount_cents)} in {instalments} instalments",
                       {"amount_cents": amount_cents, "instalments": instalments})
    await ctx.repo.contact(ctx.customer.id, ctx.channel, "payment_arrangement")
    return []


# -- account ----------------------------------------------------------------------------------
async def loyalty_points(ctx: Context) -> list[EventType]:
    account, available = await ctx.repo.loyalty(ctx.customer.id)
    if account is None:
        ctx.say("utter_no_loyalty")
        return []
    name = "name_en" if ctx.lang == "en" else "name_nl"
    if available:
        rewards = "\n".join(f"• {getattr(r, name)} ({r.points_cost} {'punten' if ctx.lang == 'nl' else 'points'})"
                            for r in available)
        ctx.say("utter_loyalty_rewards", points=account.points, tier=account.tier, rewards=rewards)
    else:
        ctx.say("utter_loyalty_no_rewards_yet", points=account.points, tier=account.tier)
    await ctx.repo.contact(ctx.customer.id, ctx.channel, "loyalty")
    return []


async def update_preferences(ctx: Context) -> list[EventType]:
    field, _, value = str(ctx.slot("preference") or "").partition("=")
    if not field:
        return []
    if field in ("email", "phone") and not is_verified(ctx.tracker):
        ctx.say("utter_not_verified")
        return []
    stored: Any = value
    shown = value
    if field == "consent_proactive":
        stored = value == "yes"
        shown = fmt.label(fmt.YES_NO, "yes" if stored else "no", ctx.lang)
    elif field == "preferred_channel":
        shown = registry.label(value, ctx.lang)
    elif field == "language":
        shown = fmt.label(fmt.LANGUAGE_NAMES, value, ctx.lang)
    try:
        await ctx.repo.update_preferences(ctx.customer.id, **{field: stored})
    except IntegrityError:  # the e-mail address or phone number is another customer's (unique)
        ctx.say("utter_preference_taken")
        return []
    what = fmt.label(fmt.PREFERENCE_NAMES, field, ctx.lang)
    ctx.say("utter_preference_updated", what=what, value=shown)
    await ctx.repo.contact(ctx.customer.id, ctx.channel, "preferences", field)
    return [SlotSet("language", value)] if field == "language" else []


async def cancel_contract(ctx: Context) -> list[EventType]:
    reason = ctx.slot("details") or ""
    if ctx.slot("retention_accepted"):
        if ctx.slot("retention_offer") == "voucher":
            request = await retention_voucher_request(ctx)
            verdict = await evaluate(ctx, request, reason=f"retention: {reason}"[:500])
            if verdict.allowed:
                ctx.say("utter_retention_kept", amount=ctx.money(cents(policy().retention_voucher)))
                return []
        deadline = service_levels().deadline("waiting_request", ctx.now)
        ticket = await ctx.ticket(
            "waiting_request", details=f"retention offer wanted: {reason}"[:2000],
            channel=ctx.channel, promised_by=deadline, data={"request": "retention_discount", "role": "agent"})
        if handoff_config().cancellation.handoff:
            ctx.say("utter_retention_to_person", ticket=ticket.id)
            ctx.dispatcher.utter_message(json_message=handoff_payload(
                "cancellation", ticket=ticket.id, topic="cancel_contract", role="agent",
                summary=f"retention offer wanted: {reason}"[:300], request={"decision": "retention_discount"}))
        else:
            ctx.say("utter_retention_colleague", deadline=ctx.when(deadline), channel=ctx.preferred(), ticket=ticket.id)
        return []
    deadline = service_levels().deadline("cancellation", ctx.now)
    ticket = await ctx.ticket("cancellation", details=reason, channel=ctx.channel,
                              promised_by=deadline)
    ctx.say("utter_cancellation_recorded", ticket=ticket.id, deadline=ctx.when(deadline), channel=ctx.preferred())
    await ctx.repo.contact(ctx.customer.id, ctx.channel, "cancellation", f"ticket {ticket.id}")
    await churn.refresh(ctx.repo.engine, ctx.customer.id, clock=ctx.clock)
    return []


async def retention_voucher_request(ctx: Context) -> MandateRequest:
    return await ctx.decisions.request("goodwill_voucher", ctx.customer, amount=policy().retention_voucher)


async def complaint(ctx: Context) -> list[EventType]:
    deadline = service_levels().deadline("complaint", ctx.now)
    ticket = await ctx.ticket("complaint", details=ctx.slot("details") or "",
                              channel=ctx.channel, promised_by=deadline)
    await ctx.repo.contact(ctx.customer.id, ctx.channel, "complaint", f"ticket {ticket.id}")
    scored = (await churn.refresh(ctx.repo.engine, ctx.customer.id, clock=ctx.clock)).get(ctx.customer.id)
    if handoff_config().complaint.applies(_score(scored), ctx.customer.segment):
        ctx.say("utter_complaint_to_person", ticket=ticket.id)
        ctx.dispatcher.utter_message(json_message=handoff_payload(
            "complaint", ticket=ticket.id, topic="complaint", summary=(ctx.slot("details") or "")[:300]))
    else:
        ctx.say("utter_complaint_recorded", ticket=ticket.id, deadline=ctx.when(deadline), channel=ctx.preferred())
    return []


def _score(refreshed: Any) -> int | None:
    value = getattr(refreshed, "score", refreshed)
    return value if isinstance(value, int) else None


async def claimed_order_status(dispatcher: CollectingDispatcher, tracker: Tracker) -> None:
    """Order number + postcode: that one order's status (and carrier, expected date: whatever
    config/identity.yml allows), no name, nothing else. Anything more needs a code."""
    lang = tracker.get_slot("language") or "nl"
    order = await records().order_by_number(tracker.get_slot("claim_order"))
    if order is None:
        dispatcher.utter_message(response="utter_claim_order_not_found", order_number=tracker.get_slot("claim_order"))
        return
    shown = identity_policy().order_postcode
    parts = {
        "nl": [f"Bestelling {order.order_number}: {fmt.label(fmt.ORDER_STATUS, order.status, 'nl')}"],
        "en": [f"Order {order.order_number}: {fmt.label(fmt.ORDER_STATUS, order.status, 'en')}"],
    }[lang] if "status" in shown else [{"nl": f"Bestelling {order.order_number}", "en": f"Order {order.order_number}"}[lang]]
    if "carrier" in shown and order.carrier and order.status in ("shipped", "delivered"):
        parts.append({"nl": f"vervoerder {order.carrier}", "en": f"carrier {order.carrier}"}[lang])
    if "expected" in shown and order.promised_date and order.status in ("placed", "shipped"):
        parts.append({"nl": "verwacht ", "en": "expected "}[lang] + fmt.day(order.promised_date, lang))
    dispatcher.utter_message(response="utter_order_status_claimed", summary=", ".join(parts))


async def response_time(ctx: Context) -> list[EventType]:
    """"How long still?" once we know who asks (actions/dialogue.py started topic_form for it)."""
    from actions.dialogue import tell_response_time

    if not await tell_response_time(ctx.dispatcher, ctx.tracker, ctx.clock, str(ctx.customer.id)):
        ctx.say("utter_response_time_nothing")
    return []


async def book_callback(ctx: Context) -> list[EventType]:
    """Book the chosen window (topic_form asked the number and the window): a callback ticket and
    its promise (deadline: the window's end, a reminder before it opens), confirmed here. A
    callback already on record is named instead of booking a second one."""
    from actions import callbacks
    from actions.callbacks import open_callbacks
    from bot.promises import callbacks as cb

    on_record = await open_callbacks(ctx.customer.id)
    if on_record:
        ticket = on_record[-1]
        ctx.say(ticket_response(ticket, ctx.now), ticket=ticket.id, deadline=ctx.when(aware(ticket.promised_by)))
        return []
    phone = ctx.slot("callback_phone") or ctx.customer.phone
    chosen = ctx.slot("callback_slot")
    config = cb.config()
    levels = callbacks.levels()
    if chosen and chosen != "none" and not await callbacks.still_free(chosen, ctx.now):
        ctx.dispatcher.utter_message(text=messages.text("callback_slot_taken", ctx.lang))
        return [SlotSet("callback_slot", None), SlotSet("topic", "request_callback"), FollowupAction("topic_form")]
    if chosen and chosen != "none":
        start = datetime.fromisoformat(chosen)
        end = start + config.window
        window = cb.window_text(start, end, ctx.lang, ctx.now, levels.tz)
        text = messages.text("callback_booked", ctx.lang, window=window, phone=phone, ticket="{ticket}")
    else:  # every window full: within the service level for callbacks
        start, end = None, service_levels().deadline("callback", ctx.now)
        text = messages.text("callback_no_windows", ctx.lang, deadline=ctx.when(end))
    ticket = await ctx.repo.create_ticket(
        ctx.customer.id, "callback", channel=ctx.channel, promised_by=end, conversation=ctx.tracker.sender_id,
        language=ctx.lang, queue=config.queue, answer_channel=ctx.channel, promise_text=text, now=ctx.now,
        window_start=start, details=f"callback on {phone}",
        data={"phone": phone, "window_start": start.isoformat() if start else None, "window_end": end.isoformat(),
              "attempts": 0, "language": ctx.lang})
    ctx.dispatcher.utter_message(text=text.replace("{ticket}", str(ticket.id)))
    await ctx.repo.contact(ctx.customer.id, ctx.channel, "callback", f"ticket {ticket.id}")
    return []


HANDLERS: dict[str, Callable[[Context], Awaitable[list[EventType]]]] = {
    "order_status": order_status,
    "delivery_problem": delivery_problem,
    "return_item": return_item,
    "request_refund": request_refund,
    "invoice_question": invoice_question,
    "payment_arrangement": payment_arrangement,
    "loyalty_points": loyalty_points,
    "update_preferences": update_preferences,
    "cancel_contract": cancel_contract,
    "complaint": complaint,
    "cancel_order": cancel_order,
    "ask_response_time": response_time,
    "request_callback": book_callback,
}


class ActionTopic(Clocked, Action):
    def name(self) -> str:
        return "action_topic"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain) -> list[EventType]:
        reset = [SlotSet(slot, None) for slot in PER_TOPIC]
        customer_id = tracker.get_slot("customer_id")
        topic = tracker.get_slot("topic")
        if topic is None:  # the customer stopped the question (see ValidateTopicForm.run)
            return reset
        handler = HANDLERS.get(topic)
        if not customer_id and topic == "order_status" and shows_claimed_order(tracker):
            await claimed_order_status(dispatcher, tracker)
            return reset
        if not customer_id or handler is None:
            dispatcher.utter_message(response="utter_not_identified")
            return reset
        repo = records()
        customer = await repo.customer(int(customer_id))
        if customer is None:
            dispatcher.utter_message(response="utter_not_identified")
            return reset + [SlotSet("customer_id", None), SlotSet("customer_name", None)]
        channel = latest_user_metadata(tracker).get("channel") or "webchat"
        ctx = Context(dispatcher, tracker, repo, customer, tracker.get_slot("language") or "nl", channel, self.clock)
        events = await handler(ctx)
        # tells the gateway: a second question of the same message may come now (bot/pipeline/questions.py)
        dispatcher.utter_message(json_message=control.payload(control.TopicDone(topic)))
        return events + reset


class ActionAskAmount(Clocked, Action):
    """Asks how much, showing the order total (refund) or the open invoices (arrangement)."""

    def name(self) -> str:
        return "action_ask_amount"

    async def run(self, dispatcher, tracker: Tracker, domain) -> list[EventType]:
        lang = tracker.get_slot("language") or "nl"
        repo = records()
        customer_id = int(tracker.get_slot("customer_id"))
        stop = [ActiveLoop(None), SlotSet("requested_slot", None), SlotSet("topic", None)]
        if tracker.get_slot("topic") == "request_refund":
            order = await repo.order(customer_id, tracker.get_slot("order_number") or "")
            refunded = await repo.refunded_cents(order.id) if order else 0
            total = order.total_cents - refunded if order else 0
            response = "utter_ask_amount_refund"
            if order and await self._case_decides(dispatcher, repo, customer_id, order, lang):
                return stop
            if order and total <= 0:  # never "up to €0.00 can be refunded"
                dispatcher.utter_message(response="utter_refund_nothing_left", order_number=order.order_number,
                                         refunded=fmt.money(refunded, lang))
                return stop
        else:
            total = await Decisions(repo, mandates(), self.clock).open_cents(customer_id)
            response = "utter_ask_amount_arrangement"
            if total <= 0:  # never "what amount? €0.00 is outstanding"
                dispatcher.utter_message(response="utter_nothing_open")
                return stop
        title = {"nl": f"Het hele bedrag ({fmt.money(total, 'nl')})", "en": f"The full amount ({fmt.money(total, 'en')})"}[lang]
        dispatcher.utter_message(response=response, total=fmt.money(total, lang),
                                 order_number=tracker.get_slot("order_number") or "",
                                 buttons=[{"title": title, "payload": title}])
        return []


    async def _case_decides(self, dispatcher, repo, customer_id: int, order, lang: str) -> bool:
        """A delivery problem reported on this order and still open: the colleague looking into it
        decides between sending it again and a refund, so no separate refund ("will you send a new
        one or do I get a refund?"); what was promised is said again. Whether it was."""
        open_cases = [t for t in await repo.tickets(customer_id, kind="delivery_problem", status="open")
                      if t.order_id == order.id and t.promised_by]
        if not open_cases:
            return False
        case = open_cases[-1]
        customer = await repo.customer(customer_id)
        now = self.clock.now()
        dispatcher.utter_message(response=ticket_response(case, now), ticket=case.id,
                                 kind=fmt.label(fmt.TICKET_KINDS, case.kind, lang),
                                 channel=registry.label(customer.preferred_channel or "webchat", lang),
                                 deadline=describe(aware(case.promised_by), lang, now, self.clock.tz))
        return True


class ActionAskRetentionAccepted(Clocked, Action):
    """Offers what the bot's mandate allows for this customer, or a colleague who may offer more."""

    def name(self) -> str:
        return "action_ask_retention_accepted"

    async def run(self, dispatcher, tracker: Tracker, domain) -> list[EventType]:
        lang = tracker.get_slot("language") or "nl"
        repo = records()
        customer = await repo.customer(int(tracker.get_slot("customer_id")))
        ctx = Context(dispatcher, tracker, repo, customer, lang, "webchat", self.clock)
        if ctx.decisions.may("bot", await retention_voucher_request(ctx)):
            amount = fmt.money(cents(policy().retention_voucher), lang)
            asks_for_more = OFFER_QUESTION.search(tracker.latest_message.get("text") or "")
            if tracker.get_slot("retention_offer") == "voucher" and asks_for_more:
                # "wat kunnen jullie me dan bieden?" after the offer: what the bot may give, and who may give more
                ctx.say("utter_retention_offer_explained", amount=amount)
            else:
                ctx.say("utter_retention_offer_voucher", amount=amount)
            return [SlotSet("retention_offer", "voucher")]
        if tracker.get_slot("retention_offer") == "colleague" and OFFER_QUESTION.search(tracker.latest_message.get("text") or ""):
            ctx.say("utter_retention_offer_colleague_explained")
        else:
            ctx.say("utter_retention_offer_colleague")
        return [SlotSet("retention_offer", "colleague")]


class ActionAskDetails(Action):
    def name(self) -> str:
        return "action_ask_details"

    async def run(self, dispatcher, tracker: Tracker, domain) -> list[EventType]:
        topic = tracker.get_slot("topic")
        dispatcher.utter_message(response="utter_ask_cancel_reason" if topic == "cancel_contract" else "utter_ask_details")
        return []
