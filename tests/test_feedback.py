"""The post-chat survey (bot/feedback) through the real conversation service: a WhatsApp customer
whose conversation an agent closes gets the CES question there (inside the 24-hour window as
text, outside through the template), answers with numbers and a comment; a low score becomes a
follow-up item with a promise; SMS skip and stop; the Telegram scale keyboard; web chat quick
replies after the bot resolved the question and the customer said thanks; a typed question
leaves the survey; the fatigue rules; the anonymous answer. Messages go out through the real
Twilio and Telegram senders to fake servers on loopback; records are the demo shop in SQLite;
Redis is real. Rasa is not running here: a message that leaves the survey reaches the Rasa
client, which finds nobody (the stack test in tests/test_feedback_stack.py answers it for real)."""

from __future__ import annotations

import json
import os
import secrets
from datetime import timedelta

import aiohttp
import pytest
from redis.asyncio import Redis
from sqlalchemy import delete, select

from bot.delivery.outbound import Outbound
from bot.delivery.queue import Delivery
from bot.feedback import answers
from bot.feedback.config import FeedbackConfig
from bot.feedback.survey import Surveys
from bot.people import AgentInfo, HandoffConfig, Handoffs
from bot.pipeline.conversations import ConversationStore
from bot.pipeline.rasa_client import RasaClient
from bot.pipeline.service import ConversationService
from bot.pipeline.transcript import Transcript
from bot.pipeline.types import Inbound
from bot.policy.clock import FixedClock
from bot.records.models import Feedback, Promise, Survey, Ticket, TranscriptEntry
from bot.records.repository import Records, aware
from bot.shared.db import create_engine
from bot.shared.settings import Settings
from channels import telegram as tg
from channels.twilio import TwilioSender, WhatsAppWindow
from tests.support import fake_telegram as ft
from tests.support.clock import business_monday
from tests.support.fake_twilio import FakeTwilio
from tests.support.stack import demo_shop_db

REDIS_URL = os.environ.get("TEST_TWILIO_REDIS_URL", "redis://127.0.0.1:6379/12")
MONDAY = business_monday(10)
ANNA = AgentInfo("anna", "Anna de Boer", "agent", ("general", "finance"), ("nl", "en"))
TEMPLATE = "HXsurvey000000000000000000000000"
SANNE = "K10001"   # Dutch, WhatsApp +31612345601, consent
JAMES = "K10015"   # English, WhatsApp
HARRY = "K10018"   # English, SMS
EMMA = "K10003"    # English, Telegram 700100
MILAN = "K10022"   # Dutch, an open complaint


@pytest.fixture(scope="module")
def twilio():
    server = FakeTwilio()
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def telegram():
    server = ft.FakeTelegram()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def shop_url(tmp_path) -> str:
    return demo_shop_db(tmp_path)


