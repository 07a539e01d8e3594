"""The Telegram adapter without Rasa: its sender against a fake Bot API server, and its webhook
edge against a stub of the conversation service.

The stub (StubService) stands in for ConversationService only at the boundary under test: it
records the Inbound messages the adapter hands over and returns a fixed Outcome. Everything
else is real: python-telegram-bot over HTTP to FakeTelegram, Redis, aiohttp.
"""

from __future__ import annotations

import io
import json
import logging
import secrets

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from redis.asyncio import Redis

from bot.pipeline.types import BotMessage, Button, Inbound, Outcome
from bot.shared.settings import Settings
from channels import telegram as tg
from channels.base import BackgroundTasks, DeliveryError
from tests.support import fake_telegram as ft

REDIS_URL = "redis://127.0.0.1:6379/12"
SECRET = "webhook-secret-" + "x" * 16
USER = 4242001
LONG_PAYLOAD = '/inform{"order_number": "104233", "reason": "te laat bezorgd en bovendien beschadigd"}'


# -- fixtures ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def fake():
    server = ft.FakeTelegram()
    server.start()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def _fast_retries(monkeypatch):
    monkeypatch.setattr(tg, "BACKOFF", (0.05, 0.05))


@pytest.fixture
async def redis():
    client = Redis.from_url(REDIS_URL, decode_responses=True, socket_timeout=5, socket_connect_timeout=5)
    await client.ping()
    client.test_prefix = "tgt" + secrets.token_hex(4)
    yield client
    async for key in client.scan_iter(match=f"{client.test_prefix}:*", count=1000):
        await client.delete(key)
    await client.close()
    await client.connection_pool.disconnect()


@pytest.fixture
def settings(fake, redis) -> Settings:
    fake.clear()
    return Settings(
        redis_url=REDIS_URL, key_prefix=redis.test_prefix, telegram_bot_token=fake.token,
        telegram_webhook_secret=SECRET, telegram_api_url=fake.base_url,
    )


class StubStore:
    def __init__(self) -> None:
        self.languages: dict[str, str] = {}

    async def get(self, key: str) -> dict[str, str]:
        lang = self.languages.get(key)
        return {"language": lang} if lang else {}


class StubService:
    """Records what the adapter hands over; answers with `replies` (or a duplicate)."""

    def __init__(self) -> None:
        self.inbound: list[Inbound] = []
        self.replies = [BotMessage("Hoi! Waarmee kan ik je helpen?", [Button("Ja", "/affirm"), Button("Nee", "/deny")])]
        self.duplicate = False
        self.store = StubStore()

    async def conversation_for(self, channel: str, address: str) -> str:
        return f"c-{channel}-{address}"

    async def handle(self, inbound: Inbound) -> Outcome:
        self.inbound.append(inbound)
        if self.duplicate:
            return Outcome(f"c-{inbound.address}", "nl", [], duplicate=True)
        return Outcome(f"c-{inbound.address}", "nl", list(self.replies))


@pytest.fixture
async def sender(settings, redis):
    app = web.Application()
    s = tg.setup(app, StubService(), settings, None, BackgroundTasks(), redis)
    yield s
    await s.close()


class Edge:
    def __init__(self, client: TestClient, service: StubService, tasks: BackgroundTasks, fake: ft.FakeTelegram):
        self.client, self.service, self.tasks, self.fake = client, service, tasks, fake

    async def post(self, update, secret: str | None = SECRET, raw: bytes | None = None, headers=None):
        headers = dict(headers or {})
        if secret is not None:
            headers[tg.SECRET_HEADER] = secret
        body = io.BytesIO(raw if raw is not None else json.dumps(update).encode())
        response = await self.client.post(tg.WEBHOOK_PATH, data=body, headers=headers)
        await response.read()
        await self.tasks.drain(10)
        return response


@pytest.fixture
async def edge(settings, redis, fake):
    service, tasks = StubService(), BackgroundTasks()
    app = web.Application()
    tg.add_routes(app)
    sender = tg.setup(app, service, settings, None, tasks, redis)
    client = TestClient(TestServer(app))
    await client.start_server()
    yield Edge(client, service, tasks, fake)
    await client.close()
    await sender.close()


def keyboard(params: dict) -> list[list[dict]]:
    return params["reply_markup"]["inline_keyboard"]


# -- setup ------------------------------------------------------------------------------------

async def test_setup_returns_none_without_configuration(redis):
    app = web.Application()
    assert tg.setup(app, StubService(), Settings(redis_url=REDIS_URL), None, BackgroundTasks(), redis) is None
    assert tg.TELEGRAM not in app


