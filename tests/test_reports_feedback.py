"""The team's feedback report (bot/reports/feedback.py) against figures worked out by hand on
fixed data: the pure computation, the same rows through the database (SQLite and PostgreSQL),
the desk's API (supervisors only, filters, CSV per table) and the command line.

The fixed data (ROWS, SURVEYS): two ISO weeks, 2026-W45 (2-8 November) and 2026-W46 (9-15
November), in the service's time zone (Europe/Amsterdam).

    answer  week  nps ces csat channel  queue       served agent  topic             comment
    F1      W45   10  7   5    whatsapp general     bot    -      order_status      "Snel geholpen, top!"
    F2      W45   9   7   4    webchat  general     agent  anna   order_status
    F3      W45   8   5   -    whatsapp finance     agent  anna   invoice_question  (Sunday 23:30 local: still W45)
    F4      W46   7   4   -    sms      finance     agent  bram   invoice_question
    F5      W46   6   3   -    whatsapp complaints  agent  bram   complaint         "Duurde veel te lang"
    F6      W46   0   1   -    webchat  complaints  agent  (anonymous)  complaint   "=HYPERLINK(...)"
    F7      W46   -   2   2    sms      general     bot    -      order_status
    F8      W46   9   -   -    telegram general     agent  anna   order_status
    (F9: Monday 16 November 00:30 local, 15 November 23:30 UTC: after the period)

NPS answers 10, 9, 8, 7, 6, 0, 9: promoters 3 (10, 9, 9), passives 2 (8, 7), detractors 2 (6, 0):
NPS = 100 * (3 - 2) / 7 = 14.3. CES 7, 7, 5, 4, 3, 1, 2: 29 / 7 = 4.14, easy (5-7) 3 of 7.
CSAT 5, 4, 2: 3.67, satisfied (4-5) 2 of 3.

Surveys S1-S8 belong to F1-F8 (S6 is F6's, answered anonymously: no link, status answered;
S8 is linked by F8 but its status still says sent); S9 and S10 expired, S11 stopped, S12 failed
(never delivered: not sent). Sent 11, answered 8: response rate 8 / 11 = 0.7273.
"""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from datetime import date, datetime, timedelta, timezone
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest

from bot.reports.feedback import (
    Filters, as_csv, feedback_figures, feedback_report, nps_of, parse_filters, promises_per_queue,
)
from bot.reports.promises import Period, wait_figures
from bot.shared.settings import PROJECT_ROOT

AMS = ZoneInfo("Europe/Amsterdam")
PERIOD = Period(date(2026, 11, 2), date(2026, 11, 15))
NOW = datetime(2026, 11, 16, 9, 0, tzinfo=AMS)


def local(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=AMS)