class World:
    def __init__(self, redis, prefix, records, http, twilio, telegram, clock, config: FeedbackConfig) -> None:
        settings = Settings(redis_url=REDIS_URL, key_prefix=prefix, public_base_url="https://bot.example.com",
                            twilio_account_sid=twilio.account_sid, twilio_auth_token=twilio.auth_token,
                            twilio_sms_number="+3197010000001", twilio_whatsapp_number="+14155238886",
                            twilio_api_url=twilio.base_url, twilio_whatsapp_template_sid=TEMPLATE,
                            telegram_bot_token=telegram.token, telegram_webhook_secret="s" * 24,
                            telegram_api_url=telegram.base_url)
        self.window = WhatsAppWindow(redis, prefix)
        sender = TwilioSender(http, settings, self.window.last_inbound, backoff=(0.01,),
                              timeout=aiohttp.ClientTimeout(total=2))
        bot, requests = tg.create_bot(settings)
        self.telegram_sender = tg.TelegramSender(bot, redis, prefix, requests)
        senders = {"whatsapp": sender.view("whatsapp"), "sms": sender.view("sms"), "telegram": self.telegram_sender}
        self.clock, self.records, self.redis, self.prefix = clock, records, redis, prefix
        self.store = ConversationStore(redis, prefix)
        self.handoffs = Handoffs(redis, prefix, HandoffConfig.load(), clock=clock)
        transcript = Transcript(self.store, records)
        self.outbound = Outbound(self.store, records, transcript, Delivery(senders, records, retry_for=2), senders)
        self.surveys = Surveys(redis, prefix, self.store, records, self.outbound, self.handoffs, clock, config)
        # nobody listens on this port: what reaches Rasa gets the "bot unavailable" answer
        self.rasa = RasaClient(http, "http://127.0.0.1:9", "", timeout=1, attempts=1)
        self.service = ConversationService(self.store, self.rasa, records, self.handoffs, self.outbound,
                                           clock=clock, surveys=self.surveys)

    async def customer(self, number: str, channel: str, *, wrote: bool = True) -> tuple[str, object, str]:
        customer = await self.records.by_customer_number(number)
        address = {"whatsapp": customer.phone, "sms": customer.phone}.get(channel)
        if channel == "telegram":
            address = "700100"  # Emma's Telegram account (docs/demo-data.md)
        conv = await self.store.key_for(channel, address)
        await self.store.update(conv, last_channel=channel, last_address=address, language=customer.language,
                                customer_id=str(customer.id))
        await self.store.claim_customer(customer.id, conv)
        if wrote and channel == "whatsapp":
            await self.window.record(customer.phone)
        return conv, customer, address

    async def closed_by_anna(self, conv: str, channel: str, lang: str) -> None:
        await self.handoffs.heartbeat(ANNA)
        await self.service.people.start(conv, channel, {"reason": "asked", "topic": "order_status"}, lang)
        await self.service.claim(conv, ANNA)
        await self.service.close(conv, ANNA)

    async def says(self, channel: str, address: str, text: str) -> list[str]:
        outcome = await self.service.handle(Inbound(channel, address, text, message_id=secrets.token_hex(6)))
        return [m.text for m in outcome.replies]

    async def survey_rows(self) -> list[Survey]:
        async with self.records.session() as s:
            return list((await s.execute(select(Survey).order_by(Survey.id))).scalars())

    async def feedback_rows(self) -> list[Feedback]:
        async with self.records.session() as s:
            return list((await s.execute(select(Feedback).order_by(Feedback.id))).scalars())


def config(**overrides) -> FeedbackConfig:
    return FeedbackConfig(**{**FeedbackConfig.load().__dict__, **overrides})


@pytest.fixture
async def make_world(twilio, telegram, shop_url):
    made = []
    http = aiohttp.ClientSession()
    engine = create_engine(shop_url)
    async with engine.begin() as conn:  # the demo's four weeks of surveys would hold these off (fatigue)
        await conn.execute(delete(Feedback))
        await conn.execute(delete(Survey))

    async def build(**overrides) -> World:
        twilio.clear()
        telegram.clear()
        redis = Redis.from_url(REDIS_URL, decode_responses=True, socket_timeout=5)
        prefix = "fb" + secrets.token_hex(4)
        world = World(redis, prefix, Records(engine), http, twilio, telegram, FixedClock(MONDAY), config(**overrides))
        made.append(world)
        return world

    yield build
    for world in made:
        await world.telegram_sender.close()
        async for key in world.redis.scan_iter(match=f"{world.prefix}:*"):
            await world.redis.delete(key)
        await world.redis.close(close_connection_pool=True)
    await http.close()
    await engine.dispose()


def sent_to(twilio, address: str) -> list[dict]:
    return [m for m in twilio.messages if m["To"] == address]


