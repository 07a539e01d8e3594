"""Load: 100 concurrent web chat conversations through the gateway; writes docs/load.md.

Starts the whole stack (as `make run` does) on loopback against REDIS_URL or the local Redis on
database 14, then opens BENCH_CONVERSATIONS (default 100) socket.io visitors at once. Each one
types BENCH_MESSAGES (default 5) context-free messages 0.5 s apart without waiting for answers
(a customer typing fast), then waits up to BENCH_PATIENCE seconds (default 120) for the answers.

Counted per message: answered (and whether within 30 s, the old timeout), lost (no answer within
the patience), out of order (the answers of one conversation do not come in the order of its
messages). Which message an answer belongs to is known from a calibration conversation first:
every message has its own first answer ("Ik ben er altijd..." for the opening hours, ...).
The gateway's "busy, your answer is coming" notes are counted separately, never as answers.
Latency: from sending a message to its answer. Bounded: N x M messages, loopback only.

    .venv/bin/python scripts/bench_load.py           # writes docs/load.md (the "after" table)
    BENCH_LABEL=before .venv/bin/python scripts/bench_load.py   # another row label
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import redis as redis_sync  # noqa: E402
import socketio  # noqa: E402

from bot.texts import messages as gateway_texts  # noqa: E402
from bot.records.demo import demo_database  # noqa: E402
from bot.launch.run import Stack, free_port  # noqa: E402
from bot.launch.train import ensure_model  # noqa: E402

# Context-free messages with one answer each, whatever came before.
SCRIPT = ["hallo", "wat zijn jullie openingstijden", "ben jij een bot?", "bedankt", "doei"]
GAP = 0.5          # seconds between a visitor's messages
OLD_TIMEOUT = 30.0  # what the gateway used to give a turn


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))] if values else float("nan")


def busy_texts() -> set[str]:
    return {v for v in gateway_texts.TEXTS.get("busy", {}).values()}


class Visitor:
    def __init__(self, port: int) -> None:
        self.port = port
        self.sio = socketio.AsyncClient(reconnection=False)
        self.inbox: asyncio.Queue = asyncio.Queue()
        self.errors: list[str] = []
        self._confirmed: asyncio.Queue = asyncio.Queue()
        self.sio.on("bot_uttered", lambda d: None if (d.get("metadata") or {}).get("notice")  # an error_message's copy
                    else self.inbox.put_nowait((time.perf_counter(), d.get("text") or "")))
        self.sio.on("error_message", lambda d: self.errors.append((d or {}).get("text", "")))
        self.sio.on("session_confirm", lambda d: self._confirmed.put_nowait(d))
        self.session = ""

    async def connect(self) -> None:
        await self.sio.connect(f"http://127.0.0.1:{self.port}", transports=["websocket"], wait_timeout=30)
        await self.sio.emit("session_request", {"session_id": None})
        self.session = await asyncio.wait_for(self._confirmed.get(), 30)

    async def say(self, text: str) -> float:
        await self.sio.emit("user_uttered", {"message": text, "session_id": self.session})
        return time.perf_counter()

    async def close(self) -> None:
        await self.sio.disconnect()


async def calibrate(port: int) -> list[str]:
    """The first 24 characters of each message's first answer, one message at a time."""
    visitor = Visitor(port)
    await visitor.connect()
    prefixes = []
    for text in SCRIPT:
        await visitor.say(text)
        _, first = await asyncio.wait_for(visitor.inbox.get(), 60)
        await asyncio.sleep(1.0)
        while not visitor.inbox.empty():
            visitor.inbox.get_nowait()
        prefixes.append(first[:24])
    await visitor.close()
    if len(set(prefixes)) != len(prefixes):
        raise SystemExit(f"calibration: the messages' answers are not distinct: {prefixes}")
    return prefixes


async def one_conversation(port: int, prefixes: list[str], patience: float, start: asyncio.Event) -> dict:
    visitor = Visitor(port)
    await visitor.connect()
    await start.wait()
    sent: list[float] = []
    for text in SCRIPT:
        sent.append(await visitor.say(text))
        await asyncio.sleep(GAP)
    answered: dict[int, float] = {}
    order: list[int] = []
    busy = twice = 0
    deadline = sent[-1] + patience
    notes = busy_texts()
    while len(answered) < len(SCRIPT):
        remaining = deadline - time.perf_counter()
        if remaining <= 0:
            break
        try:
            at, text = await asyncio.wait_for(visitor.inbox.get(), remaining)
        except asyncio.TimeoutError:
            break
        if text in notes:
            busy += 1
            continue
        for i, prefix in enumerate(prefixes):
            if text.startswith(prefix):
                if i in answered:
                    twice += 1
                else:
                    answered[i] = (at - sent[i]) * 1000
                    order.append(i)
                break
    await asyncio.sleep(1.0)  # an answer given twice (a retried turn) comes right after
    while not visitor.inbox.empty():
        _, text = visitor.inbox.get_nowait()
        twice += any(text.startswith(p) for p in prefixes)
    await visitor.close()
    return {"latencies": answered, "order": order, "busy": busy, "errors": len(visitor.errors), "twice": twice}


