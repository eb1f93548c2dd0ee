"""The maker-checker revision moves existing class overrides into change requests, and back on downgrade."""

from datetime import UTC, date, datetime

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, text

from loancrm import migrate
from tests.support import database_urls

REVISION = "44e29b8a103a"


def _before(url: str) -> str:
    """The revision right before this one, wherever merges chain it."""
    return ScriptDirectory.from_config(migrate.alembic_config("monitoring", url)).get_revision(REVISION).down_revision


@pytest.fixture
def url(backend, tmp_path):
    with database_urls(backend, tmp_path) as urls:
        yield urls["monitoring"]


def test_class_overrides_become_change_requests_with_their_steps(url):
    before = _before(url)
    migrate.upgrade(url, "monitoring", before)
    engine = create_engine(url)
    created = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
    try:
        with engine.begin() as conn:
            conn.execute(text(
                "INSERT INTO loans (id, customer_id, product, principal, annual_rate, term_months, repayment_method,"
                " disbursement_date, purpose, officer, branch, status, outstanding_principal, credit_balance, dpd,"
                " bucket, classification, ifrs9_stage, penalty_daily_rate, created_by, created_at) VALUES ('l1', 'c1',"
                " 'personal_loan', 1000, 0.1, 12, 'equal_instalment', :day, 'x', 'o', 'BJ001', 'active', 1000, 0, 0,"
                " 'M0', 'substandard', 3, 0, 'o', :at)"), {"day": date(2026, 1, 1), "at": created})
            conn.execute(text(
                "INSERT INTO class_overrides (id, loan_id, requested_class, reason, status, maker, checker,"
                " requested_on, decided_on, decision_note, created_at) VALUES ('o1', 'l1', 'substandard',"
                " 'buyer went bankrupt', 'approved', 'ana', 'ben', :asked, :decided, 'agreed', :at)"),
                {"asked": date(2026, 3, 1), "decided": date(2026, 3, 2), "at": created})
        migrate.upgrade(url, "monitoring", REVISION)
        with engine.connect() as conn:
            request = conn.execute(text("SELECT kind, status, maker, checker, reason FROM change_requests"
                                        " WHERE id = 'o1'")).one()
            steps = conn.execute(text("SELECT step, actor FROM change_request_events WHERE request_id = 'o1'"
                                      " ORDER BY step")).all()
        assert tuple(request) == ("class_override", "approved", "ana", "ben", "buyer went bankrupt")
        assert [tuple(s) for s in steps] == [("applied", "ben"), ("approved", "ben"), ("requested", "ana")]
        migrate.downgrade(url, "monitoring", before)
        with engine.connect() as conn:
            back = conn.execute(text("SELECT requested_class, status, checker FROM class_overrides")).all()
        assert [tuple(b) for b in back] == [("substandard", "approved", "ben")]
    finally:
        engine.dispose()
