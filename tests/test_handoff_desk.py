"""The issue's "done when", end to end through the running stack: a customer on WhatsApp asks for
a €200 refund; the bot says a senior agent decides and how long it will take; a senior agent
claims it in the desk, answers on WhatsApp and approves it; everything is recorded; the
conversation goes back to the bot. The gateway's clock stands at 10:00 on a Monday
(`gateway_clock`), so the wait is one exact text."""

from __future__ import annotations

import asyncio
import re
import sqlite3
from datetime import datetime, timezone

from tests.support.clock import business_monday, local
from tests.support.fake_twilio import inbound_params
from tests.support.channels import sid, twilio_post, whatsapp
from tests.support.desk_api import PASSWORD, Browser, create_agent, online

ANOUK = "+31612345609"  # K10009 Anouk Meijer, WhatsApp; order 180213 (€329.00), nothing refunded
MONDAY = business_monday()  # 10:00
# the senior agent is online and free: the minimum wait, 2 minutes, rounded up to 5
NEXT_IN_LINE = ("Je bent als eerste aan de beurt: een collega reageert binnen ongeveer 5 minuten "
                "(uiterlijk vandaag voor 10:05).")


def db(stack) -> sqlite3.Connection:
    return sqlite3.connect(stack.database_url.removeprefix("sqlite:///"))


def code_for(fake_twilio, phone: str) -> str:
    """The one-time code the shop sent to the customer's phone (WhatsApp or SMS)."""
    body = [m["Body"] for m in fake_twilio.messages
            if m["To"] in (phone, f"whatsapp:{phone}") and "De Webwinkel is" in (m["Body"] or "")][-1]
    return re.search(r"\b(\d{4})\b", body).group(1)


