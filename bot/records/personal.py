"""Personal data: access (export) and erasure (GDPR articles 15 and 17), in SQL and in Redis.

`export_customer` gathers everything held about one customer into one JSON-able bundle;
`erase_customer` removes or anonymises it everywhere. Both are driven by the schema itself:

- every table is in `POLICY` (what erase does with a customer's rows) or in `NOT_PERSONAL`;
  a table that references customers (a `customer_id` column, or a foreign key to a table with
  one) and is in neither makes export and erase refuse to run (`CoverageError`), and the tests
  fail, so a new table is never silently forgotten;
- the rows "about" a customer are found generically: `customer_id = <id>`, rows whose foreign key
  points at such rows (order lines, payments), and rows of the customer's conversations
  (tables with a `conversation` column: transcript, promises, feedback);
- tables without either (`BY_SENDER`: the inbound `inbox`) are found by the sender's address
  (the customer's phone numbers, Telegram id and web chat session ids, from the records and from
  the Redis bindings and `webverified:` keys) and by their message text (while still pending)
  holding one of the customer's strong identifiers; pending messages too: they are the
  customer's own messages, so the erase means they are not answered any more.

Kept by law: invoices and their payments (Dutch fiscal retention, 7 years: art. 52 AWR). They are
moved to a fresh tombstone customer (`ERASED-<erase id>`, name `[erased]`, no email, phone,
postcode, Telegram or web login) and lose their link to the (deleted) order; amounts, dates,
invoice numbers and payment methods stay. Audit entries (who evaluated which decision) stay with
`customer_id` nulled and any identifier in them replaced by `[erased]`. Everything else is deleted.

Redis (bot/records/personal_redis.py) is done with the same identifiers; see there.

Logs carry ids only.
"""

from __future__ import annotations

import json
import logging
import secrets
from dataclasses import dataclass
from datetime import date, datetime, timezone
from typing import Any, Iterable

from sqlalchemy import String, Table, cast, delete, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.sql.sqltypes import JSON, Text

from bot.records import personal_redis
from bot.records.identifiers import Identifiers, Matcher
from bot.records.models import AuditEntry, Base

log = logging.getLogger(__name__)

FORMAT = "klantcontact-export/1"
TOMBSTONE_PREFIX = "ERASED-"
TOMBSTONE_NAME = "[erased]"

# What erase does with a customer's rows, per table.
#   delete     the rows are deleted
#   anonymise  kept by law or for accountability, without personal data (see the module's text)
#   keep       kept as they are: they hold no personal data and hang off an anonymised row
POLICY: dict[str, str] = {
    "customers": "delete",
    "contact_identities": "delete",
    "orders": "delete",
    "order_lines": "delete",
    "invoices": "anonymise",      # -> tombstone customer, order_id NULL (fiscal retention)
    "payments": "keep",           # dates, amounts, method: hang off the kept invoice
    "loyalty_accounts": "delete",
    "tickets": "delete",
    "decisions": "delete",
    "audit_log": "anonymise",     # customer_id NULL, identifiers in request/reason -> [erased]
    "contact_history": "delete",
    "one_time_codes": "delete",
    "outbox": "delete",
    "churn_scores": "delete",
    "transcript": "delete",
    "promises": "delete",
    "proactive_messages": "delete",
    "surveys": "delete",
    "feedback": "delete",
    "inbox": "delete",            # by sender address or identifiers in the message (BY_SENDER), pending too
}
# Tables without customer_id or conversation: rows found by the sender's address (exact) or by one
# of the customer's strong identifiers in a text/JSON column. table -> (address column, text column)
BY_SENDER: dict[str, tuple[str, str]] = {"inbox": ("address", "payload")}
# Tables that hold nothing about customers (agents are staff, rewards the shop's catalogue).
NOT_PERSONAL = {"rewards": "the shop's reward catalogue", "agents": "desk staff, not customers"}
# Columns left out of an export (secrets, not information about the person).
EXCLUDED_COLUMNS = {"one_time_codes": {"code_hash"}}


