"""Import a business's own customers and orders: CSV (customers) and JSON Lines (customers, orders).

    report = await import_file(engine, "customers.csv")              # kind inferred
    report = await import_file(engine, "orders.jsonl", kind="orders")
    report.created, report.updated, report.errors   # errors: [(line, message), ...]

Rules (the format itself is documented in docs/import-format.md):
- Every row is checked on its own and written all-or-nothing (a SAVEPOINT per row); a bad row is
  reported with its line number and reason and the good rows still land.
- Rows are matched on customer_number / order_number: importing the same file twice updates,
  never duplicates. A customer's contact identities (phone for sms and whatsapp, email,
  telegram, web login) follow the record: a changed phone number moves both identities.
- A column (CSV) or key (JSON) that is not there leaves the stored value alone; one that is
  there but empty clears it (required fields cannot be cleared).
- Line numbers: CSV counts the header as line 1 (a record with a quoted line break is reported
  at its first line); JSON Lines counts physical lines, blank lines included.
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Iterable, Iterator

from sqlalchemy import and_, delete, exc, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from bot.policy.clock import local_zone
from bot.shared.safe_input import encodable
from channels import registry
from bot.records.models import ContactIdentity, Customer, Order, OrderLine

CUSTOMER_FIELDS = ("customer_number", "name", "email", "phone", "postcode", "preferred_channel", "language",
                   "consent_proactive", "segment", "telegram_user_id", "web_login_id")
CUSTOMER_REQUIRED = ("customer_number", "name")
ORDER_FIELDS = ("order_number", "customer_number", "placed_at", "status", "carrier", "tracking_code",
                "promised_date", "delivered_at", "lines", "total")
ORDER_REQUIRED = ("order_number", "customer_number", "placed_at", "status", "lines")
LINE_FIELDS = ("sku", "description", "quantity", "unit_price")

CHANNELS = registry.names()
LANGUAGES = ("nl", "en")
SEGMENTS = ("new", "regular", "gold", "business")
STATUSES = ("placed", "shipped", "delivered", "cancelled", "returned")
CARRIERS = {c.lower(): c for c in ("PostNL", "DHL", "DPD", "UPS", "GLS", "Budbee")}
KINDS = {"customers": "customers", "customer": "customers", "orders": "orders", "order": "orders"}

MAX_EUROS = Decimal("1000000")   # per amount; beyond this it is a typo, not an order
MAX_QUANTITY = 10000
BATCH = 500                      # rows per transaction (a savepoint per row inside it)


class RowError(ValueError):
    """One row cannot be imported; the message says why (several reasons joined by '; ')."""


@dataclass
class ImportReport:
    kind: str | None = None                       # customers, orders, or mixed (JSON Lines)
    created: int = 0
    updated: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)
    counts: dict[str, dict[str, int]] = field(default_factory=dict)  # kind -> {"created", "updated"}

    @property
    def ok(self) -> bool:
        return not self.errors

    def count(self, kind: str, what: str) -> None:
        setattr(self, what, getattr(self, what) + 1)
        per = self.counts.setdefault(kind, {"created": 0, "updated": 0})
        per[what] += 1

    def summary(self) -> str:
        parts = [f"{k}: {v['created']} created, {v['updated']} updated" for k, v in sorted(self.counts.items())]
        if not parts:
            parts = ["nothing imported"]
        refused = len(self.errors)
        tail = f"{refused} row{'s' if refused != 1 else ''} refused" if refused else "no errors"
        return "; ".join(parts) + f"; {tail}"


# ============================================================================ field parsers

PHONE_LENGTHS = {"31": (9, 9), "44": (9, 10), "353": (7, 9), "32": (8, 9), "49": (6, 13)}  # national digits
_PHONE_JUNK = re.compile(r"[\s\-./()]")


def normalize_phone(raw: Any) -> str:
    """A phone number in E.164 (+316...). Dutch national numbers (06..., 020...) get +31;
    +44, +353 and other international numbers are accepted; anything else is a ValueError."""
    if raw is None or isinstance(raw, bool):
        raise ValueError("phone number missing")
    text = str(raw).strip()
    compact = _PHONE_JUNK.sub("", text)
    if compact.startswith("00"):
        compact = "+" + compact[2:]
    hint = "write it as +31612345678, 0612345678 or +447700900123"
    if compact.startswith("+"):
        digits = compact[1:]
        if not digits.isdigit() or digits.startswith("0"):
            raise ValueError(f"{text!r} is not a phone number ({hint})")
        for cc, (low, high) in PHONE_LENGTHS.items():
            if digits.startswith(cc):
                national = digits[len(cc):]
                if national.startswith("0"):        # +31 (0)6 ..., +44 (0)7700 ...
                    national = national[1:]
                if not (low <= len(national) <= high) or national.startswith("0"):
                    raise ValueError(f"{text!r} has the wrong number of digits for +{cc} ({hint})")
                return f"+{cc}{national}"
        if not 8 <= len(digits) <= 15:
            raise ValueError(f"{text!r} has the wrong number of digits ({hint})")
        return "+" + digits
    if compact.isdigit() and compact.startswith("0") and len(compact) == 10 and compact[1] != "0":
        return "+31" + compact[1:]
    raise ValueError(f"{text!r} is not a phone number ({hint})")


_EMAIL = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
                    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*\.[A-Za-z]{2,}$")
_POSTCODE = re.compile(r"^([1-9][0-9]{3})\s?([A-Za-z]{2})$")
_CUSTOMER_NUMBER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,19}$")
_ORDER_NUMBER = re.compile(r"^[0-9]{6}$")
_TRACKING = re.compile(r"^[A-Za-z0-9-]{4,64}$")
_TRUE = {"true", "1", "yes", "y", "ja", "j", "waar"}
_FALSE = {"false", "0", "no", "n", "nee", "onwaar"}


def _text(value: Any) -> str | None:
    """None for missing/empty; numbers become text (JSON 700100 -> "700100")."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not text")
    if isinstance(value, (int, float)):
        value = str(value)
    if not isinstance(value, str):
        raise ValueError(f"{value!r} is not text")
    if "\x00" in value or not encodable(value):  # PostgreSQL refuses NUL; a lone surrogate has no UTF-8
        raise ValueError("contains a NUL byte or a character with no UTF-8 form")
    value = value.strip()
    return value or None


