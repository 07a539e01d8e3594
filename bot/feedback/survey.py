"""The post-chat survey, on the customer's own channel (issue 13).

Sent when a conversation ends (config/feedback.yml `triggers`): an agent closes it, an agent hands
back after resolving it, or the bot answered the customer's topic and the customer says thanks or
goodbye, or goes quiet for `quiet_minutes`. The questions, short and neutral:

    CES 2.0 (1-7) first; NPS (0-10) at most once per customer per `nps_every_days`; CSAT (1-5)
    when switched on; one open question worded by the score; the anonymous choice at the end.

Each question is a message through the one delivery path (bot/delivery/outbound.py): quick
replies on the web chat, an inline keyboard on Telegram, a numbered reply on SMS and WhatsApp
(the scale in the text; outside WhatsApp's 24-hour window the sender uses the template). Any
question can be skipped, "stop" ends the survey, and a message that is no answer (a real
question) leaves the survey: the gateway then answers it as usual, it never reaches Rasa as a
score. One reminder at most; an unanswered survey ends after `expire_minutes`.

State: the open survey of a conversation is a JSON field `survey` of the conversation's hash in
Redis, the sorted sets `<prefix>:feedback:open` (sent surveys, for reminder and expiry) and
`<prefix>:feedback:quiet` (conversations the bot resolved, for the quiet trigger); the record of
each survey is a `surveys` row, its answers one `feedback` row. An anonymous answer is stored
without customer, conversation, agent or survey (channel, queue, topic, who served and the week
only, created_at the start of that week) and the customer's replies in the transcript are
replaced by a placeholder. A detractor (config/feedback.yml `detractor`) becomes a
`feedback_followup` ticket for the queue, with a promise to the customer (bot/promises).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Awaitable, Callable

from sqlalchemy import func, select, update

from bot.feedback import answers
from bot.feedback.config import FeedbackConfig
from bot.pipeline.types import BotMessage, Button
from bot.policy import churn
from bot.policy.hours import describe
from bot.records.models import ContactEvent, Customer, Feedback, Survey, TranscriptEntry
from bot.texts import messages
from channels import registry

log = logging.getLogger(__name__)

SCALES = {"ces": (1, 7), "nps": (0, 10), "csat": (1, 5)}
ANONYMOUS_TEXT = {"nl": "[anoniem antwoord]", "en": "[anonymous answer]"}
WEBCHAT = "webchat"
CHAT_CHANNELS = ("webchat", "whatsapp", "sms", "telegram")  # where a reply comes back to the survey


@dataclass
class Started:
    """A survey that was offered: its first message (already in the transcript)."""

    survey_id: int
    messages: list[BotMessage]


def _week(moment: datetime) -> str:
    year, week, _ = moment.isocalendar()
    return f"{year}-W{week:02d}"


def week_start(moment: datetime) -> datetime:
    """Monday 00:00 UTC of the moment's week: all an anonymous answer keeps of its time."""
    day = moment.astimezone(timezone.utc).date()
    monday = day - timedelta(days=day.weekday())
    return datetime(monday.year, monday.month, monday.day, tzinfo=timezone.utc)


def _utc(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)


