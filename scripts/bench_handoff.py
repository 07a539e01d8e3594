"""Handing over to a person, timed through the running stack (writes docs/handoff-bench.md).

The customer's answer, the desk's notification, two agents claiming at once, an agent's reply
reaching the web chat, and handing back to the bot.

Starts the whole stack once (as bench_latency.py does) against REDIS_URL or the local Redis on
database 14 (an embedded Redis when that one is not reachable), with its own key prefix and a
fresh SQLite database with the demo web shop. Creates two senior agents with the admin command
line, logs both in over HTTP, keeps agent A's desk event stream (SSE) open, and plays N anonymous
web chat customers one after another:

1. "ik wil een medewerker spreken" -> the bot's last reply of the turn (the wait text);
2. the same send -> agent A's event stream delivering the `queue` event;
3. agents A and B claim at the same moment: exactly one must win;
4. agent A's POST /reply -> the customer's socket receiving that text;
5. POST /handback, then "hoe laat zijn jullie open" must be answered by the bot again.

Writes docs/handoff-bench.md. Run: .venv/bin/python scripts/bench_handoff.py [--customers N]
(from the project root; PYTHONPATH=. RASA_TELEMETRY_ENABLED=false are harmless but not needed).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import re
import secrets
import statistics
import sys
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402
import redis as redis_sync  # noqa: E402
import socketio  # noqa: E402

from bot.records.demo import demo_database  # noqa: E402
from bot.launch.run import Stack, free_port  # noqa: E402
from bot.launch.train import ensure_model  # noqa: E402

ASK_PERSON = "ik wil een medewerker spreken"
ASK_HOURS = "hoe laat zijn jullie open"
HOURS_MARK = "9:00"
# what the customer is told about the wait (bot/texts/messages.py wait_next, wait_live, wait_no_agents, wait_closed)
WAIT_KINDS = {
    "als eerste aan de beurt": "wait_next: first in line, an agent free",
    "in de rij": "wait_live: in the queue, agents busy",
    "geen collega online": "wait_no_agents: nobody fitting online",
    "collega's zijn er nu niet": "wait_closed: outside business hours",
}
PASSWORD = "bench-" + secrets.token_urlsafe(12)
CSRF_FIELD = re.compile(r'name="csrf" value="([^"]+)"')
HTTP_TIMEOUT = aiohttp.ClientTimeout(total=30)
TURN_TIMEOUT = 30.0      # a bot turn (Rasa, actions, database)
EVENT_TIMEOUT = 10.0     # a desk event, an agent's message on the socket


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def wait_kind(text: str) -> str | None:
    return next((mark for mark in WAIT_KINDS if mark in text), None)


# -- records database and agents --------------------------------------------------------------------

async def create_agent(stack: Stack, username: str, name: str) -> None:
    """With the admin command line, on the stack's database (DATABASE_URL from stack.env())."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot.desk", "create-agent", "--username", username, "--name", name,
        "--role", "senior_agent", "--skills", "general,finance,retention,complaints", "--languages", "nl,en",
        "--password-stdin",
        cwd=ROOT, env=stack.env(), stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate((PASSWORD + "\n").encode()), 120)
    except asyncio.TimeoutError:
        proc.kill()
        await proc.wait()
        raise RuntimeError(f"create-agent {username} did not finish within 120 s")
    if proc.returncode != 0:
        raise RuntimeError(f"create-agent {username} failed ({proc.returncode}): {out.decode()} {err.decode()}")


# -- the desk: one browser per agent -----------------------------------------------------------------