async def test_setup_makes_no_network_call(fake, settings, redis):
    app = web.Application()
    s = tg.setup(app, StubService(), settings, None, BackgroundTasks(), redis)
    assert s.name == "telegram" and app[tg.TELEGRAM].sender is s
    assert s.bot.base_url == f"{fake.base_url}/bot{fake.token}"
    await s.close()
    assert fake.calls == []


async def test_webhook_answers_503_when_not_configured(redis):
    app = web.Application()
    tg.add_routes(app)
    async with TestClient(TestServer(app)) as client:
        response = await client.post(tg.WEBHOOK_PATH, json=ft.text_update(1, USER, "hoi"),
                                     headers={tg.SECRET_HEADER: SECRET})
        assert response.status == 503


# -- the sender -------------------------------------------------------------------------------

async def test_buttons_become_an_inline_keyboard(sender, fake):
    await sender.send(str(USER), [BotMessage("Kies maar", [Button("Ja", "/affirm"), Button("Nee", "/deny")])])
    [params] = await fake.wait_for("sendMessage", chat_id=USER)
    assert params["chat_id"] == USER and params["text"] == "Kies maar"
    assert keyboard(params) == [[{"text": "Ja", "callback_data": "/affirm"}], [{"text": "Nee", "callback_data": "/deny"}]]


async def test_one_telegram_message_per_bot_message(sender, fake):
    await sender.send(str(USER), [BotMessage("Een"), BotMessage("Twee"), BotMessage("")])
    sent = await fake.wait_for("sendMessage", chat_id=USER, count=2)
    assert [p["text"] for p in sent] == ["Een", "Twee"]
    assert all("reply_markup" not in p for p in sent)


async def test_buttons_without_text_still_get_a_text(sender, fake):
    await sender.send(str(USER), [BotMessage("", [Button("104233", "104233")])])
    [params] = await fake.wait_for("sendMessage", chat_id=USER)
    assert params["text"].strip() and keyboard(params) == [[{"text": "104233", "callback_data": "104233"}]]


async def test_long_payloads_go_through_redis_and_back(sender, fake, redis):
    multibyte = "/inform" + "é" * 40  # 47 characters, 87 bytes
    await sender.send(str(USER), [BotMessage("Welke?", [Button("Lang", LONG_PAYLOAD), Button("Kort", "/deny"),
                                                        Button("Bytes", multibyte)])])
    [params] = await fake.wait_for("sendMessage", chat_id=USER)
    data = [row[0]["callback_data"] for row in keyboard(params)]
    assert data[0].startswith("k:") and len(data[0].encode()) <= 64
    assert data[1] == "/deny"
    assert data[2].startswith("k:")
    key = f"{redis.test_prefix}:tgcb:{data[0][2:]}"
    assert await redis.get(key) == LONG_PAYLOAD
    assert 6 * 24 * 3600 < await redis.ttl(key) <= 7 * 24 * 3600
    assert await sender.resolve_callback(data[0]) == LONG_PAYLOAD
    assert await sender.resolve_callback(data[2]) == multibyte
    assert await sender.resolve_callback("/deny") == "/deny"
    assert await sender.resolve_callback("k:doesnotexist") is None


async def test_a_short_payload_that_looks_like_our_key_is_mapped_too(sender):
    data = await sender.callback_data("k:abc")
    assert data != "k:abc" and await sender.resolve_callback(data) == "k:abc"


async def test_text_is_cut_to_4096(sender, fake):
    await sender.send(str(USER), [BotMessage("a" * 5000)])
    [params] = await fake.wait_for("sendMessage", chat_id=USER)
    assert len(params["text"]) == 4096 and params["text"].endswith("…")


async def test_cut_counts_like_telegram_utf16(sender, fake):
    await sender.send(str(USER), [BotMessage("😀" * 3000)])  # 6000 UTF-16 code units
    [params] = await fake.wait_for("sendMessage", chat_id=USER)
    assert len(params["text"].encode("utf-16-le")) // 2 <= 4096
    assert params["text"].startswith("😀😀") and params["text"].endswith("…")
    assert fake.failures == []


async def test_image_is_sent_as_photo_with_caption_and_buttons(sender, fake):
    await sender.send(str(USER), [BotMessage("Zo ziet het eruit", [Button("Ja", "/affirm")], image="https://example.org/a.jpg")])
    [params] = await fake.wait_for("sendPhoto", chat_id=USER)
    assert params["photo"] == "https://example.org/a.jpg" and params["caption"] == "Zo ziet het eruit"
    assert keyboard(params) == [[{"text": "Ja", "callback_data": "/affirm"}]]
    assert fake.calls_of("sendMessage") == []