def normalize_email(raw: str) -> str:
    if len(raw) > 254 or not _EMAIL.match(raw):
        raise ValueError(f"{raw!r} is not an email address")
    return raw.lower()  # matched case-insensitively everywhere: stored in lower case


def normalize_postcode(raw: str) -> str:
    match = _POSTCODE.match(raw)
    if not match:
        raise ValueError(f"{raw!r} is not a Dutch postcode (like 1234 AB)")
    return f"{match.group(1)} {match.group(2).upper()}"


def parse_bool(raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, int) and raw in (0, 1):
        return bool(raw)
    if isinstance(raw, str) and raw.strip().lower() in _TRUE | _FALSE:
        return raw.strip().lower() in _TRUE
    raise ValueError(f"{raw!r} is not true or false (true/false, yes/no, ja/nee, 1/0)")


def parse_money(raw: Any) -> int:
    """Euros (12.50, "12,50", "€ 12.50", 12) -> cents; at least 0, at most 2 decimals."""
    if raw is None or isinstance(raw, bool):
        raise ValueError(f"{raw!r} is not an amount in euros")
    if isinstance(raw, int):
        amount = Decimal(raw)
    elif isinstance(raw, float):
        amount = Decimal(repr(raw))
    elif isinstance(raw, str):
        text = raw.strip().replace("€", "").replace("EUR", "").strip()
        if "," in text and "." in text:
            raise ValueError(f"{raw!r}: write amounts without thousands separators, like 1234.56")
        if not re.fullmatch(r"-?[0-9]+([.,][0-9]+)?", text):
            raise ValueError(f"{raw!r} is not an amount in euros (like 12.50)")
        amount = Decimal(text.replace(",", "."))
    else:
        raise ValueError(f"{raw!r} is not an amount in euros")
    try:
        if not amount.is_finite():
            raise InvalidOperation
    except InvalidOperation:
        raise ValueError(f"{raw!r} is not an amount in euros") from None
    if amount < 0:
        raise ValueError(f"{raw!r} is negative; amounts must be 0 or more")
    if amount > MAX_EUROS:
        raise ValueError(f"{raw!r} is more than €{MAX_EUROS:,}")
    if amount != amount.quantize(Decimal("0.01")):
        raise ValueError(f"{raw!r} has more than 2 decimals")
    return int((amount * 100).to_integral_value())


