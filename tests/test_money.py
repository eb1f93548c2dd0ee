"""Money is Decimal end to end: no service's table keeps an amount in a float, on SQLite or PostgreSQL."""

import importlib
import re
from decimal import Decimal

import pytest
from sqlalchemy import Column, Float, Integer, MetaData, Numeric, Table, func, insert, select
from sqlalchemy.dialects import sqlite

from migrations.common import TABLE_MODULES
from shared.db import Money, round_money
from tests.support import database_urls

# What reads as an amount of money by its name (a rate, "…_rate", is no amount).
_MONEY_NAME = re.compile(r"amount|principal|interest|penalt|limit|income|assets|balance|overpayment|outstanding|"
                         r"_paid$|fee|price|salary|payment|exposure|loss")
# Below 10**15 significant digits a double holds every value exactly (rates as Numeric(9, 6), PDs): SQLite's REAL
# gives them back unchanged. Money needs 18.
_EXACT_IN_A_DOUBLE = 15
AMOUNTS = [Decimal("99999999999999.99"), Decimal("0.01"), Decimal("12345678901234.57"), Decimal("2000.00")]


def _columns():  # noqa: ANN202
    for service, module in TABLE_MODULES.items():
        for table in importlib.import_module(module).metadata.sorted_tables:
            for column in table.columns:
                yield f"{service}: {table.name}.{column.name}", column.name, column.type


def test_no_table_of_any_service_keeps_a_number_in_a_float():
    """Found 2 (issue 15): on SQLite a money column passed through a float, and a cent was lost."""
    refused = []
    for where, name, kind in _columns():
        if isinstance(kind, Money):
            assert type(kind.load_dialect_impl(sqlite.dialect())).__name__ == "_SqliteCents"
            continue
        named_money = bool(_MONEY_NAME.search(name)) and not name.endswith(("rate", "_per_minute")) and \
            isinstance(kind, Numeric | Integer)
        # A Numeric with cents, or wider than a double holds exactly, is money too; so is any float named like it.
        inexact = isinstance(kind, Numeric) and not isinstance(kind, Float) and (
            kind.precision is None or kind.precision > _EXACT_IN_A_DOUBLE or kind.scale == 2)
        if named_money or inexact:
            refused.append(f"{where} ({kind!r})")
    assert refused == [], "use shared.db.Money (money_column) for these: " + ", ".join(refused)


def test_money_round_trips_to_the_cent_and_sums_exactly(backend, tmp_path):
    with database_urls(backend, tmp_path) as urls:
        from sqlalchemy import create_engine

        engine = create_engine(urls["scoring"])
        table = Table("money_probe", MetaData(), Column("id", Integer, primary_key=True), Column("amount", Money()),
                      Column("days", Integer))
        try:
            table.create(engine)
            with engine.begin() as conn:
                conn.execute(insert(table), [{"amount": a, "days": 3} for a in AMOUNTS])
                assert [r.amount for r in conn.execute(select(table.c.amount).order_by(table.c.id))] == AMOUNTS
                assert conn.execute(select(func.sum(table.c.amount))).scalar_one() == sum(AMOUNTS)
                big = conn.execute(select(table.c.amount).where(table.c.amount > Decimal("99999999999999.98")))
                assert big.scalars().all() == [AMOUNTS[0]]
                # a third of the amount for 3 days out of 7, to the cent, as either database rounds it
                pro_rata = conn.execute(select(round_money(table.c.amount * table.c.days / 7))
                                        .where(table.c.amount == Decimal("2000.00"))).scalar_one()
                assert pro_rata == Decimal("857.14")
        finally:
            table.drop(engine, checkfirst=True)
            engine.dispose()


def test_a_float_is_refused_as_money():
    with pytest.raises(TypeError, match="never a float"):
        Money().process_bind_param(0.1, sqlite.dialect())


def test_amounts_stored_before_the_money_type_are_converted_on_upgrade(tmp_path):
    """A SQLite database written with NUMERIC-as-REAL amounts reads the same amounts after `loancrm migrate`."""
    from sqlalchemy import create_engine, text

    from loancrm import migrate

    url = f"sqlite:///{tmp_path / 'customer.db'}"
    migrate.upgrade(url, "customer", "9ff5c72893d0")  # the head before the money type
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            # every required column filled with a value of its type, the two amounts as the old type stored them
            columns = conn.execute(text("PRAGMA table_info(customers)")).all()
            values = {c.name: 0 if "INT" in c.type or "BOOL" in c.type else "2026-01-01" for c in columns if c.notnull}
            values.update(id="c1", monthly_income=12345.67, assets=0.01)
            names = ", ".join(values)
            conn.execute(text(f"INSERT INTO customers ({names}) VALUES ({', '.join(':' + n for n in values)})"),
                         values)
        migrate.upgrade(url, "customer")
        table = Table("customers", MetaData(), Column("id", Integer), Column("monthly_income", Money()),
                      Column("assets", Money()))
        with engine.connect() as conn:
            assert conn.execute(select(table.c.monthly_income, table.c.assets)).one() == (
                Decimal("12345.67"), Decimal("0.01"))
        migrate.downgrade(url, "customer", "9ff5c72893d0")
        with engine.connect() as conn:
            assert conn.execute(text("SELECT monthly_income FROM customers")).scalar_one() == 12345.67
    finally:
        engine.dispose()