class CoverageError(RuntimeError):
    """A table references customers but has no erase policy."""


class NoSuchCustomer(LookupError):
    pass


# ----------------------------------------------------------------------------- the schema

def tables() -> dict[str, Table]:
    return {t.name: t for t in Base.metadata.sorted_tables}


def customer_tables() -> dict[str, Table]:
    """Tables with rows about a customer: a customer_id column, or (recursively) a foreign key to
    such a table. `customers` itself included."""
    found: dict[str, Table] = {"customers": Base.metadata.tables["customers"]}
    changed = True
    while changed:
        changed = False
        for table in Base.metadata.sorted_tables:
            if table.name in found:
                continue
            direct = "customer_id" in table.c
            via = any(fk.column.table.name in found for fk in table.foreign_keys)
            if direct or via:
                found[table.name] = table
                changed = True
    return found


def uncovered() -> list[str]:
    """Tables that would be forgotten: referencing customers without a policy, or unknown."""
    refs = customer_tables()
    out = [name for name in refs if name not in POLICY]
    out += [t.name for t in Base.metadata.sorted_tables if t.name not in POLICY and t.name not in NOT_PERSONAL
            and t.name not in out]
    # a policy that nothing can carry out: no customer_id, no conversation, no sender address
    out += [t.name for t in Base.metadata.sorted_tables if t.name in POLICY and t.name not in refs
            and "conversation" not in t.c and t.name not in BY_SENDER and t.name not in out]
    return sorted(out)


def check_coverage() -> None:
    missing = uncovered()
    if missing:
        raise CoverageError("no personal-data policy for table(s) " + ", ".join(missing)
                            + " (add them to POLICY or NOT_PERSONAL in bot/records/personal.py)")


def _parent_fk(table: Table, refs: dict[str, Table]):
    """(column, parent table) of a row-about-a-customer table without its own customer_id."""
    for fk in table.foreign_keys:
        if fk.column.table.name in refs and fk.column.table.name != table.name:
            return fk.parent, fk.column.table
    return None, None


def _rows_query(table: Table, customer_id: int, refs: dict[str, Table]):
    """SELECT of the table's rows about the customer (by customer_id or through a parent)."""
    if table.name == "customers":
        return table.c.id == customer_id
    if "customer_id" in table.c:
        return table.c.customer_id == customer_id
    column, parent = _parent_fk(table, refs)
    return column.in_(select(parent.c.id).where(_rows_query(parent, customer_id, refs)))


def _conversation_tables() -> list[Table]:
    return [t for t in Base.metadata.sorted_tables if "conversation" in t.c]


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return value


def _row(table: Table, row) -> dict[str, Any]:
    skip = EXCLUDED_COLUMNS.get(table.name, set())
    return {k: _jsonable(v) for k, v in row._mapping.items() if k not in skip}


# ----------------------------------------------------------------------------- identifiers

async def _customer(conn: AsyncConnection, number_or_id: str | int) -> Any:
    customers = Base.metadata.tables["customers"]
    if isinstance(number_or_id, int) or str(number_or_id).strip().isdigit():
        where = customers.c.id == int(number_or_id)
    else:
        where = customers.c.customer_number == str(number_or_id).strip().upper()
    row = (await conn.execute(select(customers).where(where))).first()
    if row is None:
        raise NoSuchCustomer(str(number_or_id))
    return row