class Browser:
    """One agent's browser: its own cookie jar; the CSRF token from /desk/api/me after logging in."""

    def __init__(self, base: str) -> None:
        self.http = aiohttp.ClientSession(base_url=base, cookie_jar=aiohttp.CookieJar(unsafe=True),
                                          timeout=HTTP_TIMEOUT)
        self.csrf: str | None = None
        self.username = ""

    async def login(self, username: str, password: str) -> None:
        async with self.http.get("/desk/login") as page:
            if page.status != 200:
                raise RuntimeError(f"GET /desk/login answered {page.status}")
            token = CSRF_FIELD.search(await page.text()).group(1)
        async with self.http.post("/desk/login", data={"username": username, "password": password, "csrf": token},
                                  allow_redirects=False) as response:
            await response.read()
            if response.status != 303:
                raise RuntimeError(f"login of {username} answered {response.status}")
        status, me = await self.get("/desk/api/me")
        if status != 200:
            raise RuntimeError(f"/desk/api/me answered {status} after logging in")
        self.csrf, self.username = me["csrf"], username

    async def get(self, path: str) -> tuple[int, dict]:
        async with self.http.get(path, allow_redirects=False) as r:
            return r.status, await r.json()

    async def act(self, conv: str, action: str, body: dict | None = None) -> tuple[int, dict]:
        headers = {"Content-Type": "application/json", "X-CSRF-Token": self.csrf or ""}
        async with self.http.post(f"/desk/api/conversations/{conv}/{action}", data=json.dumps(body or {}).encode(),
                                  headers=headers, allow_redirects=False) as r:
            try:
                data = await r.json()
            except (aiohttp.ContentTypeError, json.JSONDecodeError):
                data = {"error": (await r.text())[:200]}
            return r.status, data

    async def close(self) -> None:
        await self.http.close()


@dataclass
class Arrivals:
    """Things as they arrive, each with its perf_counter time; wait for one after a mark."""

    items: list[tuple[float, Any]] = field(default_factory=list)
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def add(self, item: Any) -> None:
        at = time.perf_counter()
        async with self.changed:
            self.items.append((at, item))
            self.changed.notify_all()

    def mark(self) -> int:
        return len(self.items)

    async def first(self, predicate: Callable[[Any], bool], *, after: int, timeout: float, what: str) -> tuple[float, Any]:
        async def find() -> tuple[float, Any]:
            async with self.changed:
                index = after
                while True:
                    while index < len(self.items):
                        at, item = self.items[index]
                        index += 1
                        if predicate(item):
                            return at, item
                    await self.changed.wait()

        try:
            return await asyncio.wait_for(find(), timeout)
        except asyncio.TimeoutError:
            seen = [item for _, item in self.items[after:]]
            raise TimeoutError(f"no {what} within {timeout:.0f} s; got {seen!r:.400}") from None


async def desk_stream(desk: Browser, events: Arrivals, ready: asyncio.Event) -> None:
    """Agent A's live stream: every SSE event, time-stamped on arrival (comments are skipped)."""
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=60)  # heartbeat every 15 s
    async with desk.http.get("/desk/events", timeout=timeout) as stream:
        if stream.status != 200:
            raise RuntimeError(f"/desk/events answered {stream.status}")
        ready.set()
        name, data = "message", ""
        async for raw in stream.content:
            line = raw.decode("utf-8").rstrip("\r\n")
            if not line:
                if data:
                    try:
                        payload = json.loads(data)
                    except json.JSONDecodeError:
                        payload = data
                    await events.add((name, payload))
                name, data = "message", ""
            elif line.startswith(":"):
                continue
            elif line.startswith("event:"):
                name = line[6:].strip()
            elif line.startswith("data:"):
                data += line[5:].strip()


# -- a web chat customer --------------------------------------------------------------------------