def parse_date(raw: Any) -> date:
    text = _text(raw)
    if text is None:
        raise ValueError("date missing")
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a date (YYYY-MM-DD)") from None


def parse_datetime(raw: Any) -> datetime:
    """ISO date or date-time -> aware UTC. No zone: local time (config/service_levels.yml); a date alone: 12:00 local time."""
    text = _text(raw)
    if text is None:
        raise ValueError("date/time missing")
    try:
        if len(text) == 10:
            value = datetime.combine(date.fromisoformat(text), time(12))
        else:
            value = datetime.fromisoformat(text.replace(" ", "T", 1))
    except ValueError:
        raise ValueError(f"{text!r} is not a date or date-time (YYYY-MM-DD or YYYY-MM-DDTHH:MM)") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=local_zone())
    return value.astimezone(timezone.utc)


def _as_utc(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:  # SQLite hands times back without a zone
        return value.replace(tzinfo=timezone.utc)
    return value


# ============================================================================ row validation

def _choice(value: str, allowed: Iterable[str], what: str) -> str:
    lowered = value.lower()
    if lowered not in allowed:
        raise ValueError(f"{what} {value!r} is not one of {', '.join(allowed)}")
    return lowered


def validate_customer(row: dict[str, Any]) -> dict[str, Any]:
    """Checked and normalised values for the keys present in the row (None = clear it).

    Raises RowError listing every problem found."""
    problems: list[str] = []
    unknown = [k for k in row if k not in CUSTOMER_FIELDS]
    if unknown:
        problems.append(f"unknown field{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))} "
                        f"(known: {', '.join(CUSTOMER_FIELDS)})")
    out: dict[str, Any] = {}
    for key in CUSTOMER_FIELDS:
        if key not in row:
            if key in CUSTOMER_REQUIRED:
                problems.append(f"{key} is required")
            continue
        raw = row[key]
        try:
            if key == "consent_proactive":
                out[key] = None if raw is None or (isinstance(raw, str) and not raw.strip()) else parse_bool(raw)
                continue
            value = _text(raw)
            if value is None:
                if key in CUSTOMER_REQUIRED:
                    raise ValueError(f"{key} is required")
                out[key] = None
                continue
            if key == "customer_number":
                if not _CUSTOMER_NUMBER.match(value):
                    raise ValueError(f"customer_number {value!r} must be 1-20 letters, digits, - or _")
            elif key == "name":
                if len(value) > 200:
                    raise ValueError("name is longer than 200 characters")
            elif key == "email":
                value = normalize_email(value)
            elif key == "phone":
                value = normalize_phone(value)
            elif key == "postcode":
                value = normalize_postcode(value)
            elif key == "preferred_channel":
                value = _choice(value, CHANNELS, "preferred_channel")
            elif key == "language":
                value = _choice(value, LANGUAGES, "language")
            elif key == "segment":
                value = _choice(value, SEGMENTS, "segment")
            elif key == "telegram_user_id":
                if not value.isdigit() or len(value) > 32:
                    raise ValueError(f"telegram_user_id {value!r} must be the numeric Telegram user id")
            elif key == "web_login_id":
                if len(value) > 64 or any(ch.isspace() for ch in value):
                    raise ValueError(f"web_login_id {value!r} must be at most 64 characters without spaces")
            out[key] = value
        except ValueError as err:
            message = str(err)
            problems.append(message if message.startswith(key) else f"{key}: {message}")
    if problems:
        raise RowError("; ".join(problems))
    return out


def _line(raw: Any, index: int) -> tuple[dict[str, Any], list[str]]:
    where = f"lines[{index}]"
    if not isinstance(raw, dict):
        return {}, [f"{where} must be an object with {', '.join(LINE_FIELDS)}"]
    problems, out = [], {}
    unknown = [k for k in raw if k not in LINE_FIELDS]
    if unknown:
        problems.append(f"{where}: unknown field {', '.join(map(repr, unknown))}")
    for key, limit in (("sku", 40), ("description", 200)):
        try:
            value = _text(raw.get(key))
        except ValueError as err:
            problems.append(f"{where}.{key}: {err}")
            continue
        if value is None:
            problems.append(f"{where}.{key} is required")
        elif len(value) > limit:
            problems.append(f"{where}.{key} is longer than {limit} characters")
        else:
            out[key] = value
    quantity = raw.get("quantity", 1)
    if isinstance(quantity, str) and quantity.strip().isdigit():
        quantity = int(quantity.strip())
    if isinstance(quantity, bool) or not isinstance(quantity, int) or not 1 <= quantity <= MAX_QUANTITY:
        problems.append(f"{where}.quantity {quantity!r} must be a whole number from 1 to {MAX_QUANTITY}")
    else:
        out["quantity"] = quantity
    if "unit_price" not in raw:
        problems.append(f"{where}.unit_price is required")
    else:
        try:
            out["unit_price_cents"] = parse_money(raw["unit_price"])
        except ValueError as err:
            problems.append(f"{where}.unit_price: {err}")
    return out, problems


def validate_order(row: dict[str, Any]) -> dict[str, Any]:
    """Checked, normalised values for the keys present in the row (None = clear it), "total"
    always (the sum of the lines when absent). Raises RowError listing every problem found.
    Checks between fields (status vs delivered_at, ...) follow in check_order(), on the
    record as it will be stored."""
    row = {k: (v.strip() if isinstance(v, str) else v) for k, v in row.items()}
    problems: list[str] = []
    unknown = [k for k in row if k not in ORDER_FIELDS]
    if unknown:
        problems.append(f"unknown field{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))} "
                        f"(known: {', '.join(ORDER_FIELDS)})")
    for key in ORDER_REQUIRED:
        if row.get(key) in (None, "", []):
            problems.append(f"{key} is required" if key != "lines" else "lines is required (at least one line)")
    out: dict[str, Any] = {}

    def check(key, fn):
        if key not in row:
            return
        if row[key] in (None, ""):
            out[key] = None
            return
        try:
            out[key] = fn(row[key])
        except ValueError as err:
            message = str(err)
            problems.append(message if message.startswith(key) else f"{key}: {message}")

    def order_number(raw):
        value = _text(raw)
        if not _ORDER_NUMBER.match(value):
            raise ValueError(f"order_number {value!r} must be 6 digits")
        return value

    def customer_number(raw):
        value = _text(raw)
        if not _CUSTOMER_NUMBER.match(value):
            raise ValueError(f"customer_number {value!r} must be 1-20 letters, digits, - or _")
        return value

    def carrier(raw):
        value = _text(raw)
        if value.lower() not in CARRIERS:
            raise ValueError(f"carrier {value!r} is not one of {', '.join(CARRIERS.values())}")
        return CARRIERS[value.lower()]

    def tracking(raw):
        value = _text(raw)
        if not _TRACKING.match(value):
            raise ValueError(f"tracking_code {value!r} must be 4-64 letters, digits or -")
        return value

    check("order_number", order_number)
    check("customer_number", customer_number)
    check("placed_at", parse_datetime)
    check("status", lambda raw: _choice(_text(raw), STATUSES, "status"))
    check("carrier", carrier)
    check("tracking_code", tracking)
    check("promised_date", parse_date)
    check("delivered_at", parse_datetime)
    check("total", parse_money)

    lines = row.get("lines")
    out["lines"] = []
    if lines not in (None, "", []):
        if not isinstance(lines, list):
            problems.append("lines must be a list of {sku, description, quantity, unit_price}")
        else:
            for i, raw in enumerate(lines):
                line, line_problems = _line(raw, i)
                problems.extend(line_problems)
                out["lines"].append(line)
    if problems:
        raise RowError("; ".join(problems))
    if out.get("total") is None:
        out["total"] = sum(line["quantity"] * line["unit_price_cents"] for line in out["lines"])
    return out


def check_order(record: dict[str, Any]) -> None:
    """Checks between the fields of an order as it will be stored (RowError)."""
    problems = []
    now = datetime.now(timezone.utc)
    placed, delivered, status = (_as_utc(record.get("placed_at")), _as_utc(record.get("delivered_at")),
                                 record.get("status"))
    if placed and placed > now + timedelta(days=1):
        problems.append("placed_at is in the future")
    if delivered:
        if delivered > now + timedelta(days=1):
            problems.append("delivered_at is in the future")
        if status not in ("delivered", "returned"):
            problems.append(f"delivered_at is given but status is {status!r} (use delivered or returned)")
        if placed and delivered < placed:
            problems.append("delivered_at is before placed_at")
    promised = record.get("promised_date")
    if promised and placed and promised < placed.astimezone(local_zone()).date():
        problems.append("promised_date is before the order was placed")
    if record.get("tracking_code") and not record.get("carrier"):
        problems.append("tracking_code is given without a carrier")
    if problems:
        raise RowError("; ".join(problems))


# ============================================================================ reading files

def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")  # Excel on Windows


def read_csv(text: str) -> Iterator[tuple[int, dict[str, Any] | RowError]]:
    """(line, row) per record; the header is line 1. Empty cells are "" (clear the field)."""
    first = text.split("\n", 1)[0]
    delimiter = ";" if first.count(";") > first.count(",") else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = next(reader)
    except StopIteration:
        raise RowError("the file is empty") from None
    header = [h.strip().lower() for h in header]
    missing = [h for h in CUSTOMER_REQUIRED if h not in header]
    unknown = [h for h in header if h not in CUSTOMER_FIELDS]
    doubled = sorted({h for h in header if header.count(h) > 1})
    problems = []
    if "order_number" in header:
        problems.append("orders cannot be imported from CSV; use JSON Lines (docs/import-format.md)")
    elif unknown:
        problems.append(f"unknown column{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))} "
                        f"(known: {', '.join(CUSTOMER_FIELDS)})")
    if missing and "order_number" not in header:
        problems.append(f"missing column{'s' if len(missing) > 1 else ''} {', '.join(missing)}")
    if doubled:
        problems.append(f"column{'s' if len(doubled) > 1 else ''} {', '.join(doubled)} given twice")
    if problems:
        raise RowError("; ".join(problems))
    last = reader.line_num
    for cells in reader:
        line, last = last + 1, reader.line_num
        if not cells or all(not c.strip() for c in cells):
            continue
        if len(cells) != len(header):
            yield line, RowError(f"{len(cells)} fields, the header has {len(header)}")
            continue
        yield line, dict(zip(header, cells))


def read_jsonl(text: str) -> Iterator[tuple[int, dict[str, Any] | RowError]]:
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            value = json.loads(raw)
        except json.JSONDecodeError as err:
            yield number, RowError(f"not valid JSON ({err.msg} at column {err.colno})")
            continue
        if not isinstance(value, dict):
            yield number, RowError("each line must be one JSON object {...}")
            continue
        yield number, value


def _row_kind(row: dict[str, Any], kind: str | None) -> str:
    if kind:
        return kind
    return "orders" if ("order_number" in row or "lines" in row) else "customers"


# ============================================================================ writing

async def _begin_write(conn: AsyncConnection) -> None:
    """SQLite: take the write lock and open a real transaction, so per-row SAVEPOINTs nest in it
    (Python's sqlite3 would otherwise treat the first SAVEPOINT as the transaction itself)."""
    if conn.dialect.name == "sqlite":
        await conn.exec_driver_sql("BEGIN IMMEDIATE")


def _derived_channel(record: dict[str, Any]) -> str:
    if record.get("email"):
        return "email"
    if record.get("phone"):
        return "sms"
    return "webchat"


def _identity_pairs(record: dict[str, Any]) -> set[tuple[str, str]]:
    """(channel, address) for every channel on which one of the record's fields identifies the
    customer (the phone number on sms and whatsapp, the web login on the web chat, ...)."""
    return {(channel, record[field]) for channel, field in registry.identity_fields().items() if record.get(field)}


# the field a preferred channel needs: where we write to the customer on it (None: the web chat)
_CHANNEL_FIELD = {c.name: c.address_field for c in registry.channels()}


async def _write_customer(conn: AsyncConnection, values: dict[str, Any]) -> str:
    table = Customer.__table__
    number = values["customer_number"]
    current = (await conn.execute(select(table).where(table.c.customer_number == number))).mappings().first()
    record = dict(current) if current else {}
    record.update(values)
    for key, default in (("language", "nl"), ("segment", "regular"), ("consent_proactive", False)):
        if record.get(key) is None:
            record[key] = default
    if record.get("preferred_channel") is None:
        record["preferred_channel"] = _derived_channel(record)
    needed = _CHANNEL_FIELD[record["preferred_channel"]]
    if needed and not record.get(needed):
        raise RowError(f"preferred_channel is {record['preferred_channel']} but {needed} is empty")
    own_id = current["id"] if current else None

    # unique fields of other customers
    problems = []
    for key in ("email", "telegram_user_id", "web_login_id"):
        if record.get(key):
            other = (await conn.execute(select(table.c.customer_number).where(
                and_(table.c[key] == record[key], table.c.id != own_id) if own_id else table.c[key] == record[key]
            ))).scalar()
            if other:
                problems.append(f"{key} {record[key]} already belongs to customer {other}")
    ident = ContactIdentity.__table__
    wanted = _identity_pairs(record)
    for channel, address in sorted(wanted):
        row = (await conn.execute(
            select(ident.c.customer_id, table.c.customer_number)
            .join(table, table.c.id == ident.c.customer_id)
            .where(ident.c.channel == channel, ident.c.address == address))).first()
        if row and row.customer_id != own_id:
            what = _CHANNEL_FIELD[channel] or "web_login_id"
            message = f"{what} {address} already belongs to customer {row.customer_number}"
            if message not in problems:
                problems.append(message)
    if problems:
        raise RowError("; ".join(problems))

    columns = {k: record.get(k) for k in CUSTOMER_FIELDS}
    now = datetime.now(timezone.utc)
    if current:
        await conn.execute(table.update().where(table.c.id == own_id).values(**columns))
        outcome, customer_id = "updated", own_id
        stale = _identity_pairs(dict(current)) - wanted  # identities of the old values only
        for channel, address in stale:
            await conn.execute(delete(ident).where(ident.c.customer_id == own_id, ident.c.channel == channel,
                                                   ident.c.address == address))
    else:
        result = await conn.execute(table.insert().values(**columns, created_at=now))
        outcome, customer_id = "created", result.inserted_primary_key[0]
    have = set((await conn.execute(select(ident.c.channel, ident.c.address)
                                   .where(ident.c.customer_id == customer_id))).all())
    for channel, address in sorted(wanted - have):
        await conn.execute(ident.insert().values(customer_id=customer_id, channel=channel, address=address,
                                                 verified=True, created_at=now))
    return outcome


async def _write_order(conn: AsyncConnection, values: dict[str, Any]) -> str:
    customers, orders, lines = Customer.__table__, Order.__table__, OrderLine.__table__
    customer_id = (await conn.execute(select(customers.c.id).where(
        customers.c.customer_number == values["customer_number"]))).scalar()
    if customer_id is None:
        raise RowError(f"customer {values['customer_number']} does not exist (import the customer first, "
                       "or earlier in this file)")
    current = (await conn.execute(select(orders).where(orders.c.order_number == values["order_number"]))
               ).mappings().first()
    if current and current["customer_id"] != customer_id:
        owner = (await conn.execute(select(customers.c.customer_number)
                                    .where(customers.c.id == current["customer_id"]))).scalar()
        raise RowError(f"order {values['order_number']} belongs to customer {owner}, "
                       f"not {values['customer_number']}")
    optional = ("carrier", "tracking_code", "promised_date", "delivered_at")
    record = {key: (current[key] if current else None) for key in optional}
    record.update({k: v for k, v in values.items() if k in optional})
    record.update(placed_at=values["placed_at"], status=values["status"])
    check_order(record)
    columns = dict(record, customer_id=customer_id, total_cents=values["total"])
    if current:
        await conn.execute(orders.update().where(orders.c.id == current["id"]).values(**columns))
        await conn.execute(delete(lines).where(lines.c.order_id == current["id"]))
        order_id, outcome = current["id"], "updated"
    else:
        result = await conn.execute(orders.insert().values(order_number=values["order_number"], **columns))
        order_id, outcome = result.inserted_primary_key[0], "created"
    await conn.execute(lines.insert(), [dict(order_id=order_id, **line) for line in values["lines"]])
    return outcome


# ============================================================================ entry points

async def import_rows(engine: AsyncEngine, rows: Iterable[tuple[int, dict[str, Any] | RowError]],
                      kind: str | None = None, report: ImportReport | None = None) -> ImportReport:
    """Import (line, row) pairs; kind "customers"/"orders", or None to decide per row
    (a row with order_number or lines is an order)."""
    if kind is not None and kind not in KINDS:
        raise ValueError(f"kind must be customers or orders, got {kind!r}")
    kind = KINDS.get(kind) if kind else None
    report = report or ImportReport(kind=kind)
    pending = list(rows)
    for start in range(0, len(pending), BATCH):
        async with engine.begin() as conn:
            await _begin_write(conn)
            for line, row in pending[start:start + BATCH]:
                if isinstance(row, RowError):
                    report.errors.append((line, str(row)))
                    continue
                row_kind = _row_kind(row, kind)
                try:
                    values = validate_customer(row) if row_kind == "customers" else validate_order(row)
                    async with conn.begin_nested():
                        if row_kind == "customers":
                            outcome = await _write_customer(conn, values)
                        else:
                            outcome = await _write_order(conn, values)
                except RowError as err:
                    report.errors.append((line, str(err)))
                    continue
                except (exc.IntegrityError, exc.DataError) as err:
                    detail = str(getattr(err, "orig", err)).splitlines()[0][:200]
                    report.errors.append((line, f"conflicts with data already stored ({detail})"))
                    continue
                report.count(row_kind, outcome)
    if report.kind is None:
        kinds = set(report.counts)
        report.kind = kinds.pop() if len(kinds) == 1 else ("mixed" if kinds else None)
    report.errors.sort()
    return report


async def import_text(engine: AsyncEngine, text: str, fmt: str, kind: str | None = None) -> ImportReport:
    """Import the text of a file; fmt "csv" or "jsonl"."""
    if kind is not None and kind not in KINDS:
        raise ValueError(f"kind must be customers or orders, got {kind!r}")
    report = ImportReport(kind=KINDS.get(kind) if kind else None)
    if fmt == "csv":
        if kind and KINDS[kind] == "orders":
            report.errors.append((1, "orders cannot be imported from CSV; use JSON Lines"))
            return report
        try:
            rows = list(read_csv(text))
        except RowError as err:
            report.errors.append((1, str(err)))
            return report
        report.kind = "customers"
        return await import_rows(engine, rows, "customers", report)
    if fmt == "jsonl":
        return await import_rows(engine, list(read_jsonl(text)), kind, report)
    raise ValueError(f"format must be csv or jsonl, got {fmt!r}")


def detect_format(path: Path, text: str) -> str:
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return "csv"
    if suffix in (".jsonl", ".ndjson", ".json"):
        return "jsonl"
    return "jsonl" if text.lstrip().startswith("{") else "csv"


async def import_file(engine: AsyncEngine, path: str | Path, kind: str | None = None) -> ImportReport:
    """Import a CSV (.csv) or JSON Lines (.jsonl, .ndjson) file; kind as for import_rows.
    OSError when the file cannot be read."""
    path = Path(path)
    text = _decode(path.read_bytes())
    return await import_text(engine, text, detect_format(path, text), kind)


__all__ = [
    "CUSTOMER_FIELDS", "ORDER_FIELDS", "ImportReport", "RowError", "import_file", "import_rows",
    "import_text", "normalize_email", "normalize_phone", "parse_money", "validate_customer",
    "validate_order", "check_order",
]
