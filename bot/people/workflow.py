"""The agent workflow around a conversation: hand it to people with an honest wait (stored as a
promise), and what agents do in the desk: claim, reply, transfer, hand back, close.

The queue and its state are bot/people/queue.py's; every message to the customer goes through
the one outbound path (bot/delivery/outbound.py).
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import TYPE_CHECKING, Any

from bot.delivery.outbound import NotDelivered, Outbound, Unreachable
from bot.people import REASONS, AgentInfo, HandoffError, Handoffs
from bot.pipeline.conversations import ConversationStore
from bot.pipeline.transcript import Transcript
from bot.pipeline.types import BotMessage
from bot.policy.hours import describe
from bot.shared import language
from bot.texts import messages
from channels import registry

if TYPE_CHECKING:
    from bot.records.models import Promise
    from bot.records.repository import Records

log = logging.getLogger(__name__)

INTRO = {"asked": "handoff_start", "misunderstood": "handoff_start", "angry": "handoff_angry",
         "urgent": "handoff_urgent"}


class AgentWorkflow:
    def __init__(self, store: ConversationStore, records: "Records", handoffs: Handoffs, outbound: Outbound,
                 transcript: Transcript) -> None:
        self.store = store
        self.records = records
        self.handoffs = handoffs
        self.outbound = outbound
        self.transcript = transcript

    async def _language(self, key: str) -> str:
        return await self.store.language(key, language.SUPPORTED, language.DEFAULT_LANGUAGE)

    async def _say(self, key: str, text: str, sender: str = "agent", agent: AgentInfo | None = None) -> str:
        who = dict(agent=agent.username if agent else None, agent_name=agent.name if agent else None)
        try:
            channel = await self.outbound.to_conversation(key, text, sender, **who)
        except Unreachable as exc:
            raise HandoffError("unreachable", str(exc)) from exc
        except NotDelivered as exc:
            raise HandoffError("delivery_failed", str(exc)) from exc
        await self.handoffs.publish({"type": "message", "conversation": key})
        return channel

    # -- to people ---------------------------------------------------------------------------------
    async def start(self, key: str, channel: str, payload: dict[str, Any], lang: str) -> list[BotMessage]:
        """Queue the conversation for people; the customer's replies: an intro and the honest wait."""
        customer_id = await self.store.customer_id(key)
        customer = await self.records.customer(customer_id) if customer_id else None
        scored = await self.records.churn(customer.id) if customer else None
        reason = payload.get("reason") if payload.get("reason") in REASONS else "asked"
        ticket = payload.get("ticket")
        await self.handoffs.enqueue(
            key, reason=reason, language=lang, customer_id=customer.id if customer else None,
            customer_name=customer.name if customer else "", segment=customer.segment if customer else None,
            churn=scored.score if scored else None,
            topic=payload.get("topic") if isinstance(payload.get("topic"), str) else None,
            role=payload.get("role") if isinstance(payload.get("role"), str) else None,
            summary=str(payload.get("summary") or ""),
            request=payload.get("request") if isinstance(payload.get("request"), dict) else None,
            ticket_id=int(ticket) if isinstance(ticket, int) or str(ticket or "").isdigit() else None,
            channel=channel,
        )
        log.info("conversation %s handed to people (%s)", key, reason)
        replies = []
        if INTRO.get(reason):
            replies.append(BotMessage(messages.text(INTRO[reason], lang)))
            await self.transcript.log(key, "bot", replies[-1].text, channel)
        return replies + await self.wait_message(key, lang, channel)

    async def wait_message(self, key: str, lang: str, channel: str, asked: bool = False) -> list[BotMessage]:
        """The honest wait, from the live queue; stored as a promise with its deadline. `asked`: the
        customer asked ("how long still?", "do I have to wait here?"): a live wait also says they
        need not stay, and on which channel the answer comes."""
        estimate = await self.handoffs.estimate(key)  # at the handoffs' clock
        answer_on = await self.outbound.answer_channel(key, channel)
        text = self.handoffs.wait_text(estimate, lang, registry.label(answer_on, lang))
        if asked and estimate.kind == "live":
            text += " " + messages.text("wait_not_here", lang, channel=registry.label(answer_on, lang))
        await self.store.update(key, away="0" if estimate.kind == "live" else "1")
        await self.handoffs.promised(key, estimate.deadline, estimate)
        await self.records.add_promise(key, await self.store.customer_id(key), "handoff_wait", text, estimate.deadline,
                                       channel=answer_on, language=lang, queue=estimate.queue,
                                       owed_by=f"queue:{estimate.queue}", now=self.handoffs.now())
        await self.transcript.log(key, "bot", text, channel)
        return [BotMessage(text)]

    # -- what agents do ------------------------------------------------------------------------------
    async def tell(self, key: str, text_by_language: dict[str, str], sender: str = "agent",
                   agent: AgentInfo | None = None) -> str:
        lang = await self._language(key)
        return await self._say(key, text_by_language.get(lang) or text_by_language["nl"], sender, agent)

    async def claim(self, key: str, agent: AgentInfo) -> dict[str, Any]:
        item = await self.handoffs.claim(key, agent)
        # the wait is over (at the clock the promise was made by)
        await self.records.settle_promises(key, self.handoffs.now(), kinds=("handoff_wait",))
        lang = await self._language(key)
        await self._say(key, messages.text("agent_joined", lang, name=agent.name.split()[0]), "agent", agent)
        return item

    async def reply(self, key: str, agent: AgentInfo, text: str) -> str:
        item = await self.handoffs.get(key)
        if item is None:
            raise HandoffError("unknown_conversation")
        if item.get("state") != "with_agent" or item.get("claimed_by") != agent.username:
            raise HandoffError("not_yours", item.get("claimed_by") or item.get("state", ""))
        channel = await self._say(key, text, "agent", agent)
        await self.records.settle_promises(key, self.handoffs.now(), kinds=("agent",))  # got back to them
        return channel

    async def promise(self, key: str, agent: AgentInfo, deadline: datetime, note: str = "") -> "Promise":
        """An agent's "I'll get back to you tomorrow": told to the customer (where the answer
        comes) and recorded as a promise owed by that agent, watched like every other."""
        item = await self.handoffs.get(key)
        if item is None:
            raise HandoffError("unknown_conversation")
        now = self.handoffs.now()
        if deadline <= now:
            raise HandoffError("deadline_passed", deadline.isoformat())
        lang = await self._language(key)
        conv = await self.store.get(key)
        answer_on = await self.outbound.answer_channel(key, conv.get("last_channel") or "webchat")
        levels = self.handoffs.config.queue_of(item).levels
        text = messages.text("promise_agent", lang, name=agent.name.split()[0],
                             deadline=describe(deadline, lang, now, levels.tz), channel=registry.label(answer_on, lang))
        text = f"{text} {note.strip()[:300]}".strip()  # the agent's own words, when given
        await self._say(key, text, "agent", agent)
        return await self.records.add_promise(key, await self.store.customer_id(key), "agent", text, deadline,
                                              channel=answer_on, language=lang, queue=item.get("queue"),
                                              owed_by=f"agent:{agent.username}", now=now)

    async def transfer(self, key: str, agent: AgentInfo, role: str | None = None, queue: str | None = None,
                       note: str = "", request: dict | None = None) -> dict[str, Any]:
        item = await self.handoffs.transfer(key, agent, role=role, queue=queue, note=note, request=request)
        lang = await self._language(key)
        channel = await self._say(key, messages.text("agent_transferred", lang, name=agent.name.split()[0]),
                                  "agent", agent)
        for message in await self.wait_message(key, lang, channel):
            await self.outbound.resend(key, message)
        return item

    async def hand_back(self, key: str, agent: AgentInfo) -> dict[str, Any]:
        """The bot answers again. Rasa was never told about the handoff (the gateway held the
        customer's messages), so its dialogue state is exactly as the bot left it."""
        item = await self.handoffs.finish(key, agent, "bot")
        lang = await self._language(key)
        await self._say(key, messages.text("agent_handed_back", lang, name=agent.name.split()[0]), "agent", agent)
        return item

    async def close(self, key: str, agent: AgentInfo) -> dict[str, Any]:
        item = await self.handoffs.finish(key, agent, "closed")
        if item.get("ticket_id"):
            await self.records.close_ticket(int(item["ticket_id"]))
        lang = await self._language(key)
        await self._say(key, messages.text("agent_closed", lang, name=agent.name.split()[0]), "agent", agent)
        return item
