"""Importing customers (CSV, JSON Lines) and orders (JSON Lines), on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bot.policy.churn import local_date
from bot.records.importer import (
    import_file, import_rows, import_text, normalize_phone, parse_money, validate_customer,
)
from bot.records.models import ContactIdentity, Customer, Order, OrderLine

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"

HEADER = ("customer_number,name,email,phone,postcode,preferred_channel,language,consent_proactive,segment,"
          "telegram_user_id,web_login_id")


async def count(engine, model, *where) -> int:
    async with engine.connect() as conn:
        stmt = select(func.count()).select_from(model)
        for clause in where:
            stmt = stmt.where(clause)
        return (await conn.execute(stmt)).scalar_one()


async def customer(engine, number: str):
    async with engine.connect() as conn:
        return (await conn.execute(select(Customer.__table__).where(Customer.customer_number == number))
                ).mappings().first()


async def identities(engine, number: str) -> set[tuple[str, str]]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            select(ContactIdentity.channel, ContactIdentity.address)
            .join(Customer, Customer.id == ContactIdentity.customer_id)
            .where(Customer.customer_number == number))
        return set(rows.all())


# ------------------------------------------------------------------------------ good files

async def test_import_example_files(engine):
    report = await import_file(engine, EXAMPLES / "customers.csv")
    assert report.errors == []
    assert (report.kind, report.created, report.updated) == ("customers", 7, 0)
    assert await count(engine, Customer) == 7

    marieke = await customer(engine, "K20001")
    assert marieke["phone"] == "+31612345701"            # "06 1234 5701"
    assert marieke["consent_proactive"] is True           # "ja"
    assert marieke["postcode"] == "3012 AB"
    assert marieke["preferred_channel"] == "whatsapp"
    assert await identities(engine, "K20001") == {
        ("sms", "+31612345701"), ("whatsapp", "+31612345701"), ("email", "marieke.willems@example.nl")}
    hannah = await customer(engine, "K20003")
    assert (hannah["phone"], hannah["language"], hannah["telegram_user_id"]) == ("+447700900401", "en", "700601")
    assert ("telegram", "700601") in await identities(engine, "K20003")
    assert (await customer(engine, "K20004"))["phone"] == "+353871234504"
    assert (await customer(engine, "K20005"))["phone"] == "+31101234567"   # landline 010-1234567
    assert ("webchat", "web-joost") in await identities(engine, "K20002")

    report = await import_file(engine, EXAMPLES / "orders.jsonl")
    assert report.errors == []
    assert (report.kind, report.created, report.updated) == ("orders", 5, 0)
    async with engine.connect() as conn:
        orders = {row.order_number: row for row in await conn.execute(select(Order.__table__))}
        lines = (await conn.execute(select(func.count()).select_from(OrderLine))).scalar_one()
    assert set(orders) == {"150001", "150002", "150003", "150004", "150005"}
    assert lines == 7
    assert orders["150001"].total_cents == 4585
    assert orders["150003"].total_cents == 2450          # no total: the sum of the lines ("12,25" x 2)
    assert orders["150002"].carrier == "DHL"
    assert local_date(orders["150002"].delivered_at).isoformat() == "2026-03-12"
    assert orders["150004"].status == "placed" and orders["150004"].delivered_at is None


async def test_same_files_again_update_and_never_duplicate(engine):
    await import_file(engine, EXAMPLES / "customers.csv")
    await import_file(engine, EXAMPLES / "orders.jsonl")
    before = (await count(engine, Customer), await count(engine, ContactIdentity), await count(engine, Order),
              await count(engine, OrderLine))

    again = await import_file(engine, EXAMPLES / "customers.csv")
    assert (again.created, again.updated, again.errors) == (0, 7, [])
    again = await import_file(engine, EXAMPLES / "orders.jsonl")
    assert (again.created, again.updated, again.errors) == (0, 5, [])
    after = (await count(engine, Customer), await count(engine, ContactIdentity), await count(engine, Order),
             await count(engine, OrderLine))
    assert after == before


async def test_reimport_changes_values_and_moves_identities(engine):
    await import_text(engine, HEADER + "\nK1,Anna de Boer,anna@example.nl,0612345678,1234 AB,whatsapp,nl,ja,"
                                       "regular,555,web-anna\n", "csv")
    report = await import_text(engine, HEADER + "\nK1,Anna de Boer-Smit,anna.smit@example.nl,0687654321,"
                                                "1234 AB,sms,nl,nee,gold,,web-anna\n", "csv")
    assert (report.created, report.updated, report.errors) == (0, 1, [])
    anna = await customer(engine, "K1")
    assert (anna["name"], anna["email"], anna["phone"], anna["segment"], anna["consent_proactive"],
            anna["telegram_user_id"]) == ("Anna de Boer-Smit", "anna.smit@example.nl", "+31687654321", "gold",
                                          False, None)
    assert await identities(engine, "K1") == {
        ("sms", "+31687654321"), ("whatsapp", "+31687654321"), ("email", "anna.smit@example.nl"),
        ("webchat", "web-anna")}

    # JSON Lines: a key that is absent keeps the stored value, an empty one clears it
    report = await import_text(engine, '{"customer_number": "K1", "name": "Anna", "postcode": ""}\n', "jsonl")
    assert (report.updated, report.errors) == (1, [])
    anna = await customer(engine, "K1")
    assert (anna["name"], anna["email"], anna["phone"], anna["postcode"]) == (
        "Anna", "anna.smit@example.nl", "+31687654321", None)


async def test_identities_linked_elsewhere_survive_a_reimport(engine):
    await import_text(engine, HEADER + "\nK1,Anna,anna@example.nl,0612345678,,sms,nl,,,,\n", "csv")
    anna = await customer(engine, "K1")
    async with engine.begin() as conn:  # e.g. linked after a verified chat on another number
        await conn.execute(ContactIdentity.__table__.insert().values(
            customer_id=anna["id"], channel="whatsapp", address="+31699999999", verified=True))
    await import_text(engine, HEADER + "\nK1,Anna,anna@example.nl,0611111111,,sms,nl,,,,\n", "csv")
    assert await identities(engine, "K1") == {
        ("sms", "+31611111111"), ("whatsapp", "+31611111111"), ("email", "anna@example.nl"),
        ("whatsapp", "+31699999999")}


async def test_order_reimport_replaces_lines(engine):
    await import_text(engine, HEADER + "\nK1,Anna,anna@example.nl,0612345678,,,,,,,\n", "csv")
    first = ('{"order_number": "123456", "customer_number": "K1", "placed_at": "2026-01-05", "status": "placed", '
             '"lines": [{"sku": "A", "description": "Een", "quantity": 1, "unit_price": "5.00"}, '
             '{"sku": "B", "description": "Twee", "quantity": 3, "unit_price": "1.50"}]}')
    second = ('{"order_number": "123456", "customer_number": "K1", "placed_at": "2026-01-05", '
              '"status": "delivered", "carrier": "postnl", "tracking_code": "3SXYZ1", '
              '"delivered_at": "2026-01-07T15:00:00+01:00", '
              '"lines": [{"sku": "A", "description": "Een", "quantity": 2, "unit_price": "5.00"}], "total": 12.95}')
    assert (await import_text(engine, first + "\n", "jsonl")).created == 1
    report = await import_text(engine, second + "\n", "jsonl")
    assert (report.updated, report.errors) == (1, [])
    async with engine.connect() as conn:
        order = (await conn.execute(select(Order.__table__))).one()
        lines = (await conn.execute(select(OrderLine.sku, OrderLine.quantity))).all()
    assert (order.status, order.carrier, order.total_cents) == ("delivered", "PostNL", 1295)
    assert lines == [("A", 2)]


# ------------------------------------------------------------------------------ bad rows

BAD_CSV = f"""{HEADER}
K30001,Goed Mens,goed@example.nl,0612340001,1234 ab,sms,nl,ja,regular,,
K30002,,geen-naam@example.nl,0612340002,1234 AB,sms,nl,ja,regular,,
K30003,Slecht Nummer,slecht@example.nl,12345,1234 AB,sms,nl,ja,regular,,
K30004,Rare Mail,not-an-email,0612340004,1234AB,fax,de,misschien,vip,,
"K30005","Naam met ""aanhalingstekens""
en een regeleinde",q@example.nl,+44 7700 900555,2511 CD,whatsapp,en,nee,regular,,
K30006,Te weinig velden,x@example.nl

