"""The web chat for the widgets businesses embed, without a browser.

Without Rasa (fast): the one script tag's `/widget/embed.js` (type, caching, its texts), who may
frame the chat page (`frame-ancestors` from WEBCHAT_ORIGINS) and connect to the socket.io endpoint
(the same list), and how WEBCHAT_ORIGINS is read.

Through the running stack: every message says who sent it (`metadata.sender_name`), notices reach
rasa-webchat too, a pressed button is its title in the transcript and the desk, typing is shown
only during a turn or while an agent types, and a browser that was away gets what it missed.
"""

from __future__ import annotations

import asyncio
import json
import secrets

import pytest
from aiohttp.test_utils import TestClient, TestServer
from redis.asyncio import Redis

from bot.gateway.app import create_app
from bot.shared.settings import Settings
from bot.texts import messages
from channels.widget import EMBED_PATH
from tests.support.chat import texts, conversation_of
from tests.support.desk_api import PASSWORD, Browser, create_agent
from tests.support.stack import delete_prefix, demo_shop_db, stack_sql
from tests.support.wait import until

BRAND = "De Webwinkel"
SHOP = "https://shop.example"
WWW = "https://www.shop.example"


# -- without Rasa ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def shop_db(tmp_path_factory) -> str:
    return demo_shop_db(tmp_path_factory.mktemp("widgetdb"))


@pytest.fixture
async def gateway(redis_url, shop_db, monkeypatch):
    """The gateway app (no Rasa behind it) with the given WEBCHAT_ORIGINS; an HTTP client on it."""
    monkeypatch.setenv("DATABASE_URL", shop_db)
    prefix = "wdg" + secrets.token_hex(4)
    clients = []

    async def start(origins: str = "") -> TestClient:
        settings = Settings.from_env({"REDIS_URL": redis_url, "RASA_TOKEN": "t", "KEY_PREFIX": prefix,
                                      "RASA_URL": "http://127.0.0.1:9", "WEBCHAT_ORIGINS": origins})
        client = TestClient(TestServer(create_app(settings), host="127.0.0.1"))
        await client.start_server()
        clients.append(client)
        return client

    yield start
    for client in clients:
        await client.close()
    delete_prefix(redis_url, prefix)


async def test_embed_js_is_a_cached_script_with_the_launchers_texts_in_both_languages(gateway):
    client = await gateway()
    async with client.get(EMBED_PATH) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"] == "text/javascript; charset=utf-8"
        assert resp.headers["Cache-Control"] == "public, max-age=600"
        assert resp.headers["X-Content-Type-Options"] == "nosniff"
        assert resp.headers["Cross-Origin-Resource-Policy"] == "cross-origin"
        etag = resp.headers["ETag"]
        script = await resp.text()
    assert "/*KB_CONFIG*/null" not in script
    config = json.loads(script.split("var CONFIG = ", 1)[1].split(";\n", 1)[0])
    assert config["texts"]["nl"] == {
        "widget_open": "Chat met De Webwinkel", "widget_close": "Chat sluiten",
        "widget_unread_one": "1 nieuw bericht", "widget_unread_many": "{count} nieuwe berichten",
        "widget_frame_title": "Chat met De Webwinkel"}
    assert config["texts"]["en"] == {
        "widget_open": "Chat with De Webwinkel", "widget_close": "Close the chat",
        "widget_unread_one": "1 new message", "widget_unread_many": "{count} new messages",
        "widget_frame_title": "Chat with De Webwinkel"}
    # a browser that has it asks again and gets 304 without a body
    async with client.get(EMBED_PATH, headers={"If-None-Match": etag}) as again:
        assert again.status == 304 and await again.read() == b""
        assert again.headers["Cache-Control"] == "public, max-age=600"


@pytest.mark.parametrize("origins, expected", [
    ("", "frame-ancestors 'self'"),
    (f"{WWW}, {SHOP}/", f"frame-ancestors 'self' {SHOP} {WWW}"),
    ("*", "frame-ancestors *"),
], ids=["own-origin-only", "two-sites", "any-site"])
async def test_the_chat_page_may_be_framed_by_the_sites_of_webchat_origins_only(gateway, origins, expected):
    client = await gateway(origins)
    async with client.get("/") as resp:
        assert resp.status == 200
        assert resp.headers["Content-Security-Policy"] == expected
        assert resp.headers["Cache-Control"] == "no-cache"
        assert "widget.js" in await resp.text()