async def identifiers(conn: AsyncConnection, customer) -> Identifiers:
    """The customer's identifiers and conversation keys, from the records."""
    t = tables()
    ids = Identifiers(customer.id)
    ids.add(customer.customer_number, customer.email, customer.telegram_user_id, customer.web_login_id)
    ids.add(customer.name, weak=True)
    ids.add_phone(customer.phone)
    ids.add_postcode(customer.postcode)
    ids.addresses |= {str(a) for a in (customer.phone, customer.telegram_user_id) if a}
    first = (customer.name or "").split()
    if first and not customer.customer_number.startswith(TOMBSTONE_PREFIX):
        ids.add(first[0], weak=True)
    for channel, address in await conn.execute(
            select(t["contact_identities"].c.channel, t["contact_identities"].c.address)
            .where(t["contact_identities"].c.customer_id == customer.id)):
        if channel in ("sms", "whatsapp"):
            ids.add_phone(address)
        else:
            ids.add(address)
        if address:
            ids.addresses.add(str(address))
    for number, tracking in await conn.execute(
            select(t["orders"].c.order_number, t["orders"].c.tracking_code).where(t["orders"].c.customer_id == customer.id)):
        ids.add(number, tracking)
    for address, in await conn.execute(select(t["outbox"].c.address).where(t["outbox"].c.customer_id == customer.id)):
        ids.add(address)
    for table in _conversation_tables():
        if "customer_id" in table.c:
            for conv, in await conn.execute(select(table.c.conversation).distinct()
                                            .where(table.c.customer_id == customer.id)):
                if conv:
                    ids.conversations.add(conv)
    return ids


async def _sender_rows(conn: AsyncConnection, table: Table, ids: Identifiers) -> list[Any]:
    """Primary keys of a BY_SENDER table's rows that are the customer's: sent from one of their
    addresses, or holding one of their strong identifiers (a message that names them)."""
    address_col, text_col = (table.c[name] for name in BY_SENDER[table.name])
    pk = list(table.primary_key.columns)[0]
    found: set[Any] = set()
    if ids.addresses:
        found |= {k for k, in await conn.execute(select(pk).where(address_col.in_(sorted(ids.addresses))))}
    strong = ids.strong_matcher()
    if strong.values:
        text = cast(text_col, String) if isinstance(text_col.type, JSON) else text_col
        likes = [func.lower(text).like(f"%{v.lower()}%") for v in strong.values]
        for start in range(0, len(likes), 50):  # a LIKE to narrow it down, the matcher to decide
            for key, value in await conn.execute(select(pk, text_col).where(or_(*likes[start:start + 50]))):
                if key not in found and strong.search(_text_of(value)):
                    found.add(key)
    return sorted(found)


def _text_of(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)


# ----------------------------------------------------------------------------- export

async def export_customer(engine: AsyncEngine, number_or_id: str | int, redis=None, prefix: str = "kb",
                          now: datetime | None = None) -> dict[str, Any]:
    """Everything held about a customer as one JSON-able dict. With `redis` (an asyncio Redis with
    decode_responses=True) the conversation state and the Rasa tracker are included."""

    check_coverage()
    now = now or datetime.now(timezone.utc)
    refs = customer_tables()
    async with engine.connect() as conn:
        customer = await _customer(conn, number_or_id)
        ids = await identifiers(conn, customer)
        redis_part: dict[str, Any] = {"available": False}
        if redis is not None:
            try:
                plan = await personal_redis.RedisState(redis, prefix).collect(ids)
                ids.conversations |= plan.conversations
                ids.addresses |= plan.addresses
                redis_part = {"available": True, **await personal_redis.RedisState(redis, prefix).dump(plan)}
            except personal_redis.REDIS_ERRORS as exc:
                redis_part = {"available": False, "error": type(exc).__name__}
        bundle_tables: dict[str, list[dict[str, Any]]] = {}
        for table in Base.metadata.sorted_tables:
            if table.name in BY_SENDER and table.name not in refs:
                keys = await _sender_rows(conn, table, ids)
                pk = list(table.primary_key.columns)[0]
                rows = await conn.execute(select(table).where(pk.in_(keys)).order_by(pk)) if keys else []
                bundle_tables[table.name] = [_row(table, r) for r in rows]
                continue
            if table.name not in refs and "conversation" not in table.c:
                continue
            where = _rows_query(table, customer.id, refs) if table.name in refs else None
            if "conversation" in table.c and ids.conversations:
                by_conv = table.c.conversation.in_(sorted(ids.conversations))
                if "customer_id" in table.c:
                    by_conv = by_conv & or_(table.c.customer_id.is_(None), table.c.customer_id == customer.id)
                where = by_conv if where is None else or_(where, by_conv)
            if where is None:
                continue
            order = [table.c.id] if "id" in table.c else list(table.primary_key.columns)
            rows = await conn.execute(select(table).where(where).order_by(*order))
            bundle_tables[table.name] = [_row(table, r) for r in rows]
    record = bundle_tables.pop("customers")[0]
    return {
        "format": FORMAT,
        "exported_at": now.isoformat(),
        "customer": record,
        "tables": bundle_tables,
        "conversations": sorted(ids.conversations),
        "redis": redis_part,
        "notes": {
            "one_time_codes": "code hashes left out (secrets, not information about you)",
            "rasa_trackers": "the bot's dialogue state per conversation (Rasa tracker), under redis.trackers",
            "inbox": "messages received from you (tables.inbox); the text is kept only until the message "
                     "is answered, then only when and from where it came (2 days, against duplicates)",
        },
    }


