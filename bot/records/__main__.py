"""Command line for the customer records (DATABASE_URL; default SQLite under var/).

    python -m bot.records migrate                            bring the schema up to date
    python -m bot.records demo [--reset] [--today DATE]      load the demo data (once; --reset: start over)
    python -m bot.records import FILE [--kind customers|orders]
    python -m bot.records churn [--customer K10004] [--today DATE]
    python -m bot.records outbox [--last N]                  the latest messages to customers (demo codes)

Every command first applies the migrations (alembic, synchronous, before the event loop starts).
`import` prints one `line N: reason` per refused row (stderr) and a summary (stdout), and exits
with 1 when any row was refused.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import date
from pathlib import Path

from bot.db import create_engine
from bot.records.migrate import upgrade


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)") from None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bot.records", description="Customer records: "
                                     "migrations, demo data, import, churn scores (uses DATABASE_URL).")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("migrate", help="apply the schema migrations")
    demo = sub.add_parser("demo", help="load the demo data (does nothing when customers exist)")
    demo.add_argument("--reset", action="store_true",
                      help="first delete EVERY row of every records table, then load the demo")
    demo.add_argument("--today", type=_date, help="pretend today is this date (YYYY-MM-DD)")
    imp = sub.add_parser("import", help="import customers (CSV or JSON Lines) or orders (JSON Lines)")
    imp.add_argument("file", type=Path)
    imp.add_argument("--kind", choices=("customers", "orders"),
                     help="what the file holds (default: from the CSV header / each JSON line's keys)")
    churn = sub.add_parser("churn", help="compute and store the churn score of every customer")
    churn.add_argument("--customer", help="only this customer number")
    churn.add_argument("--today", type=_date, help="pretend today is this date (YYYY-MM-DD)")
    churn.add_argument("--top", type=int, default=10, help="how many of the highest scores to print")
    outbox = sub.add_parser("outbox", help="print the latest messages to customers (one-time codes in the demo), "
                                           "newest last, addresses masked")
    outbox.add_argument("--last", type=int, default=10, metavar="N", help="how many (default 10)")
    return parser


def mask(address: str) -> str:
    """Enough of an address to tell which customer's phone it is, not enough to copy it."""
    local, at, domain = address.partition("@")
    if at:
        return f"{local[:2]}{'*' * max(len(local) - 2, 1)}@{domain}"
    keep = 3 if len(address) > 8 else 1
    return address[:keep] + "*" * max(len(address) - keep - 2, 1) + address[-2:]


async def _outbox(args) -> int:
    from bot.records.repository import Records

    if args.last < 1:
        print("--last must be at least 1", file=sys.stderr)
        return 2
    engine = create_engine()
    try:
        rows = await Records(engine).outbox(limit=min(args.last, 1000))
    finally:
        await engine.dispose()
    if not rows:
        print("the outbox is empty")
        return 0
    for row in reversed(rows):  # oldest first: the newest code ends up just above the prompt
        at = row.created_at.strftime("%Y-%m-%d %H:%M:%S")
        state = "sent" if row.sent_at else "pending"
        text = " ".join(row.body.split())
        print(f"{at} UTC  {row.channel:<9} {mask(row.address):<24} {state:<8} {text}")
    return 0


async def _demo(args) -> int:
    from bot.records.demo import load_demo

    engine = create_engine()
    try:
        result = await load_demo(engine, today=args.today, reset=args.reset)
    finally:
        await engine.dispose()
    print(result["message"])
    for key, value in result.items():
        if key not in ("loaded", "message"):
            print(f"  {key:<20} {value}")
    return 0


async def _import(args) -> int:
    from bot.records.importer import import_file

    if not args.file.is_file():
        print(f"{args.file}: no such file", file=sys.stderr)
        return 2
    engine = create_engine()
    try:
        report = await import_file(engine, args.file, kind=args.kind)
    finally:
        await engine.dispose()
    for line, message in report.errors:
        print(f"line {line}: {message}", file=sys.stderr)
    print(f"{args.file}: {report.summary()}")
    return 1 if report.errors else 0


async def _churn(args) -> int:
    from sqlalchemy import select

    from bot.churn import refresh
    from bot.records.models import Customer

    engine = create_engine()
    try:
        customer_id = None
        async with engine.connect() as conn:
            names = {cid: (number, name) for cid, number, name in await conn.execute(
                select(Customer.id, Customer.customer_number, Customer.name))}
        if args.customer:
            customer_id = next((cid for cid, (number, _) in names.items() if number == args.customer), None)
            if customer_id is None:
                print(f"no customer {args.customer}", file=sys.stderr)
                return 2
        results = await refresh(engine, customer_id=customer_id, today=args.today)
    finally:
        await engine.dispose()
    print(f"churn scores stored for {len(results)} customer{'s' if len(results) != 1 else ''}")
    ranked = sorted(results.items(), key=lambda kv: (-kv[1].score, names[kv[0]][0]))
    for cid, result in ranked[: max(args.top, 1 if args.customer else 0)]:
        if result.score == 0 and not args.customer:
            break
        number, name = names[cid]
        print(f"  {number:<8} {name:<32} {result.score:>3} {result.level}")
        for reason in result.reasons:
            print(f"           +{reason['weight']:<3} {reason['en']}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    upgrade()  # sync (alembic runs its own event loop): DATABASE_URL or the default SQLite
    if args.command == "migrate":
        print("database schema is up to date")
        return 0
    runner = {"demo": _demo, "import": _import, "churn": _churn, "outbox": _outbox}[args.command]
    return asyncio.run(runner(args))


if __name__ == "__main__":
    sys.exit(main())
