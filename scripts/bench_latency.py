"""Median per-message latency: through the gateway (socket.io) and straight to Rasa (REST).

Starts the whole stack (as `make run` does) against REDIS_URL or the local Redis on database 14,
plays scripted Dutch and English conversations, and writes docs/latency.md.
Bounded: N messages per path (default 150), loopback only.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402
import redis as redis_sync  # noqa: E402
import socketio  # noqa: E402

from bot.records.demo import demo_database  # noqa: E402
from bot.launch.run import Stack, free_port  # noqa: E402
from bot.launch.train import ensure_model  # noqa: E402

# Each conversation is another demo customer (K10006, K10007, ...); "{order}" is the first
# order the bot offers as a button after identification.
# "{code}" is the one-time code the shop sent to the customer's phone (read from the records' outbox):
# a customer number alone proves nothing (config/identity.yml).
SCRIPT = [
    "hoi", "waar blijft mijn bestelling", "{customer}", "{code}", "{order}", "ik wil het terugsturen", "bedankt",
    "how many loyalty points do i have", "thanks, bye",
]


def latest_code(database_url: str, customer: str) -> str:
    """The last one-time code sent to `customer` (what their phone shows)."""
    import re
    import sqlite3

    with sqlite3.connect(database_url.removeprefix("sqlite:///")) as conn:
        row = conn.execute("select o.body from outbox o join customers c on c.id = o.customer_id where "
                           "c.customer_number = ? and o.kind = 'one_time_code' order by o.id desc limit 1",
                           (customer,)).fetchone()
    return re.search(r"\b(\d{4})\b", row[0]).group(1) if row else "0000"


def bench_identity_env() -> dict[str, str]:
    """Benchmarks replay the same demo customers many times an hour: lift the identification limits
    (a real shop keeps config/identity.yml's)."""
    path = ROOT / "var" / "bench" / "identity.yml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("limits:\n  per_conversation: {attempts: 1000, minutes: 1}\n"
                    "  per_client: {attempts: 100000, minutes: 1}\n  codes_per_customer: {count: 100000, minutes: 1}\n")
    return {"IDENTITY_FILE": str(path)}


def customer_number(conversation: int) -> str:
    return f"K{10006 + conversation % 29}"


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


async def play_chat(port: int, customer: str, database_url: str, timeout: float = 30) -> list[float]:
    """One web chat visitor (socket.io, rasa-webchat protocol) playing SCRIPT as `customer`;
    the milliseconds from each message to the bot's first answer."""
    sio = socketio.AsyncClient(reconnection=False)
    inbox: asyncio.Queue = asyncio.Queue()
    confirmed: asyncio.Queue = asyncio.Queue()
    sio.on("bot_uttered", lambda d: None if (d.get("metadata") or {}).get("notice") else inbox.put_nowait(d))
    sio.on("session_confirm", lambda d: confirmed.put_nowait(d))
    await sio.connect(f"http://127.0.0.1:{port}", transports=["websocket"])
    await sio.emit("session_request", {"session_id": None})
    session = await asyncio.wait_for(confirmed.get(), 10)
    timings: list[float] = []
    offered: list[str] = []
    for template in SCRIPT:
        code = latest_code(database_url, customer) if template == "{code}" else ""
        text = template.format(customer=customer, order=(offered or ["/order_status"])[0], code=code)
        started = time.perf_counter()
        await sio.emit("user_uttered", {"message": text, "session_id": session})
        reply = await asyncio.wait_for(inbox.get(), timeout)
        timings.append((time.perf_counter() - started) * 1000)
        await asyncio.sleep(0.3)  # let any further messages of the turn arrive
        replies = [reply]
        while not inbox.empty():
            replies.append(inbox.get_nowait())
        offered = [q["payload"] for r in replies for q in r.get("quick_replies", [])] or offered
    await sio.disconnect()
    return timings


async def via_gateway(port: int, n: int, database_url: str) -> list[float]:
    timings: list[float] = []
    conversation = 0
    while len(timings) < n:
        timings += await play_chat(port, customer_number(conversation), database_url)
        conversation += 1
    return timings[:n]


async def direct_rasa(stack: Stack, n: int) -> list[float]:
    timings: list[float] = []
    url = f"http://127.0.0.1:{stack.rasa_port}/webhooks/gateway/webhook"
    headers = {"Authorization": f"Bearer {stack.rasa_token}"}
    conversation = 100
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
        while len(timings) < n:
            sender = f"bench{uuid.uuid4().hex}"
            offered: list[str] = []
            for template in SCRIPT:
                customer = customer_number(conversation)
                code = latest_code(stack.database_url, customer) if template == "{code}" else ""
                text = template.format(customer=customer, order=(offered or ["/order_status"])[0], code=code)
                started = time.perf_counter()
                async with http.post(url, json={"sender": sender, "message": text}, headers=headers) as r:
                    replies = await r.json()
                timings.append((time.perf_counter() - started) * 1000)
                offered = [b["payload"] for m in replies for b in m.get("buttons", [])] or offered
            conversation += 1
    return timings[:n]

def main() -> None:
    n = int(os.environ.get("BENCH_MESSAGES", "150"))
    redis_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/14")
    prefix = "bench" + uuid.uuid4().hex[:6]
    database_url = demo_database(ROOT / "var" / "bench" / f"{prefix}.db")
    stack = Stack(gateway_port=free_port(), rasa_port=free_port(), action_port=free_port(),
                  redis_url=redis_url, database_url=database_url, key_prefix=prefix, model=ensure_model(),
                  log_dir=ROOT / "var" / "bench-logs", extra_env=bench_identity_env())
    started = time.perf_counter()
    stack.start()
    startup = time.perf_counter() - started
    try:
        rasa = asyncio.run(direct_rasa(stack, n))
        gateway = asyncio.run(via_gateway(stack.gateway_port, n, database_url))
    finally:
        stack.stop()
        client = redis_sync.Redis.from_url(redis_url)
        for key in client.scan_iter(match=f"*{prefix}*"):
            client.delete(key)
    rows = [("gateway (socket.io, web chat path)", gateway), ("Rasa REST channel directly", rasa)]
    lines = [
        "# Per-message latency",
        "",
        "Produced by `make bench` (scripts/bench_latency.py): one customer at a time, scripted",
        f"Dutch and English conversations ({len(SCRIPT)} messages each: identification with a one-time code, order status from",
        "the records, a return, loyalty points, each conversation another demo customer; form turns call",
        "the action server and the database), real",
        f"Redis tracker and lock stores, SQLite records, on this machine ({os.cpu_count()} cores).",
        "Time from sending a message to receiving the first reply.",
        "",
        f"- Date: {time.strftime('%Y-%m-%d')}",
        f"- Stack start-up (action server, Rasa loading the model, gateway): {startup:.1f} s",
        "",
        "| path | messages | median ms | p90 ms | p99 ms | max ms |",
        "|---|---|---|---|---|---|",
    ]
    for name, values in rows:
        lines.append(f"| {name} | {len(values)} | {statistics.median(values):.0f} | {pct(values, 90):.0f} | "
                     f"{pct(values, 99):.0f} | {max(values):.0f} |")
    (ROOT / "docs").mkdir(exist_ok=True)
    (ROOT / "docs" / "latency.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
