"""Command line for the team's figures (DATABASE_URL; default SQLite under var/).

    python -m bot.reports promises [--from 2026-11-01] [--to 2026-11-30] [--format table|json|csv]

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


async def _run(args: argparse.Namespace) -> str:
    clock = from_env()
    end = args.end or clock.today()
    start = args.start or end - timedelta(days=27)
    if start > end:
        raise SystemExit("--from lies after --to")
    engine = create_engine()
    try:
        report = await promise_report(Records(engine), Period(start, end), clock.now(), clock.tz)
    finally:
        await engine.dispose()
    if args.format == "json":
        return json.dumps(report, indent=2, ensure_ascii=False)
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
