"""The e-mail channel's sender (channels/email.py) against a loopback SMTP server (aiosmtpd) that
records what a customer would receive: subject, sender, recipient and body in the customer's
language; refusals and an SMTP server that is down or hangs are DeliveryErrors, never a hang.
"""

from __future__ import annotations

import asyncio
import socket
import time
from dataclasses import replace

import pytest

from bot.launch.run import free_port
from bot.pipeline.types import BotMessage, Button
from bot.shared.settings import Settings
from channels import registry
from channels.base import DeliveryError
from channels.email import EmailAdapter, EmailSender
from tests.support.fake_smtp import FakeSMTP

FROM = "De Webwinkel <klantenservice@webwinkel.example>"
CODE_NL = "Je code voor De Webwinkel is 4821. Deze is 10 minuten geldig. Deel hem met niemand."
CODE_EN = "Your De Webwinkel code is 4821. It is valid for 10 minutes. Do not share it."
FOOTER_NL = ("Dit bericht is automatisch verstuurd. Antwoorden op deze e-mail worden niet gelezen: "
             "je bereikt ons via de chat op de website.")
FOOTER_EN = ("This message was sent automatically. Replies to this email are not read: you can "
             "reach us in the chat on our website.")


@pytest.fixture(scope="module")
def smtp():
    server = FakeSMTP().start()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def _fresh(smtp):
    smtp.clear()


def settings_for(port: int, **overrides) -> Settings:
    values = dict(redis_url="redis://127.0.0.1:6379/0", smtp_host="127.0.0.1", smtp_port=port, smtp_from=FROM,
                  smtp_starttls=False, smtp_timeout=2.0)
    values.update(overrides)
    return Settings(**values)


async def test_a_code_goes_out_with_a_dutch_subject_sender_recipient_and_body(smtp):
    await EmailSender(settings_for(smtp.port)).send("jan.jansen@example.nl", [BotMessage(CODE_NL)], proactive=True)
    [mail] = await smtp.wait_for("jan.jansen@example.nl")
    assert mail["subject"] == "Bericht van De Webwinkel"
    assert (mail["from"], mail["to"], mail["mail_from"]) == (FROM, "jan.jansen@example.nl", "klantenservice@webwinkel.example")
    assert mail["body"] == f"{CODE_NL}\n\n-- \n{FOOTER_NL}\n"
    assert (mail["content_type"], mail["charset"]) == ("text/plain", "utf-8")
    assert mail["headers"]["Content-Language"] == "nl"
    assert mail["headers"]["Auto-Submitted"] == "auto-generated"
    assert mail["headers"]["Message-ID"].endswith("@webwinkel.example>")


def records_say(lang: str | None, asked: list[str]):
    async def language_of(address: str) -> str | None:
        asked.append(address)
        return lang
    return language_of


async def test_an_english_customer_gets_an_english_subject_and_footer(smtp):
    # "De Webwinkel" leaves the English code text of no clear language: the records decide
    asked: list[str] = []
    await EmailSender(settings_for(smtp.port), records_say("en", asked)).send("emma@example.co.uk", [BotMessage(CODE_EN)])
    [mail] = await smtp.wait_for("emma@example.co.uk")
    assert mail["subject"] == "A message from De Webwinkel"
    assert mail["body"] == f"{CODE_EN}\n\n-- \n{FOOTER_EN}\n"
    assert mail["headers"]["Content-Language"] == "en"
    assert asked == ["emma@example.co.uk"]


async def test_a_text_clearly_in_english_gets_english_whatever_the_records_say(smtp):
    text = "Your parcel is on its way and will arrive tomorrow between ten and twelve in the morning."
    asked: list[str] = []
    await EmailSender(settings_for(smtp.port), records_say("nl", asked)).send("emma@example.co.uk", [BotMessage(text)])
    [mail] = await smtp.wait_for("emma@example.co.uk")
    assert (mail["subject"], mail["body"]) == ("A message from De Webwinkel", f"{text}\n\n-- \n{FOOTER_EN}\n")
    assert asked == []


async def test_without_a_clear_language_or_a_customer_it_is_dutch(smtp):
    asked: list[str] = []
    await EmailSender(settings_for(smtp.port), records_say(None, asked)).send("onbekend@example.nl", [BotMessage("4821")])
    [mail] = await smtp.wait_for("onbekend@example.nl")
    assert (mail["subject"], mail["body"]) == ("Bericht van De Webwinkel", f"4821\n\n-- \n{FOOTER_NL}\n")
    assert asked == ["onbekend@example.nl"]