K30007,Geen telefoon,g7@example.nl,,1234 AB,whatsapp,nl,nee,regular,,
K30008,Zelfde mail,goed@example.nl,0612340008,1234 AB,email,nl,nee,regular,,
K30009,Ook goed,ookgoed@example.nl,+31 (0)6 1234 0009,9999 ZZ,email,nl,1,business,,
"""


async def test_bad_rows_reported_with_line_numbers_good_rows_land(engine, tmp_path):
    path = tmp_path / "klanten.csv"
    path.write_text(BAD_CSV, encoding="utf-8")
    report = await import_file(engine, path)

    lines = {line: message for line, message in report.errors}
    assert sorted(lines) == [3, 4, 5, 8, 10, 11]
    assert "name is required" in lines[3]
    assert lines[4].startswith("phone:") and "12345" in lines[4]
    for part in ("email", "preferred_channel 'fax'", "language 'de'", "consent_proactive", "segment 'vip'"):
        assert part in lines[5]
    assert "3 fields, the header has 11" in lines[8]
    assert "preferred_channel is whatsapp but phone is empty" in lines[10]
    assert "goed@example.nl already belongs to customer K30001" in lines[11]

    assert (report.created, report.updated) == (3, 0)
    async with engine.connect() as conn:
        numbers = set((await conn.execute(select(Customer.customer_number))).scalars())
    assert numbers == {"K30001", "K30005", "K30009"}
    assert (await customer(engine, "K30001"))["postcode"] == "1234 AB"
    assert (await customer(engine, "K30005"))["name"] == 'Naam met "aanhalingstekens"\nen een regeleinde'
    assert (await customer(engine, "K30009"))["phone"] == "+31612340009"
    # nothing half-written: no identity of a refused row
    assert await count(engine, ContactIdentity, ContactIdentity.address == "+31612340008") == 0
    assert await count(engine, ContactIdentity) == 3 + 3 + 3


async def test_bad_jsonl_lines(engine):
    text = "\n".join([
        '{"customer_number": "K1", "name": "Anna", "phone": "0612345678", "preferred_channel": "whatsapp"}',
        '{"order_number": "200001", "customer_number": "K1", "placed_at": "2026-03-02", "status": "delivered", '
        '"lines": [{"sku": "A", "description": "Ding", "quantity": 1, "unit_price": "1.999"}]}',
        '',
        'not json',
        '{"order_number": "20002", "customer_number": "K1", "placed_at": "gisteren", "status": "lost", "lines": []}',
        '{"order_number": "200003", "customer_number": "K1", "placed_at": "2026-03-02", "status": "shipped", '
        '"delivered_at": "2026-03-04", "lines": [{"sku": "A", "description": "Ding", "unit_price": 5}]}',
        '{"order_number": "200004", "customer_number": "K1", "placed_at": "2026-03-02", "status": "placed", '
        '"tracking_code": "ABC123", "lines": [{"sku": "A", "description": "Ding", "quantity": 0, "unit_price": -1}]}',
        '[1, 2]',
        '{"order_number": "200005", "customer_number": "K1", "placed_at": "2026-03-02", "status": "delivered", '
        '"total": "10,00", "lines": [{"sku": "A", "description": "Ding", "quantity": 2, "unit_price": 5}]}',
        '{"customer_number": "K2", "name": "Bram", "email": "bram@example", "emial": "x"}',
    ]) + "\n"
    report = await import_text(engine, text, "jsonl")
    lines = dict(report.errors)
    assert sorted(lines) == [2, 4, 5, 6, 7, 8, 10]
    assert "more than 2 decimals" in lines[2]
    assert "not valid JSON" in lines[4]
    assert "order_number '20002' must be 6 digits" in lines[5]
    assert "placed_at" in lines[5] and "status 'lost'" in lines[5] and "lines is required" in lines[5]
    assert "delivered_at is given but status is 'shipped'" in lines[6]
    assert "quantity 0" in lines[7] and "negative" in lines[7]
    assert "JSON object" in lines[8]
    assert "unknown field 'emial'" in lines[10] and "email" in lines[10]
    assert report.counts == {"customers": {"created": 1, "updated": 0}, "orders": {"created": 1, "updated": 0}}
    async with engine.connect() as conn:
        assert set((await conn.execute(select(Order.order_number))).scalars()) == {"200005"}


async def test_order_for_unknown_customer_refused(engine):
    text = ('{"order_number": "300001", "customer_number": "K404", "placed_at": "2026-03-02", "status": "placed", '
            '"lines": [{"sku": "A", "description": "Ding", "quantity": 1, "unit_price": 5}]}\n')
    report = await import_text(engine, text, "jsonl", kind="orders")
    assert report.errors == [(1, "customer K404 does not exist (import the customer first, or earlier in this file)")]
    assert await count(engine, Order) == 0 and await count(engine, OrderLine) == 0


async def test_order_customer_earlier_in_the_same_file(engine):
    text = ('{"order_number": "300001", "customer_number": "K5", "placed_at": "2026-03-02", "status": "placed", '
            '"lines": [{"sku": "A", "description": "Ding", "quantity": 1, "unit_price": 5}]}\n'
            '{"customer_number": "K5", "name": "Vijf", "email": "vijf@example.nl"}\n'
            '{"order_number": "300002", "customer_number": "K5", "placed_at": "2026-03-02", "status": "placed", '
            '"lines": [{"sku": "A", "description": "Ding", "quantity": 1, "unit_price": 5}]}\n')
    report = await import_text(engine, text, "jsonl")
    assert [line for line, _ in report.errors] == [1]   # before the customer: refused; after: fine
    assert report.kind == "mixed"
    async with engine.connect() as conn:
        assert set((await conn.execute(select(Order.order_number))).scalars()) == {"300002"}


async def test_order_of_another_customer_is_not_moved(engine):
    await import_text(engine, HEADER + "\nK1,Een,een@example.nl,,,,,,,,\nK2,Twee,twee@example.nl,,,,,,,,\n", "csv")
    line = ('{{"order_number": "400001", "customer_number": "{}", "placed_at": "2026-03-02", "status": "placed", '
            '"lines": [{{"sku": "A", "description": "Ding", "quantity": 1, "unit_price": 5}}]}}\n')
    await import_text(engine, line.format("K1"), "jsonl")
    report = await import_text(engine, line.format("K2"), "jsonl")
    assert report.errors == [(1, "order 400001 belongs to customer K1, not K2")]


async def test_header_problems_stop_the_file(engine):
    report = await import_text(engine, "customer_number,naam,emial\nK1,Anna,a@example.nl\n", "csv")
    assert len(report.errors) == 1 and report.errors[0][0] == 1
    assert "unknown columns 'naam', 'emial'" in report.errors[0][1] and "missing column name" in report.errors[0][1]
    assert await count(engine, Customer) == 0
    report = await import_text(engine, "order_number,customer_number\n", "csv")
    assert "JSON Lines" in report.errors[0][1]


async def test_semicolon_csv_with_bom(engine, tmp_path):
    path = tmp_path / "export.csv"
    path.write_bytes(("\ufeffcustomer_number;name;phone;preferred_channel\nK7;Zeven;06-12345677;whatsapp\n")
                     .encode("utf-8"))
    report = await import_file(engine, path)
    assert (report.created, report.errors) == (1, [])
    assert (await customer(engine, "K7"))["phone"] == "+31612345677"


async def test_identity_conflict_rolls_back_the_whole_row(engine):
    await import_rows(engine, [(2, {"customer_number": "K1", "name": "Een", "phone": "0612345678"})], "customers")
    report = await import_rows(engine, [(2, {"customer_number": "K2", "name": "Twee", "phone": "+31612345678",
                                             "email": "twee@example.nl"})], "customers")
    assert report.errors == [(2, "phone +31612345678 already belongs to customer K1")]
    assert await customer(engine, "K2") is None
    assert await count(engine, ContactIdentity, ContactIdentity.address == "twee@example.nl") == 0


# ------------------------------------------------------------------------------ field rules (no database)

@pytest.mark.parametrize("raw, expected", [
    ("0612345678", "+31612345678"), ("06-12 34 56 78", "+31612345678"), ("+31 6 12345678", "+31612345678"),
    ("+31 (0)6 1234 5678", "+31612345678"), ("0031612345678", "+31612345678"), ("020-1234567", "+31201234567"),
    ("+44 7700 900123", "+447700900123"), ("+44 (0)7700 900123", "+447700900123"),
    ("+353 87 123 4567", "+353871234567"), ("+32 470 12 34 56", "+32470123456"), ("+1 415 555 2671", "+14155552671"),
])
def test_phone_numbers_become_e164(raw, expected):
    assert normalize_phone(raw) == expected


@pytest.mark.parametrize("raw", ["12345", "06123", "+31 6 1234", "bel me", "+0612345678", "0612345678901",
                                 "+44 77", "", "++31612345678", "+31 612345678 9"])
def test_garbage_phone_numbers_refused(raw):
    with pytest.raises(ValueError):
        normalize_phone(raw)


@pytest.mark.parametrize("raw, cents", [("12.50", 1250), ("12,50", 1250), ("€ 7", 700), (19.95, 1995), (0, 0),
                                        ("249", 24900), ("0.1", 10)])
def test_money(raw, cents):
    assert parse_money(raw) == cents


@pytest.mark.parametrize("raw", ["-1", -0.01, "1.999", 0.30000000000000004, "1.234,56", "abc", True, None, "1e3"])
def test_bad_money(raw):
    with pytest.raises(ValueError):
        parse_money(raw)


def test_customer_validation_collects_every_problem():
    with pytest.raises(ValueError) as err:
        validate_customer({"customer_number": "K 1", "name": "", "email": "x@", "postcode": "12345",
                           "telegram_user_id": "abc"})
    message = str(err.value)
    for part in ("customer_number", "name is required", "email", "postcode", "telegram_user_id"):
        assert part in message


# ------------------------------------------------------------------------------ the command

async def test_cli_import_reports_lines_and_exits_1(engine, database_url, tmp_path):
    path = tmp_path / "klanten.csv"
    path.write_text(BAD_CSV, encoding="utf-8")
    env = dict(os.environ, DATABASE_URL=database_url)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot.records", "import", str(path), cwd=str(ROOT), env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode == 1, err.decode()
    err_lines = [line for line in err.decode().splitlines() if line.startswith("line ")]
    assert [line.split(":")[0] for line in err_lines] == ["line 3", "line 4", "line 5", "line 8", "line 10", "line 11"]
    assert "customers: 3 created, 0 updated; 6 rows refused" in out.decode()
    assert await count(engine, Customer) == 3

    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot.records", "import", str(EXAMPLES / "customers.csv"), cwd=str(ROOT), env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode == 0, err.decode()
