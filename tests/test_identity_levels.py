"""Identity levels (config/identity.yml), tried as a stranger in the web chat would.

A claim (customer number, email, order number + postcode) proves nothing about who types it: the
stranger learns at most what the claim itself proves and receives nothing of the customer's
conversation. Only a one-time code sent to a channel in the records, typed back, verifies.
"""

from __future__ import annotations

import asyncio
import json

import pytest
from redis.asyncio import Redis

from tests.support.channels import SANNE_PHONE, whatsapp
from tests.support.chat import CODE_PROMPT, latest_code, texts, verify_in_chat
from tests.support.stack import stack_sql

SANNE = {"number": "K10001", "name": "Sanne", "email": "sanne.devries@example.nl", "order": "104233",
         "other_order": "104100", "tracking": "3SWEB104233", "points": "1250"}


async def _redis(stack) -> Redis:
    return Redis.from_url(stack.redis_url, decode_responses=True)


async def conversation_of(stack, session_id: str) -> dict:
    redis = await _redis(stack)
    try:
        key = await redis.get(f"{stack.key_prefix}:identity:webchat:{session_id}")
        conv = await redis.hgetall(f"{stack.key_prefix}:conv:{key}") if key else {}
        sanne_id = stack_sql(stack, "select id from customers where customer_number = 'K10001'")[0][0]
        canonical = await redis.get(f"{stack.key_prefix}:customer:{sanne_id}")
        return {"key": key, "conv": conv, "sanne_conversation": canonical}
    finally:
        await redis.close(close_connection_pool=True)


def leaks_sanne(text: str) -> list[str]:
    return [v for k, v in SANNE.items() if k != "number" and v in text]


@pytest.mark.parametrize("claim", ["K10001", "sanne.devries@example.nl"])
async def test_a_claim_alone_shows_nothing_and_joins_nothing(chat, stack, claim):
    c = await chat()
    said = texts(await c.say("waar is mijn bestelling"))
    answer = texts(await c.say(claim))
    assert CODE_PROMPT["nl"] in answer
    # The stranger now asks for everything personal; none of it comes.
    for question in ("hoeveel spaarpunten heb ik", "ik wil mijn factuur zien", "104233"):
        said += "\n" + texts(await c.say(question))
    assert leaks_sanne(answer + said) == [], answer + said
    state = await conversation_of(stack, c.session_id)
    assert state["key"] != state["sanne_conversation"]
    assert "customer_id" not in state["conv"] and state["conv"].get("level") == "claimed"


async def test_the_answer_is_the_same_for_a_customer_that_does_not_exist(chat, stack):
    known, unknown = await chat(), await chat()
    await known.say("where is my order?")
    await unknown.say("where is my order?")
    to_known, to_unknown = await known.say("K10003"), await unknown.say("K19999")
    assert texts(to_known) == texts(to_unknown)
    assert CODE_PROMPT["en"] in texts(to_known)
    # a wrong code: the same answer again
    assert texts(await known.say("0000" if latest_code(stack, "K10003") != "0000" else "1111")) == \
        texts(await unknown.say("0000"))


async def test_order_number_and_postcode_show_that_order_and_nothing_else(chat, stack):
    c = await chat()
    await c.say("waar is mijn bestelling")
    answer = texts(await c.say("bestelling 104233, postcode 1012 AB"))
    # that one order's status and carrier, as web shops do: no name, no tracking code
    assert answer.startswith("Bestelling 104233: onderweg, vervoerder PostNL."), answer
    assert "Sanne" not in answer and SANNE["tracking"] not in answer
    # anything more needs a code
    more = texts(await c.say("hoeveel spaarpunten heb ik"))
    assert "klantnummer" in more and SANNE["points"] not in more
    # the wrong postcode shows nothing
    d = await chat()
    await d.say("waar is mijn bestelling")
    wrong = texts(await d.say("104233 9999 ZZ"))
    assert wrong.startswith("Ik vind geen bestelling 104233 met die postcode"), wrong
    assert "onderweg" not in wrong


async def test_a_reload_never_replays_the_customers_conversation_to_a_claimant(chat, stack, fake_twilio):
    # Sanne tells the shop her address on WhatsApp (verified by her number).
    await whatsapp(stack, fake_twilio, SANNE_PHONE, "mijn nieuwe adres is Prinsengracht 263")
    stranger = await chat()
    await stranger.say("waar is mijn bestelling")
    await stranger.say("K10001")
    session = stranger.session_id
    await stranger.close()
    again = await chat(session_id=session)
    await again.sio.emit("history_request", {"session_id": session})
    history = (await asyncio.wait_for(again.history.get(), 10))["messages"]
    shown = json.dumps(history, ensure_ascii=False)
    assert "Prinsengracht" not in shown and "Sanne" not in shown
    assert [m["text"] for m in history if m["sender"] == "user"] == ["waar is mijn bestelling", "K10001"]