# ----------------------------------------------------------------------------- erase

@dataclass
class EraseResult:
    erase_id: str
    customer_ref: int               # the internal id the customer had (no meaning once erased)
    tombstone: str                  # customer number of the tombstone holding the kept invoices
    sql: dict[str, int]             # rows per table: deleted or anonymised
    kept: dict[str, int]            # rows kept anonymised (invoices, payments, audit_log)
    redis: dict[str, Any] | None    # None: Redis part not done
    redis_error: str | None = None
    residual_sql: int = 0           # identifiers still found in the database afterwards (expected 0)
    residual_redis: int | None = None
    conversations: int = 0

    @property
    def complete(self) -> bool:
        return self.redis is not None

    def as_dict(self) -> dict[str, Any]:
        return {"erase_id": self.erase_id, "customer_ref": self.customer_ref, "tombstone": self.tombstone,
                "sql": self.sql, "kept": self.kept, "redis": self.redis, "redis_error": self.redis_error,
                "residual_sql": self.residual_sql, "residual_redis": self.residual_redis,
                "conversations": self.conversations, "complete": self.complete}


async def _begin_write(conn: AsyncConnection) -> None:
    if conn.dialect.name == "sqlite":
        await conn.exec_driver_sql("BEGIN IMMEDIATE")
    else:
        await conn.begin()


