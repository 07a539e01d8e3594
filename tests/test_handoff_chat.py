"""Handing over to people, seen from the customer's side, through the running stack: the honest
wait (from the live queue, stored as a promise), "how long still?", messages held for people
instead of the bot, and the triggers (asking, misunderstanding, anger, beyond the mandate)."""

from __future__ import annotations

import sqlite3

from tests.support.chat import texts


def db(stack) -> sqlite3.Connection:
    return sqlite3.connect(stack.database_url.removeprefix("sqlite:///"))


def promises(stack, conversation: str) -> list[tuple[str, str, str]]:
    with db(stack) as conn:
        return conn.execute("select text, status, deadline from promises where conversation = ? order by id",
                            (conversation,)).fetchall()


WAIT_TEXTS = ("in de rij", "als eerste aan de beurt", "geen collega online", "collega's zijn er nu niet")


async def test_asking_for_a_person_queues_the_conversation_with_an_honest_promise(chat, stack, people):
    c = await chat()
    answer = texts(await c.say("ik wil een medewerker spreken"))
    assert "hele gesprek" in answer and "niets te herhalen" in answer
    assert any(t in answer for t in WAIT_TEXTS), answer
    conversation = await people._redis.get(f"{stack.key_prefix}:identity:webchat:{c.session_id}")
    item = await people.get(conversation)
    assert (item["state"], item["reason"], item["role"], item["queue"], item["language"]) == (
        "waiting", "asked", "agent", "general", "nl")
    [(promised, status, deadline)] = promises(stack, conversation)
    assert status == "open" and promised in answer and deadline

    # "how long still?" is answered from the live queue again; the earlier promise is replaced
    again = texts(await c.say("hoe lang duurt het nog voordat ik antwoord krijg?"))
    assert any(t in again for t in WAIT_TEXTS), again
    stored = promises(stack, conversation)
    assert [s for _, s, _ in stored] == ["superseded", "open"] and stored[-1][0] in again

    # other messages are kept for the colleague, not answered by the bot
    [held] = await c.say("het gaat over bestelling 104233")  # the acknowledgement, and nothing else
    assert "bij je vraag gezet" in held["text"]
    assert await c.turn(await c.send("waar blijft mijn pakket")) == []  # acknowledged once, not after every message
    with db(stack) as conn:
        kept = [t for (t,) in conn.execute("select text from transcript where conversation = ? and sender = 'customer'",
                                            (conversation,))]
    assert kept[-2:] == ["het gaat over bestelling 104233", "waar blijft mijn pakket"]


async def test_english_customer_is_told_in_english(chat, stack, people):
    c = await chat(language="en")
    answer = texts(await c.say("can i talk to a real person please"))
    assert "colleague" in answer and "no need to repeat" in answer
    conversation = await people._redis.get(f"{stack.key_prefix}:identity:webchat:{c.session_id}")
    assert (await people.get(conversation))["language"] == "en"


async def test_an_angry_message_goes_straight_to_a_person(chat, stack, people):
    c = await chat()
    answer = texts(await c.say("Dit is echt belachelijk, al twee weken wacht ik!!!"))
    assert "klaar mee" in answer
    conversation = await people._redis.get(f"{stack.key_prefix}:identity:webchat:{c.session_id}")
    item = await people.get(conversation)
    assert (item["reason"], item["state"]) == ("angry", "waiting")
    waiting = [i["conversation"] for i in await people.waiting()]
    assert conversation in waiting


async def test_twice_misunderstood_and_the_offer_accepted(chat, stack, people):
    c = await chat()
    await c.say("/nlu_fallback")
    await c.say("/nlu_fallback")
    answer = texts(await c.say("ja graag"))
    assert any(t in answer for t in WAIT_TEXTS), answer
    conversation = await people._redis.get(f"{stack.key_prefix}:identity:webchat:{c.session_id}")
    assert (await people.get(conversation))["reason"] == "misunderstood"


async def test_a_message_after_closing_goes_to_the_bot_again(chat, stack, people):
    c = await chat()
    await c.say("ik wil een medewerker spreken")
    conversation = await people._redis.get(f"{stack.key_prefix}:identity:webchat:{c.session_id}")
    await people.finish(conversation, None, "closed")
    assert "9:00 tot 17:00" in texts(await c.say("hoe laat zijn jullie open"))