async def test_image_with_a_long_text_gets_the_text_separately(sender, fake):
    await sender.send(str(USER), [BotMessage("b" * 1500, [Button("Ja", "/affirm")], image="https://example.org/a.jpg")])
    [photo] = await fake.wait_for("sendPhoto", chat_id=USER)
    [message] = await fake.wait_for("sendMessage", chat_id=USER)
    assert "caption" not in photo and message["text"] == "b" * 1500 and keyboard(message)


async def test_retries_after_502_then_succeeds(sender, fake):
    fake.fail_next(2, status=502)
    await sender.send(str(USER), [BotMessage("Hallo")])
    assert len(fake.calls_of("sendMessage", USER)) == 3
    assert [f[2] for f in fake.failures] == [502, 502]


async def test_retries_after_flood_control(sender, fake):
    fake.fail_next(1, status=429)  # retry_after 1
    await sender.send(str(USER), [BotMessage("Hallo")])
    assert len(fake.calls_of("sendMessage", USER)) == 2


async def test_gives_up_after_three_attempts(sender, fake):
    fake.fail_next(5, status=502)
    with pytest.raises(DeliveryError):
        await sender.send(str(USER), [BotMessage("Hallo")])
    assert len(fake.calls_of("sendMessage", USER)) == 3


async def test_blocked_user_is_a_delivery_error_at_once(sender, fake):
    fake.block_user(USER)
    with pytest.raises(DeliveryError):
        await sender.send(str(USER), [BotMessage("Hallo")])
    assert len(fake.calls_of("sendMessage", USER)) == 1
    assert fake.failures[0][2] == 403


async def test_bad_request_is_a_delivery_error_at_once(sender, fake):
    fake.fail_next(1, status=400)
    with pytest.raises(DeliveryError):
        await sender.send(str(USER), [BotMessage("Hallo")])
    assert len(fake.calls_of("sendMessage", USER)) == 1


async def test_wrong_token_is_a_delivery_error(fake, settings, redis):
    from dataclasses import replace

    wrong = replace(settings, telegram_bot_token="999:wrong")
    s = tg.setup(web.Application(), StubService(), wrong, None, BackgroundTasks(), redis)
    try:
        with pytest.raises(DeliveryError):
            await s.send(str(USER), [BotMessage("Hallo")])
        assert len(fake.calls) == 1 and fake.failures[0][2] == 401
    finally:
        await s.close()


async def test_an_address_that_is_not_a_chat_id_is_a_delivery_error(sender, fake):
    with pytest.raises(DeliveryError):
        await sender.send("+31612345678", [BotMessage("Hallo")])
    assert fake.calls == []


# -- the webhook edge -------------------------------------------------------------------------

@pytest.mark.parametrize("secret", [None, "", "wrong", SECRET + "x"])
async def test_wrong_or_missing_secret_is_403(edge, secret):
    response = await edge.post(ft.text_update(1, USER, "hoi"), secret=secret)
    assert response.status == 403
    assert edge.service.inbound == []


@pytest.mark.parametrize("raw", [b"{not json", b"\xff\xfe", b"", b"[1, 2]", b'"text"', b"42", b"null"])
async def test_malformed_or_non_object_body_is_400(edge, raw):
    response = await edge.post(None, raw=raw)
    assert response.status == 400
    assert edge.service.inbound == []


@pytest.mark.parametrize("update", [
    {"message": {"text": "hoi"}},                                 # no update_id
    {"update_id": "12", "message": {"text": "hoi"}},             # update_id not a number
    {"update_id": 12, "message": {"text": "hoi"}},               # message without date/chat
    {"update_id": 12, "message": 5},
    {"update_id": 12, "callback_query": {"id": "1"}},             # callback without from/chat_instance
])
async def test_invalid_update_is_400(edge, update, caplog):
    caplog.set_level(logging.INFO, logger="channels.telegram")
    response = await edge.post(update)
    assert response.status == 400
    assert edge.service.inbound == []
    assert "hoi" not in caplog.text


async def test_oversized_body_is_413(edge):
    update = ft.text_update(1, USER, "x" * (1024 * 1024))
    response = await edge.post(update)
    assert response.status == 413
    assert edge.service.inbound == []


async def test_oversized_chunked_body_is_413(edge):
    async def chunks():
        yield b'{"update_id": 1, "message": {"text": "'
        for _ in range(70):
            yield b"y" * 16384
        yield b'"}}'

    response = await edge.client.post(tg.WEBHOOK_PATH, data=chunks(), headers={tg.SECRET_HEADER: SECRET})
    assert response.status == 413


