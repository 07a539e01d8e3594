"""Command line for the team's figures (DATABASE_URL; default SQLite under var/).

    python -m bot.reports promises [--from 2026-11-01] [--to 2026-11-30] [--format table|json|csv]
    python -m bot.reports feedback [--from ...] [--to ...] [--channel whatsapp] [--queue finance]
        [--agent anna] [--served-by bot|agent] [--topic complaint] [--search words]
        [--format table|json|csv] [--table weeks|channel|queue|agent|served_by|topic|ces|comments|promises|churn]

Default period: the last 28 days up to today (in the service's time zone).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from datetime import date, timedelta

from bot.policy.clock import from_env
from bot.records.migrate import upgrade
from bot.records.repository import Records
from bot.reports import feedback
from bot.reports.promises import Period, as_csv, promise_report
from bot.shared.db import create_engine


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)") from None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bot.reports", description="The team's figures from the records.")
    sub = parser.add_subparsers(dest="command", required=True)
    promises = sub.add_parser("promises", help="kept, renewed and broken promises per kind, queue and week")
    promises.add_argument("--from", dest="start", type=_date, help="first day (default: 27 days before --to)")
    promises.add_argument("--to", dest="end", type=_date, help="last day (default: today)")
    promises.add_argument("--format", choices=("table", "json", "csv"), default="table")
    answers = sub.add_parser("feedback", help="NPS, CES, CSAT and response rate per week and breakdown; comments; "
                                              "promises and waits per queue; the churn watch-list")
    answers.add_argument("--from", dest="start", type=_date, help="first day (default: 27 days before --to)")
    answers.add_argument("--to", dest="end", type=_date, help="last day (default: today)")
    for name in feedback.DIMENSIONS:
        answers.add_argument(f"--{name.replace('_', '-')}", dest=name, choices=feedback.SERVED_BY if name == "served_by" else None,
                             help="only what the bot or an agent served" if name == "served_by" else f"only this {name}")
    answers.add_argument("--search", default="", help="only comments containing these words")
    answers.add_argument("--format", choices=("table", "json", "csv"), default="table")
    answers.add_argument("--table", choices=feedback.TABLES, default="weeks", help="the table --format csv writes")
    answers.add_argument("--lang", choices=("nl", "en"), default="nl", help="language of the churn reasons")
    return parser


def table(report: dict) -> str:
    head = f"{'kind':<18}{'queue':<12}{'week':<10}{'open':>6}{'kept':>6}{'renew':>6}{'broken':>7}" \
           f"{'kept/ren.':>10}{'p50 late':>9}{'p90 late':>9}"
    lines = [f"promises {report['from']} .. {report['to']}", head]

    def fmt(value, width, unit=""):
        return f"{'-' if value is None else f'{value:g}{unit}':>{width}}"

    for row in report["rows"]:
        share = None if row["kept_or_renewed_share"] is None else round(100 * row["kept_or_renewed_share"])
        lines.append(f"{row['kind']:<18}{row['queue']:<12}{row['week']:<10}{row['open']:>6}{row['kept']:>6}"
                     f"{row['renewed']:>6}{row['broken']:>7}{fmt(share, 10, '%')}"
                     f"{fmt(row['broken_delay_median_minutes'], 9, 'm')}{fmt(row['broken_delay_p90_minutes'], 9, 'm')}")
    t = report["total"]
    share = None if t["kept_or_renewed_share"] is None else round(100 * t["kept_or_renewed_share"])
    lines.append(f"{'all':<40}{t['open']:>6}{t['kept']:>6}{t['renewed']:>6}{t['broken']:>7}{fmt(share, 10, '%')}"
                 f"{fmt(t['broken_delay_median_minutes'], 9, 'm')}{fmt(t['broken_delay_p90_minutes'], 9, 'm')}")
    return "\n".join(lines)


def _pct(value) -> str:
    return "-" if value is None else f"{round(100 * value)}%"


def _num(value) -> str:
    return "-" if value is None else f"{value:g}"


def feedback_table(report: dict, lang: str = "nl") -> str:
    """The feedback report as text: totals, weeks, each breakdown, promises per queue, watch-list."""
    t = report["total"]
    given = ", ".join(f"{k}={v}" for k, v in report["filters"].items())
    lines = [f"feedback {report['from']} .. {report['to']}" + (f" ({given})" if given else ""),
             f"NPS {_num(t['nps'])} (promoters {t['promoters']}, passives {t['passives']}, detractors {t['detractors']}"
             f" of {t['nps_answers']})  CES {_num(t['ces_average'])} of {t['ces_answers']}  "
             f"CSAT {_num(t['csat_average'])} of {t['csat_answers']}  "
             f"response rate {_pct(t['response_rate'])} ({t['answered']}/{t['sent']})",
             "CES " + "  ".join(f"{d['score']}:{d['answers']}" for d in report["ces_distribution"])]
    head = f"{'':<18}{'answers':>8}{'NPS':>8}{'CES':>6}{'CSAT':>6}{'sent':>6}{'answ.':>6}{'rate':>6}"

    def row(name: str, r: dict) -> str:
        return (f"{name[:17]:<18}{r['answers']:>8}{_num(r['nps']):>8}{_num(r['ces_average']):>6}"
                f"{_num(r['csat_average']):>6}{r['sent']:>6}{r['answered']:>6}{_pct(r['response_rate']):>6}")

    lines += ["", "week" + head[4:]] + [row(w["week"], w) for w in report["weeks"]]
    for dim in feedback.DIMENSIONS:
        lines += ["", dim + head[len(dim):]] + [row(r[dim], r) for r in report["breakdowns"][dim]]
    lines += ["", f"{'queue':<16}{'kept':>6}{'renew':>6}{'broken':>7}{'open':>6}{'waited':>7}{'p50 wait':>9}{'p90 wait':>9}"]
    for p in report["promises"]:
        lines.append(f"{p['queue'][:15]:<16}{p['kept']:>6}{p['renewed']:>6}{p['broken']:>7}{p['open']:>6}{p['waited']:>7}"
                     f"{_num(p['wait_median_minutes']) + 'm':>9}{_num(p['wait_p90_minutes']) + 'm':>9}")
    lines += ["", f"comments: {report['comments_found']}" + (f" with {report['search']!r}" if report["search"] else "")]
    for c in report["comments"][:10]:
        lines.append(f"  {c['at'][:10]} NPS {_num(c['nps'])} CES {_num(c['ces'])}: {c['comment'][:100]}")
    lines += ["", "churn watch-list"]
    for c in report["churn"][:20]:
        lines.append(f"  {c['customer_number']} {c['name'][:24]:<24} {c['score']:>3}  {feedback.done_text(c, lang)}")
    return "\n".join(lines)


async def _run(args: argparse.Namespace) -> str:
    clock = from_env()
    end = args.end or clock.today()
    start = args.start or end - timedelta(days=27)
    if start > end:
        raise SystemExit("--from lies after --to")
    if args.command == "feedback":
        try:
            filters = feedback.parse_filters(vars(args))
        except ValueError as exc:
            raise SystemExit(f"--{str(exc).replace('_', '-')}: not a code (letters, digits, _ - . @; served-by: bot or agent)")
    engine = create_engine()
    try:
        if args.command == "feedback":
            report = await feedback.feedback_report(Records(engine), Period(start, end), clock.now(), clock.tz,
                                                    filters, args.search)
        else:
            report = await promise_report(Records(engine), Period(start, end), clock.now(), clock.tz)
    finally:
        await engine.dispose()
    if args.format == "json":
        return json.dumps(report, indent=2, ensure_ascii=False)
    if args.command == "feedback":
        if args.format == "csv":
            return feedback.as_csv(report, args.table, args.lang).rstrip("\n")
        return feedback_table(report, args.lang)
    if args.format == "csv":
        return as_csv(report).rstrip("\n")
    return table(report)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    upgrade()
    print(asyncio.run(_run(args)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