async def test_a_verified_session_whose_proof_lapsed_starts_afresh(chat, stack, fake_twilio):
    c = await chat()
    await c.say("waar is mijn bestelling")
    assert "Sanne" in texts(await verify_in_chat(c, stack, "K10001", "K10001"))
    state = await conversation_of(stack, c.session_id)
    assert state["key"] == state["sanne_conversation"]  # verified: joined her one conversation
    session = c.session_id
    await c.close()
    # twelve hours later (config/identity.yml verified.web_session_hours) the proof has expired
    redis = await _redis(stack)
    await redis.delete(f"{stack.key_prefix}:webverified:{session}")
    await redis.close(close_connection_pool=True)
    again = await chat(session_id=session)
    await again.sio.emit("history_request", {"session_id": session})
    history = (await asyncio.wait_for(again.history.get(), 10))["messages"]
    assert history == []
    answer = texts(await again.say("hoeveel spaarpunten heb ik"))
    assert "klantnummer" in answer and "Sanne" not in answer


@pytest.mark.parametrize("channel", ["telegram", "sms"])
async def test_a_claimant_cannot_move_the_conversation_to_another_channel(chat, stack, fake_twilio, fake_telegram, channel):
    sent_before = len(fake_twilio.messages)
    telegram_before = len(fake_telegram.calls)
    c = await chat()
    await c.say("waar is mijn bestelling")
    await c.say("K10019" if channel == "telegram" else "K10001")
    told = texts(await c.say(f'/continue_on_channel{{"channel": "{channel}"}}'))
    assert "t.me" not in told and "start" not in told
    assert f"Verder gaan via {channel} kan zodra ik zeker weet wie je bent" in told
    await asyncio.sleep(1)
    # nothing was sent to the real customer except the one-time code (which only they can read)
    new = [m for m in fake_twilio.messages[sent_before:]]
    assert all("code voor De Webwinkel" in m.get("Body", "") or m.get("ContentSid") for m in new)
    assert [m for m, _ in fake_telegram.calls[telegram_before:] if m == "sendMessage"] == []
    redis = await _redis(stack)
    bound = await redis.get(f"{stack.key_prefix}:identity:sms:{SANNE_PHONE}")
    await redis.close(close_connection_pool=True)
    state = await conversation_of(stack, c.session_id)
    assert bound != state["key"]


async def test_ten_customer_numbers_in_a_row_give_no_names_and_are_stopped(chat, stack):
    c = await chat()
    await c.say("waar is mijn bestelling")
    answers = [texts(await c.say(f"K1{n:04d}")) for n in range(1, 11)]
    names = stack_sql(stack, "select name from customers where customer_number between 'K10001' and 'K10010'")
    first_names = {n.split()[0] for (n,) in names}
    assert not [a for a in answers if any(f in a for f in first_names)]
    # every claim gets the same neutral answer until the conversation's limit (5), then a refusal
    assert all(CODE_PROMPT["nl"] in a for a in answers[:5]), answers[:5]
    assert all(a.startswith("Je hebt het te vaak geprobeerd. Probeer het over ") for a in answers[5:]), answers[5:]


async def test_one_client_trying_customer_after_customer_in_new_chats_is_stopped(chat, stack):
    """20 failed claims per 15 minutes per client address (config/identity.yml limits.per_client)."""
    answers = []
    for n in range(21):
        c = await chat()
        await c.say("waar is mijn bestelling")
        answers.append(texts(await c.say(f"K9{n:04d}")))  # nobody has these numbers
        await c.close()
    assert all(CODE_PROMPT["nl"] in a for a in answers[:20])
    assert answers[20].startswith("Je hebt het te vaak geprobeerd"), answers[20]


async def test_a_code_verifies_and_joins_and_wrong_codes_end_the_claim(chat, stack):
    c = await chat()
    await c.say("waar is mijn bestelling")
    assert CODE_PROMPT["nl"] in texts(await c.say("K10001"))
    right = latest_code(stack, "K10001")
    wrong = [w for w in ("1111", "2222", "3333", "4444") if w != right][:3]
    assert texts(await c.say(wrong[0])) == "Die code klopt niet of is verlopen. Probeer het nog eens."
    assert texts(await c.say(wrong[1])) == "Die code klopt niet of is verlopen. Probeer het nog eens."
    given_up = texts(await c.say(wrong[2]))
    assert given_up.startswith("Dat is niet gelukt."), given_up
    # the claim is gone: even the right code does nothing now
    assert "Sanne" not in texts(await c.say(right))

    d = await chat()
    await d.say("waar is mijn bestelling")
    verified = texts(await verify_in_chat(d, stack, "K10001", "K10001"))
    assert "Dank je, Sanne, ik heb je gevonden." in verified
    state = await conversation_of(stack, d.session_id)
    assert state["key"] == state["sanne_conversation"]
    assert state["conv"]["level"] == "verified" and state["conv"]["verified_by"] == "code"