class Customer:
    """An anonymous web chat visitor speaking the rasa-webchat protocol (as tests/support/chat.py ChatClient)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.sio = socketio.AsyncClient(reconnection=False)
        self.inbox = Arrivals()
        self.errors: list[Any] = []
        self.session_id: str | None = None
        self._confirmed: asyncio.Queue = asyncio.Queue()
        self.sio.on("bot_uttered", self._uttered)
        self.sio.on("error_message", lambda data: self.errors.append(data))
        self.sio.on("session_confirm", lambda data: self._confirmed.put_nowait(data))

    async def _uttered(self, data: Any) -> None:
        if isinstance(data, dict) and (data.get("metadata") or {}).get("notice"):
            return  # the copy of an error_message (for rasa-webchat)
        await self.inbox.add(data if isinstance(data, dict) else {"text": str(data)})

    async def connect(self) -> None:
        await self.sio.connect(self.url, transports=["websocket"], wait_timeout=10)
        await self.sio.emit("session_request", {"session_id": None})
        confirmed = await asyncio.wait_for(self._confirmed.get(), 10)
        self.session_id = confirmed["session_id"] if isinstance(confirmed, dict) else confirmed

    async def send(self, text: str) -> float:
        started = time.perf_counter()
        await self.sio.emit("user_uttered", {"message": text, "session_id": self.session_id, "customData": {}})
        return started

    async def close(self) -> None:
        if self.sio.connected:
            await asyncio.wait_for(self.sio.disconnect(), 10)


def text_of(message: Any) -> str:
    return message.get("text", "") if isinstance(message, dict) else str(message)


# -- one customer, start to end ------------------------------------------------------------------

@dataclass
class Results:
    answer_ms: list[float] = field(default_factory=list)
    notify_ms: list[float] = field(default_factory=list)
    reply_ms: list[float] = field(default_factory=list)
    claim_ms: list[float] = field(default_factory=list)
    handback_ms: list[float] = field(default_factory=list)
    one_winner: int = 0
    winners: collections.Counter = field(default_factory=collections.Counter)
    loser_status: collections.Counter = field(default_factory=collections.Counter)
    loser_errors: collections.Counter = field(default_factory=collections.Counter)
    bot_again: int = 0
    wait_texts: collections.Counter = field(default_factory=collections.Counter)
    wait_examples: dict[str, str] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    customers: int = 0


async def conversation_of(redis_url: str, prefix: str, session_id: str, desk: Browser) -> str:
    """The conversation key of the web chat session (as the gateway stores it); cross-checked
    against the desk's queue."""
    from redis.asyncio import Redis

    redis = Redis.from_url(redis_url, decode_responses=True, socket_timeout=5)
    try:
        conv = await redis.get(f"{prefix}:identity:webchat:{session_id}")
    finally:
        await redis.close(close_connection_pool=True)
    status, queue = await desk.get("/desk/api/queue")
    if status != 200:
        raise RuntimeError(f"/desk/api/queue answered {status}")
    waiting = [item["conversation"] for item in queue["waiting"]]
    if conv not in waiting:
        raise RuntimeError(f"conversation {conv} of session {session_id} is not in the desk's queue ({waiting})")
    return conv


