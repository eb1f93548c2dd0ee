"""Exposure at default for expected loss: principal, interest due, interest accrued but not due, unpaid penalties.

A module of its own, so its portfolio holds only the loans these tests book.
"""

from datetime import date, timedelta
from decimal import Decimal

import pytest

from services.monitoring.classification.rules import expected_loss
from tests.monitoring.api.helpers import register, role, set_today
from tests.monitoring.api.test_portfolio import ead

TODAY = date(2027, 1, 10)
PENALTY = Decimal("0.0005")


@pytest.fixture
def business_loan_penalty(suite):
    app = suite.services["monitoring"]
    default = app.state.monitoring_settings
    app.state.monitoring_settings = default.model_copy(update={"penalty_daily_rates": {"business_loan": PENALTY}})
    yield
    app.state.monitoring_settings = default


def test_exposure_adds_accrued_interest_and_unpaid_penalties(suite, borrowers, business_loan_penalty):
    set_today(suite, TODAY)
    # Disbursed 20 days ago, first due in 11 days: nothing due, 20 days of the first month's interest accrued.
    accruing = register(suite, borrowers, product="business_loan", disbursement_date="2026-12-21")
    # First instalment 20 days overdue: its interest due, penalty on it for 20 days, the second period accruing.
    first_due = TODAY - timedelta(days=20)
    late = register(suite, borrowers, product="business_loan", first_due_date=first_due.isoformat(),
                    disbursement_date=(first_due - timedelta(days=20)).isoformat())
    assert Decimal(late["penalty_daily_rate"]) == PENALTY
    [first, second] = late["schedule"][:2]
    owed = Decimal(first["principal"]) + Decimal(first["interest"])
    penalty = (owed * PENALTY * 20).quantize(Decimal("0.01"))
    period = (date.fromisoformat(second["due_date"]) - first_due).days
    assert date.fromisoformat(second["due_date"]) > TODAY
    accrued = (Decimal(second["interest"]) * 20 / period).quantize(Decimal("0.01"))
    principal = Decimal(late["outstanding_principal"])
    assert ead(late) == principal + Decimal(first["interest"]) + penalty + accrued
    [january] = accruing["schedule"][:1]
    assert ead(accruing) == Decimal(accruing["outstanding_principal"]) + (
        Decimal(january["interest"]) * 20 / 31).quantize(Decimal("0.01"))

    [whole] = suite.direct["monitoring"].get("/portfolio/figures", headers=role(suite, "risk_analyst")).json()["groups"]
    # Unscored loans: PD by class (normal 1%, special mention 5%), the default LGD of 45%.
    assert Decimal(whole["expected_loss"]) == (expected_loss(Decimal("0.01"), Decimal("0.45"), ead(accruing))
                                               + expected_loss(Decimal("0.05"), Decimal("0.45"), ead(late)))