async def test_a_turn_is_one_mail_with_buttons_as_a_list(smtp):
    turn = [BotMessage("Je pakket is onderweg met PostNL."),
            BotMessage("Wil je het volgen?", [Button("Ja", "/affirm"), Button("Nee", "/deny")])]
    await EmailSender(settings_for(smtp.port)).send("jan.jansen@example.nl", turn)
    [mail] = await smtp.wait_for("jan.jansen@example.nl")
    assert mail["body"] == f"Je pakket is onderweg met PostNL.\n\nWil je het volgen?\n- Ja\n- Nee\n\n-- \n{FOOTER_NL}\n"


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")  # loopback: no TLS in the test
async def test_a_login_is_used_when_configured():
    server = FakeSMTP(credentials=("bot", "s3cret")).start()
    try:
        sender = EmailSender(settings_for(server.port, smtp_user="bot", smtp_password="s3cret"))
        await sender.send("jan.jansen@example.nl", [BotMessage(CODE_NL)])
        [mail] = await server.wait_for("jan.jansen@example.nl")
        assert mail["login"] == "bot"
        wrong = EmailSender(settings_for(server.port, smtp_user="bot", smtp_password="wrong"))
        with pytest.raises(DeliveryError) as refused:
            await wrong.send("jan.jansen@example.nl", [BotMessage(CODE_NL)])
        assert refused.value.final and "535" in str(refused.value)
        assert len(server.messages) == 1
    finally:
        server.stop()


async def test_a_refused_mailbox_is_a_final_delivery_error(smtp):
    smtp.refused.add("weg@example.nl")
    with pytest.raises(DeliveryError) as refused:
        await EmailSender(settings_for(smtp.port)).send("weg@example.nl", [BotMessage(CODE_NL)])
    assert refused.value.final and str(refused.value) == "email: recipient refused [550]"
    assert smtp.messages == []


@pytest.mark.parametrize("address", ["jan.jansen@example.nl\r\nBcc: iedereen@example.nl", "geen-adres",
                                     "a@b@example.nl", "jan jansen@example.nl", ""])
async def test_what_is_no_address_is_refused_before_anything_is_sent(smtp, address):
    with pytest.raises(DeliveryError) as refused:
        await EmailSender(settings_for(smtp.port)).send(address, [BotMessage(CODE_NL)])
    assert refused.value.final and str(refused.value) == "email: the address is not an e-mail address"
    assert smtp.messages == []


async def test_smtp_down_is_a_delivery_error_at_once():
    sender = EmailSender(settings_for(free_port()))  # nothing listens there
    started = time.monotonic()
    with pytest.raises(DeliveryError) as failed:
        await sender.send("jan.jansen@example.nl", [BotMessage(CODE_NL)])
    assert not failed.value.final  # the caller tries again later
    assert time.monotonic() - started < 2


async def test_an_smtp_server_that_never_answers_is_a_delivery_error_within_the_timeout():
    silent = socket.create_server(("127.0.0.1", 0))  # accepts, never says a word
    try:
        sender = EmailSender(settings_for(silent.getsockname()[1], smtp_timeout=0.5))
        started = time.monotonic()
        with pytest.raises(DeliveryError) as failed:
            await sender.send("jan.jansen@example.nl", [BotMessage(CODE_NL)])
        elapsed = time.monotonic() - started
        assert not failed.value.final and "Timeout" in str(failed.value)
        assert 0.4 < elapsed < 2.0, elapsed
    finally:
        silent.close()


async def test_starttls_is_required_unless_switched_off(smtp):
    # the default: a server without STARTTLS gets nothing in plain text
    with pytest.raises(DeliveryError):
        await EmailSender(settings_for(smtp.port, smtp_starttls=True)).send("jan.jansen@example.nl", [BotMessage(CODE_NL)])
    assert smtp.messages == []


def test_the_channel_is_off_without_host_or_sender(monkeypatch):
    for name in ("SMTP_HOST", "SMTP_PORT", "SMTP_FROM", "SMTP_STARTTLS", "SMTP_TLS", "SMTP_USER", "SMTP_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:6379/0")
    monkeypatch.setenv("RASA_TOKEN", "x")
    assert not EmailAdapter.enabled(Settings.from_env())
    monkeypatch.setenv("SMTP_HOST", "smtp.example.nl")
    assert not EmailAdapter.enabled(Settings.from_env())  # no sender address
    monkeypatch.setenv("SMTP_FROM", FROM)
    on = Settings.from_env()
    assert EmailAdapter.enabled(on)
    assert (on.smtp_port, on.smtp_starttls, on.smtp_tls) == (587, True, False)
    monkeypatch.setenv("SMTP_TLS", "1")
    tls = Settings.from_env()
    assert (tls.smtp_port, tls.smtp_starttls, tls.smtp_tls) == (465, False, True)
    monkeypatch.setenv("SMTP_STARTTLS", "perhaps")
    with pytest.raises(SystemExit, match="SMTP_STARTTLS must be 1 or 0"):
        Settings.from_env()


def test_the_registry_knows_the_email_channel():
    email = registry.channel("email")
    assert email.label("nl") == "e-mail" and email.label("en") == "email"
    assert not registry.identifies_sender("email") and not registry.numbered_buttons("email")

    class Customer:
        email, phone, telegram_user_id = "jan.jansen@example.nl", None, None

    assert registry.address_of(Customer(), "email") == "jan.jansen@example.nl"
    assert registry.address_of(Customer(), "sms") is None
    assert EmailAdapter.channels == (email,)


async def test_two_sends_at_once_both_arrive(smtp):
    sender = EmailSender(replace(settings_for(smtp.port)))
    await asyncio.gather(sender.send("a@example.nl", [BotMessage(CODE_NL)]),
                         sender.send("b@example.nl", [BotMessage(CODE_NL)]))
    assert len(await smtp.wait_for("a@example.nl")) == 1 and len(await smtp.wait_for("b@example.nl")) == 1
