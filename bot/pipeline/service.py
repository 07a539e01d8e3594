"""The channel-independent path of one customer message.

A channel adapter hands `ConversationService.handle` an `Inbound` message and renders the
`BotMessage`s it gets back for its own channel. Everything in between (identity, language,
validation, ordering, transcript, Rasa) lives here, so every channel behaves the same.
"""

from __future__ import annotations

import asyncio
import logging
import time
import unicodedata
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Awaitable, Callable

from bot.delivery import queue as delivery
from bot.shared import language
from bot.texts import messages
from bot.pipeline.conversations import ConversationStore
from bot.people.handoff import REASONS, AgentInfo, HandoffError, Handoffs, mood
from bot.policy.hours import describe
from bot.policy.identity import IdentityPolicy, client_ref
from bot.pipeline.inbox import Deferred, current_turn, interim_after
from bot.pipeline.rasa_client import RasaClient, RasaUnavailable
from bot.pipeline.types import BotMessage, Button, Inbound, Outcome  # noqa: F401 (adapters import them from here)
from bot.shared.locks import KeyedLocks
from bot.shared.safe_input import encodable
from channels import registry  # what each channel can do (identifies the sender, numbered buttons, addresses)

if TYPE_CHECKING:
    from bot.records.repository import Records

log = logging.getLogger(__name__)

# Slots that travel with the customer when a provisional conversation joins theirs.
CARRIED_SLOTS = ("customer_id", "customer_name", "order_number", "language", "verified_until")
QUESTION_SLOTS = ("topic", "requested_slot", "amount", "instalments", "details", "preference", "retention_offer")

# Emoji-only messages that carry a clear answer.
_EMOJI_INTENTS = {"👍": "/affirm", "👌": "/affirm", "✅": "/affirm", "👎": "/deny", "❌": "/deny"}


def _is_emoji_only(text: str) -> bool:
    return not any(unicodedata.category(ch)[0] in "LN" for ch in text)


