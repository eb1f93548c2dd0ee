"""The month-on-book arithmetic the vintage query runs in SQL, run in SQL against the Python definition."""

from datetime import date, timedelta

import pytest
from sqlalchemy import Column, Date, MetaData, String, Table, create_engine, insert, select

from services.monitoring.loans.schedule import add_months
from services.monitoring.portfolio import service


def _python(disbursed: date, bad_on: date, as_of: date) -> tuple[int, int]:
    observed = max(m for m in range(0, 40) if add_months(disbursed, m) <= as_of)
    went_bad = min(m for m in range(0, 40) if add_months(disbursed, m) >= bad_on)
    return observed, went_bad


@pytest.mark.parametrize("as_of", [date(2027, 2, 28), date(2027, 3, 30), date(2027, 3, 31), date(2027, 4, 15)])
def test_months_observed_and_month_gone_bad_match_add_months(as_of):
    days = [date(2026, 1, 28) + timedelta(days=n) for n in range(0, 400, 3)]
    pairs = [(d, d + timedelta(days=gap)) for d in days for gap in (0, 1, 29, 30, 31, 59, 61, 92) if d < as_of]
    table = Table("pairs", MetaData(), Column("id", String, primary_key=True), Column("disbursed", Date),
                  Column("bad_on", Date))
    engine = create_engine("sqlite://")
    table.metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(insert(table), [{"id": str(n), "disbursed": d, "bad_on": b} for n, (d, b) in enumerate(pairs)])
        observed, went_bad = service.month_on_book_expressions(table.c.disbursed, table.c.bad_on, as_of)
        rows = conn.execute(select(table.c.disbursed, table.c.bad_on, observed, went_bad)).all()
    assert len(rows) == len(pairs)
    for disbursed, bad_on, seen, bad_in in rows:
        assert (seen, bad_in) == _python(disbursed, bad_on, as_of), (disbursed, bad_on)
