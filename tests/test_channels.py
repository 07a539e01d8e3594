"""WhatsApp, SMS and Telegram end to end: real webhook payloads into the running gateway (trained
model, action server, Redis, database), fake Twilio and Telegram APIs on loopback recording what
the customer receives. One conversation per customer across all channels."""

from __future__ import annotations

import asyncio
import itertools
import re
import uuid

import aiohttp

from tests.support.channels import SANNE_PHONE, sid, telegram_post, telegram_says, twilio_post, whatsapp
from tests.support.chat import texts, verify_in_chat
from tests.support.fake_telegram import contact_update, text_update
from tests.support.fake_twilio import inbound_params
from tests.support.wait import until

EMMA_PHONE = "+447700900123"
_update_ids = itertools.count(int(uuid.uuid4().int % 10_000_000) * 10)


async def test_one_conversation_across_web_chat_whatsapp_and_telegram(chat, stack, fake_twilio, fake_telegram):
    # Web chat: identify and ask about an order.
    c = await chat()
    await c.say("waar is mijn bestelling")
    answer = texts(await verify_in_chat(c, stack, "K10001", "K10001"))
    assert "Sanne" in answer and "104233" in answer  # her one order under way: not asked which

    # WhatsApp from her number: she is known, and so is the order she asked about.
    hello = await whatsapp(stack, fake_twilio, SANNE_PHONE, "hoi")
    assert "Sanne" in hello
    later = await whatsapp(stack, fake_twilio, SANNE_PHONE, "ik wil het terugsturen")
    assert "104233" in later

    # Telegram: a new account links by sharing her own phone number, then continues.
    user_id = 700000 + next(_update_ids) % 100000
    linked = await telegram_says(stack, fake_telegram, user_id,
                                 contact_update(next(_update_ids), user_id, SANNE_PHONE))
    assert "Sanne" in linked
    status = await telegram_says(stack, fake_telegram, user_id,
                                 text_update(next(_update_ids), user_id, "waar is mijn bestelling"))
    assert "104233" in status

    # The transcript holds all three channels, in one conversation.
    await c.sio.emit("history_request", {"session_id": c.session_id})
    history = (await asyncio.wait_for(c.history.get(), 10))["messages"]
    said = [m["text"] for m in history if m["sender"] == "user"]
    assert "hoi" in said and "ik wil het terugsturen" in said and "waar is mijn bestelling" in said


async def test_forged_twilio_signature_is_refused(stack, fake_twilio):
    params = inbound_params(f"whatsapp:{SANNE_PHONE}", "hoi", to="whatsapp:+10000000000", sid=sid())
    status, _ = await twilio_post(stack, params, token="not-the-token")
    assert status == 403


async def test_webhook_retry_gets_one_reply(stack, fake_twilio):
    phone = "+31612345699"
    params = inbound_params(phone, "hallo", to=stack.env()["TWILIO_SMS_NUMBER"], sid=sid())
    assert (await twilio_post(stack, params))[0] == 200
    assert (await twilio_post(stack, params))[0] == 200
    # one sender's messages are answered in order: an answer to the retry would come before the
    # answer to the next message
    later = inbound_params(phone, "hoe laat zijn jullie open", to=stack.env()["TWILIO_SMS_NUMBER"], sid=sid())
    assert (await twilio_post(stack, later))[0] == 200

    def answered() -> list[str]:
        bodies = [m.get("Body") or "" for m in fake_twilio.messages if m["To"] == phone]
        return bodies if any("maandag t/m vrijdag 9:00–17:00" in body for body in bodies) else []

    bodies = await until(answered, timeout=60, what="the answer to the next message")
    assert len(bodies) == 2 and "maandag t/m vrijdag 9:00–17:00" in bodies[1], bodies