# -- reading answers ------------------------------------------------------------------------------
def test_scores_are_read_in_both_languages_and_anything_else_is_no_answer():
    read = answers.read
    assert [read(t, 0, 10).value for t in ("7", "een 8", "8/10", "zeven", "nine out of ten", "I'd give it a 6")] == [
        7, 8, 8, 7, 9, 6]
    assert read("9", 1, 7).kind == answers.OUT_OF_RANGE
    assert [read(t, 1, 7).kind for t in ("overslaan", "skip", "-", "weet ik niet")] == [answers.SKIP] * 4
    assert [read(t, 1, 7).kind for t in ("stop", "nee dank je", "no thanks", "laat maar")] == [answers.STOP] * 4
    for question in ("waar is mijn bestelling?", "mijn pakket 104233 is kapot", "104233", "K10018",
                     "can I talk to someone", "ik wacht al 3 dagen"):
        assert read(question, 1, 7).kind == answers.OTHER, question


# -- the done-when conversation: WhatsApp, an agent closes, a 2 becomes a follow-up ------------------
async def test_whatsapp_customer_closed_by_an_agent_answers_and_a_low_score_becomes_a_follow_up(make_world, twilio):
    world = await make_world()
    conv, sanne, phone = await world.customer(SANNE, "whatsapp")
    await world.closed_by_anna(conv, "whatsapp", "nl")
    to = f"whatsapp:{phone}"
    bodies = [m["Body"] for m in sent_to(twilio, to)]
    assert bodies[-1] == (
        "Mogen we je iets vragen over dit gesprek? Je kunt elke vraag overslaan of met 'stop' ophouden.\n"
        "Hoe eens ben je het met deze uitspraak: De Webwinkel maakte het me makkelijk om mijn vraag af te handelen. "
        "1 = helemaal oneens, 7 = helemaal eens. Antwoord met een cijfer van 1 tot 7.")
    assert "Anna" in bodies[-2]  # the agent's goodbye came first
    [survey] = await world.survey_rows()
    assert (survey.channel, survey.trigger, survey.served_by, survey.agent, survey.queue, survey.status) == (
        "whatsapp", "close", "agent", "anna", "general", "sent")

    assert await world.says("whatsapp", phone, "2") == [
        "Hoe waarschijnlijk is het dat je De Webwinkel aanbeveelt aan vrienden of familie? "
        "0 = zeer onwaarschijnlijk, 10 = zeer waarschijnlijk. Antwoord met een cijfer van 0 tot 10."]
    assert await world.says("whatsapp", phone, "ik geef een 5") == [
        "Wat hadden we beter kunnen doen? Schrijf het in je eigen woorden (of 'overslaan')."]
    assert (await world.says("whatsapp", phone, "Het duurde drie dagen voor iemand reageerde"))[0].startswith(
        "Mogen we je antwoorden aan dit gesprek koppelen")
    [thanks] = await world.says("whatsapp", phone, "1")  # 1. Koppelen mag
    deadline = world.handoffs.config.queues["general"].levels.add_business_hours(MONDAY, 16)
    assert thanks.startswith("Bedankt voor je eerlijke antwoord. Dit had beter gemoeten: een collega neemt ")
    assert deadline.astimezone(world.clock.tz).strftime("%H:%M") in thanks

    [row] = await world.feedback_rows()
    assert (row.ces, row.nps, row.csat, row.comment, row.customer_id, row.conversation, row.agent, row.served_by,
            row.channel, row.queue, row.anonymous, row.survey_id) == (
        2, 5, None, "Het duurde drie dagen voor iemand reageerde", sanne.id, conv, "anna", "agent", "whatsapp",
        "general", False, survey.id)
    assert row.week == "{}-W{:02d}".format(*MONDAY.isocalendar()[:2])
    [ticket] = await world.records.tickets(sanne.id, kind="feedback_followup")
    assert ticket.status == "open" and ticket.data["scores"] == {"ces": 2, "nps": 5}
    assert ticket.data["comment"] == "Het duurde drie dagen voor iemand reageerde"
    async with world.records.session() as s:
        [promise] = (await s.execute(select(Promise).where(Promise.ticket_id == ticket.id))).scalars().all()
    assert (promise.kind, promise.status, promise.channel, promise.language, promise.owed_by) == (
        "feedback_followup", "open", "whatsapp", "nl", "queue:general")
    assert aware(promise.deadline) == deadline
    assert (await world.survey_rows())[0].status == "answered"
    # the survey's answers never went to Rasa: nothing said "the bot is unavailable"
    assert not any("niet beschikbaar" in m["Body"] for m in sent_to(twilio, to) if "Body" in m)


