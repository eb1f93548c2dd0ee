"""Conventions as settings: rounding and broken-period day count per product, the IFRS 9 staging rule."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from services.monitoring.classification.rules import Ifrs9Stage, LoanClass, ifrs9_stage
from services.monitoring.delinquency import service as delinquency
from services.monitoring.loans.models import Loan
from services.monitoring.settings import MonitoringSettings
from tests.monitoring.api.helpers import admin, register

# 100.00 × 0.003 / 12 = 0.025 exactly: the tie half-up and half-even round apart.
TIE = {"principal": "100.00", "annual_rate": "0.003", "term_months": 1, "repayment_method": "interest_only_bullet",
       "disbursement_date": "2026-01-15"}


def _preview(suite, **body):  # noqa: ANN001, ANN202
    response = suite.client.post("/api/monitoring/loans/schedule-preview", json={**TIE, **body}, headers=admin(suite))
    assert response.status_code == 200, response.text
    return response.json()


@pytest.fixture
def conventions(suite, monkeypatch):  # noqa: ANN001, ANN201
    """Set the monitoring service's settings for one test, as its environment would."""
    def configure(**values) -> None:  # noqa: ANN003
        # The app's State keeps its attributes in a dict; setattr/undo on the State itself would delete the entry.
        state = suite.services["monitoring"].state._state
        monkeypatch.setitem(state, "monitoring_settings", MonitoringSettings(**values))
    return configure


def test_amounts_round_half_up_by_default(suite):
    preview = _preview(suite)
    assert preview["rounding"] == "half_up" and preview["instalments"][0]["interest"] == "0.03"


def test_a_product_configured_half_even_rounds_the_tie_down(suite, borrowers, conventions):
    conventions(rounding_by_product={"mortgage": "half_even"})
    assert _preview(suite, product="mortgage")["instalments"][0]["interest"] == "0.02"
    assert _preview(suite, product="personal_loan")["instalments"][0]["interest"] == "0.03"
    mortgage = register(suite, borrowers, **{**TIE, "product": "mortgage"})
    personal = register(suite, borrowers, **TIE)
    assert (mortgage["rounding"], mortgage["schedule"][0]["interest"]) == ("half_even", "0.02")
    assert (personal["rounding"], personal["schedule"][0]["interest"]) == ("half_up", "0.03")


# 36,000.00 at 3.65% from 15 January to a first due date of 1 March: 45 actual days, 46 by 30/360 (15 days left
# in January counted as 30 - 15, then February as 30 days, then 1 day of March). 36,000 × 0.0365 = 1,314.
BROKEN = {"principal": "36000.00", "annual_rate": "0.0365", "term_months": 12, "repayment_method": "equal_principal",
          "disbursement_date": "2026-01-15", "first_due_date": "2026-03-01"}


@pytest.mark.parametrize(("day_count", "interest"), [
    ("actual/360", Decimal(1314) * 45 / 360),  # 164.25
    ("actual/365", Decimal(1314) * 45 / 365),  # 162.00
    ("30/360", Decimal(1314) * 46 / 360),  # 167.90
])
def test_the_day_count_sets_the_broken_first_period_interest(suite, borrowers, conventions, day_count, interest):
    conventions(day_count_by_product={"business_loan": day_count})
    preview = _preview(suite, **BROKEN, product="business_loan")
    assert preview["day_count"] == day_count
    assert Decimal(preview["instalments"][0]["interest"]) == interest.quantize(Decimal("0.01"))
    # The regular second month still accrues a twelfth of the rate, whatever the count.
    assert Decimal(preview["instalments"][1]["interest"]) == (Decimal("33000.00") * Decimal("0.0365") / 12).quantize(
        Decimal("0.01"))
    loan = register(suite, borrowers, **{**BROKEN, "product": "business_loan"})
    assert loan["day_count"] == day_count and loan["schedule"][0]["interest"] == preview["instalments"][0]["interest"]


def test_the_default_day_count_is_actual_360(suite):
    preview = _preview(suite, **BROKEN)
    assert preview["day_count"] == "actual/360" and preview["instalments"][0]["interest"] == "164.25"


def test_the_ifrs9_staging_rule_is_a_setting(monkeypatch):
    monkeypatch.setenv("LOANCRM_MONITORING_IFRS9_STAGE_BY_CLASS", '{"special_mention": 1}')
    monkeypatch.setenv("LOANCRM_MONITORING_IFRS9_STAGE2_DPD", "60")
    rule = MonitoringSettings().staging_rule()
    assert ifrs9_stage(10, LoanClass.SPECIAL_MENTION) is Ifrs9Stage.STAGE_2  # the default: special mention = 2
    assert ifrs9_stage(10, LoanClass.SPECIAL_MENTION, rule=rule) is Ifrs9Stage.STAGE_1
    assert ifrs9_stage(45, LoanClass.NORMAL) is Ifrs9Stage.STAGE_2
    assert ifrs9_stage(45, LoanClass.NORMAL, rule=rule) is Ifrs9Stage.STAGE_1
    assert ifrs9_stage(61, LoanClass.NORMAL, rule=rule) is Ifrs9Stage.STAGE_2
    assert ifrs9_stage(10, LoanClass.SUBSTANDARD, rule=rule) is Ifrs9Stage.STAGE_3
    monkeypatch.setenv("LOANCRM_MONITORING_IFRS9_STAGE3_DPD", "50")
    with pytest.raises(ValueError, match="ifrs9_stage2_dpd"):
        MonitoringSettings()


def test_every_assessment_stages_by_the_service_rule(suite, borrowers):
    loan = register(suite, borrowers)
    with suite.database("monitoring").session() as session:
        stored = session.get(Loan, loan["id"])
        default = delinquency.assess(stored, 40, date(2026, 3, 1))
        # 40 days past due is special mention (M2): stage 2 by default, stage 1 where that class maps to 1 and
        # stage 2 begins past 45 days.
        delinquency.use_staging(MonitoringSettings(ifrs9_stage2_dpd=45, ifrs9_stage3_dpd=120,
                                                   ifrs9_stage_by_class={"special_mention": 1}).staging_rule())
        try:
            assert delinquency.assess(stored, 40, date(2026, 3, 1)).stage is Ifrs9Stage.STAGE_1
            assert 46 in delinquency.state_thresholds() and 121 in delinquency.state_thresholds()
        finally:
            delinquency.use_staging(MonitoringSettings().staging_rule())
    assert default.stage is Ifrs9Stage.STAGE_2