# (id, created, week, nps, ces, csat, channel, queue, served_by, agent, topic, comment, anonymous, survey)
ROWS = [
    (1, local(2, 10), "2026-W45", 10, 7, 5, "whatsapp", "general", "bot", None, "order_status", "Snel geholpen, top!", False, 1),
    (2, local(4, 11), "2026-W45", 9, 7, 4, "webchat", "general", "agent", "anna", "order_status", "", False, 2),
    (3, local(8, 23, 30), "2026-W45", 8, 5, None, "whatsapp", "finance", "agent", "anna", "invoice_question", "", False, 3),
    (4, local(9, 9), "2026-W46", 7, 4, None, "sms", "finance", "agent", "bram", "invoice_question", "", False, 4),
    (5, local(10, 14), "2026-W46", 6, 3, None, "whatsapp", "complaints", "agent", "bram", "complaint",
     "Duurde veel te lang", False, 5),
    (6, local(11, 15), "2026-W46", 0, 1, None, "webchat", "complaints", "agent", None, "complaint",
     '=HYPERLINK("http://x.example","klik")', True, None),
    (7, local(12, 16), "2026-W46", None, 2, 2, "sms", "general", "bot", None, "order_status", "", False, 7),
    (8, local(15, 20), "2026-W46", 9, None, None, "telegram", "general", "agent", "anna", "order_status", "", False, 8),
    (9, local(16, 0, 30), "2026-W47", 0, 1, 1, "sms", "general", "bot", None, "order_status", "after the period", False, None),
]
# (id, sent, status, channel, queue, served_by, agent, topic)
SURVEYS = [
    (1, local(2, 9, 50), "answered", "whatsapp", "general", "bot", None, "order_status"),
    (2, local(4, 10, 50), "answered", "webchat", "general", "agent", "anna", "order_status"),
    (3, local(8, 23), "answered", "whatsapp", "finance", "agent", "anna", "invoice_question"),
    (4, local(9, 8, 50), "answered", "sms", "finance", "agent", "bram", "invoice_question"),
    (5, local(10, 13, 50), "answered", "whatsapp", "complaints", "agent", "bram", "complaint"),
    (6, local(11, 14, 50), "answered", "webchat", "complaints", "agent", "bram", "complaint"),
    (7, local(12, 15, 50), "answered", "sms", "general", "bot", None, "order_status"),
    (8, local(15, 19, 50), "sent", "telegram", "general", "agent", "anna", "order_status"),
    (9, local(13, 10), "expired", "webchat", "general", "agent", "anna", "order_status"),
    (10, local(13, 11), "expired", "webchat", "general", "bot", None, "order_status"),
    (11, local(14, 12), "stopped", "whatsapp", "finance", "agent", "bram", "invoice_question"),
    (12, local(14, 13), "failed", "sms", "general", "agent", "anna", "order_status"),
    (13, local(16, 9), "sent", "sms", "general", "bot", None, "order_status"),  # after the period
]


def answer(row) -> SimpleNamespace:
    (id, created, week, nps, ces, csat, channel, queue, served, agent, topic, comment, anon, survey) = row
    return SimpleNamespace(id=id, created_at=created, week=week, nps=nps, ces=ces, csat=csat, channel=channel,
                           queue=queue, served_by=served, agent=agent, topic=topic, comment=comment, anonymous=anon,
                           survey_id=survey, customer_number=None if anon else "K10001")


def survey(row) -> SimpleNamespace:
    id, sent, status, channel, queue, served, agent, topic = row
    return SimpleNamespace(id=id, sent_at=sent, status=status, channel=channel, queue=queue, served_by=served,
                           agent=agent, topic=topic)


def in_period(rows, at):
    start, end = PERIOD.bounds(AMS)
    return [r for r in rows if start <= getattr(r, at) < end]


def report(filters: Filters = Filters(), search: str = "") -> dict:
    return feedback_figures(in_period([answer(r) for r in ROWS], "created_at"),
                            in_period([survey(r) for r in SURVEYS], "sent_at"), PERIOD, AMS, filters, search)


def pick(row: dict, *keys: str) -> tuple:
    return tuple(row[k] for k in keys)


# -- the figures ----------------------------------------------------------------------------------

@pytest.mark.parametrize("scores, expected", [
    ([9], (100.0, 1, 0, 0)), ([8], (0.0, 0, 1, 0)), ([7], (0.0, 0, 1, 0)), ([6], (-100.0, 0, 0, 1)),
    ([6, 7, 8, 9], (0.0, 1, 2, 1)),           # the boundaries: 6 detracts, 7 and 8 are passive, 9 promotes
    ([10, 9, 9, 6], (50.0, 3, 0, 1)), ([0, 6, 7], (-66.7, 0, 1, 2)), ([], (None, 0, 0, 0)),
])
def test_nps_counts_9_and_10_as_promoters_7_and_8_as_passives_and_0_to_6_as_detractors(scores, expected):
    assert pick(nps_of(scores), "nps", "promoters", "passives", "detractors") == expected


