"""A returning customer's long conversation: Rasa's stock Redis tracker store against ours.

One conversation per customer means Rasa's tracker of that conversation holds many sessions.
Rasa 3.6 merges the latest session into the stored tracker on every save, comparing every pair of
events (bot/rasa_plugins/tracker_store.py explains). Two measurements, both against real Redis:

1. In process: a stored conversation of S sessions x 10 turns; Rasa loads the latest session,
   one turn is added, and `save()` is timed, for the stock store and for ours (same domain).
2. Through the running stack (gateway, Rasa, action server): the same customer opens N web chats
   one after another, identifies in each (so each joins the customer's conversation) and plays
   bench_latency.py's 8 messages; the median answer time per chat, with Rasa started on the stock store and on ours.

Writes docs/tracker-store.md. Run: .venv/bin/python scripts/bench_tracker_store.py [--chats N]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "scripts"))

import redis as redis_sync  # noqa: E402
from rasa.core.tracker_store import RedisTrackerStore as StockStore  # noqa: E402
from rasa.shared.core.domain import Domain  # noqa: E402
from rasa.shared.core.trackers import DialogueStateTracker  # noqa: E402

from bench_latency import bench_identity_env, play_chat  # noqa: E402  (the same scripted web chat visitor)
from bot.rasa_plugins.tracker_store import RedisTrackerStore  # noqa: E402
from bot.records.demo import demo_database  # noqa: E402
from bot.launch.run import Stack, free_port  # noqa: E402
from bot.launch.train import ensure_model  # noqa: E402
from test_tracker_store import session, turn  # noqa: E402  (the tests' conversation builder)

# (sessions stored, turns per session): many short chats, and a long one (several tabs or channels
# within Rasa's 60-minute session, as in part 2)
SHAPES = ((1, 10), (10, 10), (30, 10), (2, 40), (2, 80), (2, 160))


async def time_save(store, domain: Domain, sessions: int, turns: int, sender: str,
                    repeats: int = 3) -> tuple[float, int]:
    history = [e for s in range(sessions) for e in session(1_000 + s * 10_000, turns)]
    times = []
    for r in range(repeats):
        await store.save(DialogueStateTracker.from_events(f"{sender}{r}", history, domain.slots))
        latest = await store.retrieve(f"{sender}{r}")
        for event in turn(1_000 + sessions * 10_000, "nog een vraag", "greet", "utter_greet"):
            latest.update(event)
        started = time.perf_counter()
        await store.save(latest)
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), len(history)


async def in_process(redis_url: str, prefix: str) -> list[tuple[int, int, int, float, float]]:
    domain = Domain.load(str(ROOT / "domain.yml"))
    address = urlparse(redis_url)
    settings = dict(domain=domain, host=address.hostname, port=address.port, db=int(address.path.strip("/") or 0))
    stock = StockStore(key_prefix=f"{prefix}stock", **settings)
    ours = RedisTrackerStore(key_prefix=f"{prefix}ours", **settings)
    rows = []
    for sessions, turns in SHAPES:
        stock_ms, events = await time_save(stock, domain, sessions, turns, f"s{sessions}x{turns}-")
        ours_ms, _ = await time_save(ours, domain, sessions, turns, f"s{sessions}x{turns}-")
        rows.append((sessions, turns, events, stock_ms, ours_ms))
        print(f"{sessions} x {turns} turns ({events} events): stock {stock_ms:.0f} ms, ours {ours_ms:.1f} ms", flush=True)
    return rows


async def chats(port: int, n: int, database_url: str) -> list[float]:
    medians = []
    for _ in range(n):
        medians.append(statistics.median(await play_chat(port, "K10006", database_url, timeout=60)))
        print(f"  chat {len(medians)}: median {medians[-1]:.0f} ms", flush=True)
    return medians


def through_stack(redis_url: str, prefix: str, endpoints: str, n: int) -> list[float]:
    stack = Stack(gateway_port=free_port(), rasa_port=free_port(), action_port=free_port(), redis_url=redis_url,
                  database_url=demo_database(ROOT / "var" / "bench" / f"{prefix}.db"), key_prefix=prefix,
                  model=ensure_model(), endpoints=endpoints, log_dir=ROOT / "var" / "bench-logs",
                  extra_env=bench_identity_env())
    stack.start()
    try:
        return asyncio.run(chats(stack.gateway_port, n, stack.database_url))
    finally:
        stack.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chats", type=int, default=12, metavar="N", help="web chats of the same customer (default 12)")
    parser.add_argument("--output", type=Path, default=ROOT / "docs" / "tracker-store.md")
    args = parser.parse_args()
    redis_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/14")
    prefix = "bts" + uuid.uuid4().hex[:6]
    client = redis_sync.Redis.from_url(redis_url)
    try:
        saves = asyncio.run(in_process(redis_url, prefix))
        with tempfile.NamedTemporaryFile("w", suffix=".yml", dir=ROOT / "var", delete=False) as stock_endpoints:
            stock_endpoints.write((ROOT / "endpoints.yml").read_text().replace(
                "type: bot.rasa_plugins.tracker_store.RedisTrackerStore", "type: redis"))
        print("through the stack, Rasa's stock store:", flush=True)
        stock = through_stack(redis_url, prefix + "a", stock_endpoints.name, args.chats)
        print("through the stack, ours:", flush=True)
        ours = through_stack(redis_url, prefix + "b", "endpoints.yml", args.chats)
    finally:
        for key in client.scan_iter(match=f"*{prefix}*"):
            client.delete(key)
        client.close()
        if "stock_endpoints" in locals():
            Path(stock_endpoints.name).unlink(missing_ok=True)

    lines = [
        "# A returning customer's long conversation: the tracker store",
        "",
        "Produced by `scripts/bench_tracker_store.py` on this machine (2 cores), real Redis, the project's",
        f"domain and trained model; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.",
        "",
        "One conversation per customer means a Rasa tracker with many sessions. Rasa 3.6 loads only the",
        "latest session and, on every save, merges it into the stored tracker by comparing every pair of",
        "events (`RedisTrackerStore._merge_trackers`). `bot/rasa_plugins/tracker_store.py` keeps that merge's",
        "result exactly (tests/test_tracker_store.py compares both on real Redis) but looks events up by",
        "type and timestamp, so the work is linear.",
        "",
        "## 1. One save after one turn (in process)",
        "",
        "A stored conversation of S sessions x T turns; Rasa loads the latest session, one turn is added,",
        "`save()` is timed (median of 3). The stock merge costs (events stored) x (events in the latest",
        "session): many short chats grow it linearly, one long session (several tabs or channels within",
        "Rasa's 60-minute session) quadratically.",
        "",
        "| sessions x turns | events stored | Rasa's stock store | ours |",
        "|---|---|---|---|",
        *[f"| {s} x {t} | {e} | {a:.0f} ms | {b:.1f} ms |" for s, t, e, a, b in saves],
        "",
        "## 2. Through the running stack",
        "",
        f"The same customer (K10006) opens {args.chats} web chats one after another; in each they identify",
        "(joining their one conversation) and send 8 messages. Median answer time per chat:",
        "",
        "| chat | Rasa's stock store | ours |",
        "|---|---|---|",
        *[f"| {i + 1} | {a:.0f} ms | {b:.0f} ms |" for i, (a, b) in enumerate(zip(stock, ours))],
        "",
        "Rerun: `.venv/bin/python scripts/bench_tracker_store.py [--chats N]` (a few minutes; needs the",
        "trained model in models/ and Redis on 127.0.0.1:6379 or REDIS_URL).",
        "",
    ]
    args.output.write_text("\n".join(lines))
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
