"""Personal data (GDPR): export, erase and retention, on SQLite and PostgreSQL, with real Redis.

The customer is Sanne de Vries (K10001) of the demo web shop, given every kind of data the
system holds: identities on WhatsApp, Telegram and a web login, a ticket with her home address,
a decision with its audit entries, a promise, feedback, a one-time code and its outbox message,
her transcript on two channels, her messages in the inbound inbox (an answered one, pending ones
from her phone and from a web chat session verified as hers, a stranger's naming her order, one
kept in Redis while the database was away), and the Redis state the gateway and Rasa keep (her
conversation, the provisional web chat conversation that joined it, bindings, buttons, a Telegram
link code, a handoff item, the WhatsApp window, a Telegram button payload, Rasa trackers, the
verified web session, identification rate-limit counters, the inbox's done marker). Emma Clarke
(K10003) gets the same kinds of data and must come out untouched; an anonymous visitor's
conversation too.

Redis: TEST_REDIS_URL (db 13) under an own key prefix, deleted afterwards. Rasa's tracker is
written by Rasa's own RedisTrackerStore (ours, bot/rasa_plugins/tracker_store.py), as Rasa does.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import stat
import sys
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from redis.asyncio import Redis
from sqlalchemy import Column, ForeignKey, Integer, String, Table, cast, select, update
from sqlalchemy.sql.sqltypes import JSON, Text

from actions import limits
from bot.pipeline.conversations import ConversationStore
from bot.shared.db import create_engine
from bot.people import HandoffConfig, Handoffs
from bot.policy.identity import Limit, client_ref
from bot.pipeline.inbox import Inbox, Stored
from bot.records import personal
from bot.records.models import (
    AuditEntry, Base, Customer, Feedback, ProactiveMessage, InboxMessage, Invoice, Payment, TranscriptEntry,
)
from bot.records.repository import Records
from bot.records.retention import RetentionConfig, RetentionJob, purge
from bot.pipeline.types import Button
from channels.telegram import TelegramSender
from channels.twilio import WhatsAppWindow
from tests.support.stack import TEST_REDIS_URL, delete_prefix

PROJECT_ROOT = Path(__file__).resolve().parent.parent
TELEGRAM_ID = "7001234567"
WEB_LOGIN = "web-sanne"
HOME = "Prinsengracht 12"


# -- fixtures -------------------------------------------------------------------------------------

@pytest.fixture
async def redis():
    prefix = "gd" + secrets.token_hex(4)
    client = Redis.from_url(TEST_REDIS_URL, decode_responses=True)
    await client.ping()
    client.prefix = prefix
    yield client
    await client.close(close_connection_pool=True)
    delete_prefix(TEST_REDIS_URL, prefix)


def _tracker_store(prefix: str):
    from rasa.shared.core.domain import Domain

    from bot.rasa_plugins.tracker_store import RedisTrackerStore
    from bot.shared.settings import RedisAddress

    address = RedisAddress.parse(TEST_REDIS_URL)
    return RedisTrackerStore(Domain.empty(), host=address.host, port=address.port, db=address.db,
                             password=address.password or None, key_prefix=prefix)


async def _save_tracker(prefix: str, sender: str, texts: list[str], slots: dict[str, str], bot: str) -> None:
    from rasa.shared.core.events import BotUttered, SlotSet, UserUttered
    from rasa.shared.core.trackers import DialogueStateTracker

    events = []
    for text in texts:
        events.append(UserUttered(text, {"name": "inform"}, timestamp=time.time()))
    events += [SlotSet(name, value) for name, value in slots.items()]
    events.append(BotUttered(bot))
    tracker = DialogueStateTracker.from_events(sender, events)
    await _tracker_store(prefix).save(tracker)


class World:
    """Everything one test set up, to compare with afterwards."""

    def __init__(self, records: Records, redis: Redis) -> None:
        self.records, self.redis, self.prefix = records, redis, redis.prefix
        self.store = ConversationStore(redis, self.prefix)
        self.handoffs = Handoffs(redis, self.prefix, HandoffConfig.load())


async def _give_everything(w: World, number: str, *, telegram: str | None, web: str | None,
                           address_text: str) -> dict:
    """Every kind of data for one customer; returns what a test needs to know."""
    records, store = w.records, w.store
    c = await records.by_customer_number(number)
    cid = c.id
    if telegram:
        await records.add_identity(cid, "telegram", telegram)
    if web:
        await records.add_identity(cid, "webchat", web)
        async with records.session() as s, s.begin():
            await s.execute(update(Customer).where(Customer.id == cid).values(web_login_id=web))
    c = await records.customer(cid)
    orders = await records.recent_orders(cid, limit=100)
    first_order = orders[0]
    # the customer's conversation: reached on WhatsApp (or Telegram)
    channel, address = ("whatsapp", c.phone) if number == "K10001" else ("telegram", c.telegram_user_id)
    conv = await store.key_for(channel, address)
    conv = await store.claim_customer(cid, conv)
    await store.update(conv, customer_id=str(cid), last_channel=channel, last_address=address, language=c.language)
    # a web chat visitor who said who they were: a provisional conversation that joined theirs
    session_id = uuid.uuid4().hex
    provisional = await store.key_for("webchat", session_id)
    await store.update(provisional, last_channel="webchat", last_address=session_id, language=c.language)
    await records.add_transcript(provisional, None, "customer", "webchat", f"ik ben {number}")
    await store.bind("webchat", session_id, conv)
    await records.move_transcript(provisional, conv, cid)
    if telegram:
        await store.bind("telegram", telegram, conv)
    # the transcript on two channels
    await records.add_transcript(conv, cid, "customer", channel,
                                 f"Waar blijft {first_order.order_number}? Ik woon op {address_text}",
                                 {"message_id": "SM" + secrets.token_hex(8)})
    await records.add_transcript(conv, cid, "bot", channel, f"Hoi {c.name.split()[0]}, je pakket "
                                 f"{first_order.tracking_code or first_order.order_number} is onderweg.")
    await records.add_transcript(conv, cid, "customer", "webchat", f"mijn mail is {c.email}")
    # records: ticket, decision and audit entries, promise, feedback, one-time code and outbox
    await records.create_ticket(cid, "complaint", details=f"Bezorgd op {address_text}, {c.postcode}",
                                data={"order_number": first_order.order_number}, order_id=first_order.id,
                                channel=channel)
    await records.decide(customer_id=cid, actor_role="bot", actor="bot",
                         verdict_record={"decision": "refund", "request": {"kind": "refund", "amount": "19.95"},
                                         "allowed": True, "explanation": "within the bot's mandate"},
                         grant={"kind": "refund", "amount_cents": 1995, "order_id": first_order.id,
                                "reason": f"refund order {first_order.order_number}"})
    await records.decide(customer_id=cid, actor_role="bot", actor="bot",
                         verdict_record={"decision": "goodwill_voucher", "request": {"kind": "goodwill_voucher"},
                                         "allowed": False, "lowest_role": "agent", "explanation": "beyond the bot"},
                         grant=None)
    await records.add_promise(conv, cid, "handoff_wait", f"{c.name.split()[0]}, een collega reageert voor 15:00",
                              datetime.now(timezone.utc) + timedelta(hours=2))
    async with records.session() as s, s.begin():
        s.add(Feedback(customer_id=cid, conversation=conv, csat=4, comment=f"{c.name}: prima geholpen"))
        s.add(ProactiveMessage(customer_id=cid, kind="late_delivery", ref=f"order:{first_order.order_number}",
                               channel="whatsapp", status="sent"))
    await records.issue_code(c, "whatsapp", c.phone, "Je code is {code}")
    # Redis: buttons, a Telegram link code, a handoff item, the WhatsApp window, a Telegram payload
    await store.remember_buttons(conv, channel, [Button("Ja", "/affirm"), Button("Nee", "/deny")])
    link_code = await store.issue_link_code(cid)
    await w.handoffs.enqueue(conv, reason="complaint", language=c.language, customer_id=cid, customer_name=c.name,
                             summary=f"klacht over {first_order.order_number}", channel=channel)
    await WhatsAppWindow(w.redis, w.prefix).record(c.phone)
    payload = '/inform{"order_number": "%s", "details": "%s"}' % (first_order.order_number, "x" * 60)
    callback = await TelegramSender(None, w.redis, w.prefix).callback_data(payload)
    seen = await store.first_time(channel, "SM" + secrets.token_hex(16))
    # Rasa's trackers: the customer's conversation, and the provisional one that joined it
    await _save_tracker(w.prefix, conv, [f"waar blijft {first_order.order_number}"],
                        {"customer_id": str(cid), "customer_name": c.name.split()[0]}, f"Hoi {c.name.split()[0]}")
    await _save_tracker(w.prefix, provisional, [f"ik ben {number}"], {"customer_id": str(cid)}, "Welkom terug")
    # identification limits, counted as the actions count them (one-way refs of id and conversation)
    await limits.hit("codes", str(cid), Limit(3, 900))
    await limits.hit("conversation", provisional, Limit(5, 3600))
    # the inbound inbox: an answered message (text gone, sender and done marker kept for 2 days),
    # pending ones from her address, from a web chat session verified as hers (no binding, nothing
    # typed that names her) and from a stranger naming her order, and one kept in Redis
    box = Inbox(records.engine, w.redis, w.prefix)
    verified_session = uuid.uuid4().hex
    await store.web_verify(verified_session, cid, 3600)
    stranger_session = uuid.uuid4().hex
    inbox = {}
    for name, (ch, sender, text) in {
        "done": (channel, address, f"Waar blijft {first_order.order_number}?"),
        "pending": (channel, address, f"mijn klantnummer is {number}"),
        "verified": ("webchat", verified_session, "is mijn retour al binnen?"),
        "stranger": ("webchat", stranger_session, f"bestelling {first_order.order_number} is van mijn moeder"),
    }.items():
        message_id = secrets.token_hex(8)
        payload = {"text": text, "address": sender} if ch != "telegram" else \
            {"update": {"update_id": message_id, "message": {"from": {"id": int(sender), "first_name": c.name.split()[0]},
                                                             "text": text}}}
        assert await box.store(ch, message_id, sender, payload) is Stored.STORED
        async with records.session() as s:
            inbox[name] = (await s.execute(select(InboxMessage.id).where(InboxMessage.message_id == message_id))).scalar_one()
    await box._done(inbox["done"])
    down = create_engine("postgresql://postgres@127.0.0.1:1/nothing")  # the database away: Redis keeps it
    try:
        fallback = f"{channel}:{secrets.token_hex(8)}"
        assert await Inbox(down, w.redis, w.prefix).store(channel, fallback.split(":")[1], address,
                                                          {"text": "hallo, zijn jullie er?"}) is Stored.FALLBACK
    finally:
        await down.dispose()
    return {"id": cid, "customer": c, "conv": conv, "provisional": provisional, "session_id": session_id,
            "orders": orders, "link_code": link_code, "callback": callback, "seen": seen, "inbox": inbox,
            "verified_session": verified_session, "stranger_session": stranger_session, "fallback": fallback}


async def _anonymous(w: World) -> str:
    session_id = uuid.uuid4().hex
    conv = await w.store.key_for("webchat", session_id)
    await w.store.update(conv, last_channel="webchat", last_address=session_id, language="nl")
    await w.records.add_transcript(conv, None, "customer", "webchat", "hallo, wat zijn jullie openingstijden?")
    await _save_tracker(w.prefix, conv, ["openingstijden"], {}, "Wij zijn open van 9 tot 17.")
    assert await Inbox(w.records.engine, w.redis, w.prefix).store(
        "webchat", secrets.token_hex(8), session_id, {"text": "en op zondag?"}) is Stored.STORED
    return conv


def _identifiers(data: dict) -> list[str]:
    c = data["customer"]
    out = [c.customer_number, c.name, c.name.split()[0], c.email, c.phone, c.phone.lstrip("+"), c.postcode,
           c.postcode.replace(" ", ""), data["conv"], data["provisional"], data["session_id"], HOME,
           data["verified_session"]]
    if c.phone.startswith("+31"):
        out.append("0" + c.phone[3:])
    for value in (c.telegram_user_id, c.web_login_id):
        if value:
            out.append(value)
    for o in data["orders"]:
        out.append(o.order_number)
        if o.tracking_code:
            out.append(o.tracking_code)
    return out


async def _sql_hits(engine, needles: list[str]) -> list[tuple[str, str, str]]:
    """(table, column, needle) for every text column of every table holding a needle."""
    hits = []
    async with engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            for col in table.c:
                if not isinstance(col.type, (String, Text, JSON)):
                    continue
                expr = cast(col, String) if isinstance(col.type, JSON) else col
                for (value,) in await conn.execute(select(expr).where(col.isnot(None))):
                    text = str(value).lower()
                    hits += [(table.name, col.name, n) for n in needles if n.lower() in text]
    return hits


async def _redis_dump(redis: Redis, prefix: str) -> dict[str, object]:
    out = {}
    async for key in redis.scan_iter(match=f"{prefix}:*", count=1000):
        kind = await redis.type(key)
        if kind == "string":
            out[key] = await redis.get(key)
        elif kind == "hash":
            out[key] = await redis.hgetall(key)
        elif kind == "list":
            out[key] = await redis.lrange(key, 0, -1)
        elif kind == "set":
            out[key] = sorted(await redis.smembers(key))
        elif kind == "zset":
            out[key] = await redis.zrange(key, 0, -1)
        else:
            out[key] = kind
    return out


def _redis_hits(dump: dict, needles: list[str]) -> list[tuple[str, str]]:
    hits = []
    for key, value in dump.items():
        text = (key + " " + json.dumps(value, ensure_ascii=False)).lower()
        hits += [(key, n) for n in needles if n.lower() in text]
    return hits


@pytest.fixture
async def world(shop, redis, monkeypatch):
    monkeypatch.setenv("REDIS_URL", TEST_REDIS_URL)  # the actions' rate limits (actions/limits.py)
    monkeypatch.setenv("KEY_PREFIX", redis.prefix)
    limits._redis.cache_clear()
    w = World(Records(shop), redis)
    try:
        sanne = await _give_everything(w, "K10001", telegram=TELEGRAM_ID, web=WEB_LOGIN, address_text=HOME)
        emma = await _give_everything(w, "K10003", telegram=None, web=None, address_text="Baker Street 221")
        anonymous = await _anonymous(w)
    finally:
        if limits._redis() is not None:
            await limits._redis().close(close_connection_pool=True)
        limits._redis.cache_clear()
    yield w, sanne, emma, anonymous


async def _inbox_rows(engine) -> list[tuple[str, str]]:
    async with engine.connect() as conn:
        return [tuple(r) for r in await conn.execute(
            select(InboxMessage.address, InboxMessage.status).order_by(InboxMessage.id))]


# -- coverage: no table is forgotten ----------------------------------------------------------------

def test_every_table_has_a_personal_data_policy():
    assert personal.uncovered() == []
    personal.check_coverage()
    assert set(personal.POLICY) | set(personal.NOT_PERSONAL) == {t.name for t in Base.metadata.sorted_tables}


def test_a_new_table_with_customer_id_makes_export_and_erase_refuse():
    table = Table("loyalty_notes", Base.metadata, Column("id", Integer, primary_key=True),
                  Column("customer_id", Integer, ForeignKey("customers.id")), Column("note", String(200)))
    child = Table("loyalty_note_tags", Base.metadata, Column("id", Integer, primary_key=True),
                  Column("note_id", Integer, ForeignKey("loyalty_notes.id")), Column("tag", String(20)))
    try:
        assert personal.uncovered() == ["loyalty_note_tags", "loyalty_notes"]
        with pytest.raises(personal.CoverageError, match="loyalty_note_tags, loyalty_notes"):
            personal.check_coverage()
    finally:
        Base.metadata.remove(child)
        Base.metadata.remove(table)
    assert personal.uncovered() == []


# -- export -------------------------------------------------------------------------------------------

async def test_export_holds_every_kind_of_data_with_exact_counts(world, shop):
    w, sanne, emma, anonymous = world
    bundle = await personal.export_customer(shop, "K10001", w.redis, w.prefix)
    json.dumps(bundle)  # one JSON bundle
    assert bundle["format"] == "klantcontact-export/1"
    assert bundle["customer"]["customer_number"] == "K10001" and bundle["customer"]["name"] == "Sanne de Vries"
    assert bundle["customer"]["telegram_user_id"] == TELEGRAM_ID and bundle["customer"]["web_login_id"] == WEB_LOGIN
    counts = {name: len(rows) for name, rows in bundle["tables"].items()}
    assert counts == {
        "contact_identities": 5,  # sms, whatsapp, email (demo) + telegram + web login
        "orders": 10, "order_lines": 18, "invoices": 10, "payments": 10, "loyalty_accounts": 1,
        "tickets": 1, "decisions": 1, "audit_log": 2, "contact_history": 2, "one_time_codes": 1, "outbox": 1,
        "churn_scores": 1, "transcript": 4, "promises": 1, "surveys": 0, "feedback": 1, "inbox": 4, "proactive_messages": 1,
    }
    assert "code_hash" not in bundle["tables"]["one_time_codes"][0]
    inbox = {r["id"]: r for r in bundle["tables"]["inbox"]}
    assert sorted(inbox) == sorted(sanne["inbox"].values())
    assert inbox[sanne["inbox"]["done"]]["payload"] == {} and inbox[sanne["inbox"]["done"]]["status"] == "done"
    assert inbox[sanne["inbox"]["pending"]]["payload"]["text"] == "mijn klantnummer is K10001"
    assert inbox[sanne["inbox"]["verified"]]["address"] == sanne["verified_session"]
    assert inbox[sanne["inbox"]["stranger"]]["payload"]["text"].startswith(f"bestelling {sanne['orders'][0].order_number}")
    assert {e["channel"] for e in bundle["tables"]["transcript"]} == {"whatsapp", "webchat"}
    assert bundle["tables"]["transcript"][0]["text"] == "ik ben K10001"  # typed before she was known
    assert bundle["tables"]["outbox"][0]["body"].startswith("Je code is ")
    assert sorted(bundle["conversations"]) == sorted([sanne["conv"], sanne["provisional"]])
    p, conv, prov = w.prefix, sanne["conv"], sanne["provisional"]
    c = sanne["customer"]
    assert bundle["redis"]["available"] is True
    assert set(bundle["redis"]["keys"]) == {
        f"{p}:identity:whatsapp:{c.phone}", f"{p}:identity:webchat:{sanne['session_id']}",
        f"{p}:identity:telegram:{TELEGRAM_ID}", f"{p}:customer:{c.id}", f"{p}:conv:{conv}", f"{p}:conv:{prov}",
        f"{p}:buttons:{conv}:whatsapp", f"{p}:link-code:{sanne['link_code']}", f"{p}:handoff:{conv}",
        f"{p}:wa_inbound:{c.phone}", f"{p}:tgcb:{sanne['callback'][2:]}",
        f"{p}:webverified:{sanne['verified_session']}", f"{p}:idlimit:codes:{client_ref(str(c.id))}",
        f"{p}:idlimit:conversation:{client_ref(prov)}",
    }
    assert bundle["redis"]["keys"][f"{p}:conv:{conv}"]["value"]["customer_id"] == str(c.id)
    members = sorted(bundle["redis"]["members"], key=lambda m: m["key"])
    assert [(m["key"], m["type"], m["member"]) for m in members] == [
        (f"{p}:handoff:waiting", "zset", conv), (f"{p}:inbox:fallback", "hash", sanne["fallback"])]
    assert members[1]["value"]["address"] == c.phone
    assert members[1]["value"]["payload"] == {"text": "hallo, zijn jullie er?"}
    trackers = bundle["redis"]["trackers"]
    assert set(trackers) == {conv, prov}
    texts = [e.get("text") for e in trackers[prov]["events"] if e.get("event") == "user"]
    assert texts == ["ik ben K10001"]
    # nothing of Emma's or of the anonymous visitor in Sanne's export
    flat = json.dumps(bundle, ensure_ascii=False)
    for needle in ("K10003", "Emma", emma["conv"], anonymous, "Baker Street"):
        assert needle not in flat


async def test_export_command_writes_a_private_file_and_says_when_redis_is_missing(world, shop, database_url,
                                                                                  tmp_path):
    w, sanne, _, _ = world
    out = tmp_path / "k10001.json"
    env = {**os.environ, "DATABASE_URL": database_url, "REDIS_URL": TEST_REDIS_URL, "KEY_PREFIX": w.prefix,
           "PYTHONPATH": str(PROJECT_ROOT)}
    proc = await _cli(env, "export", "K10001", "--out", str(out))
    assert proc[0] == 0, proc
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    bundle = json.loads(out.read_text(encoding="utf-8"))
    assert bundle["customer"]["customer_number"] == "K10001" and len(bundle["redis"]["trackers"]) == 2
    env.pop("REDIS_URL")
    code, stdout, stderr = await _cli(env, "export", "K10001")
    assert code == 3
    assert json.loads(stdout)["redis"] == {"available": False, "error": "REDIS_URL is not set (use the "
                                           "gateway's, e.g. redis://127.0.0.1:6399/0 for make run)"}
    assert "the Redis part (conversation state, Rasa tracker) is NOT in this export" in stderr


async def _cli(env: dict, *args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot.records", *args, cwd=PROJECT_ROOT, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    return proc.returncode, out.decode(), err.decode()


# -- erase -------------------------------------------------------------------------------------------

async def _counts(engine) -> dict[str, int]:
    from sqlalchemy import func

    async with engine.connect() as conn:
        return {t.name: (await conn.execute(select(func.count()).select_from(t))).scalar_one()
                for t in Base.metadata.sorted_tables}


async def test_erase_leaves_no_identifier_anywhere_and_keeps_the_rest(world, shop):
    w, sanne, emma, anonymous = world
    needles = _identifiers(sanne)
    assert len(await _sql_hits(shop, needles)) > 20 and len(_redis_hits(await _redis_dump(w.redis, w.prefix), needles)) > 10
    emma_before = await personal.export_customer(shop, "K10003", w.redis, w.prefix)
    redis_before = await _redis_dump(w.redis, w.prefix)
    totals_before = await _counts(shop)
    seen_key = next(k for k in redis_before if k.startswith(f"{w.prefix}:seen:whatsapp:"))

    result = await personal.erase_customer(shop, "K10001", w.redis, w.prefix, actor_role="admin", actor="cli:test")

    assert result.complete and result.residual_sql == 0 and result.residual_redis == 0
    assert result.sql == {"transcript": 4, "promises": 1, "surveys": 0, "feedback": 1, "one_time_codes": 1, "outbox": 1,
                          "churn_scores": 1, "contact_history": 2, "tickets": 1, "decisions": 1, "loyalty_accounts": 1,
                          "order_lines": 18, "orders": 10, "contact_identities": 5, "customers": 1, "inbox": 4,
                          "proactive_messages": 1}
    assert result.kept == {"invoices": 10, "payments": 10, "audit_log": 2}
    assert result.redis["identity"] == 3 and result.redis["conv"] == 2 and result.redis["tracker"] == 2
    assert result.redis["webverified"] == 1 and result.redis["idlimit"] == 2 and result.redis["inbox_done"] == 1
    assert result.redis["members_removed"] == 2  # handoff:waiting, inbox:fallback
    # every text column of every table, every Redis key and value: nothing of hers
    assert await _sql_hits(shop, needles) == []
    redis_after = await _redis_dump(w.redis, w.prefix)
    assert _redis_hits(redis_after, needles) == []
    # the de-duplication key holds only Twilio's message id: kept
    assert redis_after[seen_key] == "1"
    # Emma and the anonymous visitor: exactly as before
    emma_after = await personal.export_customer(shop, "K10003", w.redis, w.prefix)
    assert {n: len(r) for n, r in emma_after["tables"].items()} == {n: len(r) for n, r in emma_before["tables"].items()}
    assert emma_after["tables"] == emma_before["tables"] and emma_after["redis"]["keys"] == emma_before["redis"]["keys"]
    assert emma_after["redis"]["trackers"] == emma_before["redis"]["trackers"]
    gone = {k for k in redis_before if k not in redis_after}
    assert all(k not in gone for k in emma_before["redis"]["keys"])
    assert redis_after[f"{w.prefix}:conv:{anonymous}"] == redis_before[f"{w.prefix}:conv:{anonymous}"]
    assert redis_after[f"{w.prefix}:tracker:{anonymous}"] == redis_before[f"{w.prefix}:tracker:{anonymous}"]
    assert redis_after[f"{w.prefix}:handoff:waiting"] == [emma["conv"]]
    # the inbox: her messages gone (the pending ones too), Emma's and the visitor's untouched
    emma_tg, anon_session = emma["customer"].telegram_user_id, redis_before[f"{w.prefix}:conv:{anonymous}"]["last_address"]
    assert await _inbox_rows(shop) == [(emma_tg, "done"), (emma_tg, "pending"), (emma["verified_session"], "pending"),
                                       (emma["stranger_session"], "pending"), (anon_session, "pending")]
    assert {r["id"] for r in emma_after["tables"]["inbox"]} == set(emma["inbox"].values())
    fallback = f"{w.prefix}:inbox:fallback"
    assert redis_after[fallback] == {emma["fallback"]: redis_before[fallback][emma["fallback"]]}
    assert f"{w.prefix}:inbox:done:{sanne['inbox']['done']}" not in redis_after
    assert redis_after[f"{w.prefix}:inbox:done:{emma['inbox']['done']}"] == "1"
    assert f"{w.prefix}:webverified:{sanne['verified_session']}" not in redis_after
    assert redis_after[f"{w.prefix}:webverified:{emma['verified_session']}"] == str(emma["id"])
    assert sorted(k for k in redis_after if ":idlimit:" in k) == sorted(
        f"{w.prefix}:idlimit:{kind}:{client_ref(ref)}" for kind, ref in
        (("codes", str(emma["id"])), ("conversation", emma["provisional"])))
    async with w.records.session() as s:
        anon_rows = list((await s.execute(select(TranscriptEntry).where(TranscriptEntry.conversation == anonymous))).scalars())
    assert [r.text for r in anon_rows] == ["hallo, wat zijn jullie openingstijden?"]
    totals_after = await _counts(shop)
    expected = dict(totals_before)
    for table, n in result.sql.items():
        expected[table] -= n
    expected["customers"] += 1  # the tombstone
    expected["audit_log"] += 2  # erase, erase_redis
    assert totals_after == expected
    # the invoices are kept, anonymised, under a tombstone customer
    async with w.records.session() as s:
        tomb = (await s.execute(select(Customer).where(Customer.customer_number == result.tombstone))).scalars().one()
        invoices = list((await s.execute(select(Invoice).where(Invoice.customer_id == tomb.id))).scalars())
        payments = list((await s.execute(select(Payment).where(Payment.invoice_id.in_([i.id for i in invoices])))).scalars())
        audit = list((await s.execute(select(AuditEntry).order_by(AuditEntry.id))).scalars())
    assert result.tombstone == "ERASED-" + result.erase_id[:12]
    assert (tomb.name, tomb.email, tomb.phone, tomb.postcode, tomb.telegram_user_id, tomb.web_login_id) == \
        ("[erased]", None, None, None, None, None)
    assert len(invoices) == 10 and all(i.order_id is None for i in invoices) and len(payments) == 10
    assert sorted(i.amount_cents for i in invoices) == sorted(
        i["amount_cents"] for i in (await _export_invoices(sanne)))
    # the audit log: her two evaluations kept without her, and the erase, without personal data
    erase_entries = [a for a in audit if a.decision in ("erase", "erase_redis")]
    assert [a.decision for a in erase_entries] == ["erase", "erase_redis"]
    assert all(a.customer_id is None and a.actor == "cli:test" for a in erase_entries)
    assert erase_entries[0].request["erase_id"] == result.erase_id
    assert erase_entries[0].request["customer_ref"] == sanne["id"]
    assert erase_entries[0].request["deleted"]["transcript"] == 4
    assert erase_entries[0].request["kept"] == {"invoices": 10, "payments": 10, "audit_log": 2}
    assert erase_entries[1].request["redis"]["tracker"] == 2
    kept = [a for a in audit if a.decision in ("refund", "goodwill_voucher") and a.customer_id is None]
    assert len(kept) == 2
    # gone from the bot's point of view too
    assert await w.records.by_customer_number("K10001") is None
    assert await w.records.by_identity("whatsapp", sanne["customer"].phone) is None
    assert await w.store.identity("whatsapp", sanne["customer"].phone) is None
    assert await w.store.customer_conversation(sanne["id"]) is None
    assert await w.handoffs.get(sanne["conv"]) is None
    with pytest.raises(personal.NoSuchCustomer):
        await personal.erase_customer(shop, "K10001", w.redis, w.prefix)


async def _export_invoices(data: dict) -> list[dict]:
    return [{"amount_cents": o.total_cents} for o in data["orders"]]


async def test_erase_catches_state_written_back_by_a_turn_in_flight(world, shop):
    """Safe while the gateway runs: a message that arrives during the erase (found the binding
    gone, so a new conversation) and a Rasa turn that saves the tracker after the first pass."""
    w, sanne, _, _ = world
    c = sanne["customer"]
    real_erase_sql = personal._erase_sql

    async def meanwhile(*args, **kwargs):
        # between the Redis pass and the SQL part: the gateway answers a WhatsApp message
        conv = await w.store.key_for("whatsapp", c.phone)
        await w.store.update(conv, customer_id=str(c.id), last_address=c.phone)
        await w.records.add_transcript(conv, None, "customer", "whatsapp", "nog een vraag over 104233")
        await _save_tracker(w.prefix, sanne["conv"], ["104233?"], {"customer_id": str(c.id)}, "Moment")
        sanne["late"] = conv
        done = await real_erase_sql(*args, **kwargs)
        # after the SQL part: the turn in flight logs its answer and Rasa saves the tracker
        await w.records.add_transcript(sanne["conv"], None, "bot", "whatsapp", "Bestelling 104233 komt morgen.")
        await _save_tracker(w.prefix, sanne["conv"], ["104233?"], {"customer_id": str(c.id)}, "Morgen")
        # and her next WhatsApp message is stored in the inbox
        assert await Inbox(shop, w.redis, w.prefix).store("whatsapp", "SMlate", c.phone,
                                                          {"text": "en nog iets"}) is Stored.STORED
        return done

    personal._erase_sql = meanwhile
    try:
        result = await personal.erase_customer(shop, "K10001", w.redis, w.prefix)
    finally:
        personal._erase_sql = real_erase_sql
    assert result.complete and result.residual_sql == 0 and result.residual_redis == 0
    assert result.redis["conversations"] == 3
    assert result.sql["inbox"] == 5  # the 4 she had and the one that came in during the erase
    needles = _identifiers(sanne) + [sanne["late"]]
    assert await _sql_hits(shop, needles) == []
    assert _redis_hits(await _redis_dump(w.redis, w.prefix), needles) == []


async def test_erase_command_without_redis_does_sql_then_redis_only_finishes(world, shop, database_url):
    w, sanne, emma, _ = world
    env = {**os.environ, "DATABASE_URL": database_url, "KEY_PREFIX": w.prefix, "PYTHONPATH": str(PROJECT_ROOT)}
    env.pop("REDIS_URL", None)
    code, stdout, stderr = await _cli(env, "erase", "K10001", "--yes")
    assert code == 3, (stdout, stderr)
    assert "SQL part done, Redis part NOT done: REDIS_URL is not set" in stderr
    assert f"python -m bot.records erase --redis-only --customer-ref {sanne['id']}" in stderr
    assert "anonymised invoices            10" in stdout
    assert await w.records.by_customer_number("K10001") is None
    assert await w.store.customer_conversation(sanne["id"]) == sanne["conv"]  # Redis untouched so far
    # a customer ref that belongs to a live customer is refused
    env["REDIS_URL"] = TEST_REDIS_URL
    code, _, stderr = await _cli(env, "erase", "--redis-only", "--customer-ref", str(emma["id"]))
    assert code == 2 and "belongs to an existing customer" in stderr
    code, stdout, stderr = await _cli(env, "erase", "--redis-only", "--customer-ref", str(sanne["id"]))
    assert code == 0, (stdout, stderr)
    # without the records, Redis alone cannot tell which order numbers were hers: a Telegram
    # button payload (no conversation in its name) is left to expire (7 days, documented)
    left = _redis_hits(await _redis_dump(w.redis, w.prefix), _identifiers(sanne))
    assert left == [(f"{w.prefix}:tgcb:{sanne['callback'][2:]}", sanne["orders"][0].order_number)]
    assert 0 < await w.redis.ttl(left[0][0]) <= 7 * 24 * 3600
    assert await _sql_hits(shop, _identifiers(sanne)) == []
    assert await w.store.customer_conversation(emma["id"]) == emma["conv"]


async def test_erase_command_refuses_without_yes_when_not_a_terminal(shop, database_url):
    env = {**os.environ, "DATABASE_URL": database_url, "PYTHONPATH": str(PROJECT_ROOT)}
    code, _, stderr = await _cli(env, "erase", "K10001")
    assert code == 2 and "refusing to erase without --yes" in stderr
    assert await Records(shop).by_customer_number("K10001") is not None


# -- retention ----------------------------------------------------------------------------------------

NOW = datetime(2030, 1, 15, 3, 30, tzinfo=timezone.utc)


async def test_retention_deletes_exactly_the_old_rows_at_an_injected_clock(shop, redis):
    records, store, p = Records(shop), ConversationStore(redis, redis.prefix), redis.prefix
    sanne = await records.by_customer_number("K10001")

    async def row(conv: str, customer_id, days: float, text: str) -> None:
        async with records.session() as s, s.begin():
            s.add(TranscriptEntry(conversation=conv, customer_id=customer_id, sender="customer", channel="webchat",
                                  text=text, data={}, created_at=NOW - timedelta(days=days)))

    async def conversation(days: float, customer_id=None) -> str:
        conv = await store.key_for("webchat", uuid.uuid4().hex)
        await store.update(conv, created=f"{(NOW - timedelta(days=days)).timestamp():.3f}")
        if customer_id:
            await store.update(conv, customer_id=str(customer_id))
        return conv

    customer_conv = await conversation(500, sanne.id)
    await store.claim_customer(sanne.id, customer_conv)
    await row(customer_conv, sanne.id, 366, "old")
    await row(customer_conv, sanne.id, 364, "recent")
    old_anonymous = await conversation(31)
    await row(old_anonymous, None, 31, "anonymous old")
    await _save_tracker(p, old_anonymous, ["hallo"], {}, "Hoi")
    await store.remember_buttons(old_anonymous, "webchat", [Button("Ja", "/affirm")])
    active_anonymous = await conversation(31)   # started long ago, wrote 2 days ago
    await row(active_anonymous, None, 2, "anonymous active")
    young_anonymous = await conversation(29)
    shell = await conversation(40)              # the provisional one that joined Sanne's: no customer_id
    await row(shell, None, 40, "shell")

    # the customer's Rasa tracker: a session 400 days ago, one 100 days ago, the current one
    from rasa.shared.core.events import ActionExecuted, BotUttered, SessionStarted, SlotSet, UserUttered
    from rasa.shared.core.trackers import DialogueStateTracker

    def session(days: float, text: str) -> list:
        at = (NOW - timedelta(days=days)).timestamp()
        return [ActionExecuted("action_session_start", timestamp=at), SessionStarted(timestamp=at),
                SlotSet("customer_id", str(sanne.id), timestamp=at), ActionExecuted("action_listen", timestamp=at),
                UserUttered(text, {"name": "inform"}, timestamp=at + 1), BotUttered("ok", timestamp=at + 2)]

    tracker = DialogueStateTracker.from_events(customer_conv, session(400, "oud") + session(100, "recent")
                                               + session(1, "nu"))
    await _tracker_store(p).save(tracker)
    await redis.expire(f"{p}:tracker:{customer_conv}", 2_592_000)  # endpoints.yml record_exp

    config = RetentionConfig(transcript_days=365, provisional_days=30)
    result = await purge(shop, redis, p, config, now=NOW)

    assert result == {"transcript": 1, "provisional": {"conversations": 2, "keys": 6, "transcript": 2, "promises": 0},
                      "trackers": {"trackers": 1, "events": 6}}  # 2 bindings, 2 hashes, tracker, buttons
    kept = await _tracker_store(p).retrieve_full_tracker(customer_conv)
    assert [e.text for e in kept.events if isinstance(e, UserUttered)] == ["recent", "nu"]
    latest = await _tracker_store(p).retrieve(customer_conv)
    assert [e.text for e in latest.events if isinstance(e, UserUttered)] == ["nu"]
    assert 2_000_000 < await redis.ttl(f"{p}:tracker:{customer_conv}") <= 2_592_000  # Rasa's record_exp kept
    async with records.session() as s:
        texts = sorted(r.text for r in (await s.execute(select(TranscriptEntry))).scalars())
    assert texts == ["anonymous active", "recent"]
    keys = await _redis_dump(redis, p)
    for conv in (old_anonymous, shell):
        assert not [k for k in keys if conv in k or keys[k] == conv]
    for conv in (customer_conv, active_anonymous, young_anonymous):
        assert f"{p}:conv:{conv}" in keys
    # a day later nothing more is old enough
    again = await purge(shop, redis, p, config, now=NOW + timedelta(hours=1))
    assert again == {"transcript": 0, "provisional": {"conversations": 0, "keys": 0, "transcript": 0, "promises": 0},
                     "trackers": {"trackers": 0, "events": 0}}


async def test_retention_job_runs_once_across_processes_and_is_scheduled_daily(shop, redis):
    config = RetentionConfig(transcript_days=365, provisional_days=30, run_at="03:30")
    first = RetentionJob(shop, redis, redis.prefix, config, clock=lambda: NOW)
    second = RetentionJob(shop, redis, redis.prefix, config, clock=lambda: NOW)
    assert await first.run() == {"transcript": 0, "provisional": {"conversations": 0, "keys": 0, "transcript": 0,
                                                                  "promises": 0}, "trackers": {"trackers": 0, "events": 0}}
    assert await second.run() is None  # the other gateway process already runs it
    first.start()
    try:
        job = first.scheduler.get_job("retention")
        run = job.next_run_time
        assert (run.hour, run.minute, str(run.tzinfo)) == (3, 30, "Europe/Amsterdam")
        assert run - datetime.now(timezone.utc) <= timedelta(days=1)
    finally:
        first.stop()


def test_retention_config_from_the_environment(monkeypatch):
    monkeypatch.setenv("TRANSCRIPT_RETENTION_DAYS", "90")
    monkeypatch.setenv("PROVISIONAL_RETENTION_DAYS", "7")
    monkeypatch.setenv("RETENTION_RUN_AT", "04:15")
    assert RetentionConfig.from_env() == RetentionConfig(90, 7, "04:15")
    monkeypatch.setenv("TRANSCRIPT_RETENTION_DAYS", "a year")
    with pytest.raises(SystemExit, match="TRANSCRIPT_RETENTION_DAYS must be a whole number of days"):
        RetentionConfig.from_env()
    monkeypatch.delenv("TRANSCRIPT_RETENTION_DAYS")
    monkeypatch.delenv("PROVISIONAL_RETENTION_DAYS")
    monkeypatch.delenv("RETENTION_RUN_AT")
    assert RetentionConfig.from_env() == RetentionConfig(365, 30, "03:30")


async def test_purge_command(shop, database_url, redis):
    records = Records(shop)
    async with records.session() as s, s.begin():
        s.add(TranscriptEntry(conversation="cold", customer_id=None, sender="customer", channel="webchat",
                              text="x", data={}, created_at=datetime.now(timezone.utc) - timedelta(days=400)))
    env = {**os.environ, "DATABASE_URL": database_url, "REDIS_URL": TEST_REDIS_URL, "KEY_PREFIX": redis.prefix,
           "PYTHONPATH": str(PROJECT_ROOT)}
    env.pop("TRANSCRIPT_RETENTION_DAYS", None)
    code, stdout, stderr = await _cli(env, "purge")
    assert code == 0, stderr
    assert "transcript rows older than 365 days deleted: 1" in stdout
    assert "anonymous conversations idle over 30 days deleted: 0" in stdout