def test_the_totals_are_the_hand_computed_ones():
    total = report()["total"]
    assert pick(total, "answers", "anonymous", "comments") == (8, 1, 3)
    assert pick(total, "nps", "nps_answers", "promoters", "passives", "detractors") == (14.3, 7, 3, 2, 2)
    assert pick(total, "ces_average", "ces_answers", "ces_easy_share") == (4.14, 7, 0.4286)
    assert pick(total, "csat_average", "csat_answers", "csat_satisfied_share") == (3.67, 3, 0.6667)
    assert pick(total, "sent", "answered", "response_rate") == (11, 8, 0.7273)


def test_the_weekly_trend_and_the_ces_distribution():
    r = report()
    # W45: NPS 10, 9, 8 = 2 promoters of 3: 66.7; CES (7 + 7 + 5) / 3; S1-S3 all answered
    # W46: NPS 7, 6, 0, 9 = (1 - 2) / 4: -25.0; CES (4 + 3 + 1 + 2) / 4; S4-S11: 5 of 8
    assert [pick(w, "week", "answers", "nps", "ces_average", "sent", "answered", "response_rate") for w in r["weeks"]] == [
        ("2026-W45", 3, 66.7, 6.33, 3, 3, 1.0), ("2026-W46", 5, -25.0, 2.5, 8, 5, 0.625)]
    assert [d["answers"] for d in r["ces_distribution"]] == [1, 1, 1, 1, 1, 0, 2]  # scores 1 .. 7
    assert [d["score"] for d in r["nps_distribution"]] == list(range(11))
    assert r["options"]["agent"] == ["anna", "bram"] and r["options"]["served_by"] == ["agent", "bot"]


def test_the_breakdowns_by_agent_and_by_bot_or_person():
    r = report()
    # anna: NPS 9, 8, 9 = 66.7; surveys S2, S3, S8, S9 (S12 failed): 3 of 4
    # bram: NPS 7, 6 = -50.0; surveys S4, S5, S6 (answered anonymously: his survey, not his score), S11: 3 of 4
    # "-" (the bot's, and the anonymous answer): NPS 10, 0 = 0.0; surveys S1, S7, S10: 2 of 3
    assert [pick(a, "agent", "answers", "nps", "sent", "answered", "response_rate") for a in r["breakdowns"]["agent"]] == [
        ("anna", 3, 66.7, 4, 3, 0.75), ("bram", 2, -50.0, 4, 3, 0.75), ("-", 3, 0.0, 3, 2, 0.6667)]
    assert [pick(s, "served_by", "answers", "nps", "ces_average") for s in r["breakdowns"]["served_by"]] == [
        ("agent", 6, 0.0, 4.0), ("bot", 2, 100.0, 4.5)]  # 9 8 7 6 0 9: 2 - 2; CES 7 5 4 3 1; bot: 10; CES 7, 2
    assert [(c["channel"], c["answers"]) for c in r["breakdowns"]["channel"]] == [
        ("sms", 2), ("telegram", 1), ("webchat", 2), ("whatsapp", 3)]
    assert [(t["topic"], t["nps"]) for t in r["breakdowns"]["topic"]] == [
        ("complaint", -100.0), ("invoice_question", 0.0), ("order_status", 100.0)]


def test_filters_narrow_every_figure_and_the_search_finds_comments():
    complaints = report(Filters(queue="complaints"))
    assert pick(complaints["total"], "answers", "nps", "sent", "answered") == (2, -100.0, 2, 2)
    whatsapp_people = report(Filters(channel="whatsapp", served_by="agent"))["total"]
    assert pick(whatsapp_people, "answers", "nps", "promoters", "passives", "detractors") == (2, -50.0, 0, 1, 1)
    assert report(Filters(agent="anna"))["total"]["anonymous"] == 0  # an anonymous answer has no agent
    r = report()
    assert [c["comment"] for c in r["comments"]] == [  # newest first
        '=HYPERLINK("http://x.example","klik")', "Duurde veel te lang", "Snel geholpen, top!"]
    anonymous = r["comments"][0]
    assert (anonymous["agent"], anonymous["customer_number"], anonymous["anonymous"], anonymous["nps"]) == (
        None, None, True, 0)
    found = report(search="LANG")
    assert (found["comments_found"], [c["nps"] for c in found["comments"]]) == (1, [6])