async def _erase_sql(engine: AsyncEngine, customer_id: int, ids: Identifiers, erase_id: str,
                     actor_role: str, actor: str, now: datetime,
                     removed: dict[str, list[Any]] | None = None) -> tuple[str, dict[str, int], dict[str, int]]:
    """One transaction: invoices to a tombstone, audit anonymised, everything else deleted, the
    erase itself written to the audit log. `removed` gets the keys of the BY_SENDER rows deleted."""
    refs = customer_tables()
    t = tables()
    counts: dict[str, int] = {}
    kept: dict[str, int] = {}
    matcher = ids.matcher()
    tombstone_number = TOMBSTONE_PREFIX + erase_id[:12]
    async with engine.connect() as conn:
        await _begin_write(conn)
        try:
            customers = t["customers"]
            if conn.dialect.name == "postgresql":
                await conn.execute(select(customers.c.id).where(customers.c.id == customer_id).with_for_update())
            if (await conn.execute(select(customers.c.id).where(customers.c.id == customer_id))).first() is None:
                raise NoSuchCustomer(str(customer_id))
            # 1. conversation rows (transcript, promises, feedback), also those without customer_id
            convs = sorted(ids.conversations)
            for table in _conversation_tables():
                where = _rows_query(table, customer_id, refs) if table.name in refs else None
                if convs:
                    by_conv = table.c.conversation.in_(convs)
                    if "customer_id" in table.c:
                        by_conv = by_conv & or_(table.c.customer_id.is_(None), table.c.customer_id == customer_id)
                    where = by_conv if where is None else or_(where, by_conv)
                if where is not None and POLICY.get(table.name) == "delete":
                    counts[table.name] = (await conn.execute(delete(table).where(where))).rowcount
            # 1b. messages they sent (the inbox), found by their addresses and identifiers
            for name in BY_SENDER:
                if POLICY.get(name) == "delete":
                    counts[name] = len(await _delete_sender_rows(conn, t[name], ids, removed))
            # 2. kept by law: invoices to a tombstone customer (payments hang off them)
            invoices = t["invoices"]
            n_invoices = (await conn.execute(select(func.count()).select_from(invoices)
                                             .where(invoices.c.customer_id == customer_id))).scalar_one()
            if n_invoices:
                tombstone_id = (await conn.execute(insert(customers).values(
                    customer_number=tombstone_number, name=TOMBSTONE_NAME, preferred_channel="webchat",
                    language="nl", consent_proactive=False, segment="regular", created_at=now,
                ))).inserted_primary_key[0]
                n_payments = (await conn.execute(select(func.count()).select_from(t["payments"]).where(
                    t["payments"].c.invoice_id.in_(select(invoices.c.id).where(invoices.c.customer_id == customer_id))
                ))).scalar_one()
                await conn.execute(update(invoices).where(invoices.c.customer_id == customer_id)
                                   .values(customer_id=tombstone_id, order_id=None))
                kept["invoices"], kept["payments"] = n_invoices, n_payments
            else:
                tombstone_number = ""
            # 3. the audit log keeps who evaluated what, without the person
            audit = t["audit_log"]
            n_audit = 0
            for row in (await conn.execute(select(audit).where(audit.c.customer_id == customer_id))).all():
                await conn.execute(update(audit).where(audit.c.id == row.id).values(
                    customer_id=None, request=matcher.scrub(row.request), reason=matcher.scrub(row.reason),
                    actor=matcher.scrub(row.actor)))
                n_audit += 1
            kept["audit_log"] = n_audit
            # 4. everything else about the customer: children first
            for table in reversed(Base.metadata.sorted_tables):
                if table.name not in refs or table.name in counts or POLICY.get(table.name) != "delete":
                    continue
                counts[table.name] = (await conn.execute(
                    delete(table).where(_rows_query(table, customer_id, refs)))).rowcount
            # 5. the erase itself, without personal data
            await conn.execute(insert(audit).values(
                at=now, customer_id=None, actor_role=actor_role[:24], actor=actor[:64], decision="erase",
                request={"erase_id": erase_id, "customer_ref": customer_id, "deleted": counts, "kept": kept,
                         "tombstone": tombstone_number or None, "conversations": len(convs)},
                allowed=True, escalate_to=None,
                reason="personal data erased on request (GDPR art. 17); invoices and payments kept "
                       "anonymised for the fiscal retention period (7 years)",
            ))
            await conn.commit()
        except BaseException:
            await conn.rollback()
            raise
    return tombstone_number, counts, kept


async def _delete_conversations(engine: AsyncEngine, convs: Iterable[str], customer_id: int) -> int:
    """Rows of conversations found only in Redis (after the SQL part), without another customer."""
    convs = sorted(set(convs))
    if not convs:
        return 0
    n = 0
    async with engine.begin() as conn:
        for table in _conversation_tables():
            where = table.c.conversation.in_(convs)
            if "customer_id" in table.c:
                where = where & or_(table.c.customer_id.is_(None), table.c.customer_id == customer_id)
            n += (await conn.execute(delete(table).where(where))).rowcount
    return n


async def _delete_sender_rows(conn: AsyncConnection, table: Table, ids: Identifiers,
                              removed: dict[str, list[Any]] | None) -> list[Any]:
    keys = await _sender_rows(conn, table, ids)
    pk = list(table.primary_key.columns)[0]
    for start in range(0, len(keys), 500):
        await conn.execute(delete(table).where(pk.in_(keys[start:start + 500])))
    if removed is not None:
        removed.setdefault(table.name, []).extend(keys)
    return keys