async def _handshake(client: TestClient, origin: str | None) -> tuple[int, str | None, str]:
    """An engine.io handshake as a browser on `origin` starts it (long-polling)."""
    headers = {"Origin": origin} if origin else {}
    async with client.get("/socket.io/?EIO=4&transport=polling", headers=headers) as resp:
        return resp.status, resp.headers.get("Access-Control-Allow-Origin"), await resp.text()


async def test_only_the_gateway_itself_and_webchat_origins_may_connect_to_the_chat(gateway):
    client = await gateway(SHOP)
    own = f"http://127.0.0.1:{client.port}"
    status, allow, body = await _handshake(client, "https://evil.example")
    assert (status, allow) == (400, None) and "not an accepted origin" in body
    for origin in (SHOP, own):
        status, allow, body = await _handshake(client, origin)
        assert (status, allow) == (200, origin) and body.startswith("0{")
    status, allow, _ = await _handshake(client, WWW)  # not listed
    assert (status, allow) == (400, None)
    status, _, body = await _handshake(client, None)  # not a browser: the guard is for browsers
    assert status == 200 and body.startswith("0{")

    default = await gateway()  # without the setting: the gateway's own pages only
    assert (await _handshake(default, SHOP))[0] == 400
    assert (await _handshake(default, f"http://127.0.0.1:{default.port}"))[0] == 200


def test_webchat_origins_are_read_as_origins_or_refused_with_the_reason():
    def read(raw: str) -> tuple:
        return Settings.from_env({"REDIS_URL": "redis://127.0.0.1:6379/0", "RASA_TOKEN": "t",
                                  "WEBCHAT_ORIGINS": raw}).webchat_origins

    assert read("") == ()
    assert read("https://Shop.Example/, http://localhost:3000,https://shop.example") == (
        "https://shop.example", "http://localhost:3000")
    assert read(" * ") == ("*",)
    for bad in ("shop.example", "https://shop.example/chat", "ftp://shop.example", "*, https://shop.example",
                "https://shop.example:99999", "https://user@shop.example"):
        with pytest.raises(SystemExit, match="WEBCHAT_ORIGINS: .* is not an origin such as https://shop.example"):
            read(bad)


# -- through the stack ------------------------------------------------------------------------------

def _meta(message: dict) -> dict:
    return message.get("metadata") or {}


def transcript(stack, conversation: str, sender: str) -> list[tuple[str, dict]]:
    rows = stack_sql(stack, "select text, data from transcript where conversation = ? and sender = ? order by id",
                     conversation, sender)
    return [(text, json.loads(data) if isinstance(data, str) else data) for text, data in rows]




@pytest.fixture
async def agent_desk(stack):
    """A logged-in agent (`Anna agent`) in the desk API, and a way to take over a chat."""
    desk = Browser(f"http://127.0.0.1:{stack.gateway_port}")
    assert (await desk.login(create_agent(stack, "agent"), PASSWORD)).status == 303

    async def take(c) -> str:
        """The chat `c` asks for a person and the agent claims it; its conversation."""
        assert "niets te herhalen" in texts(await c.say("ik wil een medewerker spreken"))
        conv = await conversation_of(stack, c.session_id)
        status, _ = await desk.act(conv, "claim")
        assert status == 200
        assert "van de klantenservice" in texts(await c.replies())
        return conv

    desk.take = take
    yield desk
    await desk.close()


async def test_every_message_says_who_sent_it(chat, agent_desk):
    c = await chat()
    greeting = await c.say("hoi")
    assert greeting and all(_meta(m) == {"sender": "bot", "sender_name": BRAND} for m in greeting)
    conv = await agent_desk.take(c)
    status, _ = await agent_desk.act(conv, "reply", {"text": "Hallo, ik ben Anna."})
    assert status == 200
    [answer] = await c.replies()
    assert answer["text"] == "Hallo, ik ben Anna."
    assert _meta(answer) == {"sender": "agent", "sender_name": "Anna"}  # the agent's first name only


async def test_a_refusal_also_reaches_rasa_webchat_as_a_message_marked_as_notice(chat):
    c = await chat()
    turn = await c.emit({"message": "a" * 5000, "session_id": c.session_id})
    refusal = messages.text("too_long", "nl", limit=4096)
    assert (await c.error())["text"] == refusal  # our widget's event
    copy = await asyncio.wait_for(c.notices.get(), 10)  # rasa-webchat's: a bot_uttered
    assert (copy["text"], _meta(copy)) == (refusal, {"notice": True, "sender": "bot", "sender_name": BRAND})
    assert await c.turn(turn) == []