def test_csv_per_table_quotes_what_a_spreadsheet_would_run():
    r = report()
    rows = list(csv.DictReader(io.StringIO(as_csv(r, "weeks"))))
    assert [(w["week"], w["nps"], w["response_rate"]) for w in rows] == [("2026-W45", "66.7", "1.0"),
                                                                         ("2026-W46", "-25.0", "0.625")]
    comments = list(csv.DictReader(io.StringIO(as_csv(r, "comments"))))
    assert comments[0]["comment"] == "'=HYPERLINK(\"http://x.example\",\"klik\")" and comments[0]["anonymous"] == "yes"
    assert as_csv(r, "ces").splitlines() == ["score,answers", "1,1", "2,1", "3,1", "4,1", "5,1", "6,0", "7,2"]
    assert as_csv(r, "agent").splitlines()[0].startswith("agent,answers,nps,promoters,passives,detractors")
    with pytest.raises(ValueError):
        as_csv(r, "nope")


def test_filters_must_be_codes():
    assert parse_filters({"channel": "whatsapp", "queue": "", "served_by": "bot"}) == Filters(channel="whatsapp",
                                                                                             served_by="bot")
    for bad in ({"served_by": "robot"}, {"agent": "a b"}, {"topic": "x" * 65}, {"queue": "<script>"}):
        with pytest.raises(ValueError):
            parse_filters(bad)


def test_waits_per_queue_run_from_the_first_promise_to_the_answer():
    def p(id, queue, created, deadline, status, answered=None, renewed_from=None, kind="handoff_wait", channel="webchat"):
        return SimpleNamespace(id=id, kind=kind, queue=queue, status=status, created_at=created, deadline=deadline,
                               answered_at=answered, renewed_from=renewed_from, channel=channel)

    ten = local(9, 10)
    m = lambda n: ten + timedelta(minutes=n)  # noqa: E731
    promises = [
        p(1, "general", m(0), m(10), "kept", m(6)),                 # waited 6
        p(2, "general", m(0), m(5), "renewed"),                     # renewed by 3 ...
        p(3, "general", m(4), m(20), "kept", m(25), renewed_from=2),  # ... answered 25 after the first promise
        p(4, "general", m(60), m(70), "kept", m(62)),               # waited 2
        p(5, "general", m(90), m(95), "broken"),                    # left without an answer
        p(6, "finance", m(0), m(10), "kept", m(4), channel="sms"),  # waited 4
        p(7, "complaints", m(0), m(600), "open", kind="complaint"),  # not a wait
    ]
    waits = wait_figures(promises)
    assert waits == {  # general 2, 6, 25: median the 2nd, p90 the 3rd (nearest rank)
        "finance": {"waited": 1, "not_answered": 0, "wait_median_minutes": 4.0, "wait_p90_minutes": 4.0},
        "general": {"waited": 3, "not_answered": 1, "wait_median_minutes": 6.0, "wait_p90_minutes": 25.0}}
    rows = promises_per_queue(promises, NOW, AMS)
    assert [pick(r, "queue", "kept", "renewed", "broken", "open", "waited") for r in rows] == [
        ("complaints", 0, 0, 0, 1, 0), ("finance", 1, 0, 0, 0, 1), ("general", 3, 1, 1, 0, 3)]
    assert [r["queue"] for r in promises_per_queue(promises, NOW, AMS, Filters(channel="sms", agent="x"))] == ["finance"]


# -- the same rows through the database -------------------------------------------------------------

def utc(moment: datetime) -> datetime:
    return moment.astimezone(timezone.utc)  # what the records keep (SQLite keeps no offset)