async def test_outside_the_whatsapp_window_the_question_goes_as_the_template(make_world, twilio):
    world = await make_world()
    conv, james, phone = await world.customer(JAMES, "whatsapp", wrote=False)
    await world.handoffs.heartbeat(ANNA)
    await world.service.people.start(conv, "whatsapp", {"reason": "asked"}, "en")
    await world.service.claim(conv, ANNA)
    await world.service.close(conv, ANNA)
    last = sent_to(twilio, f"whatsapp:{phone}")[-1]
    assert last["ContentSid"] == TEMPLATE and not last.get("Body")
    assert json.loads(last["ContentVariables"])["1"] == (
        "May we ask you about this conversation? You can skip any question or end with 'stop'. How much do you agree: "
        "De Webwinkel made it easy for me to handle my question. 1 = strongly disagree, 7 = strongly agree. "
        "Reply with a number from 1 to 7.")
    await world.window.record(phone)  # the customer answers: inside the window again
    assert (await world.says("whatsapp", phone, "6"))[0].startswith("How likely are you to recommend")


# -- SMS: skip and stop -----------------------------------------------------------------------------
async def test_on_sms_every_question_can_be_skipped_and_stop_ends_the_survey(make_world, twilio):
    world = await make_world()
    conv, harry, phone = await world.customer(HARRY, "sms")
    await world.closed_by_anna(conv, "sms", "en")
    assert sent_to(twilio, phone)[-1]["Body"].endswith("Reply with a number from 1 to 7.")
    assert (await world.says("sms", phone, "skip"))[0].startswith("How likely are you to recommend")
    assert await world.says("sms", phone, "9") == ["What could we improve? Tell us in your own words (or 'skip')."]
    assert (await world.survey_rows())[0].status == "sent"
    assert await world.says("sms", phone, "-") == [
        "May we link your answers to this conversation, so a colleague can follow up? Or would you rather answer "
        "anonymously?"]
    assert await world.says("sms", phone, "2") == [  # the second numbered choice: anonymous
        "Thank you! Your answers are kept anonymously, without your name or this conversation."]
    [row] = await world.feedback_rows()
    assert (row.ces, row.nps, row.customer_id, row.anonymous) == (None, 9, None, True)


async def test_stop_ends_the_survey_and_keeps_what_was_answered(make_world, twilio):
    world = await make_world()
    conv, harry, phone = await world.customer(HARRY, "sms")
    await world.closed_by_anna(conv, "sms", "en")
    assert (await world.says("sms", phone, "6"))[0].startswith("How likely")
    assert await world.says("sms", phone, "no thanks") == ["Fine, no more questions. Have a nice day!"]
    [survey] = await world.survey_rows()
    assert survey.status == "stopped"
    [row] = await world.feedback_rows()
    assert (row.ces, row.nps, row.comment, row.customer_id) == (6, None, "", harry.id)
    assert await world.surveys.state(conv) is None
    # the next message is a question again (Rasa is down here: the bot says so)
    assert await world.says("sms", phone, "where is my order?") == ["Sorry, I can't answer right now. Your message is saved; please try again in a minute."]


