"""The channel-independent path of one customer message.

A channel adapter hands `ConversationService.handle` an `Inbound` message and renders the
`BotMessage`s it gets back for its own channel. Everything in between (identity, language,
validation, ordering, transcript, Rasa, people) is done here or by the parts it is built from,
so every channel behaves the same:

    Identities (bot/pipeline/identity.py)     whose conversation this is; joining on proof
    Transcript (bot/pipeline/transcript.py)   every message in the records database
    AgentWorkflow (bot/people/workflow.py)    handing over to people, and what agents do
    Outbound (bot/delivery/outbound.py)       every message we send, on one path
    control (bot/shared/control.py)           what the actions tell the gateway
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
import unicodedata
from dataclasses import replace
from typing import Any

from bot.delivery.outbound import Outbound
from bot.delivery.queue import FAILED
from bot.feedback.survey import Surveys
from bot.people import Handoffs, mood
from bot.people.workflow import AgentWorkflow
from bot.pipeline.conversations import ConversationStore
from bot.pipeline.identity import Identities
from bot.pipeline import questions
from bot.promises.proactive import STOP_ANYWHERE, is_stop
from bot.pipeline.inbox import Deferred, current_turn, interim_after
from bot.pipeline.rasa_client import RasaClient, RasaUnavailable
from bot.pipeline.types import BotMessage, Button, Inbound, Outcome
from bot.policy.clock import Clock
from bot.policy.identity import IdentityPolicy, client_ref
from bot.policy.rules import policy
from bot.records.repository import Records
from bot.shared import control, language
from bot.shared.locks import KeyedLocks
from bot.shared.safe_input import encodable
from bot.texts import messages
from channels import registry  # what each channel can do (identifies the sender, numbered buttons, addresses)

log = logging.getLogger(__name__)


# Emoji-only messages that carry a clear answer.
_EMOJI_INTENTS = {"👍": "/affirm", "👌": "/affirm", "✅": "/affirm", "👎": "/deny", "❌": "/deny"}


# a waiting customer asking whether to stay, or where the answer will come (answered with the wait)
_WAIT_HERE = re.compile(
    r"\b(wait here|stay (here|in this chat|on this page|online)|keep (this|the) (chat|window|page|tab) open|"
    r"(will|do) you (text|message|email|call) me|hear (from you )?by (text|sms|email|whatsapp)|"
    r"hier (blijven|wachten)|(blijven|moet ik) wachten|in de chat blijven|venster open|"
    r"krijg ik (een )?(sms|bericht|mail|e-mail|whatsapp)|hoor ik het via|laten jullie het weten)\b", re.IGNORECASE)


# a waiting customer saying goodbye ("prima, doei"): a goodbye, and the question stays
_WAIT_BYE = re.compile(
    r"^\W*(?:(?:ok(?:e|ay)?|oké|prima|top|goed|thanks|thank you|bedankt|dank je(?: wel)?|dankjewel|thx|great|fine)\W+)*"
    r"(?:doei|dag|tot ziens|tot later|fijne dag|bye(?: bye)?|goodbye|see you|ciao|laters?|have a (?:nice|good) day)\W*$",
    re.IGNORECASE)


# thanks or goodbye after the bot answered the topic: the conversation ended (the survey follows)
_THANKS_BYE = re.compile(
    r"^\W*(?:(?:ok(?:e|ay)?|oké|prima|top|super|fijn|mooi|goed|great|perfect|cool|nice|ah|oh)\W+)*"
    r"(?:bedankt|dank(?:jewel| je(?: wel)?| u(?: wel)?)?|dankje|merci|thanks?(?: a lot| so much)?|thank you(?: very much| so much)?|"
    r"thx|ty|cheers|doei|dag|tot ziens|fijne dag|bye(?: bye)?|goodbye|see you|have a (?:nice|good) day)"
    r"(?:\W+(?:voor (?:de|je|jullie) hulp|for (?:the|your) help|en doei|and bye|doei|bye|fijne dag|have a (?:nice|good) day|"
    r"dat was (?:het|alles)|that'?s all|groetjes))*\W*$", re.IGNORECASE)
_NOT_QUESTIONS = {None, "inform", "affirm", "deny", "thank", "goodbye", "greet", "out_of_scope", "nlu_fallback",
                  "complaint", "bot_challenge", "chitchat"}


def _is_emoji_only(text: str) -> bool:
    return not any(unicodedata.category(ch)[0] in "LN" for ch in text)


class ConversationService:
    def __init__(self, store: ConversationStore, rasa: RasaClient, records: Records, handoffs: Handoffs,
                 outbound: Outbound, *, identity: IdentityPolicy | None = None, max_bytes: int = 4096,
                 clock: Clock | None = None, surveys: Surveys | None = None) -> None:
        self.store = store
        self.surveys = surveys  # the post-chat survey (bot/feedback/survey.py); None: no surveys
        self.rasa = rasa
        self.records = records
        self.handoffs = handoffs
        self.outbound = outbound
        self.max_bytes = max_bytes
        self.clock = clock or Clock()
        self.identities = Identities(store, records, rasa, identity or IdentityPolicy())
        self.transcript = outbound.transcript
        self.people = AgentWorkflow(store, records, handoffs, outbound, self.transcript)
        # Keeps one conversation's messages in order within this process; Rasa's Redis lock
        # store does the same across processes.
        self._locks = KeyedLocks()

    # -- identity (bot/pipeline/identity.py) ------------------------------------------------------
    async def conversation_for(self, channel: str, address: str) -> str:
        return await self.identities.conversation_for(channel, address)

    async def identity_level(self, key: str) -> dict[str, str]:
        return await self.identities.level(key)

    async def verified_login(self, channel: str, address: str, login_id: str) -> str | None:
        return await self.identities.verified_login(channel, address, login_id)

    async def history(self, key: str, limit: int = 200) -> list[dict[str, Any]]:
        return await self.transcript.history(key, limit)

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
        return await self.transcript.log(key, sender, text, channel, **data)

    async def _handle(self, key: str, inbound: Inbound) -> Outcome:
        conv = await self.store.get(key)
        known = conv.get("language") if conv.get("language") in language.SUPPORTED else None
        hint = inbound.language_hint if inbound.language_hint in language.SUPPORTED else None
        current = known or hint or language.DEFAULT_LANGUAGE

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
            if await self.handoffs.state(key) in ("waiting", "with_agent"):
                await self.handoffs.publish({"type": "message", "conversation": key})  # a person can look at it
                return Outcome(key, current, [])
            reply = BotMessage(messages.text("text_only", current))
            await self._log(key, "bot", reply.text, inbound.channel)
            return Outcome(key, current, [reply])
        if not text:
            return refuse("empty")
        if len(text.encode("utf-8")) > self.max_bytes:
            return refuse("too_long", limit=self.max_bytes)

        # A conversation keeps its language unless the customer clearly switches; the first message
        # decides, then the channel's hint (the page's or the Telegram account's language).
        lang = language.choose(text, known) if known else (language.detect(text) or current)
        if self.surveys is not None:  # a reply to the survey is never a question for Rasa; a bare
            # "stop" ends the survey only (its first message says so), "geen berichten meer" also
            # switches messages off
            survey_replies = await self.surveys.answer(
                key, inbound.channel, text, message_id=inbound.message_id,
                stop_word=bool(STOP_ANYWHERE.match(text)), is_question=self._is_question)
            if survey_replies is not None:
                return Outcome(key, current, survey_replies)
        to_rasa = await self._numbered_choice(key, inbound.channel, text) or text
        if _is_emoji_only(text):
            to_rasa = _EMOJI_INTENTS.get(text)
        # a pressed button: its title in the transcript and the desk, its payload kept beside it
        shown = inbound.shown if inbound.shown and inbound.shown != text else None
        await self._log(key, "customer", shown or text, inbound.channel, media=inbound.media,
                        message_id=inbound.message_id, payload=text if shown else None)
        await self.store.update(key, language=lang, last_channel=inbound.channel, last_address=inbound.address)
        if is_stop(text, inbound.channel):
            return await self._stop(key, inbound, lang)
        with_people = await self._with_people(key, inbound, text, lang)
        if with_people is not None:
            return with_people
        resolution = await self.surveys.take_resolution(key) if self.surveys is not None else None
        outcome = await self._answer(key, inbound, text, to_rasa, lang)
        if resolution and _THANKS_BYE.search(text) and not any(m.is_error for m in outcome.replies) \
                and await self.handoffs.state(outcome.conversation) not in ("waiting", "with_agent"):
            # the bot answered the topic and the customer says thanks or goodbye: the survey
            started = await self.surveys.offer(outcome.conversation, "resolved", served_by="bot",
                                               topic=resolution.get("topic"), send=False)
            if started is not None:
                outcome = replace(outcome, replies=outcome.replies + started.messages)
        return outcome

    async def _answer(self, key: str, inbound: Inbound, text: str, to_rasa: str | None, lang: str) -> Outcome:
        feeling = mood(text)
        if feeling and getattr(self.handoffs.config, feeling, False):
            replies = await self.people.start(key, inbound.channel, {"reason": feeling}, lang)
            return Outcome(key, lang, replies)
        if to_rasa is None:
            reply = BotMessage(messages.text("emoji_only", lang))
            await self._log(key, "bot", reply.text, inbound.channel)
            return Outcome(key, lang, [reply])
        if to_rasa == text:
            return await self._ask_in_parts(key, inbound, text, lang)
        return await self._after(await self._ask_rasa(key, inbound, to_rasa, lang), inbound)

    async def _stop(self, key: str, inbound: Inbound, lang: str) -> Outcome:
        """"STOP" / "geen berichten meer": proactive messages off for the customer on every channel
        (their consent is one setting of their record); their questions are still answered."""
        customer_id = await self.store.customer_id(key)
        if customer_id is None:  # not identified in this conversation: the address may be on record
            known = await self.records.by_identity(inbound.channel, inbound.address)
            customer_id = known.id if known else None
        if customer_id is not None:
            customer = await self.records.update_preferences(int(customer_id), consent_proactive=False)
            if language.detect(inbound.text or "") is None and customer.language in language.SUPPORTED:
                lang = customer.language  # "STOP" says nothing about a language: the one on record
            await self.records.contact(int(customer_id), inbound.channel, "consent", "STOP: no proactive messages")
            log.info("customer %s opted out of proactive messages on %s", customer_id, inbound.channel)
        reply = BotMessage(messages.text("stop_confirmed", lang))
        await self._log(key, "bot", reply.text, inbound.channel)
        return Outcome(key, lang, [reply])

    async def _ask_in_parts(self, key: str, inbound: Inbound, text: str, lang: str) -> Outcome:
        """Two questions in one message are both answered (bot/pipeline/questions.py)."""
        pieces = questions.parts(text)
        found = None
        if len(pieces) > 1:
            try:
                found = questions.plan(pieces, [await self.rasa.parse(piece) if questions.worth_reading(piece) else {}
                                                for piece in pieces])
            except RasaUnavailable:
                found = None  # the whole message then; Rasa's own error handling applies
        if found is None:
            return await self._after(await self._ask_rasa(key, inbound, text, lang), inbound)
        await self.store.update(key, pending_questions=json.dumps(
            {"at": self.clock.now().timestamp(), "texts": found.later}) if found.later else "")
        replies: list[BotMessage] = []
        outcome = Outcome(key, lang, [])
        for number, piece in enumerate(found.now, 1):
            part = replace(inbound, message_id=f"{inbound.message_id}#{number}" if inbound.message_id else None)
            outcome = await self._ask_rasa(key, part, piece, lang)
            key, lang = outcome.conversation, outcome.language
            replies.extend(outcome.replies)
            if await self.handoffs.state(key) in ("waiting", "with_agent"):
                break  # a person takes over: the rest is theirs to read
        return await self._after(replace(outcome, replies=replies), inbound)

    async def _after(self, outcome: Outcome, inbound: Inbound) -> Outcome:
        """A question of an earlier message that waited for the one before to be answered comes now."""
        if not outcome.topic_done:
            return outcome
        key = outcome.conversation
        pending = (await self.store.get(key)).get("pending_questions")
        if not pending:
            return outcome
        try:
            waiting = json.loads(pending)
            texts, at = list(waiting["texts"]), float(waiting["at"])
        except (ValueError, KeyError, TypeError):
            texts, at = [], 0.0
        if not texts or self.clock.now().timestamp() - at > questions.PENDING_SECONDS:
            await self.store.update(key, pending_questions="")
            return outcome
        piece, rest = texts[0], texts[1:]
        await self.store.update(key, pending_questions=json.dumps({"at": at, "texts": rest}) if rest else "")
        part = replace(inbound, message_id=f"{inbound.message_id}#later" if inbound.message_id else None)
        nxt = await self._ask_rasa(key, part, piece, outcome.language)
        return replace(nxt, replies=outcome.replies + nxt.replies)

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
        follow_ups: list[control.ContinueOn] = []
        handoff: control.Handoff | None = None
        topic_done = False
        done_topic = ""
        for item in raw:
            for message in control.parse(item.get("custom")):
                if isinstance(message, control.SetLanguage):
                    lang = message.language
                    await self.store.update(key, language=lang)
                elif isinstance(message, control.IdentityLevel) and message.level == "claimed":
                    await self.identities.claimed(key)
                elif isinstance(message, control.IdentifiedCustomer):
                    key = await self.identities.link(key, message.customer_id, inbound.channel, inbound.address,
                                                     by=message.by)
                elif isinstance(message, control.ContinueOn):
                    follow_ups.append(message)
                elif isinstance(message, control.Handoff):
                    handoff = message
                elif isinstance(message, control.TopicDone):
                    topic_done = True
                    done_topic = message.topic
            reply = BotMessage(
                text=item.get("text") or "",
                buttons=[Button(str(b.get("title", "")), str(b.get("payload", ""))) for b in item.get("buttons") or []],
                image=item.get("image"),
            )
            if not (reply.text or reply.buttons or reply.image):
                continue
            replies.append(reply)
            await self._log(key, "bot", reply.text, inbound.channel,
                            buttons=[b.__dict__ for b in reply.buttons], image=reply.image)
        await self.store.remember_buttons(key, inbound.channel, [b for m in replies for b in m.buttons])
        for follow_up in follow_ups:
            replies.extend(await self._continue_on(key, follow_up.channel, lang))
        if handoff is not None:
            replies.extend(await self.people.start(key, inbound.channel, handoff.as_dict(), lang))
        elif topic_done and self.surveys is not None:
            await self.surveys.resolved(key, done_topic)
        return Outcome(key, lang, replies, topic_done=topic_done and handoff is None)

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

    # -- while people have it (bot/people/workflow.py) --------------------------------------------------------------------------------
    async def _with_people(self, key: str, inbound: Inbound, text: str, lang: str) -> Outcome | None:
        """While the customer waits for or talks with a person, their messages go to people."""
        state = await self.handoffs.state(key)
        if state not in ("waiting", "with_agent"):
            return None
        await self.handoffs.publish({"type": "message", "conversation": key})
        if state == "with_agent":
            return Outcome(key, lang, [])
        if await self._asks_response_time(text):  # "how long still?": a fresh, honest answer
            return Outcome(key, lang, await self.people.wait_message(key, lang, inbound.channel, asked=True))
        if _WAIT_BYE.search(text):  # leaving while waiting: no need to stay, the answer still comes
            reply = BotMessage(messages.text("wait_goodbye", lang))
            await self._log(key, "bot", reply.text, inbound.channel)
            return Outcome(key, lang, [reply])
        conv = await self.store.get(key)
        now = self.clock.now().timestamp()  # at most one "your message is noted" per config/policy.yml interval
        if now - float(conv.get("ack_at") or 0) < policy().acknowledge_seconds:
            return Outcome(key, lang, [])
        await self.store.update(key, ack_at=f"{now:.0f}")
        reply = BotMessage(messages.text("wait_ack", lang))
        await self._log(key, "bot", reply.text, inbound.channel)
        return Outcome(key, lang, [reply])

    async def _is_question(self, text: str) -> bool:
        """A real question typed where the survey asked for a comment: it leaves the survey."""
        if "?" not in text:
            return False
        try:
            parsed = await self.rasa.parse(text)
        except RasaUnavailable:
            return False
        intent = parsed.get("intent") or {}
        return intent.get("name") not in _NOT_QUESTIONS and float(intent.get("confidence") or 0) >= 0.7

    async def _asks_response_time(self, text: str) -> bool:
        if _WAIT_HERE.search(text):  # "do I have to stay in this chat or will you text me?"
            return True
        try:
            parsed = await self.rasa.parse(text)
        except RasaUnavailable:
            return False
        intent = parsed.get("intent") or {}
        return intent.get("name") == "ask_response_time" and float(intent.get("confidence") or 0) >= 0.5

    # -- what agents do (the desk calls these; bot/people/workflow.py) ------------------------------
    async def tell(self, key: str, text_by_language: dict[str, str], sender: str = "agent", agent=None) -> str:
        return await self.people.tell(key, text_by_language, sender, agent)

    async def claim(self, key: str, agent) -> dict[str, Any]:
        return await self.people.claim(key, agent)

    async def agent_reply(self, key: str, agent, text: str) -> str:
        return await self.people.reply(key, agent, text)

    async def transfer(self, key: str, agent, role: str | None = None, queue: str | None = None,
                       note: str = "", request: dict | None = None) -> dict[str, Any]:
        return await self.people.transfer(key, agent, role=role, queue=queue, note=note, request=request)

    async def hand_back(self, key: str, agent, resolved: bool = False) -> None:
        item = await self.people.hand_back(key, agent)
        if resolved:  # the agent resolved the question: the conversation ended, the survey follows
            await self._survey_after_people(key, "handback", item, agent)

    async def close(self, key: str, agent) -> None:
        item = await self.people.close(key, agent)
        await self._survey_after_people(key, "close", item, agent)

    async def _survey_after_people(self, key: str, trigger: str, item: dict[str, Any], agent) -> None:
        if self.surveys is None:
            return
        try:
            await self.surveys.offer(key, trigger, served_by="agent", agent=agent.username,
                                     queue=item.get("queue"), topic=item.get("topic"), send=True)
        except Exception:  # noqa: BLE001 - the conversation is closed either way; the survey is a courtesy
            log.exception("survey after %s of %s failed", trigger, key)

    async def _numbered_choice(self, key: str, channel: str, text: str) -> str | None:
        """On SMS and WhatsApp buttons are a numbered list: "2" means the second button."""
        if not registry.numbered_buttons(channel) or not text.isdigit():
            return None
        buttons = await self.store.last_buttons(key, channel)
        index = int(text) - 1
        return buttons[index]["payload"] if 0 <= index < len(buttons) else None

    async def _shared_contact(self, key: str, inbound: Inbound, lang: str) -> Outcome:
        """A phone number the sender proved is theirs (Telegram's contact button) links them."""
        customer = await self.records.by_phone(inbound.contact_phone)
        if customer is None:
            reply = BotMessage(messages.text("contact_unknown", lang))
            await self._log(key, "bot", reply.text, inbound.channel)
            return Outcome(key, lang, [reply])
        lang = customer.language if customer.language in language.SUPPORTED else lang
        return await self._linked(key, inbound, customer.id, lang)

    async def _link_code(self, key: str, inbound: Inbound, lang: str) -> Outcome:
        """A one-time code we gave the customer on another channel (`_continue_on`) links them."""
        customer_id = await self.store.take_link_code(inbound.link_code or "")
        customer = await self.records.customer(customer_id) if customer_id else None
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
        key = await self.identities.link(key, customer_id, inbound.channel, inbound.address,
                              by="contact" if inbound.contact_phone else "link_code")
        # Rasa learns who it is from the channel address on the next turn: say hello through it.
        return await self._ask_rasa(key, inbound, "/greet", lang)

    # -- writing first ---------------------------------------------------------------------------
    async def _continue_on(self, key: str, channel: str, lang: str) -> list[BotMessage]:
        customer_id = await self.store.customer_id(key)
        customer = await self.records.customer(customer_id) if customer_id else None
        address = registry.address_of(customer, channel) if customer else None
        sender = self.outbound.senders.get(channel)
        if channel == "telegram" and customer is not None and address is None and sender is not None:
            # we cannot write first to a Telegram account we do not know: a one-time link instead
            code = await self.store.issue_link_code(customer.id)
            bot = getattr(sender, "bot_username", "")
            return [BotMessage(messages.text("telegram_link" if bot else "telegram_code", lang, bot=bot, code=code))]
        if address is None or sender is None:
            return [BotMessage(messages.text("channel_unavailable", lang, channel=channel))]
        first_name = customer.greeting_name
        hello = BotMessage(messages.text("continue_here", lang, name=first_name))
        row = await self._log(key, "bot", hello.text, channel)
        result = await self.outbound.send(key, channel, address, [hello], [row], what="continue-here message")
        if result.status == FAILED:  # still retrying ("pending"): it will most likely arrive
            log.warning("continue on %s for %s failed", channel, key)
            return [BotMessage(messages.text("channel_unavailable", lang, channel=channel))]
        await self.store.bind(channel, address, key)
        return []