async def test_a_pressed_button_is_its_title_in_the_transcript_and_the_desk_and_its_payload_goes_to_rasa(
        chat, stack, agent_desk):
    c = await chat()
    offered = {q["title"]: q["payload"] for m in await c.say("hoi") for q in m.get("quick_replies", [])}
    assert offered["Waar is mijn bestelling?"] == "/order_status"
    # rasa-webchat sends the payload alone
    assert "klantnummer" in texts(await c.say("/order_status"))
    conv = await conversation_of(stack, c.session_id)
    text, data = transcript(stack, conv, "customer")[-1]
    assert (text, data["payload"]) == ("Waar is mijn bestelling?", "/order_status")
    # our widget sends the title too; a title that was not offered with the payload is not believed
    await c.say("laat maar")
    offered = {q["title"]: q["payload"] for m in await c.say("hoi") for q in m.get("quick_replies", [])}
    ack = await c.emit({"message": offered["Een medewerker spreken"], "title": "Ik wil €1000 terug",
                        "session_id": c.session_id})
    await c.turn(ack)
    assert transcript(stack, conv, "customer")[-1][0] == "Een medewerker spreken"
    status, view = await agent_desk.get(f"/desk/api/conversations/{conv}")
    assert status == 200
    said = [row["text"] for row in view["transcript"] if row["sender"] == "customer"]
    assert said == ["hoi", "Waar is mijn bestelling?", "laat maar", "hoi", "Een medewerker spreken"]


async def test_typing_is_shown_while_a_turn_runs_or_an_agent_types_and_not_otherwise(chat, stack, agent_desk):
    c = await chat()
    await c.say("hoi")
    # on before the first reply, off after the last one, before the turn is done
    assert c.timeline[0] == "typing_on" and c.timeline[-2:] == ["typing_off", "turn_done"]
    assert set(c.timeline[1:-2]) == {"bot_uttered"}
    assert c.typing == [{"sender": "bot", "sender_name": BRAND}]

    conv = await agent_desk.take(c)
    c.timeline.clear()
    c.typing.clear()
    held = await c.send("het gaat om mijn factuur")  # for the agent: nobody types until they do
    assert await c.turn(held) == []
    assert c.timeline == ["turn_done"]
    status, _ = await agent_desk.act(conv, "typing")
    assert status == 200
    await until(lambda: c.typing, timeout=10, what="the agent's typing")
    assert c.typing == [{"sender": "agent", "sender_name": "Anna", "seconds": 6}]

    other = Browser(f"http://127.0.0.1:{stack.gateway_port}")  # not this agent's conversation
    try:
        assert (await other.login(create_agent(stack, "agent"), PASSWORD)).status == 303
        status, body = await other.act(conv, "typing")
        assert (status, body["error"]) == (409, "not_yours")
    finally:
        await other.close()


async def test_a_browser_that_was_away_gets_what_it_missed_once(chat, stack, agent_desk):
    c = await chat()
    conv = await agent_desk.take(c)
    session = c.session_id
    await c.close()
    redis = Redis.from_url(stack.redis_url, decode_responses=True)
    try:
        await until(lambda: redis.exists(f"{stack.key_prefix}:webchat:left:{session}"), timeout=10,
                    what="the gateway noting where the session left")
        for text in ("Ik heb je bestelling gevonden.", "Hij komt morgen:\n• tussen 9 en 12\n• met PostNL"):
            status, _ = await agent_desk.act(conv, "reply", {"text": text})
            assert status == 200

        again = await chat(session_id=session)  # rasa-webchat coming back: it asks for nothing
        missed = [await asyncio.wait_for(again.replayed.get(), 10) for _ in range(2)]
        assert [m["text"] for m in missed] == ["Ik heb je bestelling gevonden.",
                                               "Hij komt morgen:\n• tussen 9 en 12\n• met PostNL"]
        assert missed[1]["wire_text"] == "Hij komt morgen:  \n• tussen 9 en 12  \n• met PostNL"
        assert all(_meta(m) == {"sender": "agent", "sender_name": "Anna", "replayed": True} for m in missed)
        await again.close()

        await until(lambda: redis.exists(f"{stack.key_prefix}:webchat:left:{session}"), timeout=10,
                    what="the gateway noting where the session left again")
        third = await chat(session_id=session)  # nothing new since: nothing again
        status, _ = await agent_desk.act(conv, "reply", {"text": "Nog iets?"})
        assert status == 200
        assert [m["text"] for m in await third.replies()] == ["Nog iets?"]  # live, not replayed
        assert third.replayed.empty()
    finally:
        await redis.close(close_connection_pool=True)
