"""Command line for the customer records (DATABASE_URL; default SQLite under var/).

    python -m bot.records migrate                            bring the schema up to date
    python -m bot.records demo [--reset] [--today DATE]      load the demo data (once; --reset: start over)
    python -m bot.records import FILE [--kind customers|orders]
    python -m bot.records churn [--customer K10004] [--today DATE]
    python -m bot.records export K10001 [--out FILE]         everything held about a customer (JSON)
    python -m bot.records erase K10001 [--yes]               erase a customer everywhere (GDPR)
    python -m bot.records erase --redis-only --customer-ref ID   finish an erase that ran without Redis
    python -m bot.records purge [--now ISO-TIME]             retention: old transcripts, old anonymous chats
    python -m bot.records outbox [--last N]                  the latest messages to customers (demo codes)

export, erase and purge reach the gateway's Redis through REDIS_URL and KEY_PREFIX (as the
gateway); without Redis they do the database part, say clearly that the Redis part was not done,
and exit with 3.

Every command first applies the migrations (alembic, synchronous, before the event loop starts).
`import` prints one `line N: reason` per refused row (stderr) and a summary (stdout), and exits
with 1 when any row was refused.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from datetime import date
from pathlib import Path

from bot.shared.db import create_engine
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
    export = sub.add_parser("export", help="one JSON bundle of everything held about a customer")
    export.add_argument("customer", help="customer number (K10001) or internal id")
    export.add_argument("--out", type=Path, help="write to this file (mode 0600) instead of stdout")
    erase = sub.add_parser("erase", help="erase a customer's personal data everywhere (GDPR art. 17)")
    erase.add_argument("customer", nargs="?", help="customer number (K10001) or internal id")
    erase.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    erase.add_argument("--redis-only", action="store_true",
                       help="only the Redis part of an earlier erase that ran without Redis")
    erase.add_argument("--customer-ref", type=int, help="with --redis-only: the customer_ref the erase printed")
    purge = sub.add_parser("purge", help="retention: delete old transcripts and old anonymous conversations")
    purge.add_argument("--now", type=_datetime, help="pretend it is this time (ISO 8601, UTC if no offset)")
    purge.add_argument("--transcript-days", type=int, help="keep transcripts this many days "
                       "(default TRANSCRIPT_RETENTION_DAYS or 365)")
    purge.add_argument("--provisional-days", type=int, help="keep anonymous conversations this many idle days "
                       "(default PROVISIONAL_RETENTION_DAYS or 30)")
    outbox = sub.add_parser("outbox", help="print the latest messages to customers (one-time codes in the demo), "
                                           "newest last, addresses masked")
    outbox.add_argument("--last", type=int, default=10, metavar="N", help="how many (default 10)")
    return parser


def _datetime(text: str):
    from datetime import datetime, timezone

    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a time (YYYY-MM-DDTHH:MM[:SS][+HH:MM])") from None
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


REDIS_MISSING = 3


async def _redis():
    """The gateway's Redis (REDIS_URL, KEY_PREFIX), or (None, prefix, why not)."""
    from redis.asyncio import Redis

    from bot.records.personal_redis import REDIS_ERRORS

    prefix = os.environ.get("KEY_PREFIX", "kb")
    rasa_prefix = os.environ.get("RASA_KEY_PREFIX")
    if rasa_prefix and rasa_prefix != prefix:
        print(f"WARNING: RASA_KEY_PREFIX ({rasa_prefix}) differs from KEY_PREFIX ({prefix}): Rasa trackers are "
              f"looked for under {prefix}:tracker:* only (bot/launch/run.py sets both the same)", file=sys.stderr)
    if not prefix.isalnum():
        return None, prefix, "KEY_PREFIX must be letters and digits only"
    url = os.environ.get("REDIS_URL")
    if not url:
        return None, prefix, "REDIS_URL is not set (use the gateway's, e.g. redis://127.0.0.1:6399/0 for make run)"
    redis = Redis.from_url(url, decode_responses=True, socket_timeout=10, socket_connect_timeout=5)
    try:
        await redis.ping()
    except REDIS_ERRORS as exc:
        await redis.close(close_connection_pool=True)
        return None, prefix, f"Redis at REDIS_URL is not reachable ({type(exc).__name__})"
    return redis, prefix, ""


