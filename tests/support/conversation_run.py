"""Playing one conversation of the dialogue suite (tests/support/conversations.py) through a running
stack, checking every reply, and writing the report (docs/conversations.md).

Each conversation starts from the same place: the demo shop's records as freshly loaded (the stack's
SQLite database is restored from a pristine copy, so a refund granted in one conversation is not
"already refunded" in the next), the persona with no earlier conversation in Redis (a verified web
chat would otherwise join the customer's conversation of an earlier test, with its dialogue
state), and fresh identification limits (tests/conftest.py resets those after every test).

Web chat: a socket.io visitor of its own (ChatClient, which waits for the gateway's `turn_done`).
WhatsApp and SMS: the Twilio webhook, and what the fake Twilio received once the inbox answered the
message and the delivery of the turn's replies was recorded in the transcript.
"""

from __future__ import annotations

import asyncio
import json
import re
import sqlite3
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from tests.support import conversations as spec
from tests.support.conversations import Conversation, Turn
from tests.support.stack import stack_sql

TURN_TIMEOUT = 30.0
# The first measurement, kept in every report: the bot of main at 40e6c10 (before issue 11's work).
BASELINE = ("2026-12-01, the bot of main at `40e6c10` (model `model-70277a84ce8bdc55`): **5/66 (8%)**, "
            "nl 2/33, en 3/33")
WALL_MARK = "<!-- whole run -->"  # scripts/conversations_report.py puts the whole run's time here


@dataclass
class Failure:
    turn: int                    # 1-based; the turn whose reply failed the check
    check: str                   # contains, lang, repeated, dead_end, ...
    message: str
    pattern: int | None
    said: str = ""
    reply: str = ""


@dataclass
class TurnLog:
    said: str
    reply: str
    seconds: float


@dataclass
class Result:
    conversation: Conversation
    failures: list[Failure] = field(default_factory=list)
    turns: list[TurnLog] = field(default_factory=list)
    seconds: float = 0.0
    aborted: str = ""

    @property
    def passed(self) -> bool:
        return not self.failures

    def summary(self) -> str:
        if self.passed:
            return "passed"
        first = self.failures[0]
        more = f" (+{len(self.failures) - 1} more)" if len(self.failures) > 1 else ""
        return f"turn {first.turn} {first.check}: {first.message}{more}"


# -- the records and Redis, per conversation ---------------------------------------------------

def sqlite_path(url: str) -> str:
    return url.removeprefix("sqlite:///")


def copy_database(source: str, target: str) -> None:
    """Copy one SQLite database onto another with SQLite's backup API (safe while other processes
    have it open: they see the copy at their next transaction)."""
    src = sqlite3.connect(source, timeout=15)
    dst = sqlite3.connect(target, timeout=15)
    try:
        dst.execute("PRAGMA busy_timeout=15000")
        src.backup(dst)
    finally:
        src.close()
        dst.close()


def persona(stack, number: str) -> dict[str, Any]:
    rows = stack_sql(stack, "select id, name, phone, email, web_login_id from customers where customer_number = ?",
                     number)
    if not rows:
        raise AssertionError(f"no demo customer {number} in the stack's records")
    cid, name, phone, email, login = rows[0]
    return {"id": cid, "name": name, "phone": phone, "email": email, "login": login, "number": number}


async def forget_persona(redis, prefix: str, who: dict[str, Any]) -> None:
    """The persona has no conversation yet: a new one is theirs from the first verified message."""
    keys = [f"{prefix}:customer:{who['id']}"]
    if who.get("phone"):
        keys += [f"{prefix}:identity:whatsapp:{who['phone']}", f"{prefix}:identity:sms:{who['phone']}"]
    await redis.delete(*keys)


def high_water(stack) -> dict[str, int]:
    """The last row id of the tables a conversation writes to."""
    marks = {}
    for table in ("tickets", "decisions", "outbox"):
        [(top,)] = stack_sql(stack, f"select coalesce(max(id), 0) from {table}")
        marks[table] = top
    return marks


# -- drivers: one per channel ------------------------------------------------------------------