async def one_customer(i: int, base: str, redis_url: str, prefix: str, a: Browser, b: Browser,
                       events: Arrivals, results: Results) -> None:
    customer = Customer(base)
    conv = None
    try:
        await customer.connect()
        await asyncio.sleep(0.2)  # nothing from the previous customer still in flight
        # 1 + 2: ask for a person; the wait text on the socket, the queue event on agent A's stream
        event_mark, inbox_mark = events.mark(), customer.inbox.mark()
        sent = await customer.send(ASK_PERSON)
        notified = asyncio.create_task(events.first(lambda e: e[0] == "queue", after=event_mark,
                                                    timeout=TURN_TIMEOUT, what="queue event on the desk stream"))
        at, told = await customer.inbox.first(lambda m: wait_kind(text_of(m)) is not None, after=inbox_mark,
                                             timeout=TURN_TIMEOUT, what="wait text")
        results.answer_ms.append((at - sent) * 1000)
        kind = wait_kind(text_of(told))
        results.wait_texts[kind] += 1
        results.wait_examples.setdefault(kind, text_of(told))
        event_at, _ = await notified
        results.notify_ms.append((event_at - sent) * 1000)

        conv = await conversation_of(redis_url, prefix, customer.session_id, a)

        # 3: both agents claim at the same moment
        started = time.perf_counter()
        (sa, da), (sb, db) = await asyncio.wait_for(asyncio.gather(a.act(conv, "claim"), b.act(conv, "claim")), 30)
        results.claim_ms.append((time.perf_counter() - started) * 1000)
        won = [name for name, status in (("A", sa), ("B", sb)) if status == 200]
        if len(won) == 1:
            results.one_winner += 1
            results.winners[won[0]] += 1
            loser_status, loser_body = (sb, db) if won[0] == "A" else (sa, da)
            results.loser_status[loser_status] += 1
            results.loser_errors[str(loser_body.get("error"))] += 1
        else:
            results.failures.append(f"customer {i}: claim statuses A={sa} B={sb} ({da}, {db})")
            if not won:
                return
        holder = a if won[0] == "A" else b

        # 4: the holder (A unless B won the race) answers; the text reaches the web chat
        text = f"Hoi, ik ben er voor je (bench {i} {uuid.uuid4().hex[:6]})."
        inbox_mark = customer.inbox.mark()
        started = time.perf_counter()
        status, body = await holder.act(conv, "reply", {"text": text})
        if status != 200:
            results.failures.append(f"customer {i}: reply answered {status} {body}")
        else:
            at, _ = await customer.inbox.first(lambda m: text_of(m) == text, after=inbox_mark,
                                               timeout=EVENT_TIMEOUT, what="the agent's reply on the socket")
            results.reply_ms.append((at - started) * 1000)

        # 5: hand back; the bot answers the next question
        inbox_mark = customer.inbox.mark()
        started = time.perf_counter()
        status, body = await holder.act(conv, "handback")
        results.handback_ms.append((time.perf_counter() - started) * 1000)
        if status != 200:
            results.failures.append(f"customer {i}: handback answered {status} {body}")
            return
        conv = None  # back with the bot: nothing to clean up
        await customer.inbox.first(lambda m: "digitale assistent" in text_of(m), after=inbox_mark,
                                   timeout=EVENT_TIMEOUT, what="the hand-back message")
        inbox_mark = customer.inbox.mark()
        await customer.send(ASK_HOURS)
        try:
            await customer.inbox.first(lambda m: HOURS_MARK in text_of(m), after=inbox_mark,
                                       timeout=TURN_TIMEOUT, what="the opening hours")
            results.bot_again += 1
        except TimeoutError as exc:
            results.failures.append(f"customer {i}: {exc}")
    except Exception as exc:  # noqa: BLE001 - counted, and the next customer goes on
        results.failures.append(f"customer {i}: {type(exc).__name__}: {exc}")
    finally:
        results.customers += 1
        if customer.errors:
            results.failures.append(f"customer {i}: error_message {customer.errors}")
        if conv is not None:  # left with a person: close it so the next customer starts with an empty queue
            for desk in (a, b):
                try:
                    await desk.act(conv, "close")
                except Exception:  # noqa: BLE001
                    pass
        try:
            await customer.close()
        except Exception:  # noqa: BLE001
            pass


async def bench(stack: Stack, n: int) -> Results:
    base = f"http://127.0.0.1:{stack.gateway_port}"
    tag = secrets.token_hex(3)
    names = {"A": (f"bench_a_{tag}", "Anna Bench"), "B": (f"bench_b_{tag}", "Bram Bench")}
    for username, name in names.values():
        await create_agent(stack, username, name)
    a, b = Browser(base), Browser(base)
    events = Arrivals()
    stream: asyncio.Task | None = None
    results = Results()
    try:
        await a.login(names["A"][0], PASSWORD)
        await b.login(names["B"][0], PASSWORD)
        ready = asyncio.Event()
        stream = asyncio.create_task(desk_stream(a, events, ready))
        done, _ = await asyncio.wait({stream, asyncio.ensure_future(ready.wait())}, timeout=10,
                                     return_when=asyncio.FIRST_COMPLETED)
        if stream in done:
            stream.result()  # raises what went wrong
        if not ready.is_set():
            raise RuntimeError("agent A's event stream did not open within 10 s")
        await asyncio.sleep(0.5)  # the stream's first heartbeat: agent A counts as online
        for i in range(n):
            await one_customer(i, base, stack.redis_url, stack.key_prefix, a, b, events, results)
            if stream.done():
                results.failures.append(f"agent A's event stream ended after customer {i}: "
                                        f"{stream.exception() if not stream.cancelled() else 'cancelled'}")
                break
            answer = f"{results.answer_ms[-1]:.0f}" if len(results.answer_ms) == i + 1 else "-"
            notify = f"{results.notify_ms[-1]:.0f}" if len(results.notify_ms) == i + 1 else "-"
            print(f"customer {i + 1}/{n}: answer {answer} ms, desk notified {notify} ms, "
                  f"failures so far {len(results.failures)}", flush=True)
    finally:
        if stream is not None:
            stream.cancel()
            await asyncio.gather(stream, return_exceptions=True)
        await a.close()
        await b.close()
    return results