@pytest.mark.parametrize("update, kind", [
    (ft.my_chat_member_update(7, USER), "my_chat_member"),
    (ft.channel_post_update(8), "channel_post"),
    ({"update_id": 9, "poll": {"id": "5", "question": "?", "options": [], "total_voter_count": 0,
                               "is_closed": False, "is_anonymous": True, "type": "regular",
                               "allows_multiple_answers": False, "allows_revoting": False}}, "poll"),
    ({"update_id": 10, "poll": {"id": "5"}}, "poll"),  # not even parsed: ignored anyway
    ({"update_id": 11, "business_message": {"text": "x"}, "chat_boost": {}}, "business_message,chat_boost"),
])
async def test_unknown_update_types_are_200_and_ignored(edge, update, kind, caplog):
    caplog.set_level(logging.INFO, logger="channels.telegram")
    response = await edge.post(update)
    assert response.status == 200
    assert edge.service.inbound == [] and edge.fake.calls == []
    assert kind in caplog.text


async def test_group_messages_are_ignored(edge):
    response = await edge.post(ft.group_text_update(10, USER, -555, "hoi allemaal"))
    assert response.status == 200
    assert edge.service.inbound == [] and edge.fake.calls == []


async def test_text_becomes_inbound_and_replies_reach_the_chat(edge):
    response = await edge.post(ft.text_update(1001, USER, "waar is mijn bestelling?"))
    assert response.status == 200
    assert edge.service.inbound == [Inbound("telegram", str(USER), "waar is mijn bestelling?",
                                            language_hint="nl", message_id="1001")]
    [params] = await edge.fake.wait_for("sendMessage", chat_id=USER)
    assert params["chat_id"] == USER and params["text"] == "Hoi! Waarmee kan ik je helpen?"
    assert keyboard(params) == [[{"text": "Ja", "callback_data": "/affirm"}], [{"text": "Nee", "callback_data": "/deny"}]]


@pytest.mark.parametrize("code, hint", [("en", "en"), ("en-GB", "en"), ("nl-BE", "nl"), ("de", None), (None, None)])
async def test_language_hint_from_the_telegram_app(edge, code, hint):
    await edge.post(ft.text_update(1002, USER, "hello", language_code=code))
    assert edge.service.inbound[0].language_hint == hint


async def test_edited_message_is_a_new_message(edge):
    await edge.post(ft.text_update(1003, USER, "bestelling 10423", message_id=55))
    await edge.post(ft.edited_update(1004, USER, "bestelling 104233", message_id=55))
    assert [(i.text, i.message_id) for i in edge.service.inbound] == [("bestelling 10423", "1003"),
                                                                     ("bestelling 104233", "1004")]
    await edge.fake.wait_for("sendMessage", chat_id=USER, count=2)


async def test_button_press_is_answered_and_its_payload_sent(edge):
    update = ft.callback_update(1005, USER, "/affirm", query_id="q-1005")
    assert (await edge.post(update)).status == 200
    [answered] = await edge.fake.wait_for("answerCallbackQuery")
    assert answered["callback_query_id"] == "q-1005"
    assert edge.service.inbound == [Inbound("telegram", str(USER), "/affirm", language_hint="nl", message_id="1005")]
    await edge.fake.wait_for("sendMessage", chat_id=USER)


async def test_long_payload_round_trip_through_a_button(edge):
    edge.service.replies = [BotMessage("Klopt dit?", [Button("Ja, terugsturen", LONG_PAYLOAD)])]
    await edge.post(ft.text_update(1006, USER, "terugsturen"))
    [params] = await edge.fake.wait_for("sendMessage", chat_id=USER)
    data = keyboard(params)[0][0]["callback_data"]
    assert data.startswith("k:")
    await edge.post(ft.callback_update(1007, USER, data))
    assert edge.service.inbound[-1].text == LONG_PAYLOAD


async def test_expired_button_is_explained(edge):
    await edge.post(ft.callback_update(1008, USER, "k:gone", language_code="en"))
    await edge.fake.wait_for("answerCallbackQuery")
    [params] = await edge.fake.wait_for("sendMessage", chat_id=USER)
    assert "expired" in params["text"]
    assert edge.service.inbound == []


async def test_own_contact_links_the_phone_number(edge):
    await edge.post(ft.contact_update(1009, USER, "31612345678"))
    assert edge.service.inbound == [Inbound("telegram", str(USER), "", language_hint="nl", message_id="1009",
                                            contact_phone="+31612345678")]
    await edge.fake.wait_for("sendMessage", chat_id=USER)