class WebChatDriver:
    def __init__(self, stack, open_chat, conv: Conversation, who: dict[str, Any]) -> None:
        self.stack, self.open_chat, self.conv, self.who = stack, open_chat, conv, who
        self.client = None
        self.last: list[dict] = []

    async def start(self) -> None:
        custom = None
        if self.conv.login:
            from bot.policy.identity import sign_web_login

            if not self.who.get("login"):
                raise AssertionError(f"{self.conv.customer} has no web login (login: true)")
            secret = self.stack.env()["WEBCHAT_IDENTITY_SECRET"]
            custom = {"user_id": self.who["login"], "user_hash": sign_web_login(secret, self.who["login"])}
        self.client = await self.open_chat(language=self.conv.page_language, custom=custom)

    async def say(self, text: str) -> list[dict]:
        self.last = await self.client.say(text, timeout=TURN_TIMEOUT)
        return self.last

    def button(self, title: str) -> str | None:
        for message in self.last:
            for b in message.get("buttons") or message.get("quick_replies") or []:
                if str(b.get("title", "")).strip().lower() == title.strip().lower():
                    return str(b.get("payload"))
        return None

    async def conversation_key(self, redis, prefix: str) -> str | None:
        return await redis.get(f"{prefix}:identity:webchat:{self.client.session_id}")


class TwilioDriver:
    """WhatsApp or SMS from the persona's phone (the records prove who writes)."""

    def __init__(self, stack, fake_twilio, conv: Conversation, who: dict[str, Any]) -> None:
        self.stack, self.fake, self.conv, self.who = stack, fake_twilio, conv, who
        self.channel = conv.channel
        prefix = "whatsapp:" if self.channel == "whatsapp" else ""
        self.address = f"{prefix}{who['phone']}"
        number = stack.env()["TWILIO_WHATSAPP_NUMBER" if self.channel == "whatsapp" else "TWILIO_SMS_NUMBER"]
        self.to = f"{prefix}{number}"

    async def start(self) -> None:
        if not self.who.get("phone"):
            raise AssertionError(f"{self.conv.customer} has no phone for {self.channel}")

    def _received(self) -> list[dict]:
        """What reached the phone, without the one-time codes (the shop's outbox, not a reply)."""
        return [m for m in self.fake.messages if m["To"] == self.address and not _is_code(m.get("Body") or "")]

    async def say(self, text: str) -> list[dict]:
        from tests.support.channels import sid as new_sid, twilio_post
        from tests.support.fake_twilio import inbound_params
        from tests.support.wait import until

        before = len(self._received())
        sid = new_sid()
        status, _ = await twilio_post(self.stack, inbound_params(self.address, text, to=self.to, sid=sid))
        assert status == 200, f"the Twilio webhook answered {status}"

        def answered():
            rows = stack_sql(self.stack, "select status from inbox where channel = ? and message_id = ?",
                             self.channel, sid)
            return rows and rows[0][0] != "pending"

        await until(answered, timeout=TURN_TIMEOUT, interval=0.05, what="the inbox's answer")
        rows = stack_sql(self.stack, "select id, conversation, data from transcript where sender = 'customer' "
                                     "and channel = ? order by id desc limit 20", self.channel)
        mine = next(((rid, conv) for rid, conv, data in rows if json.loads(data or "{}").get("message_id") == sid),
                    None)

        def delivered():
            if mine is None:
                return True
            bots = stack_sql(self.stack, "select data from transcript where conversation = ? and sender = 'bot' "
                                         "and id > ?", mine[1], mine[0])
            return all(json.loads(d or "{}").get("delivery") in ("sent", "failed") for (d,) in bots)

        await until(delivered, timeout=TURN_TIMEOUT, interval=0.05, what="the delivery of the replies")
        await asyncio.sleep(0.05)
        return [{"text": m.get("Body") or ""} for m in self._received()[before:]]

    def button(self, title: str) -> str | None:
        return None

    async def conversation_key(self, redis, prefix: str) -> str | None:
        return await redis.get(f"{prefix}:identity:{self.channel}:{self.who['phone']}")


def _is_code(body: str) -> bool:
    from bot.texts.messages import TEXTS

    return any(spec._template_regex(text.replace("{{code}}", "{code}")).fullmatch(body.strip())
               for text in TEXTS["one_time_code"].values())


# -- playing and checking ------------------------------------------------------------------------

def _text(messages: list[dict]) -> str:
    return "\n".join(m.get("text") or "" for m in messages if m.get("text"))


def _shown(messages: list[dict]) -> str:
    """What the customer sees: the texts and the buttons' titles."""
    titles = [str(b.get("title", "")) for m in messages for b in (m.get("buttons") or m.get("quick_replies") or [])]
    return "\n".join([_text(messages), *titles])