async def _export(args) -> int:
    import json

    from bot.records.personal import NoSuchCustomer, export_customer

    redis, prefix, why = await _redis()
    engine = create_engine()
    try:
        bundle = await export_customer(engine, args.customer, redis, prefix)
    except NoSuchCustomer:
        print(f"no customer {args.customer}", file=sys.stderr)
        return 2
    finally:
        await engine.dispose()
        if redis is not None:
            await redis.close(close_connection_pool=True)
    if redis is None or not bundle["redis"].get("available"):
        bundle["redis"]["error"] = bundle["redis"].get("error") or why
    text = json.dumps(bundle, ensure_ascii=False, indent=2, sort_keys=False)
    if args.out:
        fd = os.open(args.out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text + "\n")
        print(f"{args.out}: export of {bundle['customer']['customer_number']} written", file=sys.stderr)
    else:
        print(text)
    if not bundle["redis"].get("available"):
        print(f"WARNING: the Redis part (conversation state, Rasa tracker) is NOT in this export: "
              f"{bundle['redis']['error']}", file=sys.stderr)
        return REDIS_MISSING
    return 0


async def _erase(args) -> int:
    from bot.records.personal import NoSuchCustomer, erase_customer, erase_redis_only

    actor = "cli:" + (os.environ.get("USER") or "admin")
    redis, prefix, why = await _redis()
    engine = create_engine()
    try:
        if args.redis_only:
            if args.customer_ref is None or redis is None:
                print("--redis-only needs --customer-ref and a reachable Redis" + (f": {why}" if why else ""),
                      file=sys.stderr)
                return 2
            try:
                done = await erase_redis_only(engine, args.customer_ref, redis, prefix, actor=actor[:64])
            except ValueError as exc:
                print(f"not done: {exc}", file=sys.stderr)
                return 2
            print(f"Redis part done for customer ref {args.customer_ref}: {done}")
            return 0
        if not args.customer:
            print("which customer? (python -m bot.records erase K10001)", file=sys.stderr)
            return 2
        if not args.yes:
            if not sys.stdin.isatty():
                print("refusing to erase without --yes (stdin is not a terminal)", file=sys.stderr)
                return 2
            answer = input(f"Erase ALL personal data of {args.customer}? This cannot be undone. "
                           f"Type the customer number again: ")
            if answer.strip().upper() != args.customer.strip().upper():
                print("not erased", file=sys.stderr)
                return 1
        try:
            result = await erase_customer(engine, args.customer, redis, prefix, actor_role="admin", actor=actor[:64])
        except NoSuchCustomer as exc:
            print(f"no customer {exc}", file=sys.stderr)
            return 2
    finally:
        await engine.dispose()
        if redis is not None:
            await redis.close(close_connection_pool=True)
    print(f"erased: erase id {result.erase_id} (customer ref {result.customer_ref})")
    for table, count in sorted(result.sql.items()):
        print(f"  deleted   {table:<20} {count}")
    for table, count in sorted(result.kept.items()):
        print(f"  anonymised {table:<19} {count}" + (f"  (now under {result.tombstone})"
                                                     if table == "invoices" and result.tombstone else ""))
    if result.redis is not None:
        print("  redis     " + ", ".join(f"{k} {v}" for k, v in sorted(result.redis.items())))
    print(f"  left: {result.residual_sql} database rows"
          + (f", {result.residual_redis} Redis keys" if result.residual_redis is not None else "")
          + " still hold one of the identifiers")
    if result.redis is None:
        print(f"SQL part done, Redis part NOT done: {why or result.redis_error}. Conversation state, bindings "
              f"and the Rasa tracker are still in Redis. Finish with REDIS_URL and KEY_PREFIX of the gateway:\n"
              f"  python -m bot.records erase --redis-only --customer-ref {result.customer_ref}", file=sys.stderr)
        return REDIS_MISSING
    return 0


async def _purge(args) -> int:
    from dataclasses import replace

    from bot.records.retention import RetentionConfig, purge

    config = RetentionConfig.from_env()
    if args.transcript_days:
        config = replace(config, transcript_days=args.transcript_days)
    if args.provisional_days:
        config = replace(config, provisional_days=args.provisional_days)
    redis, prefix, why = await _redis()
    engine = create_engine()
    try:
        result = await purge(engine, redis, prefix, config, now=args.now)
    finally:
        await engine.dispose()
        if redis is not None:
            await redis.close(close_connection_pool=True)
    print(f"transcript rows older than {config.transcript_days} days deleted: {result['transcript']}")
    if "provisional" in result:
        p = result["provisional"]
        print(f"anonymous conversations idle over {config.provisional_days} days deleted: {p['conversations']} "
              f"({p['keys']} Redis keys, {p['transcript']} transcript rows)")
        return 0
    print(f"Redis part NOT done (anonymous conversations): {why}", file=sys.stderr)
    return REDIS_MISSING


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

    from bot.policy.churn import refresh
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
    runner = {"demo": _demo, "import": _import, "churn": _churn, "export": _export, "erase": _erase,
              "purge": _purge, "outbox": _outbox}[args.command]
    return asyncio.run(runner(args))


if __name__ == "__main__":
    sys.exit(main())