async def test_the_same_message_again_is_not_a_second_answer(make_world, twilio):
    world = await make_world()
    conv, harry, phone = await world.customer(HARRY, "sms")
    await world.closed_by_anna(conv, "sms", "en")
    first = await world.service.handle(Inbound("sms", phone, "6", message_id="SMretry"))
    assert first.replies[0].text.startswith("How likely")
    again = await world.service.handle(Inbound("sms", phone, "6", message_id="SMretry"))
    assert again.duplicate and again.replies == []  # a webhook sent twice
    # a turn the inbox tries again after a crash reaches the survey with the same id: the question again
    retried = await world.surveys.answer(conv, "sms", "6", message_id="SMretry")
    assert [m.text for m in retried] == [m.text for m in first.replies]
    assert (await world.surveys.state(conv))["step"] == 1 and (await world.survey_rows())[0].status == "sent"


async def test_a_score_outside_the_scale_is_asked_again_once(make_world, twilio):
    world = await make_world()
    conv, harry, phone = await world.customer(HARRY, "sms")
    await world.closed_by_anna(conv, "sms", "en")
    assert await world.says("sms", phone, "9") == ["Please choose a number from 1 to 7, or type 'skip'."]
    assert (await world.says("sms", phone, "7"))[0].startswith("How likely")


# -- a real question leaves the survey ----------------------------------------------------------------
async def test_a_question_typed_instead_of_a_score_leaves_the_survey_and_goes_to_the_bot(make_world, twilio):
    world = await make_world()
    conv, sanne, phone = await world.customer(SANNE, "whatsapp")
    await world.closed_by_anna(conv, "whatsapp", "nl")
    replies = await world.says("whatsapp", phone, "waar blijft mijn bestelling 104233?")
    assert "Hoe waarschijnlijk" not in " ".join(replies)  # not taken as an answer
    [survey] = await world.survey_rows()
    assert survey.status == "left" and await world.surveys.state(conv) is None
    assert await world.feedback_rows() == []
    async with world.records.session() as s:
        texts = [t.text for t in (await s.execute(select(TranscriptEntry).where(
            TranscriptEntry.conversation == conv, TranscriptEntry.sender == "customer"))).scalars()]
    assert texts[-1] == "waar blijft mijn bestelling 104233?"  # in the transcript as a question, once


# -- Telegram: the scale as an inline keyboard ------------------------------------------------------
async def test_telegram_gets_the_scale_as_a_keyboard_in_rows(make_world, telegram):
    world = await make_world()
    conv, emma, chat = await world.customer(EMMA, "telegram")
    await world.closed_by_anna(conv, "telegram", "en")
    [*_, question] = await telegram.wait_for("sendMessage", chat_id=int(chat), count=2, timeout=10)
    rows = question["reply_markup"]["inline_keyboard"]
    assert [[b["text"] for b in row] for row in rows] == [["1", "2", "3", "4", "5", "6", "7"], ["Skip"]]
    outcome = await world.service.handle(Inbound("telegram", chat, "7", message_id="m1"))
    assert outcome.replies[0].text.startswith("How likely")
    await world.outbound.send(conv, "telegram", chat, outcome.replies)  # as the Telegram adapter replies
    [*_, nps] = await telegram.wait_for("sendMessage", chat_id=int(chat), count=3, timeout=10)
    assert [[b["text"] for b in row] for row in nps["reply_markup"]["inline_keyboard"]] == [
        ["0", "1", "2", "3", "4", "5"], ["6", "7", "8", "9", "10"], ["Skip"]]