class Checker:
    """The checks of one conversation, turn after turn; remembers what was asked and given."""

    def __init__(self, conv: Conversation) -> None:
        self.conv = conv
        self.language = conv.language
        self.given: dict[str, int] = {}          # fact -> the turn the customer gave it
        self.asked_before: dict[str, int] = {}   # normalised question -> turn
        self.open_before = False                 # the previous reply asked for a fact
        self.failures: list[Failure] = []

    def fail(self, n: int, check: str, message: str, pattern: int | None, said: str, reply: str) -> None:
        self.failures.append(Failure(n, check, message, pattern, said, reply))

    def turn(self, n: int, turn: Turn, said: str, messages: list[dict]) -> None:
        if turn.lang:
            self.language = turn.lang
        lang = self.language
        reply = _text(messages)
        shown = _shown(messages)
        own = turn.pattern or (self.conv.patterns[0] if self.conv.patterns else None)

        def fail(check: str, message: str, pattern: int | None = own) -> None:
            self.fail(n, check, message, pattern, said, reply)

        for fact in spec.given(said) | set(turn.gives):
            self.given.setdefault(fact, n)

        # -- global: a reply, no dead end, the language, no empty value, nothing asked twice
        # inside a question: pattern 2; else what the turn tests (a time question: 5), else 1
        stuck = 2 if self.open_before else (turn.pattern or 1)
        if not reply.strip() and not turn.silent_ok:
            fail("reply", "no reply at all", stuck)
        if not turn.dead_end_ok:
            name = spec.dead_end(reply)
            if name:
                fail("dead_end", f"a dead end ({name})", stuck)
        for message in messages:
            text = (message.get("text") or "").strip()
            langs = spec.message_languages(text)
            if langs and lang not in langs:
                fail("lang", f"a reply in {'/'.join(sorted(langs))}, expected {lang}: {text[:80]!r}", 4)
                break
        for message in messages:
            problem = spec.empty_value(message.get("text") or "")
            if problem:
                fail("empty_value", problem, 7)
                break
        questions = spec.asked(reply, lang)
        for kind, sentence in questions.items():
            if kind in self.given and kind not in turn.asks:
                where = "in this message" if self.given[kind] == n else f"in turn {self.given[kind]}"
                fail("asked_twice", f"asks for {kind}, given {where}: {sentence!r}", 3)
        for sentence in spec.questions(reply):
            if spec.question_kinds(sentence, lang) or spec.open_question(sentence):
                continue
            key = spec.normalised(sentence)
            if key in self.asked_before:
                fail("asked_twice", f"the same question as in turn {self.asked_before[key]}: {sentence!r}", 3)
        for sentence in spec.questions(reply):
            self.asked_before.setdefault(spec.normalised(sentence), n)
        self.open_before = bool(questions)

        # -- the turn's own checks
        low = spec.squash(shown)
        for wanted in turn.contains:
            if spec.squash(wanted) not in low:
                fail("contains", f"no {wanted!r}")
        for group in turn.contains_any:
            if not any(spec.squash(w) in low for w in group):
                fail("contains_any", f"none of {group!r}")
        for unwanted in turn.not_contains:
            if spec.squash(unwanted) in low:
                fail("not_contains", f"says {unwanted!r}")
        for entry in turn.faq:
            answer = spec.faq_answers()[entry].get(lang, "")
            if spec.squash(answer) not in spec.squash(reply):
                fail("faq", f"not the answer of {entry} (config/faq.yml, {lang})")
        for kind in turn.asks:
            if kind not in questions:
                fail("asks", f"does not ask for {kind}")
        for kind in turn.not_asks:
            if kind in questions:
                fail("not_asks", f"asks for {kind}: {questions[kind]!r}", turn.pattern or 3)
        if turn.time and not spec.has_time(reply):
            fail("time", "no concrete time or date", turn.pattern or 5)