class Surveys:
    def __init__(self, redis: Any, prefix: str, store: Any, records: Any, outbound: Any, handoffs: Any,
                 clock: Any, config: FeedbackConfig | None = None) -> None:
        self.redis = redis
        self.prefix = prefix
        self.store = store
        self.records = records
        self.outbound = outbound
        self.handoffs = handoffs
        self.clock = clock
        self.config = config or FeedbackConfig.load()

    def _k(self, *parts: str) -> str:
        return ":".join((self.prefix, "feedback", *parts))

    # -- state ---------------------------------------------------------------------------------
    async def state(self, key: str) -> dict[str, Any] | None:
        """The open survey of the conversation; a state whose survey is no longer open in the records
        (erased, ended by another process, a database restored) is dropped."""
        raw = (await self.store.get(key)).get("survey")
        if not raw:
            return None
        try:
            state = json.loads(raw)
        except ValueError:
            state = None
        if isinstance(state, dict) and state.get("id"):
            async with self.records.session() as s:
                status = (await s.execute(select(Survey.status).where(Survey.id == int(state["id"])))).scalar()
            if status == "sent":
                return state
        await self._clear(key)
        return None

    async def _save(self, key: str, state: dict[str, Any]) -> None:
        await self.store.update(key, survey=json.dumps(state))

    async def _clear(self, key: str) -> None:
        await self.store.update(key, survey="")
        await self.redis.zrem(self._k("open"), key)

    # -- the bot resolved a topic ---------------------------------------------------------------
    async def resolved(self, key: str, topic: str) -> None:
        """The bot answered `topic`: thanks or goodbye next, or quiet for `quiet_minutes`, ends it."""
        if not self.config.enabled:
            return
        now = self.clock.now().timestamp()
        await self.store.update(key, resolved=json.dumps({"topic": topic, "at": now}))
        if self.config.bot_quiet:
            await self.redis.zadd(self._k("quiet"), {key: now})

    async def take_resolution(self, key: str) -> dict[str, Any] | None:
        """The customer writes again: the topic the bot resolved before (once), if any."""
        raw = (await self.store.get(key)).get("resolved")
        if not raw:
            return None
        await self.store.update(key, resolved="")
        await self.redis.zrem(self._k("quiet"), key)
        try:
            found = json.loads(raw)
        except ValueError:
            return None
        return found if isinstance(found, dict) else None

    # -- offering ------------------------------------------------------------------------------
    async def _customer(self, key: str) -> Customer | None:
        customer_id = await self.store.customer_id(key)
        return await self.records.customer(customer_id) if customer_id else None

    async def may_ask(self, key: str, customer: Customer | None, now: datetime) -> str | None:
        """Why no survey may be sent now (None: it may)."""
        since = now - timedelta(days=self.config.every_days)
        if await self.state(key) is not None:
            return "a survey is open"
        async with self.records.session() as s:
            who = Survey.customer_id == customer.id if customer else Survey.conversation == key
            recent = (await s.execute(select(func.count(Survey.id)).where(
                who, Survey.sent_at >= _utc(since), Survey.status != "failed"))).scalar()
        if recent:
            return f"surveyed in the last {self.config.every_days} days"
        if customer is not None:
            if not customer.consent_proactive and await self._said_stop(customer.id):
                return "opted out of messages (STOP)"
            if self.config.skip_with_open_complaint and await self.records.tickets(
                    customer.id, kind="complaint", status="open"):
                return "a complaint is open"
        return None

    async def _said_stop(self, customer_id: int) -> bool:
        """The customer switched messages off themselves ("STOP", "geen berichten meer"): recorded
        in their contact history by the gateway (bot/pipeline/service.py `_stop`)."""
        async with self.records.session() as s:
            return (await s.execute(select(func.count(ContactEvent.id)).where(
                ContactEvent.customer_id == customer_id, ContactEvent.topic == "consent"))).scalar() > 0

    async def _nps_due(self, key: str, customer: Customer | None, now: datetime) -> bool:
        if not self.config.nps:
            return False
        since = _utc(now - timedelta(days=self.config.nps_every_days))
        async with self.records.session() as s:
            who = Survey.customer_id == customer.id if customer else Survey.conversation == key
            asked = (await s.execute(select(func.count(Survey.id)).where(
                who, Survey.asked_nps.is_(True), Survey.sent_at >= since))).scalar()
        return not asked

    async def offer(self, key: str, trigger: str, *, served_by: str, agent: str | None = None,
                    queue: str | None = None, topic: str | None = None, send: bool = True) -> Started | None:
        """Start a survey for the conversation `key` when the rules allow it. With `send` it goes out
        now on the channel the customer last wrote on; otherwise its first message is returned
        for the caller's reply (already in the transcript)."""
        enabled = {"close": self.config.agent_close, "handback": self.config.agent_handback,
                   "resolved": self.config.bot_thanks, "quiet": self.config.bot_quiet}
        if not self.config.enabled or not enabled.get(trigger, False):
            return None
        conv = await self.store.get(key)
        channel = conv.get("last_channel") or WEBCHAT
        address = key if channel == WEBCHAT else conv.get("last_address")
        if channel not in CHAT_CHANNELS:
            log.info("no survey for %s: not a chat channel (%s)", key, channel)
            return None
        if send and (not address or not self.outbound.can_send(channel)):
            log.info("no survey for %s: %s cannot be written to", key, channel)
            return None
        lang = conv.get("language") if conv.get("language") in ("nl", "en") else "nl"
        now = self.clock.now()
        customer = await self._customer(key)
        why_not = await self.may_ask(key, customer, now)
        if why_not:
            log.info("no survey for %s: %s", key, why_not)
            return None
        steps = ["ces"] + (["nps"] if await self._nps_due(key, customer, now) else []) \
            + (["csat"] if self.config.csat else []) + (["comment"] if self.config.comment else []) \
            + (["anonymous"] if self.config.anonymous == "choice" and customer is not None else [])
        async with self.records.session() as s, s.begin():
            survey = Survey(customer_id=customer.id if customer else None, conversation=key, channel=channel,
                            language=lang, queue=queue, topic=(topic or None) and str(topic)[:40],
                            served_by=served_by, agent=agent, trigger=trigger, status="sent",
                            asked_nps="nps" in steps, sent_at=_utc(now))
            s.add(survey)
            await s.flush()
            survey_id = survey.id
        state = {"id": survey_id, "steps": steps, "step": 0, "answers": {}, "lang": lang, "channel": channel,
                 "rows": [], "sent": now.timestamp(), "reminded": False, "retried": False}
        await self._save(key, state)
        await self.redis.zadd(self._k("open"), {key: now.timestamp()})
        first = self._question(state, prefix=messages.text("survey_intro", lang) + "\n")
        row = await self.outbound.transcript.log(key, "bot", first.text, channel, survey=survey_id,
                                                 buttons=[b.__dict__ for b in first.buttons])
        log.info("survey %s offered to %s on %s (%s, %s)", survey_id, key, channel, trigger, "+".join(steps))
        if send:
            result = await self.outbound.send(key, channel, address, [first], [row], what="survey")
            if result.status == "failed":
                await self._end(key, state, "failed")
                log.warning("survey %s for %s not delivered: %s", survey_id, key, getattr(result, "reason", ""))
                return None
        return Started(survey_id, [first])

    # -- the questions ----------------------------------------------------------------------------
    def _question(self, state: dict[str, Any], prefix: str = "") -> BotMessage:
        step = state["steps"][state["step"]]
        lang, channel = state["lang"], state["channel"]
        numbered = registry.numbered_buttons(channel)
        skip = Button(messages.text("survey_skip_button", lang), messages.text("survey_skip_button", lang).lower())
        if step in SCALES:
            low, high = SCALES[step]
            text = messages.text(f"survey_{step}", lang)
            if numbered:  # SMS and WhatsApp: the scale in words, answered with a number
                return BotMessage(prefix + text + " " + messages.text("survey_scale_sms", lang, low=low, high=high))
            return BotMessage(prefix + text, [Button(str(n), str(n)) for n in range(low, high + 1)] + [skip])
        if step == "comment":
            score = state["answers"].get("ces")
            mood = "mid" if score is None else "low" if score <= self.config.ces_max else "high" if score >= 6 else "mid"
            return BotMessage(prefix + messages.text(f"survey_comment_{mood}", lang), [] if numbered else [skip])
        return BotMessage(prefix + messages.text("survey_anonymous", lang), [
            Button(messages.text("survey_named", lang), messages.text("survey_named", lang).lower()),
            Button(messages.text("survey_anonymous_button", lang), messages.text("survey_anonymous_button", lang).lower())])

    async def answer(self, key: str, channel: str, text: str, *, message_id: str | None = None,
                     stop_word: bool = False,
                     is_question: Callable[[str], Awaitable[bool]] | None = None) -> list[BotMessage] | None:
        """The customer's message while a survey is open: the survey's replies, or None when it is
        no answer (the survey is left; the caller answers the message as usual). `stop_word`: the
        channel's STOP (the caller switches messages off after this)."""
        state = await self.state(key)
        if state is None:
            return None
        if stop_word:
            await self._end(key, state, "stopped")
            return None
        if message_id and message_id == state.get("last_message"):
            return [self._question(state)]  # the same message again (a retried turn): not a second answer
        state["last_message"] = message_id
        step = state["steps"][state["step"]]
        lang = state["lang"]
        if step in SCALES:
            low, high = SCALES[step]
            reply = answers.read(text, low, high)
        elif step == "comment":
            reply = answers.read_comment(text)
            if reply.kind == answers.TEXT and is_question is not None and await is_question(text):
                reply = answers.Reply(answers.OTHER)
        else:
            if registry.numbered_buttons(channel) and text.strip() in ("1", "2"):
                reply = answers.Reply(answers.SCORE, int(text.strip()) - 1)
            else:
                reply = answers.read_choice(text)
        if reply.kind == answers.OUT_OF_RANGE and not state.get("retried"):
            state["retried"] = True
            await self._log_reply(key, state, text, channel, message_id)
            low, high = SCALES[step]
            again = BotMessage(messages.text("survey_range", lang, low=low, high=high),
                               self._question(state).buttons)
            await self._save(key, state)
            await self.outbound.transcript.log(key, "bot", again.text, channel, survey=state["id"],
                                               buttons=[b.__dict__ for b in again.buttons])
            return [again]
        if reply.kind in (answers.OTHER, answers.OUT_OF_RANGE):
            if step == "anonymous":  # left without choosing: privacy by default
                state["answers"]["anonymous"] = True
            await self._end(key, state, "left")
            return None
        await self._log_reply(key, state, text, channel, message_id)
        if reply.kind == answers.STOP:
            if step == "anonymous":
                state["answers"]["anonymous"] = True
                return await self._finish(key, state)
            await self._end(key, state, "stopped")
            return [await self._say(key, state, "survey_stopped")]
        if reply.kind == answers.SCORE:
            if step == "anonymous":
                state["answers"]["anonymous"] = bool(reply.value)
            else:
                state["answers"][step] = reply.value
        elif reply.kind == answers.TEXT:
            state["answers"]["comment"] = reply.text
        state["step"] += 1
        state["retried"] = False
        if state["step"] >= len(state["steps"]):
            return await self._finish(key, state)
        await self._save(key, state)
        question = self._question(state)
        await self.outbound.transcript.log(key, "bot", question.text, channel, survey=state["id"],
                                           buttons=[b.__dict__ for b in question.buttons])
        return [question]

    async def _log_reply(self, key: str, state: dict[str, Any], text: str, channel: str,
                         message_id: str | None) -> None:
        row = await self.outbound.transcript.log(key, "customer", text, channel, survey=state["id"],
                                                 message_id=message_id)
        if row:
            state["rows"].append(row)

    async def _say(self, key: str, state: dict[str, Any], text_key: str, **values: Any) -> BotMessage:
        message = BotMessage(messages.text(text_key, state["lang"], **values))
        await self.outbound.transcript.log(key, "bot", message.text, state["channel"], survey=state["id"])
        return message

    # -- ending --------------------------------------------------------------------------------
    def _anonymous(self, state: dict[str, Any]) -> bool:
        return self.config.anonymous == "always" or bool(state["answers"].get("anonymous"))

    async def _finish(self, key: str, state: dict[str, Any]) -> list[BotMessage]:
        """The last question answered: thanks, and a follow-up for a detractor."""
        follow_up = await self._end(key, state, "answered")
        if follow_up is not None:
            return [await self._say(key, state, "survey_thanks_follow_up", when=follow_up)]
        return [await self._say(key, state, "survey_thanks_anonymous" if self._anonymous(state) else "survey_thanks")]

    async def _end(self, key: str, state: dict[str, Any], status: str) -> str | None:
        """Store what was answered, end the survey; the follow-up's time in words for a detractor."""
        await self._clear(key)
        now = self.clock.now()
        given = {k: v for k, v in state["answers"].items() if k in SCALES or k == "comment"}
        anonymous = self._anonymous(state)
        async with self.records.session() as s, s.begin():
            survey = await s.get(Survey, int(state["id"]))
            if survey is None:  # the customer's records were erased meanwhile
                return None
            survey.status = "answered" if given and status != "stopped" else status
            survey.ended_at = _utc(now)
            if not given:
                return None
            row = Feedback(
                ces=given.get("ces"), nps=given.get("nps"), csat=given.get("csat"), comment=given.get("comment", ""),
                channel=survey.channel, queue=survey.queue, topic=survey.topic, served_by=survey.served_by,
                anonymous=anonymous, week=_week(now),
                customer_id=None if anonymous else survey.customer_id,
                conversation=None if anonymous else survey.conversation,
                survey_id=None if anonymous else survey.id,
                agent=None if anonymous else survey.agent,
                created_at=week_start(now) if anonymous else _utc(now))
            s.add(row)
            customer_id, queue, topic, agent = survey.customer_id, survey.queue, survey.topic, survey.agent
            if anonymous and state["rows"]:
                await s.execute(update(TranscriptEntry).where(TranscriptEntry.id.in_(state["rows"]))
                                .values(text=ANONYMOUS_TEXT.get(state["lang"], ANONYMOUS_TEXT["nl"]), data={}))
        log.info("survey %s %s (%s)", state["id"], survey.status, "anonymous" if anonymous else "named")
        if anonymous or customer_id is None:
            return None
        if not self.config.detractor(given.get("ces"), given.get("nps"), given.get("csat")):
            return None
        try:  # a low score is a churn signal (bot/policy/churn.py)
            await churn.refresh(self.records.engine, int(customer_id), clock=self.clock)
        except Exception:  # noqa: BLE001 - the score is refreshed again by the next change or the CLI
            log.exception("churn score of customer %s not refreshed", customer_id)
        if not self.config.follow_up:
            return None
        return await self._follow_up(key, state, int(customer_id), given, queue, topic, agent, now)

    async def _follow_up(self, key: str, state: dict[str, Any], customer_id: int, given: dict[str, Any],
                         queue: str | None, topic: str | None, agent: str | None, now: datetime) -> str:
        """A detractor: a follow-up item for a person of the right queue and language, promised."""
        queues = self.handoffs.config.queues
        name = queue if queue in queues else "general" if "general" in queues else next(iter(queues))
        levels = queues[name].levels
        deadline = levels.add_business_hours(now, self.config.reply_within_business_hours)
        when = describe(deadline, state["lang"], now, levels.tz)
        scores = ", ".join(f"{k.upper()} {v}" for k, v in given.items() if k in SCALES)
        ticket = await self.records.create_ticket(
            customer_id, "feedback_followup", details=f"{scores}: {given.get('comment', '')}".strip()[:2000],
            data={"survey": state["id"], "conversation": key, "scores": {k: v for k, v in given.items() if k in SCALES},
                  "comment": given.get("comment", ""), "queue": name, "language": state["lang"], "topic": topic,
                  "agent": agent},
            channel=state["channel"], promised_by=deadline, conversation=key, language=state["lang"], queue=name,
            answer_channel=state["channel"], now=now,
            promise_text=messages.text("survey_thanks_follow_up", state["lang"], when=when))
        await self.records.contact(customer_id, state["channel"], "feedback",
                                   f"follow-up #{ticket.id}: {scores}"[:300])
        log.info("survey %s: detractor (%s), follow-up ticket %s for queue %s", state["id"], scores, ticket.id, name)
        return when

    # -- the scheduler's sweep (bot/promises/scheduler.py) ------------------------------------------
    async def sweep(self) -> dict[str, int]:
        """Quiet conversations get their survey; one reminder; unanswered surveys end."""
        now = self.clock.now()
        counts = {"quiet": 0, "reminded": 0, "expired": 0}
        if not self.config.enabled:
            return counts
        if self.config.bot_quiet:
            due = await self.redis.zrangebyscore(self._k("quiet"), "-inf", now.timestamp() - 60 * self.config.quiet_minutes)
            for key in due:
                if not await self.redis.zrem(self._k("quiet"), key):
                    continue  # another process took it
                raw = (await self.store.get(key)).get("resolved")
                await self.store.update(key, resolved="")
                if not raw or await self.handoffs.state(key) in ("waiting", "with_agent"):
                    continue
                topic = (json.loads(raw) or {}).get("topic")
                if await self.offer(key, "quiet", served_by="bot", topic=topic, send=True):
                    counts["quiet"] += 1
        oldest = now.timestamp() - 60 * min(self.config.reminder_minutes or self.config.expire_minutes,
                                            self.config.expire_minutes)
        for key in await self.redis.zrangebyscore(self._k("open"), "-inf", oldest):
            state = await self.state(key)
            if state is None:
                await self.redis.zrem(self._k("open"), key)
                continue
            age = now.timestamp() - float(state["sent"])
            if age >= 60 * self.config.expire_minutes:
                await self._end(key, state, "expired")
                counts["expired"] += 1
            elif self.config.reminder_minutes and not state.get("reminded") and state["step"] == 0 \
                    and age >= 60 * self.config.reminder_minutes:
                state["reminded"] = True
                await self._save(key, state)
                if await self._remind(key, state, now):
                    counts["reminded"] += 1
        return counts

    async def _remind(self, key: str, state: dict[str, Any], now: datetime) -> bool:
        conv = await self.store.get(key)
        channel = state["channel"]
        address = key if channel == WEBCHAT else conv.get("last_address")
        if not address or not self.outbound.can_send(channel):
            return False
        message = self._question(state, prefix=messages.text("survey_reminder", state["lang"]) + "\n")
        row = await self.outbound.transcript.log(key, "bot", message.text, channel, survey=state["id"],
                                                 buttons=[b.__dict__ for b in message.buttons])
        async with self.records.session() as s, s.begin():
            await s.execute(update(Survey).where(Survey.id == int(state["id"])).values(reminded_at=_utc(now)))
        result = await self.outbound.send(key, channel, address, [message], [row], what="survey reminder")
        return result.status != "failed"

    async def forget(self, key: str) -> None:
        """The conversation's survey state goes (erasure of a customer's data)."""
        await self._clear(key)
        await self.store.update(key, resolved="")
        await self.redis.zrem(self._k("quiet"), key)