# -- report -----------------------------------------------------------------------------------

def business_hours_note(now: datetime) -> str:
    try:
        from bot.people import HandoffConfig

        levels = HandoffConfig.load().queues["general"].levels
        local = now.astimezone(levels.tz)
        state = "open" if levels.is_open(now) else "closed"
        return f"{local:%A %Y-%m-%d %H:%M} {levels.tz} (general queue {state})"
    except Exception as exc:  # noqa: BLE001 - only a note
        return f"{now:%Y-%m-%d %H:%M} UTC (business hours unknown: {type(exc).__name__})"


def row(name: str, values: list[float], n: int) -> str:
    if not values:
        return f"| {name} | 0 of {n} | - | - | - |"
    return f"| {name} | {len(values)} of {n} | {statistics.median(values):.0f} | {pct(values, 90):.0f} | {max(values):.0f} |"


def report(results: Results, n: int, startup: float, started_at: datetime, hours: str) -> str:
    losers = ", ".join(f"{status} × {count}" for status, count in sorted(results.loser_status.items())) or "-"
    errors = ", ".join(f"`{code}` × {count}" for code, count in sorted(results.loser_errors.items())) or "-"
    winners = ", ".join(f"{who} × {count}" for who, count in sorted(results.winners.items())) or "-"
    first = (f"answer {results.answer_ms[0]:.0f} ms, desk notified {results.notify_ms[0]:.0f} ms"
             if results.answer_ms and results.notify_ms else "-")
    lines = [
        "# Handing over to a person: timings",
        "",
        "Produced by scripts/bench_handoff.py against the real stack (gateway, Rasa with the trained model,",
        "action server, Redis, SQLite with the demo web shop), on loopback, on this machine",
        f"({os.cpu_count()} cores). Two desk agents (senior_agent; skills general, finance, retention,",
        "complaints; languages nl, en), created with `python -m bot.desk create-agent` and logged in over",
        "HTTP; agent A keeps the desk's event stream (`GET /desk/events`) open, so A counts as online.",
        f"{n} anonymous web chat customers (socket.io, rasa-webchat protocol), one after another, each:",
        f"asks \"{ASK_PERSON}\", is claimed by A and B at the same moment, gets a reply from the",
        f"winner, is handed back and asks \"{ASK_HOURS}\".",
        "",
        f"- Date: {started_at.astimezone():%Y-%m-%d %H:%M %Z}; in Amsterdam: {hours}",
        f"- Stack start-up (action server, Rasa loading the model, gateway): {startup:.1f} s",
        f"- Customers: {n} (completed: {results.customers})",
        f"- First customer (the first Rasa turn and handoff after start-up, cold): {first}",
        "",
        "| measure | measured | median ms | p90 ms | max ms |",
        "|---|---|---|---|---|",
        row("1. handoff answer: send \"" + ASK_PERSON + "\" → the wait text on the socket", results.answer_ms, n),
        row("2. desk notification: the same send → `queue` event on agent A's SSE stream", results.notify_ms, n),
        row("3. claim race: both POST /claim at once (`asyncio.gather`) → both answered", results.claim_ms, n),
        row("4. agent reply: the claim winner's POST /reply → `bot_uttered` with that text on the customer's socket",
            results.reply_ms, n),
        row("5. hand back: POST /handback → 200", results.handback_ms, n),
        "",
        "| check | result |",
        "|---|---|",
        f"| claim race: conversations with exactly one winner | {results.one_winner} of {n} |",
        f"| claim race: who won (and so replied and handed back) | {winners} |",
        f"| claim race: the loser's status | {losers} (error {errors}) |",
        f"| hand back: the bot answers \"{ASK_HOURS}\" with \"{HOURS_MARK}\" | {results.bot_again} of {n} |",
        "",
        "What the customers were told about the wait (it depends on the time of day: business hours",
        "Monday to Friday 9:00-17:00 Europe/Amsterdam, Dutch public holidays closed; outside them every",
        "customer hears \"collega's zijn er nu niet\"):",
        "",
        "| wait text | customers |",
        "|---|---|",
    ]
    for mark, meaning in WAIT_KINDS.items():
        lines.append(f"| \"{mark}\" ({meaning}) | {results.wait_texts.get(mark, 0)} |")
    for mark, example in results.wait_examples.items():
        lines.append("")
        lines.append(f"Example (\"{mark}\"): {example}")
    if results.failures:
        lines += ["", f"Failures ({len(results.failures)}):", ""]
        lines += [f"- {f}" for f in results.failures[:30]]
    lines += [
        "",
        "Notes: times are measured in the benchmark process with `time.perf_counter()`; desk events are",
        "time-stamped as they arrive by a background task reading the stream. The handoff answer and the",
        "queue event come from the same turn: the gateway enqueues (publishing `queue`) before it works",
        "out the wait text, so the desk usually hears of it before the customer does.",
        "",
        "Rerun (a few minutes, mostly stack start-up; needs the trained model in models/ and Redis on",
        "127.0.0.1:6379 or REDIS_URL, else an embedded Redis is started):",
        "",
        "    .venv/bin/python scripts/bench_handoff.py [--customers N]",
        "",
    ]
    return "\n".join(lines)


