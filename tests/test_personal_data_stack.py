"""Erase after real conversations: the whole running stack (gateway, Rasa with the trained
model, action server, Redis db 13 under the stack's prefix, the stack's SQLite demo shop).

Iris van den Berg (K10029, web login web-iris; no other test uses her) writes on WhatsApp, logs
in to the web chat through a signed login, and a visitor types her customer number in another
web chat. Whatever the gateway, Rasa (tracker, lock store) and the actions wrote, after
`python -m bot.records erase K10029` (with the gateway still running) no table and no Redis key
under the prefix holds any of her identifiers, and the bot still answers the next visitor.
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
from pathlib import Path

from redis.asyncio import Redis
from sqlalchemy import String, cast, select
from sqlalchemy.sql.sqltypes import JSON, Text

from bot.shared.db import create_engine
from bot.policy.identity import sign_web_login
from bot.records.models import Base
from bot.records.repository import Records
from tests.support.chat import texts
from tests.support.desk_helpers import WhatsAppCustomer

PROJECT_ROOT = Path(__file__).resolve().parent.parent
NUMBER, PHONE, LOGIN = "K10029", "+31612345629", "web-iris"


def _pattern(needles: list[str]) -> re.Pattern:
    # not inside a longer word or number: order 134802 is not in the Unix time 1764134802.5
    return re.compile("(?<![0-9A-Za-z])(?:" + "|".join(re.escape(n) for n in needles) + ")(?![0-9A-Za-z])",
                      re.IGNORECASE)


async def _everything(stack) -> tuple[list[str], list[str]]:
    """(table.column: text, key: value) of the whole database and Redis under the prefix."""
    rows = []
    engine = create_engine(stack.database_url)
    try:
        async with engine.connect() as conn:
            for table in Base.metadata.sorted_tables:
                for col in table.c:
                    if isinstance(col.type, (String, Text, JSON)):
                        expr = cast(col, String) if isinstance(col.type, JSON) else col
                        rows += [f"{table.name}.{col.name}: {v}" for (v,) in
                                 await conn.execute(select(expr).where(col.isnot(None)))]
    finally:
        await engine.dispose()
    keys = []
    redis = Redis.from_url(stack.redis_url, decode_responses=True)
    try:
        async for key in redis.scan_iter(match=f"{stack.key_prefix}:*", count=1000):
            kind = await redis.type(key)
            value = {"string": redis.get, "hash": redis.hgetall, "list": lambda k: redis.lrange(k, 0, -1),
                     "set": redis.smembers, "zset": lambda k: redis.zrange(k, 0, -1)}.get(kind)
            keys.append(f"{key}: {json.dumps(sorted(v) if isinstance(v := await value(key), set) else v, ensure_ascii=False) if value else kind}")
    finally:
        await redis.close(close_connection_pool=True)
    return rows, keys


async def test_erase_after_real_conversations_leaves_nothing(stack, chat, fake_twilio):
    records = Records(create_engine(stack.database_url))
    iris = await records.by_customer_number(NUMBER)
    orders = await records.recent_orders(iris.id, limit=100)
    # WhatsApp: the number is in the records, so this is her conversation
    whatsapp = WhatsAppCustomer(stack, fake_twilio, PHONE)
    await whatsapp.say("Hallo, hoeveel spaarpunten heb ik?")
    # web chat with the site's signed login, and a visitor claiming to be her
    secret = stack.env()["WEBCHAT_IDENTITY_SECRET"]
    web = await chat(custom={"user_id": LOGIN, "user_hash": sign_web_login(secret, LOGIN)})
    assert "Iris" in texts(await web.say("hallo"))
    stranger = await chat()
    assert texts(await stranger.say(f"mijn klantnummer is {NUMBER}"))
    conv = await Redis.from_url(stack.redis_url, decode_responses=True).get(f"{stack.key_prefix}:customer:{iris.id}")
    assert conv
    needles = [NUMBER, iris.name, iris.name.split()[0], iris.email, PHONE, PHONE.lstrip("+"), "0" + PHONE[3:],
               iris.postcode, iris.postcode.replace(" ", ""), LOGIN, conv, web.session_id, stranger.session_id]
    needles += [o.order_number for o in orders] + [o.tracking_code for o in orders if o.tracking_code]
    found = _pattern(needles)
    rows, keys = await _everything(stack)
    assert any(found.search(r) for r in rows) and [k for k in keys if f":tracker:{conv}" in k and found.search(k)]

    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot.records", "erase", NUMBER, "--yes", cwd=PROJECT_ROOT, env=stack.env(),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode == 0, (out.decode(), err.decode())
    assert "left: 0 database rows, 0 Redis keys still hold one of the identifiers" in out.decode()

    rows, keys = await _everything(stack)
    assert [r for r in rows if found.search(r)] == []
    assert [k for k in keys if found.search(k)] == []
    assert await records.by_customer_number(NUMBER) is None
    # the gateway keeps serving: her next WhatsApp message is a stranger's first message now
    before = whatsapp.mark()
    await whatsapp.send("hallo")
    assert await whatsapp.wait_for(after=before)
    await records.engine.dispose()