async def test_contact_with_plus_is_kept(edge):
    await edge.post(ft.contact_update(1010, USER, "+44 7700 900123"))
    assert edge.service.inbound[0].contact_phone == "+447700900123"


@pytest.mark.parametrize("code, expected", [("nl", "eigen telefoonnummer"), ("en", "own phone number")])
async def test_someone_elses_contact_is_refused(edge, code, expected):
    await edge.post(ft.contact_update(1011, USER, "31687654321", contact_user_id=999, language_code=code))
    assert edge.service.inbound == []
    [params] = await edge.fake.wait_for("sendMessage", chat_id=USER)
    assert expected in params["text"]
    assert "31687654321" not in params["text"]


async def test_refusal_speaks_the_conversation_language(edge):
    edge.service.store.languages[f"c-telegram-{USER}"] = "en"
    await edge.post(ft.contact_update(1012, USER, "31687654321", contact_user_id=999, language_code="nl"))
    [params] = await edge.fake.wait_for("sendMessage", chat_id=USER)
    assert "own phone number" in params["text"]


async def test_contact_without_a_sender_id_is_refused(edge):
    update = ft.contact_update(1013, USER, "31687654321")
    del update["message"]["contact"]["user_id"]  # a contact card from the address book
    await edge.post(update)
    assert edge.service.inbound == []
    await edge.fake.wait_for("sendMessage", chat_id=USER)


async def test_photo_is_handed_over_as_media_with_its_caption(edge):
    await edge.post(ft.photo_update(1014, USER, caption="kapot aangekomen", file_id="PHOTO-L"))
    [inbound] = edge.service.inbound
    assert inbound.media == ["PHOTO-L"] and inbound.text == "kapot aangekomen" and inbound.message_id == "1014"


async def test_voice_note_is_handed_over_as_media(edge):
    await edge.post(ft.voice_update(1015, USER, file_id="VOICE-1"))
    [inbound] = edge.service.inbound
    assert inbound.media == ["VOICE-1"] and inbound.text == ""


async def test_location_is_handed_over_as_not_text(edge):
    await edge.post(ft.location_update(1016, USER))
    [inbound] = edge.service.inbound
    assert inbound.text is None and inbound.media == []


async def test_duplicate_outcome_sends_nothing(edge):
    edge.service.duplicate = True
    await edge.post(ft.text_update(1017, USER, "hoi"))
    await edge.post(ft.text_update(1018, USER, "/start"))
    assert len(edge.service.inbound) == 2
    assert edge.fake.calls == []


@pytest.mark.parametrize("code, greeting", [("nl", "hallo"), ("en", "hello"), (None, "hallo")])
async def test_start_welcomes_offers_the_phone_button_and_greets(edge, code, greeting):
    await edge.post(ft.text_update(1019, USER, "/start", language_code=code))
    assert [(i.text, i.message_id) for i in edge.service.inbound] == [(greeting, "1019")]
    welcome, reply = await edge.fake.wait_for("sendMessage", chat_id=USER, count=2)
    assert "Welkom" in welcome["text"] and "Welcome" in welcome["text"]
    markup = welcome["reply_markup"]
    assert markup["keyboard"] == [[{"text": "Deel mijn telefoonnummer / Share my phone number", "request_contact": True}]]
    assert markup["one_time_keyboard"] is True
    assert reply["text"] == "Hoi! Waarmee kan ik je helpen?" and keyboard(reply)


async def test_a_blocked_customer_does_not_break_the_webhook(edge, caplog):
    caplog.set_level(logging.WARNING, logger="channels.telegram")
    edge.fake.block_user(USER)
    assert (await edge.post(ft.text_update(1020, USER, "hoi"))).status == 200
    assert len(edge.service.inbound) == 1
    assert "not delivered" in caplog.text


async def test_logs_carry_ids_but_no_texts_or_phone_numbers(edge, caplog):
    caplog.set_level(logging.DEBUG, logger="channels.telegram")
    edge.fake.fail_next(1, status=502)
    await edge.post(ft.text_update(1021, USER, "mijn geheime vraag"))
    await edge.post(ft.contact_update(1022, USER, "31611112222"))
    await edge.post(ft.contact_update(1023, USER, "31633334444", contact_user_id=5))
    await edge.post(ft.my_chat_member_update(1024, USER))
    records = [r.getMessage() for r in caplog.records if r.name.startswith("channels.telegram")]
    assert records
    text = "\n".join(records)
    for secret_text in ("geheime", "31611112222", "31633334444", "Hoi!"):
        assert secret_text not in text