async def fill(engine) -> dict:
    """ROWS and SURVEYS in the database, two handoff waits, and two customers on the watch-list
    (one reached out to, one with an open task). Returns the customers' ids."""
    from sqlalchemy.ext.asyncio import AsyncSession

    from bot.records.models import ChurnScore, Customer, Feedback, Promise, Survey, Ticket

    async with AsyncSession(engine, expire_on_commit=False) as s, s.begin():
        sanne = Customer(customer_number="K10001", name="Sanne de Vries", phone="+31612345601")
        pieter = Customer(customer_number="K10004", name="Pieter Bakker", phone="+31612345604")
        happy = Customer(customer_number="K10009", name="Anouk Visser")
        s.add_all([sanne, pieter, happy])
        await s.flush()
        for id, sent, status, channel, queue, served, agent, topic in SURVEYS:
            s.add(Survey(id=id, customer_id=sanne.id, conversation=f"c{id}", channel=channel, language="nl",
                         queue=queue, topic=topic, served_by=served, agent=agent, trigger="close", status=status,
                         sent_at=utc(sent)))
        await s.flush()
        for (id, created, week, nps, ces, csat, channel, queue, served, agent, topic, comment, anon, sid) in ROWS:
            s.add(Feedback(id=id, customer_id=None if anon else sanne.id, survey_id=sid, nps=nps, ces=ces, csat=csat,
                           comment=comment, channel=channel, queue=queue, topic=topic, served_by=served, agent=agent,
                           anonymous=anon, week=week, created_at=utc(created), conversation=None if anon else f"c{id}"))
        start = utc(local(9, 10))
        s.add(Promise(kind="handoff_wait", text="t", deadline=start + timedelta(minutes=10), queue="general",
                      channel="whatsapp", status="kept", created_at=start, answered_at=start + timedelta(minutes=7)))
        s.add(Promise(kind="handoff_wait", text="t", deadline=start + timedelta(minutes=10), queue="general",
                      channel="sms", status="broken", created_at=start, answered_at=start + timedelta(minutes=31)))
        reasons = [{"code": "open_complaint", "weight": 15, "nl": "open klacht", "en": "open complaint"},
                   {"code": "paid_late", "weight": 10, "nl": "te laat betaald", "en": "paid late"}]
        s.add_all([ChurnScore(customer_id=pieter.id, score=80, reasons=reasons),
                   ChurnScore(customer_id=sanne.id, score=25, reasons=reasons[:1]),
                   ChurnScore(customer_id=happy.id, score=0, reasons=[])])
        s.add(Ticket(customer_id=pieter.id, kind="reach_out", status="closed", details="churn 80",
                     data={"reasons": ["churn 80"], "done_by": "marieke", "note": "Gebeld, bon aangeboden"},
                     created_at=utc(local(10, 9)), closed_at=utc(local(10, 11))))
        s.add(Ticket(customer_id=sanne.id, kind="reach_out", status="open", details="churn 25", data={},
                     created_at=utc(local(14, 9))))
    if engine.dialect.name == "postgresql":  # ids given by hand: move the sequences past them
        async with engine.begin() as conn:
            for table in ("surveys", "feedback"):
                await conn.exec_driver_sql(f"SELECT setval('{table}_id_seq', (SELECT max(id) FROM {table}))")
    return {"sanne": sanne.id, "pieter": pieter.id}