async def _records_checks(checker: Checker, n: int, turn: Turn, said: str, reply: str, stack, who, marks,
                          handoff_state: str | None) -> None:
    own = turn.pattern or (checker.conv.patterns[0] if checker.conv.patterns else None)

    def fail(check: str, message: str) -> None:
        checker.fail(n, check, message, own, said, reply)

    if turn.handoff is not None:
        handed = handoff_state in ("waiting", "with_agent")
        if turn.handoff and not handed:
            fail("handoff", f"not handed to a person (state {handoff_state or 'none'})")
        if not turn.handoff and handed:
            fail("handoff", f"handed to a person (state {handoff_state}), expected the bot to go on")
    rec = turn.records
    if not rec:
        return
    tickets = [k for (k,) in stack_sql(stack, "select kind from tickets where customer_id = ? and id > ?",
                                       who["id"], marks["tickets"])]
    decisions = stack_sql(stack, "select kind, amount_cents, instalments from decisions where customer_id = ? "
                                 "and id > ?", who["id"], marks["decisions"])
    for kind in spec._as_list(rec.get("ticket")):
        if kind not in tickets:
            fail("records", f"no new {kind} ticket (new: {tickets or 'none'})")
    for kind in spec._as_list(rec.get("no_ticket")):
        if kind in tickets:
            fail("records", f"a {kind} ticket was made")
    for wanted in spec._as_list(rec.get("decision")):
        want = wanted if isinstance(wanted, dict) else {"kind": wanted}
        if not any(d[0] == want["kind"] and want.get("amount_cents", d[1]) == d[1]
                   and want.get("instalments", d[2]) == d[2] for d in decisions):
            fail("records", f"no decision {want} (new: {decisions or 'none'})")
    for kind in spec._as_list(rec.get("no_decision")):
        if any(d[0] == kind for d in decisions):
            fail("records", f"a {kind} decision was recorded")
    if {"preferred_channel", "consent", "email", "phone", "language"} & set(rec):
        [(channel, consent, email, phone, language)] = stack_sql(
            stack, "select preferred_channel, consent_proactive, email, phone, language from customers where id = ?",
            who["id"])
        now = {"preferred_channel": channel, "email": email, "phone": phone, "language": language}
        for name in ("preferred_channel", "email", "phone", "language"):
            if name in rec and now[name] != rec[name]:
                fail("records", f"{name} is {now[name]}, expected {rec[name]}")
        if "consent" in rec and bool(consent) != (rec["consent"] in (True, "yes")):
            fail("records", f"consent for messages is {bool(consent)}, expected {rec['consent']}")


CODE_PLACEHOLDER = re.compile(r"\{code\}")


async def play(conv: Conversation, stack, redis, *, open_chat=None, fake_twilio=None) -> Result:
    """Play `conv` against the running `stack` and check every reply."""
    who = persona(stack, conv.customer)
    await forget_persona(redis, stack.key_prefix, who)
    marks = high_water(stack)
    result = Result(conv)
    checker = Checker(conv)
    driver = (WebChatDriver(stack, open_chat, conv, who) if conv.channel == "webchat"
              else TwilioDriver(stack, fake_twilio, conv, who))
    started = time.monotonic()
    await driver.start()
    for n, turn in enumerate(conv.turns, 1):
        if turn.click is not None:
            payload = driver.button(turn.click)
            if payload is None:
                checker.fail(n, "click", f"no button {turn.click!r} in the last reply", turn.pattern, turn.shown,
                             result.turns[-1].reply if result.turns else "")
                result.aborted = f"turn {n}: no button {turn.click!r}"
                break
            said = payload
        else:
            said = turn.say
            if CODE_PLACEHOLDER.search(said):
                codes = stack_sql(stack, "select body, id from outbox where customer_id = ? and kind = 'one_time_code' "
                                         "and id > ? order by id desc limit 1", who["id"], marks["outbox"])
                if not codes:
                    checker.fail(n, "code", "the customer has no code to type: the bot sent none in this conversation",
                                 3 if turn.pattern is None else turn.pattern, said,
                                 result.turns[-1].reply if result.turns else "")
                    result.aborted = f"turn {n}: no one-time code was sent"
                    break
                said = CODE_PLACEHOLDER.sub(re.search(r"\b(\d{4})\b", codes[0][0]).group(1), said)
                await _delivered(stack, codes[0][1])  # the customer reads it on their phone first
        began = time.monotonic()
        try:
            messages = await driver.say(said)
        except (TimeoutError, asyncio.TimeoutError, AssertionError) as exc:
            checker.fail(n, "reply", f"no end of turn within {TURN_TIMEOUT:g} s ({type(exc).__name__})", 2,
                         said, "")
            result.aborted = f"turn {n}: no answer"
            break
        seconds = time.monotonic() - began
        reply = _text(messages)
        result.turns.append(TurnLog(turn.shown if turn.click else said, reply, seconds))
        checker.turn(n, turn, said, messages)
        state = None
        if turn.handoff is not None:
            key = await driver.conversation_key(redis, stack.key_prefix)
            raw = await redis.get(f"{stack.key_prefix}:handoff:{key}") if key else None
            state = (json.loads(raw).get("state") if raw else None)
        await _records_checks(checker, n, turn, said, reply, stack, who, marks, state)
    result.failures = checker.failures
    result.seconds = time.monotonic() - started
    await _codes_delivered(stack)
    return result