# -- web chat: resolved by the bot, thanks, quick replies, anonymous -----------------------------------
async def test_web_chat_after_thanks_with_quick_replies_and_an_anonymous_answer(make_world):
    world = await make_world()
    conv, sanne, _ = await world.customer(SANNE, "whatsapp")
    web = "sess-" + secrets.token_hex(4)  # her web chat session, verified: the same conversation
    await world.store.bind("webchat", web, conv)
    await world.store.web_verify(web, sanne.id, 3600)
    await world.store.update(conv, last_channel="webchat", last_address=conv)
    # the bot answered where her order is and she said thanks (played with Rasa in tests/test_feedback_stack.py)
    started = await world.surveys.offer(conv, "resolved", served_by="bot", topic="order_status", send=False)
    question = started.messages[-1]
    assert question.text.endswith("1 = helemaal oneens, 7 = helemaal eens.")
    assert [b.title for b in question.buttons] == ["1", "2", "3", "4", "5", "6", "7", "Overslaan"]
    [survey] = await world.survey_rows()
    assert (survey.trigger, survey.served_by, survey.topic, survey.agent) == ("resolved", "bot", "order_status", None)
    assert (await world.says("webchat", web, "3"))[0].startswith("Hoe waarschijnlijk")
    assert (await world.says("webchat", web, "overslaan"))[0].startswith("Wat hadden we beter")
    assert (await world.says("webchat", web, "Ik moest lang zoeken naar de juiste knop"))[0].startswith("Mogen we")
    assert await world.says("webchat", web, "anoniem") == [
        "Bedankt! Je antwoorden zijn anoniem bewaard, zonder je naam of dit gesprek."]
    [row] = await world.feedback_rows()
    assert (row.ces, row.nps, row.comment, row.customer_id, row.conversation, row.survey_id, row.agent, row.anonymous) == (
        3, None, "Ik moest lang zoeken naar de juiste knop", None, None, None, None, True)
    assert (row.channel, row.served_by, row.topic) == ("webchat", "bot", "order_status")
    assert row.created_at.weekday() == 0 and (row.created_at.hour, row.created_at.minute) == (0, 0)
    assert await world.records.tickets(sanne.id, kind="feedback_followup") == []  # anonymous: nobody to follow up
    async with world.records.session() as s:
        replies = [t.text for t in (await s.execute(select(TranscriptEntry).where(
            TranscriptEntry.conversation == conv, TranscriptEntry.sender == "customer"))).scalars()]
    assert "Ik moest lang zoeken naar de juiste knop" not in replies and "3" not in replies
    assert replies.count("[anoniem antwoord]") == 4


# -- fatigue ----------------------------------------------------------------------------------------
async def test_one_survey_per_customer_per_period_none_with_an_open_complaint_none_after_stop(make_world, twilio):
    world = await make_world()
    conv, sanne, phone = await world.customer(SANNE, "whatsapp")
    await world.closed_by_anna(conv, "whatsapp", "nl")
    assert len(await world.survey_rows()) == 1
    await world.says("whatsapp", phone, "stop maar")
    world.clock.advance(days=29)
    await world.closed_by_anna(conv, "whatsapp", "nl")
    assert len(await world.survey_rows()) == 1  # 29 days later: not again
    world.clock.advance(days=2)
    await world.closed_by_anna(conv, "whatsapp", "nl")
    assert len(await world.survey_rows()) == 2  # 31 days later: again

    milan_conv, milan, milan_phone = await world.customer(MILAN, "whatsapp")
    await world.closed_by_anna(milan_conv, "whatsapp", "nl")
    assert [s.customer_id for s in await world.survey_rows()] == [sanne.id, sanne.id]  # Milan's complaint is open

    james_conv, james, james_phone = await world.customer(JAMES, "whatsapp")
    assert await world.says("whatsapp", james_phone, "STOP") == [
        "Understood: you won't get any messages from us that you didn't ask for, on any channel. "
        "We'll still answer your questions."]
    await world.closed_by_anna(james_conv, "whatsapp", "en")
    assert len(await world.survey_rows()) == 2  # James said STOP