async def test_the_report_from_the_database_has_the_same_figures_the_waits_and_the_watch_list(engine):
    from bot.records.repository import Records

    await fill(engine)
    r = await feedback_report(Records(engine), PERIOD, NOW, AMS)
    expected = report()
    for key in ("total", "weeks", "breakdowns", "ces_distribution", "comments_found"):
        assert r[key] == expected[key], key
    assert [c["customer_number"] for c in r["comments"]] == [None, "K10001", "K10001"]
    [general] = r["promises"]
    assert pick(general, "queue", "kept", "broken", "waited", "wait_median_minutes", "wait_p90_minutes") == (
        "general", 1, 1, 2, 7.0, 31.0)
    assert [(c["customer_number"], c["score"], c["level"]) for c in r["churn"]] == [("K10004", 80, "high"),
                                                                                   ("K10001", 25, "medium")]
    pieter = r["churn"][0]
    assert [x["en"] for x in pieter["reasons"]] == ["open complaint", "paid late"]
    assert pick(pieter["tasks"][0], "status", "done_by", "note") == ("closed", "marieke", "Gebeld, bon aangeboden")
    assert r["churn"][1]["last_feedback"]["nps"] == 0  # Sanne's last named answer: F9 (the list is of now)
    churn = list(csv.DictReader(io.StringIO(as_csv(r, "churn", "en"))))
    assert pick(churn[0], "customer_number", "score", "reasons") == ("K10004", "80", "open complaint; paid late")
    assert churn[0]["done"].endswith("(marieke): Gebeld, bon aangeboden")
    assert churn[1]["done"].startswith("task open since 2026-11-14")
    filtered = await feedback_report(Records(engine), PERIOD, NOW, AMS, Filters(channel="sms"))
    assert [(p["queue"], p["broken"], p["waited"]) for p in filtered["promises"]] == [("general", 1, 1)]


# -- the command line ---------------------------------------------------------------------------------