async def test_whatsapp_refund_of_200_decided_by_a_senior_agent_in_the_desk(stack, fake_twilio, people, gateway_clock):
    await gateway_clock.at(MONDAY)
    base = f"http://127.0.0.1:{stack.gateway_port}"
    senior = Browser(base)
    stream = None
    try:
        senior.username = create_agent(stack, "senior_agent")
        assert (await senior.login(senior.username, PASSWORD)).status == 303
        stream = await online(senior)

        sent_before = len(fake_twilio.messages)
        await whatsapp(stack, fake_twilio, ANOUK, "ik wil geld terug voor bestelling 180213")
        for _ in range(100):  # straight to the amount, or (not confirmed lately) a one-time code first
            asked = "\n".join(m["Body"] or "" for m in fake_twilio.messages[sent_before:])
            if "Welk bedrag" in asked or ("code van 4 cijfers" in asked and "De Webwinkel is" in asked):
                break
            await asyncio.sleep(0.2)
        if "Welk bedrag" not in asked:
            asked = await whatsapp(stack, fake_twilio, ANOUK, code_for(fake_twilio, ANOUK), count=2)
        assert "Welk bedrag" in asked and "€329,00" in asked
        told = await whatsapp(stack, fake_twilio, ANOUK, "200", count=2)
        # the bot says who decides, that nothing needs repeating, and how long it takes
        assert "senior medewerker" in told and "niets te herhalen" in told
        assert [m["Body"] for m in fake_twilio.messages if m["To"] == f"whatsapp:{ANOUK}"][-1] == NEXT_IN_LINE

        status, queue = await senior.get("/desk/api/queue")
        assert status == 200
        [item] = [i for i in queue["waiting"] if (i.get("request") or {}).get("order_number") == "180213"]
        conv = item["conversation"]
        assert (item["role"], item["queue"], item["reason"], item["can_claim"]) == ("senior_agent", "finance", "mandate", True)
        assert item["request"] == {"decision": "refund", "amount_cents": 20000, "order_number": "180213"}
        with db(stack) as conn:
            [(promised, deadline)] = conn.execute(
                "select text, deadline from promises where conversation = ? and status = 'open' and kind = 'handoff_wait'",
                (conv,)).fetchall()
            # the escalated request is a promise of its own, with its ticket (bot/promises)
            [(ticket_kind,)] = conn.execute("select kind from promises where conversation = ? and ticket_id is not null",
                                            (conv,)).fetchall()
        assert ticket_kind == "waiting_request"
        five_past = local(MONDAY.date(), 10, 5)
        assert (promised, datetime.fromisoformat(deadline).replace(tzinfo=timezone.utc)) == (NEXT_IN_LINE, five_past)
        # agents see the promise in the queue
        assert datetime.fromisoformat(item["promised_by"]) == five_past

        sent_to_anouk = lambda: len([m for m in fake_twilio.messages if m["To"] == f"whatsapp:{ANOUK}"])  # noqa: E731
        before = sent_to_anouk()
        status, claimed = await senior.act(conv, "claim")
        assert (status, claimed["claimed_by"], claimed["state"]) == (200, senior.username, "with_agent")
        joined = await fake_twilio.wait_for(f"whatsapp:{ANOUK}", count=before + 1, timeout=10)
        assert "Je praat nu met Anna" in joined[-1]["Body"]

        before = sent_to_anouk()
        status, sent = await senior.act(conv, "reply", {"text": "Hoi Anouk, ik kijk er nu naar."})
        assert (status, sent["channel"]) == (200, "whatsapp")
        got = await fake_twilio.wait_for(f"whatsapp:{ANOUK}", count=before + 1, timeout=10)
        assert got[-1]["Body"] == "Hoi Anouk, ik kijk er nu naar."

        # the customer's answer goes to the agent, not to the bot
        status, _ = await twilio_post(stack, inbound_params(f"whatsapp:{ANOUK}", "top, dank je",
                                                            to=f"whatsapp:{stack.env()['TWILIO_WHATSAPP_NUMBER']}", sid=sid()))
        assert status == 200
        for _ in range(50):
            _, view = await senior.get(f"/desk/api/conversations/{conv}")
            if view["transcript"][-1]["text"] == "top, dank je":
                break
            await asyncio.sleep(0.2)
        assert view["transcript"][-1]["text"] == "top, dank je"
        # a photo while with the agent: kept for the agent, no "text only" answer from the bot
        status, _ = await twilio_post(stack, inbound_params(
            f"whatsapp:{ANOUK}", "", to=f"whatsapp:{stack.env()['TWILIO_WHATSAPP_NUMBER']}", sid=sid(),
            media=["https://example.invalid/bon.jpg"]))
        assert status == 200
        for _ in range(50):
            _, view = await senior.get(f"/desk/api/conversations/{conv}")
            if view["transcript"][-1].get("media"):
                break
            await asyncio.sleep(0.2)
        assert view["transcript"][-1]["media"] == ["https://example.invalid/bon.jpg"]
        assert {e["channel"] for e in view["transcript"]} >= {"whatsapp"}
        assert sent_to_anouk() == before + 1  # no answer from the bot

        # the senior agent approves the €200 refund: within a senior agent's mandate (€1000)
        status, decided = await senior.act(conv, "decide", {"decision": "refund", "amount": "200",
                                                             "order_number": "180213"})
        assert status == 200 and decided["allowed"] is True
        outcome = await fake_twilio.wait_for(f"whatsapp:{ANOUK}", count=before + 2, timeout=10)
        assert "€200,00" in outcome[-1]["Body"] and "180213" in outcome[-1]["Body"]
        with db(stack) as conn:
            decision = conn.execute("select kind, amount_cents, role, actor from decisions where id = ?",
                                    (decided["decision_id"],)).fetchone()
            audit = conn.execute("select actor_role, allowed from audit_log where decision = 'refund' "
                                 "order by id desc limit 1").fetchone()
            promise_status = conn.execute("select status from promises where conversation = ? and kind = 'handoff_wait' "
                                          "order by id desc limit 1",
                                          (conv,)).fetchone()[0]
            agent_lines = conn.execute("select count(*) from transcript where conversation = ? and sender = 'agent'",
                                       (conv,)).fetchone()[0]
        assert decision == ("refund", 20000, "senior_agent", senior.username)
        assert audit == ("senior_agent", 1)
        assert promise_status == "kept"  # settled when the person answered: at 10:00, before 10:05
        assert agent_lines >= 3  # joined, reply, outcome

        # hand back: the bot answers again
        before = sent_to_anouk()
        status, _ = await senior.act(conv, "handback")
        assert status == 200
        assert await people.state(conv) == "bot"
        back = await fake_twilio.wait_for(f"whatsapp:{ANOUK}", count=before + 1, timeout=10)
        assert "digitale assistent" in back[-1]["Body"]
        answer = await whatsapp(stack, fake_twilio, ANOUK, "hoe laat zijn jullie open")
        assert "maandag t/m vrijdag 9:00–17:00" in answer
    finally:
        if stream is not None:
            stream.cancel()
        await senior.close()