# -- main -------------------------------------------------------------------------------------

def redis_reachable(url: str) -> bool:
    try:
        client = redis_sync.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except redis_sync.RedisError:
        return False


def delete_keys(redis_url: str | None, prefix: str) -> int:
    if not redis_url:
        return 0
    client = redis_sync.Redis.from_url(redis_url, socket_connect_timeout=5, socket_timeout=10)
    deleted = 0
    try:
        for key in client.scan_iter(match=f"*{prefix}*", count=1000):
            deleted += client.delete(key)
    finally:
        client.close()
    return deleted


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=30, metavar="N", help="web chat customers (default 30)")
    parser.add_argument("--output", type=Path, default=ROOT / "docs" / "handoff-bench.md")
    args = parser.parse_args()
    if args.customers < 1:
        parser.error("--customers must be at least 1")

    redis_url: str | None = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/14")
    if not redis_reachable(redis_url):
        print(f"{redis_url} not reachable: starting an embedded Redis", flush=True)
        redis_url = None
        os.environ["EMBEDDED_REDIS_PORT"] = str(free_port())
    prefix = "benchho" + uuid.uuid4().hex[:6]
    database = ROOT / "var" / "bench" / f"{prefix}.db"
    database_url = demo_database(database)
    stack = Stack(gateway_port=free_port(), rasa_port=free_port(), action_port=free_port(),
                  redis_url=redis_url, database_url=database_url, key_prefix=prefix, model=ensure_model(),
                  log_dir=ROOT / "var" / "bench-logs" / prefix)
    started_at = datetime.now(timezone.utc)
    hours = business_hours_note(started_at)
    print(f"starting the stack (prefix {prefix}, logs {stack.log_dir.relative_to(ROOT)}) ...", flush=True)
    results = None
    try:
        started = time.perf_counter()
        stack.start()
        startup = time.perf_counter() - started
        print(f"stack up in {startup:.1f} s; {args.customers} customers ...", flush=True)
        results = asyncio.run(bench(stack, args.customers))
    finally:
        for name in ("gateway", "rasa", "actions"):  # an embedded Redis last: its keys go first
            stack.stop_process(name)
        try:
            deleted = delete_keys(stack.redis_url, prefix)
            print(f"deleted {deleted} Redis keys of {prefix}", flush=True)
        except redis_sync.RedisError as exc:
            print(f"could not delete the Redis keys of {prefix}: {exc}", file=sys.stderr)
        stack.stop()
        for log in sorted(stack.log_dir.glob("*.log")):
            if "Traceback" in log.read_text(errors="replace"):
                print(f"note: {log.relative_to(ROOT)} has a traceback", file=sys.stderr)
    text = report(results, args.customers, startup, started_at, hours)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text)
    print(text)
    if results.failures:
        print(f"{len(results.failures)} failures (see above)", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