class ConversationService:
    def __init__(
        self, store: ConversationStore, rasa: RasaClient, records: "Records | None" = None,
        max_bytes: int = 4096, identity: IdentityPolicy | None = None,
    ) -> None:
        self.store = store
        self.identity = identity or IdentityPolicy()
        self.rasa = rasa
        self.records = records
        self.max_bytes = max_bytes
        self.senders: dict[str, Any] = {}  # channel name -> channels.base.Sender
        self.handoffs: Handoffs | None = None  # people: the queue and the desk (bot/people/handoff.py)
        # emits a message to every open web chat of a conversation (set by channels.webchat)
        self.webchat_emit: Callable[[str, BotMessage], Awaitable[None]] | None = None
        # SMS, WhatsApp and Telegram messages: in order per customer, retried, transcript marked
        self.delivery: delivery.Delivery | None = None
        # Keeps one conversation's messages in order within this process; Rasa's Redis lock
        # store does the same across processes.
        self._locks = KeyedLocks()

    # -- identity -------------------------------------------------------------------------------
    async def conversation_for(self, channel: str, address: str) -> str:
        """The customer's one conversation when the address proves who it is, else a provisional one."""
        known = await self.store.identity(channel, address)
        if known and channel == "webchat" and not await self._web_session_holds(address, known):
            # the session's proof lapsed: it gets a fresh conversation, never the customer's
            await self.store.unbind(channel, address)
            log.info("web session of %s no longer verified: a new conversation", known)
            known = None
        if known:
            return known
        customer_id = None
        if self.records is not None and registry.identifies_sender(channel):
            customer = await self.records.by_identity(channel, address)
            customer_id = customer.id if customer else None
        if customer_id is not None:
            key = await self.store.customer_conversation(customer_id) or await self.store.key_for(channel, address)
            key = await self.store.claim_customer(customer_id, key)  # two channels at once: one wins
            await self.store.bind(channel, address, key)
            await self.store.update(key, customer_id=str(customer_id), level="verified", verified_by=channel)
            return key
        return await self.store.key_for(channel, address)

    async def _web_session_holds(self, session_id: str, key: str) -> bool:
        """A web chat session may stay in a customer's conversation only while it is verified for
        that customer (a code typed in it, or a signed login)."""
        customer_id = (await self.store.get(key)).get("customer_id")
        return not customer_id or await self.store.web_verified(session_id) == customer_id

    async def identity_level(self, key: str) -> dict[str, str]:
        """anonymous | claimed | verified, and how it was verified (for the desk)."""
        conv = await self.store.get(key)
        level = conv.get("level") or ("verified" if conv.get("customer_id") else "anonymous")
        return {"level": level, "by": conv.get("verified_by", "") if level == "verified" else ""}

    async def link(self, key: str, customer_id: int, channel: str, address: str, by: str = "code") -> str:
        """The conversation `key` proved to be `customer_id`'s: join it to theirs. Only ever called
        once the customer is verified (config/identity.yml): a claim never joins."""
        if channel == "webchat":
            await self.store.web_verify(address, customer_id, self.identity.web_session_seconds)
        canonical = await self.store.claim_customer(customer_id, key)
        await self.store.update(canonical, customer_id=str(customer_id), level="verified", verified_by=by)
        if canonical == key:
            return key
        # the customer's latest language is the one they use here, not the one of their last chat
        spoken = (await self.store.get(key)).get("language")
        if spoken:
            await self.store.update(canonical, language=spoken)
        await self.store.bind(channel, address, canonical)
        if self.records is not None:
            await self.records.move_transcript(key, canonical, customer_id)
        await self.rasa.carry_slots(key, canonical, CARRIED_SLOTS, QUESTION_SLOTS)
        log.info("conversation %s joined %s (customer %s)", key, canonical, customer_id)
        return canonical

    async def verified_login(self, channel: str, address: str, login_id: str) -> str | None:
        """A web chat visitor whose login the business's site signed: join the customer's
        conversation and tell Rasa who it is. None when the login belongs to no customer."""
        if self.records is None:
            return None
        customer = await self.records.by_identity(channel, login_id)
        if customer is None:
            return None
        key = await self.conversation_for(channel, address)
        if (await self.store.get(key)).get("customer_id") == str(customer.id):
            await self.store.web_verify(address, customer.id, self.identity.web_session_seconds)
            return key
        key = await self.link(key, customer.id, channel, address, by="login")
        await self.rasa.set_slots(key, {"customer_id": str(customer.id), "customer_name": customer.name.split()[0]})
        return key

    # -- messages ------------------------------------------------------------------------------
    async def handle(self, inbound: Inbound) -> Outcome:
        # A message from the inbox (bot/pipeline/inbox.py) was de-duplicated when it was stored, and may be
        # a retry of a turn that failed half-way: it must not be taken for a duplicate here.
        durable = current_turn() is not None
        if inbound.message_id and not durable and not await self.store.first_time(inbound.channel, inbound.message_id):
            log.info("duplicate %s message %s ignored", inbound.channel, inbound.message_id)
            key = await self.store.identity(inbound.channel, inbound.address) or ""
            return Outcome(key, language.DEFAULT_LANGUAGE, [], duplicate=True)
        key = await self.conversation_for(inbound.channel, inbound.address)
        async with self._locks.hold(key):
            return await self._handle(key, inbound)

    async def _log(self, key: str, sender: str, text: str, channel: str, **data: Any) -> int | None:
        """One transcript row; its id (None without a records database), noted for bot/delivery/queue.py."""
        data = {k: v for k, v in data.items() if v}
        turn = current_turn()
        if sender == "customer" and data.get("message_id") and turn is not None and turn.retry:
            # a retried turn: the customer's message may be in the transcript already
            if any(e.get("message_id") == data["message_id"] and e.get("sender") == "customer"
                   for e in await self.history(key, 50)):
                return
        if self.records is not None:
            conv = await self.store.get(key)
            customer_id = int(conv["customer_id"]) if conv.get("customer_id") else None
            row = await self.records.add_transcript(key, customer_id, sender, channel, text, data)
            delivery.note(row, sender, channel, text)
            return row
        await self.store.append(key, sender, text, channel, **data)
        return None

    async def history(self, key: str, limit: int = 200) -> list[dict[str, Any]]:
        if self.records is not None:
            return await self.records.transcript(key, limit)
        return await self.store.history(key, limit)

    async def _handle(self, key: str, inbound: Inbound) -> Outcome:
        conv = await self.store.get(key)
        current = conv.get("language") or inbound.language_hint or language.DEFAULT_LANGUAGE
        if current not in language.SUPPORTED:
            current = language.DEFAULT_LANGUAGE

        def refuse(reason: str, lang: str = current, **values: object) -> Outcome:
            log.info("refused message for %s on %s: %s", key, inbound.channel, reason)
            return Outcome(key, lang, [BotMessage(messages.text(reason, lang, **values), is_error=True)])

        if inbound.contact_phone:
            return await self._shared_contact(key, inbound, current)
        if inbound.link_code is not None:
            return await self._link_code(key, inbound, current)
        if not isinstance(inbound.text, str):
            return refuse("not_text")
        text = inbound.text.replace("\x00", "").strip()
        if not encodable(text):  # a lone UTF-16 surrogate: no UTF-8 for Redis, the database or Rasa
            return refuse("unreadable")
        inbound.media = [m for m in inbound.media if isinstance(m, str) and encodable(m) and "\x00" not in m]
        if inbound.media and not text:
            await self._log(key, "customer", "", inbound.channel, media=inbound.media, message_id=inbound.message_id)
            if self.handoffs is not None and await self.handoffs.state(key) in ("waiting", "with_agent"):
                await self.handoffs.publish({"type": "message", "conversation": key})  # a person can look at it
                return Outcome(key, current, [])
            reply = BotMessage(messages.text("text_only", current))
            await self._log(key, "bot", reply.text, inbound.channel)
            return Outcome(key, current, [reply])
        if not text:
            return refuse("empty")
        if len(text.encode("utf-8")) > self.max_bytes:
            return refuse("too_long", limit=self.max_bytes)

        lang = language.choose(text, current)
        to_rasa = await self._numbered_choice(key, inbound.channel, text) or text
        if _is_emoji_only(text):
            to_rasa = _EMOJI_INTENTS.get(text)
        await self._log(key, "customer", text, inbound.channel, media=inbound.media, message_id=inbound.message_id)
        await self.store.update(key, language=lang, last_channel=inbound.channel, last_address=inbound.address)
        with_people = await self._with_people(key, inbound, text, lang)
        if with_people is not None:
            return with_people
        if self.handoffs is not None:
            feeling = mood(text)
            if feeling and getattr(self.handoffs.config, feeling, False):
                replies = await self._start_handoff(key, inbound.channel, {"reason": feeling}, lang)
                return Outcome(key, lang, replies)
        if to_rasa is None:
            reply = BotMessage(messages.text("emoji_only", lang))
            await self._log(key, "bot", reply.text, inbound.channel)
            return Outcome(key, lang, [reply])
        return await self._ask_rasa(key, inbound, to_rasa, lang)

    async def _ask_rasa(self, key: str, inbound: Inbound, to_rasa: str, lang: str) -> Outcome:
        metadata: dict[str, Any] = {"channel": inbound.channel, "language": lang,
                                    "client": client_ref(inbound.client or f"{inbound.channel}:{inbound.address}")}
        if registry.identifies_sender(inbound.channel):
            metadata["address"] = inbound.address
        turn = current_turn()
        try:
            if turn is None:
                raw = await self.rasa.send(key, to_rasa, metadata)
            else:
                raw = await self._turn_in_rasa(key, inbound, to_rasa, metadata, lang, turn)
        except Deferred:
            raise
        except RasaUnavailable as exc:
            log.error("rasa unavailable for %s: %s", key, exc)
            if turn is not None:  # the inbox keeps the message and tries again
                raise Deferred(lang, "rasa") from exc
            return Outcome(key, lang, [BotMessage(messages.text("bot_unavailable", lang), is_error=True)])

        replies: list[BotMessage] = []
        follow_ups: list[dict[str, Any]] = []
        handoff: dict[str, Any] | None = None
        for item in raw:
            custom = item.get("custom") or {}
            if custom.get("set_language") in language.SUPPORTED:
                lang = custom["set_language"]
                await self.store.update(key, language=lang)
            level = custom.get("identity") if isinstance(custom.get("identity"), dict) else {}
            if level.get("level") == "claimed" and not (await self.store.get(key)).get("customer_id"):
                await self.store.update(key, level="claimed")
            if custom.get("identified_customer"):
                key = await self.link(key, int(custom["identified_customer"]), inbound.channel, inbound.address,
                                      by=str(level.get("by") or "code"))
            if custom.get("continue_on"):
                follow_ups.append(custom)
            if isinstance(custom.get("handoff"), dict):
                handoff = custom["handoff"]
            message = BotMessage(
                text=item.get("text") or "",
                buttons=[Button(str(b.get("title", "")), str(b.get("payload", ""))) for b in item.get("buttons") or []],
                image=item.get("image"),
            )
            if not (message.text or message.buttons or message.image):
                continue
            replies.append(message)
            await self._log(key, "bot", message.text, inbound.channel,
                            buttons=[b.__dict__ for b in message.buttons], image=message.image)
        await self.store.remember_buttons(key, inbound.channel, [b for m in replies for b in m.buttons])
        for custom in follow_ups:
            replies.extend(await self._continue_on(key, custom["continue_on"], lang))
        if handoff is not None and self.handoffs is not None:
            replies.extend(await self._start_handoff(key, inbound.channel, handoff, lang))
        return Outcome(key, lang, replies)

    async def _turn_in_rasa(self, key: str, inbound: Inbound, to_rasa: str, metadata: dict[str, Any],
                            lang: str, turn: Any) -> list[dict[str, Any]]:
        """One stored message's turn, never run twice: Rasa gets the message id, a retry first
        looks in the tracker for it, and a turn that cannot run now raises `Deferred`."""
        message_id = f"{inbound.channel}:{inbound.message_id}" if inbound.message_id else None
        if turn.retry and message_id:
            done = await self.rasa.replies_for(key, message_id)
            if done is not None:
                log.info("turn %s of %s found in the tracker: its replies, not sent again", message_id, key)
                return done
        if not await self.rasa.actions_ready():
            log.warning("action server down: turn of %s kept for later", key)
            raise Deferred(lang, "actions")
        sending = asyncio.ensure_future(self.rasa.send(key, to_rasa, metadata, message_id=message_id))
        wait = max(0.0, turn.received + interim_after() - time.time())
        done_set, _ = await asyncio.wait({sending}, timeout=wait)
        if not done_set and turn.on_delay is not None:
            try:
                await turn.on_delay(lang)
            except Exception as exc:  # the interim message is a courtesy; the answer still comes
                log.warning("interim message for %s failed: %s", key, type(exc).__name__)
        return await sending  # RasaMaybeReached: the retry looks in the tracker first

    # -- people --------------------------------------------------------------------------------
    async def _with_people(self, key: str, inbound: Inbound, text: str, lang: str) -> Outcome | None:
        """While the customer waits for or talks with a person, their messages go to people."""
        state = await self.handoffs.state(key) if self.handoffs is not None else "bot"
        if state not in ("waiting", "with_agent"):
            return None
        await self.handoffs.publish({"type": "message", "conversation": key})
        if state == "with_agent":
            return Outcome(key, lang, [])
        if await self._asks_response_time(text):  # "how long still?": a fresh, honest answer
            return Outcome(key, lang, await self._wait_message(key, lang, inbound.channel))
        conv = await self.store.get(key)
        if time.time() - float(conv.get("ack_at") or 0) < 300:
            return Outcome(key, lang, [])
        await self.store.update(key, ack_at=f"{time.time():.0f}")
        reply = BotMessage(messages.text("wait_ack", lang))
        await self._log(key, "bot", reply.text, inbound.channel)
        return Outcome(key, lang, [reply])

    async def _asks_response_time(self, text: str) -> bool:
        try:
            parsed = await self.rasa.parse(text)
        except RasaUnavailable:
            return False
        intent = parsed.get("intent") or {}
        return intent.get("name") == "ask_response_time" and float(intent.get("confidence") or 0) >= 0.5

    async def _start_handoff(self, key: str, channel: str, payload: dict[str, Any], lang: str) -> list[BotMessage]:
        conv = await self.store.get(key)
        customer, churn = None, None
        if conv.get("customer_id") and self.records is not None:
            customer = await self.records.customer(int(conv["customer_id"]))
            scored = await self.records.churn(customer.id) if customer else None
            churn = scored.score if scored else None
        reason = payload.get("reason") if payload.get("reason") in REASONS else "asked"
        ticket = payload.get("ticket")
        await self.handoffs.enqueue(
            key, reason=reason, language=lang, customer_id=customer.id if customer else None,
            customer_name=customer.name if customer else "", segment=customer.segment if customer else None,
            churn=churn, topic=payload.get("topic") if isinstance(payload.get("topic"), str) else None,
            role=payload.get("role") if isinstance(payload.get("role"), str) else None,
            summary=str(payload.get("summary") or ""),
            request=payload.get("request") if isinstance(payload.get("request"), dict) else None,
            ticket_id=int(ticket) if isinstance(ticket, int) or str(ticket or "").isdigit() else None,
            channel=channel,
        )
        log.info("conversation %s handed to people (%s)", key, reason)
        replies = []
        intro = {"asked": "handoff_start", "misunderstood": "handoff_start", "angry": "handoff_angry",
                 "urgent": "handoff_urgent"}.get(reason)
        if intro:
            replies.append(BotMessage(messages.text(intro, lang)))
            await self._log(key, "bot", replies[-1].text, channel)
        return replies + await self._wait_message(key, lang, channel)

    async def _wait_message(self, key: str, lang: str, channel: str) -> list[BotMessage]:
        """The honest wait, from the live queue; stored as a promise with its deadline."""
        estimate = await self.handoffs.estimate(key)
        item = await self.handoffs.get(key) or {}
        queue = self.handoffs.config.queues.get(item.get("queue") or "general") or self.handoffs.config.queues["general"]
        now = datetime.now(timezone.utc)
        deadline = describe(estimate.deadline, lang, now, queue.levels.tz)
        answer_on = await self._answer_channel(key, channel)
        values = dict(deadline=deadline, minutes=estimate.minutes, position=estimate.position,
                      agents=estimate.agents, channel=registry.label(answer_on, lang))
        if estimate.kind == "live":
            text = messages.text("wait_next" if estimate.position <= 1 else "wait_live", lang, **values)
        else:
            text = messages.text("wait_no_agents" if estimate.kind == "no_agents" else "wait_closed", lang, **values)
        await self.store.update(key, away="0" if estimate.kind == "live" else "1")
        await self.handoffs.promised(key, estimate.deadline)
        if self.records is not None:
            conv = await self.store.get(key)
            customer_id = int(conv["customer_id"]) if conv.get("customer_id") else None
            await self.records.add_promise(key, customer_id, "handoff_wait", text, estimate.deadline)
        await self._log(key, "bot", text, channel)
        return [BotMessage(text)]

    async def _answer_channel(self, key: str, channel: str) -> str:
        """Where a person's answer goes when the customer has left: from the web chat to their
        preferred channel when we can reach them there; otherwise where they wrote."""
        if channel != "webchat" or self.records is None:
            return channel
        conv = await self.store.get(key)
        customer = await self.records.customer(int(conv["customer_id"])) if conv.get("customer_id") else None
        preferred = customer.preferred_channel if customer else None
        if preferred and preferred in self.senders and registry.address_of(customer, preferred):
            return preferred
        return channel

    async def _deliver(self, key: str, text: str, sender: str, agent: AgentInfo | None) -> str:
        """A person's message to the customer, on the channel they last used. On SMS, WhatsApp and
        Telegram it goes through the delivery queue (in order, retried): HandoffError
        "delivery_failed" when it failed for good within a few seconds; still being retried, the
        transcript row says "pending" until it went out or failed."""
        conv = await self.store.get(key)
        channel = conv.get("last_channel") or "webchat"
        message = BotMessage(text)
        who = dict(agent=agent.username if agent else None, agent_name=agent.name if agent else None)
        if channel == "webchat":
            if self.webchat_emit is not None:
                await self.webchat_emit(key, message)
            used = channel
            if conv.get("away") == "1":  # we said the answer comes on their preferred channel
                target = await self._answer_channel(key, channel)
                if target != channel:
                    customer = await self.records.customer(int(conv["customer_id"]))
                    row = await self._log(key, sender, text, target, **who)
                    result = await self._send(key, target, registry.address_of(customer, target), [message], [row],
                                              what="agent message")
                    used = target if result.status != delivery.FAILED else channel
                    if used == target:
                        await self._changed(key)
                        return used
            await self._log(key, sender, text, used, **who)
            await self._changed(key)
            return used
        channel_sender, address = self.senders.get(channel), conv.get("last_address")
        if channel_sender is None or not address:
            raise HandoffError("unreachable", channel)
        row = await self._log(key, sender, text, channel, **who)
        result = await self._send(key, channel, address, [message], [row], what="agent message")
        await self._changed(key)
        if result.status == delivery.FAILED:
            raise HandoffError("delivery_failed", f"{channel}: {result.reason}")
        return channel

    async def _changed(self, key: str) -> None:
        if self.handoffs is not None:
            await self.handoffs.publish({"type": "message", "conversation": key})

    async def _send(self, key: str | None, channel: str, address: str, batch: list[BotMessage],
                    rows: list[int | None] = (), *, wait: bool = True, what: str = "message") -> "delivery.Result":
        """Write first on an outbound channel: through the delivery queue when the gateway has one
        (the result when known within a few seconds, else "pending"); otherwise directly."""
        rows = [r for r in rows if r is not None]
        if self.delivery is not None:
            future = self.delivery.submit(channel, address, batch, rows=rows, proactive=True,
                                          conversation=key, what=what)
            return await self.delivery.wait(future) if wait else delivery.Result(delivery.PENDING)
        try:
            await self.senders[channel].send(address, batch, proactive=True)
        except Exception as exc:  # DeliveryError and anything the service throws back
            reason = str(exc) or type(exc).__name__
            log.warning("delivery to %s on %s failed: %s", key, channel, type(exc).__name__)
            if rows and self.records is not None:
                await self.records.mark_delivery(rows, delivery.FAILED, reason)
            return delivery.Result(delivery.FAILED, reason)
        if rows and self.records is not None:
            await self.records.mark_delivery(rows, delivery.SENT)
        return delivery.Result(delivery.SENT)

    def _people(self) -> Handoffs:
        if self.handoffs is None:
            raise HandoffError("unavailable")
        return self.handoffs

    async def _customer_language(self, key: str) -> str:
        lang = (await self.store.get(key)).get("language") or language.DEFAULT_LANGUAGE
        return lang if lang in language.SUPPORTED else language.DEFAULT_LANGUAGE

    async def tell(self, key: str, text_by_language: dict[str, str], sender: str = "agent",
                   agent: AgentInfo | None = None) -> str:
        lang = await self._customer_language(key)
        return await self._deliver(key, text_by_language.get(lang) or text_by_language["nl"], sender, agent)

    async def claim(self, key: str, agent: AgentInfo) -> dict[str, Any]:
        item = await self._people().claim(key, agent)
        if self.records is not None:
            await self.records.settle_promises(key)
        lang = await self._customer_language(key)
        await self._deliver(key, messages.text("agent_joined", lang, name=agent.name.split()[0]), "agent", agent)
        return item

    async def agent_reply(self, key: str, agent: AgentInfo, text: str) -> str:
        item = await self._people().get(key)
        if item is None:
            raise HandoffError("unknown_conversation")
        if item.get("state") != "with_agent" or item.get("claimed_by") != agent.username:
            raise HandoffError("not_yours", item.get("claimed_by") or item.get("state", ""))
        return await self._deliver(key, text, "agent", agent)

    async def transfer(self, key: str, agent: AgentInfo, role: str | None = None, queue: str | None = None,
                       note: str = "", request: dict | None = None) -> dict[str, Any]:
        item = await self._people().transfer(key, agent, role=role, queue=queue, note=note, request=request)
        lang = await self._customer_language(key)
        channel = await self._deliver(key, messages.text("agent_transferred", lang, name=agent.name.split()[0]),
                                      "agent", agent)
        for message in await self._wait_message(key, lang, channel):
            await self._send_only(key, message)
        return item

    async def _send_only(self, key: str, message: BotMessage) -> None:
        """Deliver a message that is already in the transcript."""
        conv = await self.store.get(key)
        channel = conv.get("last_channel") or "webchat"
        if channel == "webchat":
            if self.webchat_emit is not None:
                await self.webchat_emit(key, message)
            return
        channel_sender, address = self.senders.get(channel), conv.get("last_address")
        if channel_sender is not None and address:
            await self._send(key, channel, address, [message], wait=False, what="wait message")

    async def hand_back(self, key: str, agent: AgentInfo) -> None:
        """The bot answers again. Rasa was never told about the handoff (the gateway held the
        customer's messages), so its dialogue state is exactly as the bot left it."""
        await self._people().finish(key, agent, "bot")
        lang = await self._customer_language(key)
        await self._deliver(key, messages.text("agent_handed_back", lang, name=agent.name.split()[0]), "agent", agent)

    async def close(self, key: str, agent: AgentInfo) -> None:
        item = await self._people().finish(key, agent, "closed")
        if self.records is not None and item.get("ticket_id"):
            await self.records.close_ticket(int(item["ticket_id"]))
        lang = await self._customer_language(key)
        await self._deliver(key, messages.text("agent_closed", lang, name=agent.name.split()[0]), "agent", agent)

    async def _numbered_choice(self, key: str, channel: str, text: str) -> str | None:
        """On SMS and WhatsApp buttons are a numbered list: "2" means the second button."""
        if not registry.numbered_buttons(channel) or not text.isdigit():
            return None
        buttons = await self.store.last_buttons(key, channel)
        index = int(text) - 1
        return buttons[index]["payload"] if 0 <= index < len(buttons) else None

    async def _shared_contact(self, key: str, inbound: Inbound, lang: str) -> Outcome:
        """A phone number the sender proved is theirs (Telegram's contact button) links them."""
        customer = await self.records.by_phone(inbound.contact_phone) if self.records else None
        if customer is None:
            reply = BotMessage(messages.text("contact_unknown", lang))
            await self._log(key, "bot", reply.text, inbound.channel)
            return Outcome(key, lang, [reply])
        lang = customer.language if customer.language in language.SUPPORTED else lang
        return await self._linked(key, inbound, customer.id, lang)

    async def _link_code(self, key: str, inbound: Inbound, lang: str) -> Outcome:
        """A one-time code we gave the customer on another channel (`_continue_on`) links them."""
        customer_id = await self.store.take_link_code(inbound.link_code or "")
        customer = await self.records.customer(customer_id) if customer_id and self.records else None
        if customer is None:
            log.info("unknown or used link code on %s for %s", inbound.channel, key)
            reply = BotMessage(messages.text("link_code_unknown", lang))
            await self._log(key, "bot", reply.text, inbound.channel)
            return Outcome(key, lang, [reply])
        canonical = await self.store.customer_conversation(customer.id)
        spoken = (await self.store.get(canonical)).get("language") if canonical else None
        return await self._linked(key, inbound, customer.id, spoken or lang)

    async def _linked(self, key: str, inbound: Inbound, customer_id: int, lang: str) -> Outcome:
        """The sender proved to be `customer_id`: join their conversation and greet them there."""
        await self.records.add_identity(customer_id, inbound.channel, inbound.address)
        await self.store.update(key, language=lang)
        key = await self.link(key, customer_id, inbound.channel, inbound.address,
                              by="contact" if inbound.contact_phone else "link_code")
        # Rasa learns who it is from the channel address on the next turn: say hello through it.
        return await self._ask_rasa(key, inbound, "/greet", lang)

    # -- writing first ---------------------------------------------------------------------------
    async def _continue_on(self, key: str, channel: str, lang: str) -> list[BotMessage]:
        conv = await self.store.get(key)
        customer = await self.records.customer(int(conv["customer_id"])) if conv.get("customer_id") and self.records else None
        address = registry.address_of(customer, channel) if customer else None
        sender = self.senders.get(channel)
        if channel == "telegram" and customer is not None and address is None and sender is not None:
            # we cannot write first to a Telegram account we do not know: a one-time link instead
            code = await self.store.issue_link_code(customer.id)
            bot = getattr(sender, "bot_username", "")
            return [BotMessage(messages.text("telegram_link" if bot else "telegram_code", lang, bot=bot, code=code))]
        if address is None or sender is None:
            return [BotMessage(messages.text("channel_unavailable", lang, channel=channel))]
        first_name = customer.name.split()[0]
        hello = BotMessage(messages.text("continue_here", lang, name=first_name))
        row = await self._log(key, "bot", hello.text, channel)
        result = await self._send(key, channel, address, [hello], [row], what="continue-here message")
        if result.status == delivery.FAILED:  # still retrying ("pending"): it will most likely arrive
            log.warning("continue on %s for %s failed", channel, key)
            return [BotMessage(messages.text("channel_unavailable", lang, channel=channel))]
        await self.store.bind(channel, address, key)
        return []

    async def notify(self, customer_id: int, text_by_language: dict[str, str], channel: str | None = None) -> str:
        """Write first to a customer: their preferred channel (with consent) unless one is given.
        Returns the channel used; raises LookupError when none can be used."""
        customer = await self.records.customer(customer_id)
        if customer is None:
            raise LookupError("unknown customer")
        if channel is None and not customer.consent_proactive:
            raise LookupError("no consent for proactive messages")
        channel = channel or customer.preferred_channel
        address, sender = registry.address_of(customer, channel), self.senders.get(channel)
        if address is None or sender is None:
            raise LookupError(f"cannot reach the customer on {channel}")
        lang = customer.language if customer.language in text_by_language else "nl"
        message = BotMessage(text_by_language[lang])
        key = await self.store.customer_conversation(customer_id)
        row = await self._log(key, "bot", message.text, channel) if key else None
        result = await self._send(key, channel, address, [message], [row], what="notification")
        if result.status == delivery.FAILED:
            raise LookupError(f"not delivered on {channel}: {result.reason}")
        return channel
