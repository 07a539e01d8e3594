"""Kept, renewed and broken promises per kind, queue and week, with the median and p90 delay of
the broken ones: one computation from the database for the desk's API
(`GET /desk/api/reports/promises?from=&to=`) and the CLI (`python -m bot.reports promises`).

A promise counts in the week (ISO week, in the service's time zone) of its deadline. The delay of
a broken promise: from its deadline to the answer that came (its own, or the one of the promise
that renewed it), or to `now` while none has come ("still waiting" counts as late as it is).
Open promises are counted too (not yet decided), never as kept.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo
from typing import Any, Iterable

from bot.promises import state

STATUSES = ("open", "kept", "renewed", "broken")


@dataclass(frozen=True)
class Period:
    start: date  # first day, inclusive
    end: date    # last day, inclusive

    def bounds(self, tz: tzinfo) -> tuple[datetime, datetime]:
        return (datetime.combine(self.start, time(0), tz),
                datetime.combine(self.end + timedelta(days=1), time(0), tz))


def percentile(values: list[float], share: float) -> float | None:
    """Nearest-rank percentile (p50 = the median of an odd count; p90 of 10 values = the 9th)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(share * len(ordered)))
    return ordered[rank - 1]


def week_of(moment: datetime, tz: tzinfo) -> str:
    year, week, _ = moment.astimezone(tz).isocalendar()
    return f"{year}-W{week:02d}"


def _answer_times(promises: Iterable[Any]) -> dict[int, datetime]:
    """For every promise: when the answer came, its own or that of the promise renewing it."""
    by_id = {p.id: p for p in promises}
    successor = {p.renewed_from: p for p in by_id.values() if p.renewed_from}
    answers: dict[int, datetime] = {}
    for promise in by_id.values():
        cursor, seen = promise, set()
        while cursor is not None and cursor.id not in seen:
            seen.add(cursor.id)
            if cursor.answered_at is not None:
                answers[promise.id] = cursor.answered_at
                break
            cursor = successor.get(cursor.id)
    return answers


def promise_figures(promises: list[Any], now: datetime, tz: tzinfo) -> dict[str, Any]:
    """The report of `promises` (Promise rows, aware datetimes): totals, per kind, per queue, per
    week and per (kind, queue, week), each with the counts per state, the share kept or renewed
    of the decided ones, and the median and p90 delay of the broken ones in minutes."""
    answers = _answer_times(promises)

    def empty() -> dict[str, Any]:
        return {"counts": dict.fromkeys(STATUSES, 0), "delays": []}

    groups: dict[str, dict[Any, dict[str, Any]]] = {"kind": defaultdict(empty), "queue": defaultdict(empty),
                                                    "week": defaultdict(empty), "rows": defaultdict(empty)}
    total = empty()
    for promise in promises:
        status = "open" if promise.status in state.UNSETTLED else promise.status
        if status not in STATUSES:
            continue
        week, queue = week_of(promise.deadline, tz), promise.queue or "-"
        delay = None
        if status == "broken":
            answered = answers.get(promise.id) or now
            delay = max(0.0, (answered - promise.deadline).total_seconds() / 60)
        for bucket in (total, groups["kind"][promise.kind], groups["queue"][queue], groups["week"][week],
                       groups["rows"][(promise.kind, queue, week)]):
            bucket["counts"][status] += 1
            if delay is not None:
                bucket["delays"].append(delay)

    def finish(bucket: dict[str, Any]) -> dict[str, Any]:
        counts, delays = bucket["counts"], bucket["delays"]
        decided = counts["kept"] + counts["renewed"] + counts["broken"]
        return {
            **counts, "total": sum(counts.values()),
            "kept_or_renewed_share": round((counts["kept"] + counts["renewed"]) / decided, 4) if decided else None,
            "broken_delay_median_minutes": _round(percentile(delays, 0.5)),
            "broken_delay_p90_minutes": _round(percentile(delays, 0.9)),
        }

    return {
        "total": finish(total),
        "by_kind": {k: finish(v) for k, v in sorted(groups["kind"].items())},
        "by_queue": {k: finish(v) for k, v in sorted(groups["queue"].items())},
        "by_week": {k: finish(v) for k, v in sorted(groups["week"].items())},
        "rows": [{"kind": k, "queue": q, "week": w, **finish(v)} for (k, q, w), v in sorted(groups["rows"].items())],
    }


WAIT_KIND = "handoff_wait"


def wait_figures(promises: list[Any]) -> dict[str, dict[str, Any]]:
    """Per queue, how long customers waited for a person: from the first promise of a wait
    (`handoff_wait`, not renewing another) to the answer that ended it (its own, or that of the
    promise that renewed it), with the median and p90 in minutes. A wait without an answer (the
    customer left, or still waits) counts as `not_answered`, never in the times."""
    answers = _answer_times(promises)
    waits: dict[str, list[float]] = defaultdict(list)
    unanswered: dict[str, int] = defaultdict(int)
    for promise in promises:
        if promise.kind != WAIT_KIND or promise.renewed_from is not None:
            continue
        queue = promise.queue or "-"
        answered = answers.get(promise.id)
        if answered is None:
            unanswered[queue] += 1
            continue
        waits[queue].append(max(0.0, (answered - promise.created_at).total_seconds() / 60))
    return {queue: {"waited": len(waits.get(queue, [])), "not_answered": unanswered.get(queue, 0),
                    "wait_median_minutes": _round(percentile(waits.get(queue, []), 0.5)),
                    "wait_p90_minutes": _round(percentile(waits.get(queue, []), 0.9))}
            for queue in sorted(set(waits) | set(unanswered))}


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


async def promise_report(records: Any, period: Period, now: datetime, tz: tzinfo) -> dict[str, Any]:
    start, end = period.bounds(tz)
    rows = await records.promises_between(start, end)
    return {"from": period.start.isoformat(), "to": period.end.isoformat(), **promise_figures(rows, now, tz)}


CSV_COLUMNS = ("kind", "queue", "week", "open", "kept", "renewed", "broken", "total", "kept_or_renewed_share",
               "broken_delay_median_minutes", "broken_delay_p90_minutes")


def as_csv(report: dict[str, Any]) -> str:
    import csv
    import io

    out = io.StringIO()
    writer = csv.DictWriter(out, CSV_COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in report["rows"]:
        writer.writerow({k: ("" if v is None else v) for k, v in row.items()})
    return out.getvalue()
