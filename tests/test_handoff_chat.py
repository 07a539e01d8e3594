"""Handing over to people, seen from the customer's side, through the running stack: the honest
wait (from the live queue, stored as a promise), "how long still?", messages held for people
instead of the bot, and the triggers (asking, misunderstanding, anger, beyond the mandate).

The gateway's clock is fixed (`gateway_clock`), so each wait is one exact text: Monday 10:00 with
nobody online, Monday 10:00 with a colleague free, Friday 20:00 (closed until Monday 09:00)."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timezone

from tests.support.chat import texts
from tests.support.clock import business_monday, day_words, evening_before, local
from tests.support.desk_api import PASSWORD, Browser, create_agent, online

MONDAY = business_monday()        # 10:00, open until 17:00
FRIDAY = evening_before(MONDAY)   # 20:00, closed until Monday 09:00

# open, nobody online who may take it: within 2 business hours (config/handoff.yml), 12:00
NOBODY_ONLINE = {
    "nl": "Er is nu geen collega online die dit mag afhandelen. Je krijgt vandaag voor 12:00 antwoord via "
          "de chat op de website; je hoeft hier niet te wachten.",
    "en": "No colleague who may handle this is online right now. You'll get an answer today before 12:00 via "
          "the chat on our website; no need to wait here.",
}
# a colleague online and free: the minimum wait, 2 minutes, rounded up to 5
NEXT_IN_LINE = ("Je bent als eerste aan de beurt: een collega reageert binnen ongeveer 5 minuten "
                "(uiterlijk vandaag voor 10:05).")
# closed: an hour after the next opening
CLOSED = (f"Onze collega's zijn er nu niet. Je krijgt {day_words(MONDAY, 'nl')} voor 10:00 antwoord via "
          "de chat op de website; je kunt dit gesprek gerust verlaten.")


def db(stack) -> sqlite3.Connection:
    return sqlite3.connect(stack.database_url.removeprefix("sqlite:///"))


def promises(stack, conversation: str) -> list[tuple[str, str, datetime]]:
    """What the conversation was promised: text, status and deadline (stored as UTC)."""
    with db(stack) as conn:
        rows = conn.execute("select text, status, deadline from promises where conversation = ? order by id",
                            (conversation,)).fetchall()
    return [(text, status, datetime.fromisoformat(deadline).replace(tzinfo=timezone.utc))
            for text, status, deadline in rows]


async def test_asking_for_a_person_queues_the_conversation_with_an_honest_promise(chat, stack, people, gateway_clock):
    await gateway_clock.at(MONDAY)
    c = await chat()
    said = await c.say("ik wil een medewerker spreken")
    answer = texts(said)
    assert "hele gesprek" in answer and "niets te herhalen" in answer
    assert said[-1]["text"] == NOBODY_ONLINE["nl"]
    conversation = await people._redis.get(f"{stack.key_prefix}:identity:webchat:{c.session_id}")
    item = await people.get(conversation)
    assert (item["state"], item["reason"], item["role"], item["queue"], item["language"]) == (
        "waiting", "asked", "agent", "general", "nl")
    noon = local(MONDAY.date(), 12)
    assert promises(stack, conversation) == [(NOBODY_ONLINE["nl"], "open", noon)]

    # "how long still?" is answered from the live queue again; the same time told again is still the
    # one promise (a different time would renew it: tests/test_promises.py)
    again = await c.say("hoe lang duurt het nog voordat ik antwoord krijg?")
    assert [m["text"] for m in again] == [NOBODY_ONLINE["nl"]]
    assert promises(stack, conversation) == [(NOBODY_ONLINE["nl"], "open", noon)]

    # other messages are kept for the colleague, not answered by the bot
    [held] = await c.say("het gaat over bestelling 104233")  # the acknowledgement, and nothing else
    assert "bij je vraag gezet" in held["text"]
    assert await c.turn(await c.send("waar blijft mijn pakket")) == []  # acknowledged once, not after every message
    with db(stack) as conn:
        kept = [t for (t,) in conn.execute("select text from transcript where conversation = ? and sender = 'customer'",
                                            (conversation,))]
    assert kept[-2:] == ["het gaat over bestelling 104233", "waar blijft mijn pakket"]

    # a goodbye while waiting: no need to stay, the question stays (and is kept for the colleague)
    [bye] = await c.say("prima, doei")
    assert bye["text"].startswith("Tot ziens!") and "ook als je dit gesprek nu verlaat" in bye["text"]
    assert (await people.get(conversation))["state"] == "waiting"


async def test_english_customer_is_told_in_english(chat, stack, people, gateway_clock):
    await gateway_clock.at(MONDAY)
    c = await chat(language="en")
    said = await c.say("can i talk to a real person please")
    assert "colleague" in texts(said) and "no need to repeat" in texts(said)
    assert said[-1]["text"] == NOBODY_ONLINE["en"]
    conversation = await people._redis.get(f"{stack.key_prefix}:identity:webchat:{c.session_id}")
    assert (await people.get(conversation))["language"] == "en"


async def test_an_angry_message_goes_straight_to_a_person_who_is_free(chat, stack, people, gateway_clock):
    await gateway_clock.at(MONDAY)
    agent = Browser(f"http://127.0.0.1:{stack.gateway_port}")
    stream = None
    try:
        agent.username = create_agent(stack, "agent")
        assert (await agent.login(agent.username, PASSWORD)).status == 303
        stream = await online(agent)  # a colleague online with nobody to help: the customer is next
        c = await chat()
        said = await c.say("Dit is echt belachelijk, al twee weken wacht ik!!!")
    finally:
        if stream is not None:
            stream.cancel()
        await agent.close()
    assert "klaar mee" in texts(said)
    assert said[-1]["text"] == NEXT_IN_LINE
    conversation = await people._redis.get(f"{stack.key_prefix}:identity:webchat:{c.session_id}")
    item = await people.get(conversation)
    assert (item["reason"], item["state"]) == ("angry", "waiting")
    waiting = [i["conversation"] for i in await people.waiting()]
    assert conversation in waiting


async def test_a_message_after_closing_goes_to_the_bot_again(chat, stack, people, gateway_clock):
    await gateway_clock.at(MONDAY)
    c = await chat()
    await c.say("ik wil een medewerker spreken")
    conversation = await people._redis.get(f"{stack.key_prefix}:identity:webchat:{c.session_id}")
    await people.finish(conversation, None, "closed")
    assert "maandag t/m vrijdag 9:00–17:00" in texts(await c.say("hoe laat zijn jullie open"))


async def test_twice_misunderstood_and_the_offer_accepted_after_hours(chat, stack, people, gateway_clock):
    await gateway_clock.at(FRIDAY)
    c = await chat()
    await c.say("/nlu_fallback")
    await c.say("/nlu_fallback")
    said = await c.say("ja graag")
    assert said[-1]["text"] == CLOSED
    conversation = await people._redis.get(f"{stack.key_prefix}:identity:webchat:{c.session_id}")
    assert (await people.get(conversation))["reason"] == "misunderstood"

