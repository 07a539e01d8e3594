"""What customers said after their conversations, and what was promised them: one computation
from the database for the desk's Reports view and API (`GET /desk/api/reports/feedback?from=&to=
&channel=&queue=&agent=&served_by=&topic=&q=`) and the CLI (`python -m bot.reports feedback`).
What every figure means: docs/reports.md.

- NPS = % promoters (9-10) - % detractors (0-6) of the answers with an NPS; 7-8 are passives.
- CES (1-7, higher is easier): the average of the answers with a CES, its distribution, and the
  share that found it easy (5-7).
- CSAT (1-5): the average, and the share satisfied (4-5).
- Response rate = surveys answered / surveys sent in the period (a survey that could not be
  delivered, status `failed`, was never sent). A survey counts as answered by its status
  (`answered`) or by a feedback row that points to it. Anonymous feedback has no link to its survey:
  it counts in every score (by its channel, queue, topic and who served, never by agent), and its
  survey in the response rate by its status.

Feedback counts in the period by when it was given (`created_at`) and in the week of its `week`
column (ISO week in the service's time zone, written with it); a survey by when it was sent.
Promises count by their deadline (bot/reports/promises.py); the filters on channel and queue
apply to them, the others do not (a promise is not about one agent or topic). The wait for a
person: from the first promise of a wait (`handoff_wait`) to the answer that ended it.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from dataclasses import dataclass, fields
from datetime import date, datetime, timedelta, tzinfo
from typing import Any, Iterable

from bot.policy.churn import ChurnResult
from bot.reports.promises import Period, promise_figures, wait_figures, week_of

DIMENSIONS = ("channel", "queue", "agent", "served_by", "topic")  # the filters and the breakdowns
SERVED_BY = ("bot", "agent")
NONE = "-"                         # a breakdown's key for "not known" (an anonymous answer's agent)
MAX_COMMENTS = 500                 # newest first
CHURN_MIN_SCORE = 1                # the watch-list: every customer with a churn signal
CHURN_LIMIT = 100
CHURN_TASKS = ("reach_out",)       # what was done: the reach-out tasks (bot/promises/proactive.py)
TABLES = ("weeks", *DIMENSIONS, "ces", "comments", "promises", "churn")


@dataclass(frozen=True)
class Filters:
    channel: str | None = None
    queue: str | None = None
    agent: str | None = None
    served_by: str | None = None
    topic: str | None = None

    def given(self) -> dict[str, str]:
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name)}

    def matches(self, row: Any, only: Iterable[str] = DIMENSIONS) -> bool:
        return all(getattr(row, name, None) == value for name, value in self.given().items() if name in only)


# ----------------------------------------------------------------------------- the figures

def nps_of(scores: list[int]) -> dict[str, Any]:
    """Promoters 9-10, passives 7-8, detractors 0-6; NPS = % promoters - % detractors (one decimal)."""
    promoters = sum(1 for s in scores if s >= 9)
    detractors = sum(1 for s in scores if s <= 6)
    passives = len(scores) - promoters - detractors
    nps = round(100 * (promoters - detractors) / len(scores), 1) if scores else None
    return {"nps": nps, "nps_answers": len(scores), "promoters": promoters, "passives": passives,
            "detractors": detractors}


def _average(values: list[int]) -> float | None:
    return round(sum(values) / len(values), 2) if values else None


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def figures(answers: list[Any], surveys: list[Any], answered_ids: set[int]) -> dict[str, Any]:
    """The figures of some feedback rows and the surveys sent for the same slice."""
    ces = [a.ces for a in answers if a.ces is not None]
    csat = [a.csat for a in answers if a.csat is not None]
    sent = [s for s in surveys if s.status != "failed"]
    answered = sum(1 for s in sent if s.status == "answered" or s.id in answered_ids)
    return {
        "answers": len(answers),
        "anonymous": sum(1 for a in answers if a.anonymous),
        "comments": sum(1 for a in answers if (a.comment or "").strip()),
        **nps_of([a.nps for a in answers if a.nps is not None]),
        "ces_average": _average(ces), "ces_answers": len(ces),
        "ces_easy_share": _share(sum(1 for v in ces if v >= 5), len(ces)),
        "csat_average": _average(csat), "csat_answers": len(csat),
        "csat_satisfied_share": _share(sum(1 for v in csat if v >= 4), len(csat)),
        "sent": len(sent), "answered": answered, "response_rate": _share(answered, len(sent)),
    }


def distribution(values: Iterable[int | None], low: int, high: int) -> list[dict[str, int]]:
    counts = dict.fromkeys(range(low, high + 1), 0)
    for value in values:
        if value is not None and low <= value <= high:
            counts[value] += 1
    return [{"score": score, "answers": n} for score, n in counts.items()]


def weeks_between(period: Period) -> list[str]:
    """Every ISO week that has a day in the period, in order."""
    weeks, day = [], period.start - timedelta(days=period.start.weekday())
    while day <= period.end:
        year, week, _ = day.isocalendar()
        weeks.append(f"{year}-W{week:02d}")
        day += timedelta(days=7)
    return weeks


def _key(row: Any, dimension: str) -> str:
    return getattr(row, dimension, None) or NONE


def feedback_figures(answers: list[Any], surveys: list[Any], period: Period, tz: tzinfo,
                     filters: Filters = Filters(), search: str = "") -> dict[str, Any]:
    """Everything of the report but the promises and the watch-list, from feedback rows and survey
    rows of the period (unfiltered: the filters are applied here, and the choices for them come
    from the whole period)."""
    answered_ids = {a.survey_id for a in answers if a.survey_id is not None}
    options = {d: sorted({getattr(r, d) for r in [*answers, *surveys] if getattr(r, d, None)}) for d in DIMENSIONS}
    answers = [a for a in answers if filters.matches(a)]
    surveys = [s for s in surveys if filters.matches(s)]

    def week_of_answer(a: Any) -> str:
        return a.week or week_of(a.created_at, tz)

    by_week_a: dict[str, list] = defaultdict(list)
    by_week_s: dict[str, list] = defaultdict(list)
    for a in answers:
        by_week_a[week_of_answer(a)].append(a)
    for s in surveys:
        by_week_s[week_of(s.sent_at, tz)].append(s)
    weeks = weeks_between(period)
    weeks += sorted(set(by_week_a) - set(weeks))  # a week column from another zone: still shown
    breakdowns = {}
    for dim in DIMENSIONS:
        keys = sorted({_key(r, dim) for r in [*answers, *surveys]}, key=lambda k: (k == NONE, k))
        breakdowns[dim] = [{dim: key, **figures([a for a in answers if _key(a, dim) == key],
                                                [s for s in surveys if _key(s, dim) == key], answered_ids)}
                           for key in keys]
    needle = search.strip().casefold()
    said = [a for a in answers if (a.comment or "").strip() and needle in a.comment.casefold()]
    said.sort(key=lambda a: (a.created_at, a.id), reverse=True)
    return {
        "from": period.start.isoformat(), "to": period.end.isoformat(),
        "filters": filters.given(), "options": options,
        "total": figures(answers, surveys, answered_ids),
        "ces_distribution": distribution((a.ces for a in answers), 1, 7),
        "csat_distribution": distribution((a.csat for a in answers), 1, 5),
        "nps_distribution": distribution((a.nps for a in answers), 0, 10),
        "weeks": [{"week": w, **figures(by_week_a.get(w, []), by_week_s.get(w, []), answered_ids)} for w in weeks],
        "breakdowns": breakdowns,
        "search": search.strip(),
        "comments_found": len(said),
        "comments": [comment_row(a) for a in said[:MAX_COMMENTS]],
    }


def comment_row(a: Any) -> dict[str, Any]:
    return {"at": a.created_at.isoformat(), "week": a.week, "ces": a.ces, "nps": a.nps, "csat": a.csat,
            "comment": a.comment.strip(), "channel": a.channel, "queue": a.queue, "topic": a.topic,
            "served_by": a.served_by, "agent": None if a.anonymous else a.agent, "anonymous": bool(a.anonymous),
            "customer_number": None if a.anonymous else getattr(a, "customer_number", None)}


# ----------------------------------------------------------------------------- promises and waits

def promises_per_queue(promises: list[Any], now: datetime, tz: tzinfo, filters: Filters = Filters()) -> list[dict]:
    """Kept, renewed and broken promises per queue, with the waits for a person in that queue."""
    promises = [p for p in promises if filters.matches(p, only=("channel", "queue"))]
    counts = promise_figures(promises, now, tz)["by_queue"]
    waits = wait_figures(promises)
    rows = []
    for queue in sorted(set(counts) | set(waits), key=lambda q: (q == NONE, q)):
        c = counts.get(queue) or {}
        w = waits.get(queue) or {}
        rows.append({"queue": queue, **{k: c.get(k, 0) for k in ("open", "kept", "renewed", "broken", "total")},
                     "kept_or_renewed_share": c.get("kept_or_renewed_share"),
                     "broken_delay_median_minutes": c.get("broken_delay_median_minutes"),
                     "waited": w.get("waited", 0), "not_answered": w.get("not_answered", 0),
                     "wait_median_minutes": w.get("wait_median_minutes"),
                     "wait_p90_minutes": w.get("wait_p90_minutes")})
    return rows


# ----------------------------------------------------------------------------- the churn watch-list

def churn_rows(watch: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for entry in watch:
        score, customer, answer = entry["score"], entry["customer"], entry["feedback"]
        tasks = [{"ticket": t.id, "status": t.status, "created_at": t.created_at.isoformat() if t.created_at else None,
                  "closed_at": t.closed_at.isoformat() if t.closed_at else None,
                  "done_by": (t.data or {}).get("done_by"), "note": (t.data or {}).get("note"),
                  "reasons": (t.data or {}).get("reasons") or ([t.details] if t.details else [])}
                 for t in entry["tasks"]]
        rows.append({
            "customer_number": customer.customer_number, "name": customer.name, "segment": customer.segment,
            "score": score.score, "level": ChurnResult(score=score.score).level,
            "reasons": [{"code": r.get("code"), "nl": r.get("nl"), "en": r.get("en")}
                        for r in (score.reasons or []) if isinstance(r, dict)],
            "tasks": tasks,
            "last_feedback": None if answer is None else {
                "at": answer.created_at.isoformat(), "ces": answer.ces, "nps": answer.nps, "csat": answer.csat},
        })
    return rows


def done_text(row: dict[str, Any], lang: str = "nl") -> str:
    """What was done for a customer on the watch-list, in words (the CSV and the CLI)."""
    parts = []
    for task in row["tasks"]:
        if task["status"] == "open":
            parts.append(("taak open sinds " if lang == "nl" else "task open since ") + (task["created_at"] or "")[:10])
        else:
            who = f" ({task['done_by']})" if task.get("done_by") else ""
            parts.append(f"{(task['closed_at'] or '')[:10]}{who}: {task.get('note') or '-'}")
    return "; ".join(parts) or ("niets" if lang == "nl" else "nothing")


# ----------------------------------------------------------------------------- from the database

async def feedback_report(records: Any, period: Period, now: datetime, tz: tzinfo, filters: Filters = Filters(),
                          search: str = "") -> dict[str, Any]:
    start, end = period.bounds(tz)
    report = feedback_figures(await records.feedback_between(start, end), await records.surveys_between(start, end),
                              period, tz, filters, search)
    report["promises"] = promises_per_queue(await records.promises_between(start, end), now, tz, filters)
    report["churn"] = churn_rows(await records.churn_watch(CHURN_MIN_SCORE, CHURN_LIMIT, CHURN_TASKS))
    return report


# ----------------------------------------------------------------------------- CSV, one table at a time

FIGURE_COLUMNS = ("answers", "nps", "promoters", "passives", "detractors", "nps_answers", "ces_average", "ces_answers",
                  "ces_easy_share", "csat_average", "csat_answers", "csat_satisfied_share", "sent", "answered",
                  "response_rate", "comments", "anonymous")
COMMENT_COLUMNS = ("at", "week", "nps", "ces", "csat", "comment", "channel", "queue", "topic", "served_by", "agent",
                   "anonymous", "customer_number")
PROMISE_COLUMNS = ("queue", "open", "kept", "renewed", "broken", "total", "kept_or_renewed_share",
                   "broken_delay_median_minutes", "waited", "not_answered", "wait_median_minutes", "wait_p90_minutes")
CHURN_COLUMNS = ("customer_number", "name", "segment", "score", "level", "reasons", "done", "last_nps", "last_ces")


def _cell(value: Any) -> Any:
    """A CSV cell; text that a spreadsheet would run as a formula (=, +, -, @) is quoted with '."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r") and value != NONE:
        return "'" + value
    return value