async def _delete_messages(engine: AsyncEngine, ids: Identifiers, removed: dict[str, list[Any]]) -> dict[str, int]:
    """BY_SENDER rows (the inbox) that came in during the erase."""
    counts: dict[str, int] = {}
    async with engine.begin() as conn:
        for name in BY_SENDER:
            counts[name] = len(await _delete_sender_rows(conn, tables()[name], ids, removed))
    return counts


async def residual_sql(engine: AsyncEngine, matcher: Matcher) -> list[tuple[str, Any]]:
    """(table, primary key) of every row whose text holds one of the identifiers."""
    hits: list[tuple[str, Any]] = []
    if not matcher.values:
        return hits
    async with engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            cols = [c for c in table.c if isinstance(c.type, (String, Text, JSON))]
            if not cols:
                continue
            pk = list(table.primary_key.columns)[0]
            likes = []
            for col in cols:
                text = cast(col, String) if isinstance(col.type, JSON) else col
                likes += [func.lower(text).like(f"%{v.lower()}%") for v in matcher.values]
            rows = await conn.execute(select(table).where(or_(*likes)))
            for row in rows:
                if any(matcher.search(row._mapping[c.name]) for c in cols):
                    hits.append((table.name, row._mapping[pk.name]))
    return hits


async def erase_customer(engine: AsyncEngine, number_or_id: str | int, redis=None, prefix: str = "kb",
                         actor_role: str = "admin", actor: str = "cli", now: datetime | None = None) -> EraseResult:
    """Erase a customer everywhere. With `redis` None (or unreachable) only the SQL part is done
    (`result.redis` is None) and the rest can be finished with `erase_redis_only`."""

    check_coverage()
    now = now or datetime.now(timezone.utc)
    erase_id = secrets.token_hex(8)
    async with engine.connect() as conn:
        customer = await _customer(conn, number_or_id)
        if customer.customer_number.startswith(TOMBSTONE_PREFIX):
            raise NoSuchCustomer(f"{customer.customer_number} is already erased")
        ids = await identifiers(conn, customer)
    customer_id = customer.id
    state = personal_redis.RedisState(redis, prefix) if redis is not None else None
    redis_counts: dict[str, Any] | None = None
    redis_error = None
    removed: dict[str, list[Any]] = {}
    if state is not None:
        try:  # first pass: bindings gone, so new messages no longer reach the old conversation
            plan = await state.collect(ids)
            ids.conversations |= plan.conversations
            ids.addresses |= plan.addresses
            ids.add(*plan.addresses)
            redis_counts = await state.delete(plan)
        except personal_redis.REDIS_ERRORS as exc:
            redis_error, state = type(exc).__name__, None
    tombstone, counts, kept = await _erase_sql(engine, customer_id, ids, erase_id, actor_role, actor, now,
                                               removed=removed)
    if state is not None:
        try:  # second pass: what a turn in flight wrote meanwhile
            plan = await state.collect(ids)
            ids.conversations |= plan.conversations
            ids.addresses |= plan.addresses
            ids.add(*plan.addresses)
            second = await state.delete(plan)
            for k, v in second.items():
                if isinstance(v, int) and k != "conversations":
                    redis_counts[k] = redis_counts.get(k, 0) + v
            redis_counts["conversations"] = len(ids.conversations)
            # rows a turn in flight logged after the SQL part (to an old or a new conversation)
            counts["transcript"] = counts.get("transcript", 0) + await _delete_conversations(
                engine, ids.conversations, customer_id)
            # messages that came in meanwhile, and the done markers of every deleted message
            for name, n in (await _delete_messages(engine, ids, removed)).items():
                counts[name] = counts.get(name, 0) + n
            redis_counts["inbox_done"] = await state.forget_done(removed.get("inbox", []))
        except personal_redis.REDIS_ERRORS as exc:
            redis_error = type(exc).__name__
            redis_counts = None
    matcher = ids.matcher()
    result = EraseResult(erase_id, customer_id, tombstone, counts, kept, redis_counts, redis_error,
                         conversations=len(ids.conversations))
    result.residual_sql = len(await residual_sql(engine, matcher))
    if state is not None and redis_counts is not None:
        try:
            result.residual_redis = len(await state.residual(matcher))
            await state.announce(ids.conversations)
        except personal_redis.REDIS_ERRORS as exc:
            result.redis_error = type(exc).__name__
        async with engine.begin() as conn:
            await conn.execute(insert(tables()["audit_log"]).values(
                at=datetime.now(timezone.utc), customer_id=None, actor_role=actor_role[:24], actor=actor[:64],
                decision="erase_redis", allowed=True, escalate_to=None,
                request={"erase_id": erase_id, "customer_ref": customer_id, "redis": redis_counts,
                         "residual_redis": result.residual_redis},
                reason="conversation state, bindings and Rasa trackers erased",
            ))
    log.info("erase %s: customer ref %s, sql %s, kept %s, redis %s, residual sql %s redis %s", erase_id,
             customer_id, counts, kept, "done" if result.complete else f"NOT done ({redis_error})",
             result.residual_sql, result.residual_redis)
    return result