def cli(url: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "DATABASE_URL": url, "BOT_FIXED_NOW": NOW.isoformat()}
    return subprocess.run([sys.executable, "-m", "bot.reports", "feedback", *args], cwd=PROJECT_ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


def run_main(monkeypatch, capsys, url: str, *args: str) -> str:
    """The command line in this process (fast); `cli` starts it as `python -m bot.reports`."""
    from bot.reports.__main__ import main

    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("BOT_FIXED_NOW", NOW.isoformat())
    assert main(["feedback", *args]) == 0
    return capsys.readouterr().out


@pytest.fixture
def filled_sqlite(tmp_path):
    """A migrated SQLite database with the fixed rows (synchronous: the migrations run their own loop)."""
    import asyncio

    from bot.records.migrate import upgrade
    from bot.shared.db import create_engine

    url = f"sqlite:///{tmp_path / 'reports.db'}"
    upgrade(url)

    async def load() -> None:
        engine = create_engine(url)
        try:
            await fill(engine)
        finally:
            await engine.dispose()

    asyncio.run(load())
    return url


def test_the_command_line_prints_the_same_figures_as_json_csv_and_a_table(filled_sqlite, monkeypatch, capsys):
    done = cli(filled_sqlite, "--from", "2026-11-02", "--to", "2026-11-15", "--format", "json")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert pick(data["total"], "nps", "ces_average", "response_rate") == (14.3, 4.14, 0.7273)
    period = ("--from", "2026-11-02", "--to", "2026-11-15")
    out = run_main(monkeypatch, capsys, filled_sqlite, *period, "--served-by", "bot", "--format", "csv", "--table", "served_by")
    assert [row["served_by"] for row in csv.DictReader(io.StringIO(out))] == ["bot"]
    out = run_main(monkeypatch, capsys, filled_sqlite, *period, "--search", "lang")
    assert "NPS 14.3 (promoters 3, passives 2, detractors 2 of 7)" in out
    [w46] = [line.split() for line in out.splitlines() if line.startswith("2026-W46")]
    assert w46 == ["2026-W46", "5", "-25", "2.5", "2", "8", "5", "62%"]  # answers NPS CES CSAT sent answered rate
    assert "comments: 1 with 'lang'" in out and "K10004 Pieter Bakker" in out
    # default period: the 28 days up to today (BOT_FIXED_NOW: Monday 16 November): F1-F8 and F9
    assert json.loads(run_main(monkeypatch, capsys, filled_sqlite, "--format", "json"))["total"]["answers"] == 9
    with pytest.raises(SystemExit, match="--agent"):
        run_main(monkeypatch, capsys, filled_sqlite, "--agent", "a b")


# -- the desk's API -----------------------------------------------------------------------------------

@pytest.fixture
async def desk(filled_sqlite, redis_url):
    import secrets

    from bot.desk.auth import Agents
    from bot.gateway.keys import RECORDS
    from tests.support.desk_api import PASSWORD, Browser, start
    from tests.support.stack import delete_prefix

    before = os.environ.get("DATABASE_URL")
    prefix = "rp" + secrets.token_hex(4)
    server = await start(filled_sqlite, redis_url, prefix)
    browsers = []

    async def login(role: str) -> Browser:
        username = f"{role.replace('_', '')}{secrets.token_hex(3)}"
        await Agents(server.app[RECORDS]).create(username=username, name=f"Anna {role}", role=role,
                                                 skills=("general",), languages=("nl", "en"), ui_language="nl",
                                                 password=PASSWORD)
        b = Browser(str(server.make_url("")).rstrip("/"))
        browsers.append(b)
        assert (await b.login(username, PASSWORD)).status == 303
        return b

    yield login
    for b in browsers:
        await b.close()
    await server.close()
    if before is None:
        os.environ.pop("DATABASE_URL", None)
    else:
        os.environ["DATABASE_URL"] = before
    delete_prefix(redis_url, prefix)


PATH = "/desk/api/reports/feedback?from=2026-11-02&to=2026-11-15"


async def test_the_api_is_for_supervisors_and_filters_like_the_module(desk):
    for role in ("agent", "senior_agent"):
        status, body = await (await desk(role)).get(PATH)
        assert (status, body["error"]) == (403, "reports_forbidden")
    boss = await desk("supervisor")
    status, r = await boss.get(PATH)
    assert status == 200 and r["total"] == report()["total"] and r["weeks"] == report()["weeks"]
    status, r = await boss.get(PATH + "&queue=complaints&q=lang")
    assert status == 200 and pick(r["total"], "answers", "nps") == (2, -100.0)
    assert [c["comment"] for c in r["comments"]] == ["Duurde veel te lang"] and r["filters"] == {"queue": "complaints"}
    status, r = await boss.get(PATH + "&agent=bram&served_by=agent&topic=complaint&channel=whatsapp")
    assert status == 200 and pick(r["total"], "answers", "nps", "sent") == (1, -100.0, 1)
    for bad in ("&served_by=robot", "&agent=%3Cb%3E", "&format=csv&table=secrets", "&q=" + "x" * 101):
        status, body = await boss.get(PATH + bad)
        assert (status, body["error"]) == (400, "bad_field"), bad
    for bad in ("from=yesterday", "from=2026-11-20&to=2026-11-15"):
        status, body = await boss.get(f"/desk/api/reports/feedback?{bad}")
        assert (status, body["error"]) == (400, "bad_field"), bad
    status, body = await boss.get("/desk/api/reports/feedback?from=2025-01-01&to=2026-11-15")
    assert status == 400 and "366" in body["message"]


async def test_every_table_downloads_as_csv(desk):
    from bot.reports.feedback import TABLES

    boss = await desk("supervisor")
    for table in TABLES:
        async with boss.http.get(f"{PATH}&format=csv&table={table}&lang=en") as r:
            assert r.status == 200 and r.headers["Content-Type"].startswith("text/csv"), table
            assert r.headers["Content-Disposition"] == f'attachment; filename="feedback-{table}-2026-11-02-2026-11-15.csv"'
            text = await r.text()
        assert text.splitlines()[0].split(",")[0] == {"weeks": "week", "ces": "score", "comments": "at",
                                                      "churn": "customer_number", "promises": "queue"}.get(table, table)
    async with boss.http.get(f"{PATH}&format=csv&table=agent&served_by=agent") as r:
        assert [row["agent"] for row in csv.DictReader(io.StringIO(await r.text()))] == ["anna", "bram", "-"]
    async with boss.http.get(f"{PATH}&format=csv&table=churn&lang=en") as r:
        assert "open complaint; paid late" in await r.text()