async def test_nps_is_asked_at_most_once_per_period(make_world, twilio):
    world = await make_world(every_days=0)
    conv, harry, phone = await world.customer(HARRY, "sms")
    await world.closed_by_anna(conv, "sms", "en")
    assert (await world.says("sms", phone, "6"))[0].startswith("How likely")
    assert await world.says("sms", phone, "stop") == ["Fine, no more questions. Have a nice day!"]
    world.clock.advance(days=1)
    await world.closed_by_anna(conv, "sms", "en")
    assert await world.says("sms", phone, "6") == ["Good to hear. What did you like most? (or 'skip')"]
    assert [s.asked_nps for s in await world.survey_rows()] == [True, False]


# -- the timers: quiet, reminder, expiry ---------------------------------------------------------
async def test_quiet_after_the_bot_resolved_sends_the_survey_then_one_reminder_then_it_expires(make_world, twilio):
    world = await make_world()
    conv, harry, phone = await world.customer(HARRY, "sms")
    await world.surveys.resolved(conv, "invoice_question")
    world.clock.advance(minutes=29)
    assert (await world.surveys.sweep())["quiet"] == 0
    world.clock.advance(minutes=1)
    assert (await world.surveys.sweep())["quiet"] == 1
    assert sent_to(twilio, phone)[-1]["Body"].startswith("May we ask you about this conversation?")
    [survey] = await world.survey_rows()
    assert (survey.trigger, survey.served_by, survey.topic) == ("quiet", "bot", "invoice_question")
    world.clock.advance(minutes=240)
    assert (await world.surveys.sweep())["reminded"] == 1
    assert sent_to(twilio, phone)[-1]["Body"].startswith(
        "We would still like to hear how your conversation with De Webwinkel went. One question, that's all:\n"
        "How much do you agree")
    assert (await world.surveys.sweep())["reminded"] == 0  # one reminder at most
    world.clock.advance(minutes=1440 - 240)
    assert (await world.surveys.sweep())["expired"] == 1
    assert (await world.survey_rows())[0].status == "expired" and await world.surveys.state(conv) is None
    assert await world.says("sms", phone, "5") == ["Sorry, I can't answer right now. Your message is saved; please try again in a minute."]  # no survey answer any more: to the bot


async def test_a_new_message_after_the_bot_resolved_restarts_the_quiet_timer(make_world, twilio):
    world = await make_world()
    conv, harry, phone = await world.customer(HARRY, "sms")
    await world.surveys.resolved(conv, "invoice_question")
    world.clock.advance(minutes=20)
    await world.says("sms", phone, "and where is my order?")  # a new question: not done yet
    world.clock.advance(minutes=20)
    assert (await world.surveys.sweep())["quiet"] == 0
    assert await world.survey_rows() == []


async def test_triggers_can_be_switched_off(make_world, twilio):
    world = await make_world(agent_close=False)
    conv, sanne, phone = await world.customer(SANNE, "whatsapp")
    await world.closed_by_anna(conv, "whatsapp", "nl")
    assert await world.survey_rows() == []
    await world.handoffs.heartbeat(ANNA)
    await world.service.people.start(conv, "whatsapp", {"reason": "asked"}, "nl")
    await world.service.claim(conv, ANNA)
    await world.service.hand_back(conv, ANNA)  # handed back, not resolved: no survey
    assert await world.survey_rows() == []
    await world.service.people.start(conv, "whatsapp", {"reason": "asked"}, "nl")
    await world.service.claim(conv, ANNA)
    await world.service.hand_back(conv, ANNA, resolved=True)
    [survey] = await world.survey_rows()
    assert survey.trigger == "handback"


def test_the_configuration_is_checked():
    with pytest.raises(ValueError):
        FeedbackConfig.from_dict({"anonymous": "sometimes"})
    with pytest.raises(ValueError):
        FeedbackConfig.from_dict({"triggers": {"agent_closes": True}})
    loaded = FeedbackConfig.load()
    assert (loaded.every_days, loaded.quiet_minutes, loaded.nps_every_days, loaded.anonymous) == (30, 30, 90, "choice")
    assert loaded.detractor(3, None, None) and loaded.detractor(None, 6, None) and not loaded.detractor(4, 7, 3)