async def erase_redis_only(engine: AsyncEngine, customer_ref: int, redis, prefix: str = "kb",
                           actor_role: str = "admin", actor: str = "cli") -> dict[str, Any]:
    """The Redis part of an erase whose SQL part ran without Redis: found by the internal id
    (conversation hashes, the customer's key, handoff items, Rasa trackers) and the addresses
    those conversations were reached on."""

    customers = tables()["customers"]
    async with engine.connect() as conn:
        if (await conn.execute(select(customers.c.id).where(customers.c.id == int(customer_ref)))).first():
            # SQLite may give a deleted id to a new customer: never erase a live customer's state
            raise ValueError(f"customer ref {customer_ref} belongs to an existing customer")
    state = personal_redis.RedisState(redis, prefix)
    ids = Identifiers(int(customer_ref))
    plan = await state.collect(ids)
    ids.conversations |= plan.conversations
    ids.addresses |= plan.addresses
    ids.add(*plan.addresses)
    counts = await state.delete(plan)
    plan = await state.collect(ids)
    ids.conversations |= plan.conversations
    ids.addresses |= plan.addresses
    for k, v in (await state.delete(plan)).items():
        if isinstance(v, int) and k != "conversations":
            counts[k] = counts.get(k, 0) + v
    counts["conversations"] = len(ids.conversations)
    transcript = await _delete_conversations(engine, ids.conversations, int(customer_ref))
    removed: dict[str, list[Any]] = {}
    messages = await _delete_messages(engine, ids, removed)  # sent from the addresses Redis still knew
    counts["inbox_done"] = await state.forget_done(removed.get("inbox", []))
    await state.announce(ids.conversations)
    residual = len(await state.residual(ids.matcher()))
    async with engine.begin() as conn:
        await conn.execute(insert(AuditEntry.__table__).values(
            at=datetime.now(timezone.utc), customer_id=None, actor_role=actor_role[:24], actor=actor[:64],
            decision="erase_redis", allowed=True, escalate_to=None,
            request={"customer_ref": int(customer_ref), "redis": counts, "transcript": transcript,
                     "messages": messages, "residual_redis": residual},
            reason="conversation state, bindings and Rasa trackers erased (after an erase without Redis)",
        ))
    return {"redis": counts, "transcript": transcript, "messages": messages, "residual_redis": residual,
            "conversations": len(ids.conversations)}


__all__ = ["POLICY", "NOT_PERSONAL", "BY_SENDER", "CoverageError", "NoSuchCustomer", "EraseResult", "Identifiers", "Matcher",
           "check_coverage", "customer_tables", "uncovered", "export_customer", "erase_customer",
           "erase_redis_only", "residual_sql", "identifiers"]