async def run_load(port: int, conversations: int, patience: float) -> tuple[list[dict], float]:
    prefixes = await calibrate(port)
    start = asyncio.Event()
    tasks = [asyncio.create_task(one_conversation(port, prefixes, patience, start)) for _ in range(conversations)]
    await asyncio.sleep(2.0)  # every visitor connected before the first message
    began = time.perf_counter()
    start.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    elapsed = time.perf_counter() - began
    return [r if isinstance(r, dict) else {"latencies": {}, "order": [], "busy": 0, "errors": 0,
                                           "failed": repr(r)} for r in results], elapsed


def summarise(label: str, results: list[dict], elapsed: float) -> dict:
    latencies = [ms for r in results for ms in r["latencies"].values()]
    sent = len(results) * len(SCRIPT)
    return {
        "label": label, "conversations": len(results), "sent": sent, "answered": len(latencies),
        "within_30s": sum(1 for ms in latencies if ms <= OLD_TIMEOUT * 1000),
        "lost": sent - len(latencies),
        "out_of_order": sum(1 for r in results if r["order"] != sorted(r["order"])),
        "busy_notes": sum(r["busy"] for r in results),
        "twice": sum(r.get("twice", 0) for r in results),
        "error_messages": sum(r["errors"] for r in results),
        "visitor_failures": sum(1 for r in results if "failed" in r),
        "p50": pct(latencies, 50), "p90": pct(latencies, 90), "p99": pct(latencies, 99),
        "max": max(latencies) if latencies else float("nan"), "elapsed": elapsed,
    }


def write_doc(rows: list[dict], conversations: int, patience: float) -> str:
    lines = [
        "# Load: 100 concurrent web chat conversations",
        "",
        "Produced by `scripts/bench_load.py` on this machine "
        f"({os.cpu_count()} cores, shared): the whole stack on loopback (real Redis tracker and lock",
        f"stores, SQLite records), {conversations} socket.io visitors at once, each typing {len(SCRIPT)} messages",
        f"({', '.join(repr(s) for s in SCRIPT)}) {GAP} s apart without waiting, then waiting up to",
        f"{patience:.0f} s for the answers. *Lost*: no answer within that time. *Out of order*: conversations",
        "whose answers came in another order than their messages. *Busy notes*: the gateway's",
        "\"busy, your answer is coming\" message (never counted as an answer). *Answered twice*: a",
        "message answered again (the turn was sent to Rasa a second time after a timeout).",
        "",
        "| run | date | sent | answered | within 30 s | lost | out of order (conversations) | busy notes | "
        "answered twice | error messages | p50 ms | p90 ms | p99 ms | max ms | wall s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['label']} | {r['date']} | {r['sent']} | {r['answered']} | {r['within_30s']} | {r['lost']} | "
            f"{r['out_of_order']} | {r['busy_notes']} | {r.get('twice', '-')} | {r['error_messages']} | {r['p50']:.0f} | {r['p90']:.0f} | "
            f"{r['p99']:.0f} | {r['max']:.0f} | {r['elapsed']:.0f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    conversations = int(os.environ.get("BENCH_CONVERSATIONS", "100"))
    patience = float(os.environ.get("BENCH_PATIENCE", "120"))
    label = os.environ.get("BENCH_LABEL", "after")
    redis_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/14")
    prefix = "load" + uuid.uuid4().hex[:6]
    database_url = demo_database(ROOT / "var" / "bench" / f"{prefix}.db")
    stack = Stack(gateway_port=free_port(), rasa_port=free_port(), action_port=free_port(),
                  redis_url=redis_url, database_url=database_url, key_prefix=prefix, model=ensure_model(),
                  log_dir=ROOT / "var" / "bench-logs")
    stack.start()
    try:
        results, elapsed = asyncio.run(run_load(stack.gateway_port, conversations, patience))
    finally:
        stack.stop()
        client = redis_sync.Redis.from_url(redis_url)
        for key in client.scan_iter(match=f"*{prefix}*"):
            client.delete(key)
        client.close()
    row = {**summarise(label, results, elapsed), "date": time.strftime("%Y-%m-%d %H:%M")}
    store = ROOT / "docs" / "load-runs.json"
    rows = [r for r in (json.loads(store.read_text()) if store.exists() else []) if r["label"] != label]
    rows.append(row)
    rows.sort(key=lambda r: (r["label"] != "before", r["date"]))
    store.write_text(json.dumps(rows, indent=1) + "\n")
    doc = write_doc(rows, conversations, patience)
    existing = (ROOT / "docs" / "load.md").read_text() if (ROOT / "docs" / "load.md").exists() else ""
    notes = existing.split("<!-- notes -->", 1)[1] if "<!-- notes -->" in existing else "\n"
    (ROOT / "docs" / "load.md").write_text(doc + "\n<!-- notes -->" + notes)
    print(doc)


if __name__ == "__main__":
    main()
