"""A customer chatting through the gateway's socket.io endpoint with the real trained model."""

from __future__ import annotations

import asyncio

import pytest

from tests.support.chat import texts, verify_in_chat


async def test_dutch_greeting_gets_dutch_answer_with_quick_replies(chat):
    c = await chat()
    replies = await c.say("hoi")
    assert "Waarmee kan ik je helpen" in texts(replies)
    titles = [q["title"] for m in replies for q in m.get("quick_replies", [])]
    assert "Waar is mijn bestelling?" in titles
    assert all(q["content_type"] == "text" for m in replies for q in m.get("quick_replies", []))


async def test_english_customer_is_answered_in_english(chat):
    c = await chat()
    replies = await c.say("hello, where is my order?")
    assert "customer number" in texts(replies)
    assert "klantnummer" not in texts(replies)


async def test_identified_once_and_order_remembered(chat, stack):
    c = await chat()
    assert "klantnummer" in texts(await c.say("waar blijft mijn bestelling"))
    answer = texts(await verify_in_chat(c, stack, "K10001", "K10001"))
    assert "Sanne" in answer
    # her one order under way is the one she means: not asked "which order?" (issue 11)
    assert "104233" in answer and "te laat" in answer and "PostNL" in answer
    assert "Over welke bestelling" not in answer
    # A later question about the same order asks neither who she is nor which order.
    later = texts(await c.say("ik wil het terugsturen"))
    assert "104233" in later and "nog niet bezorgd" in later
    assert "klantnummer" not in later


async def test_invalid_order_number_is_explained(chat, stack):
    c = await chat()
    await c.say("waar is mijn pakket")
    await verify_in_chat(c, stack, "daan.jansen@example.nl", "K10002")
    assert "6 cijfers" in texts(await c.say("12345"))


async def test_no_is_not_a_dead_end(chat):
    c = await chat()
    await c.say("where is my parcel")
    replies = await c.say("no")
    assert "What else can I help you with" in texts(replies)
    assert "Hi!" in texts(await c.say("hi"))


async def test_language_switch_on_request_is_remembered(chat):
    c = await chat()
    assert "Waarmee" in texts(await c.say("goedemorgen"))
    assert "English" in texts(await c.say("kan het in het engels?"))
    # A short, language-neutral message stays in the chosen language.
    assert "customer number" in texts(await c.say("/order_status"))


async def test_browser_language_is_the_first_guess(chat):
    c = await chat(language="en")
    assert "customer number" in texts(await c.say("/order_status"))


async def test_unclear_twice_offers_a_person(chat):
    # "/nlu_fallback" is what the NLU hands the dialogue when it is unsure (FallbackClassifier).
    c = await chat()
    first = texts(await c.say("/nlu_fallback"))
    assert "anders zeggen" in first
    second = await c.say("/nlu_fallback")
    assert "collega" in texts(second)
    assert [q["payload"] for m in second for q in m.get("quick_replies", [])] == ["/affirm", "/deny"]
    assert "collega" in texts(await c.say("ja graag"))


async def test_conversation_survives_a_page_reload(chat, stack):
    c = await chat()
    await c.say("where is order 126354?")
    assert "Emma" in texts(await verify_in_chat(c, stack, "emma.clarke@example.co.uk", "K10003", "en"))
    session = c.session_id
    await c.close()

    again = await chat(session_id=session)
    assert again.session_id == session
    await again.sio.emit("history_request", {"session_id": session})
    history = (await asyncio.wait_for(again.history.get(), 10))["messages"]
    # The session verified for Emma: its history is her whole conversation (other channels and
    # earlier visits too).
    asked = history.index({"sender": "user", "text": "where is order 126354?"})
    assert any("126354" in m["text"] for m in history[asked:] if m["sender"] == "bot")
    later = texts(await again.say("i want to return it"))
    assert "126354" in later and "hasn't been delivered" in later


async def test_conversation_survives_a_gateway_restart(chat, stack):
    c = await chat()
    await c.say("waar is bestelling 118902")
    assert "Daan" in texts(await verify_in_chat(c, stack, "K10002", "K10002"))
    session = c.session_id
    await c.close()
    stack.stop_process("gateway")
    stack.start_gateway()
    again = await chat(session_id=session)
    later = texts(await again.say("ik wil het retourneren"))
    assert "118902" in later and "Retour aangemeld" in later


@pytest.mark.parametrize(
    "payload, expected",
    [
        ("", "leeg"),
        ("   \n ", "leeg"),
        ("a" * 5000, "te lang"),
        (b"\x00\x01\x02binary", "alleen tekst"),
    ],
    ids=["empty", "whitespace", "over-4kb", "binary"],
)
async def test_bad_messages_get_a_clear_answer(chat, payload, expected):
    c = await chat()
    turn = await c.emit({"message": payload, "session_id": c.session_id})
    assert expected in (await c.error())["text"]
    assert await c.turn(turn) == []  # the clear message only
    # The conversation is not stuck: the next message is answered normally.
    assert "Waarmee kan ik je helpen" in texts(await c.say("hallo"))


async def test_emoji_only_message(chat):
    c = await chat()
    assert "in woorden" in texts(await c.say("😀🎉"))


async def test_malformed_payload_and_unknown_event(chat):
    c = await chat()
    await c.sio.emit("user_uttered", "not an object")
    assert "niet verwerken" in (await c.error())["text"]
    await c.sio.emit("hack_the_planet", {"x": 1})
    assert "hack_the_planet" in (await c.error())["text"]
    assert "Waarmee kan ik je helpen" in texts(await c.say("hoi"))