async def _delivered(stack, outbox_id: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        [(sent, channel)] = stack_sql(stack, "select sent_at, channel from outbox where id = ?", outbox_id)
        if sent or channel not in ("sms", "whatsapp", "telegram", "email"):
            return
        await asyncio.sleep(0.05)


async def _codes_delivered(stack, timeout: float = 10.0) -> None:
    """Wait until the outbox sent what the conversation queued (codes to phones), so nothing of
    this conversation is still being delivered when the next one starts from fresh records."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        [(waiting,)] = stack_sql(stack, "select count(*) from outbox where sent_at is null and channel in "
                                        "('sms', 'whatsapp', 'telegram', 'email')")
        if not waiting:
            return
        await asyncio.sleep(0.1)


# -- the report ------------------------------------------------------------------------------------

def _rate(passed: int, total: int) -> str:
    return f"{passed}/{total} ({100 * passed / total:.0f}%)" if total else "-"


def _quote(text: str, limit: int = 600) -> str:
    text = text if len(text) <= limit else text[:limit] + " …"
    return "\n".join("> " + line if line else ">" for line in (text or "(nothing)").splitlines())


def report(results: list[Result], *, wall_seconds: float | None = None, commit: str = "", model: str = "",
           known: dict[str, str] | None = None) -> str:
    """docs/conversations.md: the pass rate overall, per language, per pattern and per topic, and
    for every failing conversation the turn, the check and the bot's actual reply."""
    known = known or {}
    total = len(results)
    passed = sum(r.passed for r in results)
    turns = sum(len(r.turns) for r in results)
    play_seconds = sum(r.seconds for r in results)
    lines = [
        "# Dialogue test suite: whole conversations through the running gateway",
        "",
        "Produced by `scripts/conversations_report.py` (the same conversations and checks as",
        "`tests/test_conversations.py`; the format: [tests/conversations/README.md](../tests/conversations/README.md)).",
        "Every conversation is played through the real gateway (web chat over socket.io, or WhatsApp/SMS",
        "through the Twilio webhook) with the trained model, the action server, Redis and the demo",
        "shop's records, each from freshly loaded records. Bar (issue 11): at least 95% of the",
        "conversations pass. A conversation passes when every check of every turn holds: its own",
        "(the data from the records, FAQ answers, a concrete time, a handoff, what was recorded) and",
        "the global ones (a reply; no dead end; the customer's language; nothing asked that was",
        "already given or answered; no empty or meaningless value).",
        "",
        f"- Date: {datetime.now().strftime('%Y-%m-%d %H:%M')}" + (f"; commit `{commit}`" if commit else "")
        + (f"; model `{model}`" if model else ""),
        f"- {total} conversations, {turns} turns played; playing them took {play_seconds:.0f} s"
        + (f" ({wall_seconds:.0f} s with restoring fresh records before each)" if wall_seconds else "")
        + (f"; median turn {sorted(t.seconds for r in results for t in r.turns)[turns // 2] * 1000:.0f} ms"
           if turns else "") + WALL_MARK,
        "",
        f"- Baseline: {BASELINE}",
        "",
        "## Pass rate",
        "",
        "| | conversations | passed |",
        "|---|---|---|",
        f"| **all** | {total} | **{_rate(passed, total)}** |",
    ]
    for lang in spec.LANGUAGES:
        mine = [r for r in results if r.conversation.language == lang]
        lines.append(f"| {lang} | {len(mine)} | {_rate(sum(r.passed for r in mine), len(mine))} |")
    lines += ["", "## Per pattern (issue 11)", "",
              "A conversation exercises the patterns it lists; a failure is attributed to the pattern of",
              "the check that failed (the language check: 4, asked twice: 3, a dead end inside a question: 2,",
              "no time: 5, an empty value: 7; the turn's own checks: the turn's or the conversation's pattern).",
              "",
              "| pattern | conversations exercising it | of those passed | failing conversations whose first failure is this pattern | failed checks (all) |",
              "|---|---|---|---|---|"]
    for number, what in spec.PATTERNS.items():
        mine = [r for r in results if number in r.conversation.patterns]
        first = sum(1 for r in results if r.failures and r.failures[0].pattern == number)
        every = sum(1 for r in results for f in r.failures if f.pattern == number)
        lines.append(f"| {number}. {what} | {len(mine)} | {_rate(sum(r.passed for r in mine), len(mine))} | "
                     f"{first} | {every} |")
    topics = sorted({r.conversation.topic for r in results})
    lines += ["", "## Per topic", "", "| topic | conversations | passed |", "|---|---|---|"]
    for topic in topics:
        mine = [r for r in results if r.conversation.topic == topic]
        lines.append(f"| {topic or '-'} | {len(mine)} | {_rate(sum(r.passed for r in mine), len(mine))} |")

    failing = [r for r in results if not r.passed]
    lines += ["", "## Failing conversations, by pattern of the first failure", ""]
    if not failing:
        lines.append("None.")
    for number in [*spec.PATTERNS, None]:
        group = [r for r in failing if r.failures[0].pattern == number]
        if not group:
            continue
        lines += [f"### {number}. {spec.PATTERNS[number]}" if number else "### (no pattern)", ""]
        for r in group:
            why = f"{known[r.conversation.id]}; first failed check: " if r.conversation.id in known else ""
            lines.append(f"- `{r.conversation.id}`: {why}{r.summary()}")
        lines.append("")
    lines += ["## Details of the failing conversations", ""]
    for r in failing:
        c = r.conversation
        lines += [f"### `{c.id}` ({c.language}, {c.customer}, {c.channel}, {c.source})", ""]
        if c.summary:
            lines += [c.summary, ""]
        if c.id in known:
            lines += [f"What goes wrong: {known[c.id]}", ""]
        for f in r.failures:
            lines += [f"- turn {f.turn}, `{f.check}` (pattern {f.pattern or '-'}): {f.message}"]
        first = r.failures[0]
        lines += ["", f"Turn {first.turn}, the customer: `{first.said}`", "", "The bot:", "", _quote(first.reply), ""]
        if r.aborted:
            lines += [f"Stopped at {r.aborted}.", ""]
    passing = [r for r in results if r.passed]
    lines += ["## Passing conversations", ""]
    lines += [f"- `{r.conversation.id}`" for r in passing] or ["None."]
    lines.append("")
    return "\n".join(lines)


def transcripts_json(results: list[Result]) -> str:
    """Every conversation as it went: each turn's message, reply and time, and the failures."""
    return json.dumps([{
        "id": r.conversation.id, "passed": r.passed, "seconds": round(r.seconds, 2), "aborted": r.aborted,
        "turns": [{"customer": t.said, "bot": t.reply, "seconds": round(t.seconds, 2)} for t in r.turns],
        "failures": [{"turn": f.turn, "check": f.check, "pattern": f.pattern, "message": f.message}
                     for f in r.failures],
    } for r in results], ensure_ascii=False, indent=1)


def known_failures_yaml(results: list[Result], previous: dict[str, str] | None = None) -> str:
    """tests/conversations/known_failures.yml for these results: the failing conversations, each with
    why. A reason already written for a conversation that still fails is kept (people write them);
    a new one gets its first failed check."""
    previous = previous or {}
    lines = ["# Conversations the bot does not pass yet, each with what goes wrong (tests/test_conversations.py",
             "# runs them as xfail (not strict): one that passes shows as XPASS until it is taken out of this list).",
             "# Regenerate with: .venv/bin/python scripts/conversations_report.py --update-known-failures",
             "# (it drops the conversations that pass, adds new failures with their first failed check, and",
             "# keeps the reasons written here).",
             "known_failures:"]
    for r in results:
        if not r.passed:
            reason = previous.get(r.conversation.id) or r.summary().replace("\n", " ")
            lines.append(f"  {r.conversation.id}: {json.dumps(reason, ensure_ascii=False)}")
    if len(lines) == 6:
        lines[-1] = "known_failures: {}"
    return "\n".join(lines) + "\n"


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def new_id() -> str:
    return uuid.uuid4().hex
