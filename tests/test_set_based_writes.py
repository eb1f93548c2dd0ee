"""The kernel's inserts and updates of many rows (`insert_rows`, `update_rows`): on PostgreSQL one statement
however many rows, on SQLite an executemany; either way the rows stored are those an insert or update of each row
would store, money to the cent, JSON, dates, times and NULLs included."""

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from sqlalchemy import JSON, Boolean, Column, Date, DateTime, Integer, MetaData, String, Table, select
from sqlalchemy.exc import IntegrityError, StatementError

from shared.db import Database, Money, insert_rows, run_together, update_rows
from tests.support import database_urls

TABLE = Table("set_probe", MetaData(), Column("loan_id", String(32), primary_key=True),
              Column("number", Integer, primary_key=True), Column("amount", Money()),
              Column("lines", JSON, nullable=True), Column("due", Date, nullable=True),
              Column("at", DateTime(timezone=True), nullable=True), Column("late", Boolean, nullable=True),
              Column("note", String(20), nullable=True))
AT = datetime(2026, 6, 30, 9, 15, 1, 123456, tzinfo=UTC)


def _rows(n: int) -> list[dict]:
    return [{"loan_id": f"L{k % 3}", "number": k, "amount": Decimal("1066.195") if k == 1 else Decimal(k),
             "lines": [{"number": k, "principal": "10.00"}] if k % 2 else None,
             "due": date(2026, 7, k + 1), "at": AT, "late": k % 2 == 0, "note": None if k == 2 else f"n{k}"}
            for k in range(n)]


def _stored(database: Database) -> list[dict]:
    with database.engine.connect() as conn:
        return [dict(row._mapping) for row in conn.execute(select(TABLE).order_by(TABLE.c.number))]


@pytest.fixture
def database(backend, tmp_path):
    with database_urls(backend, tmp_path) as urls:
        db = Database(urls["monitoring"])
        TABLE.create(db.engine)
        try:
            yield db
        finally:
            db.dispose()


def test_many_rows_are_stored_as_one_at_a_time_would_store_them(database):
    rows = _rows(6)
    with database.session() as session:
        run_together(session.connection(), [insert_rows(TABLE, rows)])
        session.commit()
    stored = _stored(database)
    assert [r["amount"] for r in stored] == [Decimal("0.00"), Decimal("1066.20"), Decimal("2.00"), Decimal("3.00"),
                                             Decimal("4.00"), Decimal("5.00")]  # Money's rounding, half up
    assert [r["lines"] for r in stored] == [r["lines"] for r in rows]
    assert [r["due"] for r in stored] == [r["due"] for r in rows]
    assert all(r["at"].astimezone(UTC) == AT for r in stored)
    assert [r["late"] for r in stored] == [r["late"] for r in rows]
    assert [r["note"] for r in stored] == [r["note"] for r in rows]

    changes = [{"loan_id": r["loan_id"], "number": r["number"], "amount": r["amount"] + 1,
                "lines": None if r["lines"] else [{"paid": True}], "note": "paid" if r["number"] < 4 else None}
               for r in rows[1:5]]
    with database.session() as session:
        run_together(session.connection(), [update_rows(TABLE, ("loan_id", "number"), changes)])
        session.commit()
    after = {r["number"]: r for r in _stored(database)}
    assert [after[k]["amount"] for k in range(6)] == [Decimal("0.00"), Decimal("1067.20"), Decimal("3.00"),
                                                      Decimal("4.00"), Decimal("5.00"), Decimal("5.00")]
    assert [after[k]["lines"] for k in range(6)] == [None, None, [{"paid": True}], None, [{"paid": True}],
                                                     rows[5]["lines"]]
    assert [after[k]["note"] for k in range(6)] == ["n0", "paid", "paid", "paid", None, "n5"]
    assert [after[k]["due"] for k in range(6)] == [r["due"] for r in rows]  # columns not named stay as they were


def test_a_float_is_refused_as_money_and_a_clash_fails_the_whole_step(database):
    rows = _rows(3)
    with database.session() as session, pytest.raises((TypeError, StatementError), match="never a float"):
        run_together(session.connection(), [insert_rows(TABLE, [*rows[:2], {**rows[2], "amount": 0.1}])])
    with database.session() as session:
        run_together(session.connection(), [insert_rows(TABLE, rows[:2])])
        session.commit()
    with database.session() as session, pytest.raises(IntegrityError):
        run_together(session.connection(), [insert_rows(TABLE, [rows[2], rows[0]])])
    assert [r["number"] for r in _stored(database)] == [0, 1]


def test_an_update_naming_a_row_twice_is_refused_before_it_runs():
    with pytest.raises(ValueError, match="a key appears twice"):
        update_rows(TABLE, ("loan_id", "number"), [{"loan_id": "L1", "number": 1, "note": "a"},
                                                   {"loan_id": "L1", "number": 1, "note": "b"}])