async def test_sms_buttons_are_one_numbered_message_and_a_number_answers(stack, fake_twilio):
    phone = "+31612345698"
    sms_number = stack.env()["TWILIO_SMS_NUMBER"]
    assert (await twilio_post(stack, inbound_params(phone, "hoi", to=sms_number, sid=sid())))[0] == 200
    [greeting] = await fake_twilio.wait_for(phone, count=1, timeout=60)
    assert "1. Waar is mijn bestelling?" in greeting["Body"] and "4. Een medewerker spreken" in greeting["Body"]
    assert (await twilio_post(stack, inbound_params(phone, "1", to=sms_number, sid=sid())))[0] == 200
    answer = (await fake_twilio.wait_for(phone, count=2, timeout=60))[1]
    assert "klantnummer" in answer["Body"]  # "1" chose "Waar is mijn bestelling?"


async def test_media_gets_a_polite_text_only_answer(stack, fake_twilio):
    phone = "+31612345697"
    params = inbound_params(f"whatsapp:{phone}", "", to=f"whatsapp:{stack.env()['TWILIO_WHATSAPP_NUMBER']}",
                            sid=sid(), media=["https://example.invalid/photo.jpg"])
    assert (await twilio_post(stack, params))[0] == 200
    [reply] = await fake_twilio.wait_for(f"whatsapp:{phone}", count=1, timeout=60)
    assert "alleen tekst" in reply["Body"]


async def test_continue_on_whatsapp_makes_the_bot_write_first_with_a_template(chat, stack, fake_twilio):
    c = await chat()
    await c.say("i want to see my loyalty points")
    assert "Emma" in texts(await verify_in_chat(c, stack, "K10003", "K10003", "en"))
    before = len([m for m in fake_twilio.messages if m["To"] == f"whatsapp:{EMMA_PHONE}"])
    await c.say('/continue_on_channel{"channel": "whatsapp"}')
    got = await fake_twilio.wait_for(f"whatsapp:{EMMA_PHONE}", count=before + 1, timeout=60)
    first = got[before]
    # Emma never wrote on WhatsApp: outside the 24-hour window only a template may be sent.
    assert first.get("ContentSid") == stack.env()["TWILIO_WHATSAPP_TEMPLATE_SID"]
    assert "Emma" in first.get("ContentVariables", "")
    # Once she writes there, the conversation is hers and answers are normal messages.
    reply = await whatsapp(stack, fake_twilio, EMMA_PHONE, "how many points do i have")
    assert "540 points" in reply


async def test_telegram_secret_and_bad_payloads(stack):
    assert await telegram_post(stack, text_update(next(_update_ids), 1234, "hoi"), secret="wrong") == 403
    url = f"http://127.0.0.1:{stack.gateway_port}/webhooks/telegram"
    headers = {"X-Telegram-Bot-Api-Secret-Token": stack.env()["TELEGRAM_WEBHOOK_SECRET"]}
    async with aiohttp.ClientSession() as http:
        async with http.post(url, data="{not json", headers={**headers, "Content-Type": "application/json"}) as resp:
            assert resp.status == 400
        async with http.post(url, json=[1, 2], headers=headers) as resp:
            assert resp.status == 400


async def test_signed_web_login_is_recognised_and_a_forged_one_is_not(chat, stack):
    from bot.policy.identity import sign_web_login

    secret = stack.env()["WEBCHAT_IDENTITY_SECRET"]
    known = await chat(language="en", custom={"user_id": "web-olivia", "user_hash": sign_web_login(secret, "web-olivia")})
    assert "Olivia" in texts(await known.say("hello"))
    forged = await chat(language="en", custom={"user_id": "web-olivia", "user_hash": sign_web_login("guess", "web-olivia")})
    greeting = texts(await forged.say("hello"))
    assert "Olivia" not in greeting and "How can I help" in greeting


async def test_one_time_code_goes_out_on_whatsapp_and_the_refund_is_granted(stack, fake_twilio):
    phone = "+31612345609"  # K10009 Anouk Meijer, prefers WhatsApp; order 147269 delivered last week
    asked = await whatsapp(stack, fake_twilio, phone, "ik wil geld terug voor bestelling 147269", count=2)
    assert "code van 4 cijfers" in asked
    code_message = next(m["Body"] for m in fake_twilio.messages if m["To"] == f"whatsapp:{phone}" and "code" in (m["Body"] or "") and "De Webwinkel is" in m["Body"])
    code = re.search(r"\b(\d{4})\b", code_message).group(1)
    amount_question = await whatsapp(stack, fake_twilio, phone, code, count=2)
    assert "Welk bedrag" in amount_question and "1. Het hele bedrag" in amount_question
    granted = await whatsapp(stack, fake_twilio, phone, "20")
    assert "€20,00" in granted and "147269" in granted


