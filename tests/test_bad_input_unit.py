"""The checks behind tests/test_bad_input.py, without a stack: web chat logins, the shape of a
Telegram update, nesting, desk amounts and the redaction of Rasa's log."""

from __future__ import annotations

import json

import pytest

from bot.desk.routes import DeskError, _cents
from bot.policy.identity import sign_web_login, verify_web_login
from bot.rasa_plugins.server import REDACTED, install_redaction, redact_personal
from bot.shared.safe_input import clean_token, encodable, nesting_within
from channels.telegram import malformed
from tests.support.fake_telegram import callback_update, contact_update, photo_update, text_update

SECRET = "s3cret"


def test_a_signed_login_verifies_in_either_case():
    digest = sign_web_login(SECRET, "web-olivia")
    assert verify_web_login(SECRET, "web-olivia", digest)
    assert verify_web_login(SECRET, "web-olivia", digest.upper())
    assert not verify_web_login("", "web-olivia", digest)


@pytest.mark.parametrize("user_id, user_hash", [
    ("web-olivia", "é" * 64), ("web-olivia", "\ud800" * 64), ("web-olivia", None), ("web-olivia", 12),
    ("web-olivia", ["a" * 64]), ("web-olivia", "a" * 63), ("web-olivia", "a" * 10_000),
    (None, "a" * 64), (12, "a" * 64), (["x"], "a" * 64), ({"id": 1}, "a" * 64), ("", "a" * 64),
    ("web-\ud800", "a" * 64), ("web\x00olivia", "a" * 64), ("x" * 257, "a" * 64),
])
def test_odd_logins_are_false_and_never_raise(user_id, user_hash):
    assert verify_web_login(SECRET, user_id, user_hash) is False


def test_text_checks():
    assert encodable("hé 👍") and not encodable("a\ud800b")
    assert clean_token("K10001") and not clean_token("K1\x00") and not clean_token("K1\n")
    assert not clean_token("") and not clean_token(5) and not clean_token("x" * 300)


def test_nesting_is_measured_without_recursion():
    deep: object = 1
    for _ in range(100_000):
        deep = [deep]
    assert not nesting_within(deep, 32)
    assert nesting_within({"a": [{"b": 1}]}, 3) and not nesting_within({"a": [{"b": {}}]}, 3)
    assert nesting_within("text", 1)


def test_real_telegram_updates_are_well_formed():
    for update in (text_update(1, 42, "hoi"), contact_update(2, 42, "31612345601"), photo_update(3, 42, "kijk"),
                   callback_update(4, 42, "/affirm")):
        assert malformed(json.loads(json.dumps(update))) is None


@pytest.mark.parametrize("path, value, problem", [
    (("message",), [], "message not an object"),
    (("message", "text"), 5, "message text"),
    (("message", "from"), "me", "message from not an object"),
    (("message", "from", "id"), 10**30, "message from id"),
    (("message", "from", "id"), True, "message from id"),
    (("message", "from", "is_bot"), "no", "message from is_bot"),
    (("message", "chat"), None, "message chat not an object"),
    (("message", "chat", "type"), 1, "message chat type"),
    (("message", "entities"), [1], "message entities"),
    (("update_id",), -1, "update_id"),
    (("update_id",), "1", "update_id"),
])
def test_malformed_telegram_updates_say_what_is_wrong(path, value, problem):
    update = text_update(1, 42, "hoi")
    target = update
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    assert malformed(update) == problem


def test_a_lone_surrogate_in_a_telegram_text_is_left_to_the_service():
    assert malformed(text_update(1, 42, "\ud800abc")) is None
    photo = photo_update(1, 42)
    photo["message"]["photo"][0]["file_id"] = "\ud800"
    assert malformed(photo) == "message photo"


@pytest.mark.parametrize("value, why", [
    (1e30, "too_large"), (10**40, "too_large"), (1e308, "too_large"), (float("inf"), "positive_number"),
    (float("nan"), "positive_number"), (-0.0, "positive_number"), ("NaN", "positive_number"),
    ("1e30", "positive_number"), ({"a": 1}, "positive_number"), (True, "positive_number"), (1e-30, "cents"),
])
def test_odd_desk_amounts(value, why):
    with pytest.raises(DeskError) as caught:
        _cents(value, "amount")
    assert (caught.value.status, caught.value.values["why"]) == (400, why)


def test_ordinary_desk_amounts():
    assert [_cents(v, "amount") for v in (10, 10.5, "12,50", "1000000")] == [1000, 1050, 1250, 100_000_000]


def test_rasa_log_events_lose_their_personal_values(monkeypatch):
    from rasa.utils import log_utils

    monkeypatch.setattr(log_utils, "_anonymizer", log_utils._anonymizer)  # restored afterwards
    install_redaction()
    install_redaction()  # idempotent
    event = {"event": "rest.message.received.timeout", "text": "mijn adres is Dorpsstraat 1", "sender_id": "c1",
             "user_message": "x", "slot_values": {"customer_id": "1"}, "response": None}
    out = log_utils._anonymizer(None, "error", dict(event))
    assert out == {"event": "rest.message.received.timeout", "text": REDACTED, "sender_id": "c1",
                   "user_message": REDACTED, "slot_values": REDACTED, "response": None}
    assert redact_personal(None, "info", {"event": "x"}) == {"event": "x"}


HEADER = "customer_number,name,email,phone,postcode,preferred_channel,language,consent_proactive,segment,telegram_user_id,web_login_id\n"


async def test_nul_and_surrogates_in_imported_records_are_line_errors_and_good_rows_land(engine):
    from bot.records.importer import import_text

    csv_text = (HEADER
                + "K30001,Nul\x00Naam,nul@example.nl,0612345801,3012 AB,email,nl,ja,regular,,\n"
                + "K30002,Goede Naam,goed2@example.nl,0612345802,3012 AB,email,nl,ja,regular,,web-\x00x\n"
                + "K30003,Goede Naam,goed3@example.nl,0612345803,3012 AB,email,nl,ja,regular,,\n")
    report = await import_text(engine, csv_text, "csv")
    why = "contains a NUL byte or a character with no UTF-8 form"
    assert report.errors == [(2, f"name: {why}"), (3, f"web_login_id: {why}")]
    assert (report.created, report.updated) == (1, 0)
    jsonl = "\n".join(json.dumps(row) for row in (
        {"customer_number": "K30004", "name": "Sur\ud800Naam", "email": "sur@example.nl"},
        {"customer_number": "K30005", "name": "Nul\u0000", "email": "nul5@example.nl"},
        {"customer_number": "K30006", "name": "Goede Naam", "email": "goed6@example.nl"},
    ))
    report = await import_text(engine, jsonl, "jsonl")
    assert report.errors == [(1, f"name: {why}"), (2, f"name: {why}")]
    assert (report.created, report.updated) == (1, 0)