def table_rows(report: dict[str, Any], table: str, lang: str = "nl") -> tuple[tuple[str, ...], list[dict]]:
    """The columns and rows of one of the report's tables (TABLES)."""
    if table == "weeks":
        return ("week", *FIGURE_COLUMNS), report["weeks"]
    if table in DIMENSIONS:
        return (table, *FIGURE_COLUMNS), report["breakdowns"][table]
    if table == "ces":
        return ("score", "answers"), report["ces_distribution"]
    if table == "comments":
        return COMMENT_COLUMNS, report["comments"]
    if table == "promises":
        return PROMISE_COLUMNS, report["promises"]
    if table == "churn":
        return CHURN_COLUMNS, [{**row, "reasons": "; ".join(r.get(lang) or r.get("nl") or "" for r in row["reasons"]),
                                "done": done_text(row, lang),
                                "last_nps": (row["last_feedback"] or {}).get("nps"),
                                "last_ces": (row["last_feedback"] or {}).get("ces")} for row in report["churn"]]
    raise ValueError(f"unknown table {table!r} (one of {', '.join(TABLES)})")


def as_csv(report: dict[str, Any], table: str = "weeks", lang: str = "nl") -> str:
    columns, rows = table_rows(report, table, lang)
    out = io.StringIO()
    writer = csv.DictWriter(out, columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _cell(row.get(k)) for k in columns})
    return out.getvalue()


def parse_filters(values: dict[str, Any]) -> Filters:
    """Filters from query or command-line values; ValueError(name) for one that cannot be a code."""
    out = {}
    for name in DIMENSIONS:
        value = values.get(name)
        if value is None or value == "":
            continue
        value = str(value).strip()
        if len(value) > 64 or not all(ch.isalnum() or ch in "_-.@" for ch in value) or (
                name == "served_by" and value not in SERVED_BY):
            raise ValueError(name)
        out[name] = value
    return Filters(**out)


def default_period(today: date, start: date | None = None, end: date | None = None) -> Period:
    end = end or today
    return Period(start or end - timedelta(days=27), end)


__all__ = ["DIMENSIONS", "TABLES", "Filters", "as_csv", "churn_rows", "default_period", "feedback_figures",
           "feedback_report", "figures", "nps_of", "parse_filters", "promises_per_queue", "table_rows"]