async def test_the_same_customer_on_two_channels_at_once_loses_nothing(stack, fake_twilio):
    phone = "+31612345621"  # K10021 Eva van Leeuwen
    sms_to, wa_to = stack.env()["TWILIO_SMS_NUMBER"], f"whatsapp:{stack.env()['TWILIO_WHATSAPP_NUMBER']}"
    results = await asyncio.gather(
        twilio_post(stack, inbound_params(phone, "hoeveel spaarpunten heb ik", to=sms_to, sid=sid())),
        twilio_post(stack, inbound_params(f"whatsapp:{phone}", "hoe laat zijn jullie open", to=wa_to, sid=sid())),
    )
    assert [status for status, _ in results] == [200, 200]
    [points] = await fake_twilio.wait_for(phone, count=1, timeout=60)
    [hours] = await fake_twilio.wait_for(f"whatsapp:{phone}", count=1, timeout=60)
    assert "punten" in points["Body"] and "9:00" in hours["Body"]
    import sqlite3
    with sqlite3.connect(stack.database_url.removeprefix("sqlite:///")) as conn:
        said = [row[0] for row in conn.execute(
            "select t.channel from transcript t join customers c on c.id = t.customer_id "
            "where c.customer_number = 'K10021' and t.sender = 'customer'")]
    assert sorted(said) == ["sms", "whatsapp"]


async def test_joining_a_conversation_keeps_the_language_the_customer_speaks_now(chat, stack, fake_twilio):
    """Sem (K10024) last wrote in English on WhatsApp; now he identifies in a Dutch web chat. The
    joined conversation goes on in Dutch, also for a message that has no language of its own."""
    phone = "+31612345624"
    assert "order" in (await whatsapp(stack, fake_twilio, phone, "where is my order please")).lower()
    c = await chat()
    await c.say("waar is mijn bestelling")
    # the code is only digits: the conversation's language decides; his one order under way is told
    answer = texts(await verify_in_chat(c, stack, "K10024", "K10024"))
    assert "Sem" in answer and "Bestelling 195430" in answer, answer


async def test_a_one_time_link_code_brings_the_conversation_to_telegram(chat, stack, fake_telegram):
    """Sophie (K10019) has no Telegram account on record: asked to continue there, the bot gives a
    t.me link with a one-time code; opening it links her Telegram account to her conversation.
    The code works once."""
    c = await chat()
    await c.say("waar is mijn bestelling")
    answer = texts(await verify_in_chat(c, stack, "K10019", "K10019"))
    assert "Sophie" in answer and "138018" in answer  # her one order under way: not asked which
    told = texts(await c.say('/continue_on_channel{"channel": "telegram"}'))
    link = re.search(r"https://t\.me/DeWebwinkelTestBot\?start=([A-Z2-9]{8})\b", told)
    assert link and "één keer" in told, told

    user_id = 700000 + next(_update_ids) % 100000
    linked = await telegram_says(stack, fake_telegram, user_id,
                                 text_update(next(_update_ids), user_id, f"/start {link.group(1)}"))
    assert "Sophie" in linked
    asked = await telegram_says(stack, fake_telegram, user_id,
                                text_update(next(_update_ids), user_id, "ik wil het terugsturen"))
    assert "138018" in asked and "klantnummer" not in asked  # she and her order are known here too

    stranger = 700000 + next(_update_ids) % 100000 + 100000
    refused = await telegram_says(stack, fake_telegram, stranger,
                                  text_update(next(_update_ids), stranger, f"/start {link.group(1)}"))
    assert "koppelcode" in refused and "Sophie" not in refused
    unknown = await telegram_says(stack, fake_telegram, stranger,
                                  text_update(next(_update_ids), stranger, "/start NOTACODE"))
    assert "koppelcode" in unknown
