"""Portfolio figures a risk committee reads: NPL, PAR, buckets, expected loss, roll rates, vintages, charts."""

from collections import Counter
from datetime import date, timedelta
from decimal import Decimal

import pytest

from services.monitoring.classification.rules import expected_loss
from tests.customer.factory import key
from tests.monitoring.api.helpers import admin, assert_problem, cob, officer, register, role, set_today
from tests.scoring.api.conftest import german_rows

TODAY = date(2027, 1, 10)


def overdue(suite, borrowers, dpd, **overrides):
    first_due = TODAY - timedelta(days=dpd)
    return register(suite, borrowers, first_due_date=first_due.isoformat(),
                    disbursement_date=(first_due - timedelta(days=20)).isoformat(), **overrides)


@pytest.fixture(scope="module")
def book(suite, borrowers, champion):
    set_today(suite, TODAY)
    current = register(suite, borrowers, disbursement_date="2027-01-10")
    late = overdue(suite, borrowers, 45)
    unhappy(suite, late["customer_id"])
    bad = overdue(suite, borrowers, 100, principal="6000.00", branch="SH002", officer="officer.sh002",
                  headers=officer(suite, "SH002"))
    # A borrower the scoring service has scored: the booking keeps the score's PD for expected loss.
    customer = borrowers.new_customer("GZ003")
    score = suite.direct["scoring"].post("/scores", json={"customer_id": customer, "features": german_rows()[0]},
                                         headers=admin(suite))
    assert score.status_code == 201, score.text
    scored = register(suite, borrowers, customer_id=customer, product="mortgage", disbursement_date="2027-01-10",
                      branch="GZ003", officer="officer.gz003")
    return current, late, bad, scored, Decimal(str(score.json()["pd"])).quantize(Decimal("0.000001"))


def unhappy(suite, customer_id):
    """A complaint and a detractor's NPS: the customer service adds the retention_risk segment to the borrower's."""
    direct, headers = suite.direct["customer"], admin(suite)
    complaint = direct.post(f"/customers/{customer_id}/complaints", json={
        "kind": "complaint", "channel": "branch", "category": "fees"}, headers={**headers, **key()})
    assert complaint.status_code == 201, complaint.text
    survey = direct.post(f"/customers/{customer_id}/surveys", json={"channel": "sms", "officer": "officer.bj001"},
                         headers={**headers, **key()})
    assert survey.status_code == 201, survey.text
    answer = direct.post(f"/surveys/{survey.json()['id']}/answer", headers=headers, json={
        "service_efficiency": 3, "service_quality": 3, "product_range": 3, "staff_attitude": 3,
        "resolution_speed": 1, "nps": 3})
    assert answer.status_code == 200, answer.text


def ead(loan, today=TODAY):
    """Outstanding principal, the interest due by today, the running period's interest accrued to today, and the
    penalty interest charged on overdue instalments (nothing has been paid on these loans)."""
    cent, rate = Decimal("0.01"), Decimal(loan["penalty_daily_rate"])
    exposure, start = Decimal(loan["outstanding_principal"]), date.fromisoformat(loan["disbursement_date"])
    for instalment in loan["schedule"]:
        due, interest = date.fromisoformat(instalment["due_date"]), Decimal(instalment["interest"])
        if due <= today:
            exposure += interest
            owed = Decimal(instalment["principal"]) + interest
            exposure += (owed * rate * (today - due).days).quantize(cent)
        elif start < today:
            exposure += (interest * (today - start).days / (due - start).days).quantize(cent)
            break
        start = due
    return exposure


@pytest.fixture
def mortgage_lgd(suite):
    """A per-product LGD for mortgages, the default (45%) for the rest."""
    app = suite.services["monitoring"]
    default = app.state.monitoring_settings
    app.state.monitoring_settings = default.model_copy(update={"lgd_by_product": {"mortgage": Decimal("0.25")}})
    yield
    app.state.monitoring_settings = default


def get(suite, path, headers=None, **params):
    response = suite.direct["monitoring"].get(path, params=params, headers=headers or role(suite, "risk_analyst"))
    assert response.status_code == 200, response.text
    return response


def test_the_portfolio_shows_npl_par_buckets_and_expected_loss(suite, book, mortgage_lgd):
    current, late, bad, scored, pd = book
    [whole] = get(suite, "/portfolio/figures").json()["groups"]
    assert (whole["group"], whole["loans"], whole["outstanding"]) == (None, 4, "42000.00")
    assert whole["npl_ratio"] == pytest.approx(6 / 42)
    assert (whole["par30"], whole["par90"]) == (pytest.approx(18 / 42), pytest.approx(6 / 42))
    # Unscored: PD 1% / 5% / 30% by class, LGD 45%, EAD with the interest due and unpaid and the interest accrued
    # since the last due date. Scored: its PD, the mortgage LGD of 25%, disbursed today: nothing due or accrued.
    assert (ead(current), ead(scored)) == (Decimal("12000.00"), Decimal("12000.00")) and ead(bad) > 6000
    by_class = [expected_loss(Decimal(p), Decimal("0.45"), ead(loan))
                for p, loan in [("0.01", current), ("0.05", late), ("0.30", bad)]]
    assert Decimal(whole["expected_loss"]) == sum(by_class) + expected_loss(pd, Decimal("0.25"), ead(scored))
    assert (whole["pd_from_score"], whole["pd_from_class"]) == (1, 3)
    assert {b["bucket"]: (b["loans"], b["outstanding"]) for b in whole["buckets"]} == {
        "M0": (2, "24000.00"), "M1": (0, "0.00"), "M2": (1, "12000.00"), "M3": (0, "0.00"), "M4+": (1, "6000.00")}


def test_figures_split_by_branch_and_a_loan_officer_sees_only_theirs(suite, book):
    by_branch = {g["group"]: g for g in get(suite, "/portfolio/figures", group_by="branch").json()["groups"]}
    assert by_branch["BJ001"]["npl_ratio"] == 0 and by_branch["SH002"]["npl_ratio"] == 1
    own = get(suite, "/portfolio/figures", headers=officer(suite, "SH002")).json()["groups"]
    assert [(g["loans"], g["outstanding"]) for g in own] == [(1, "6000.00")]
    by_product = get(suite, "/portfolio/figures", group_by="product").json()["groups"]
    assert [g["group"] for g in by_product] == ["mortgage", "personal_loan"]


def test_roll_rates_and_vintages_follow_the_history(suite, book):
    cob(suite, date(2027, 2, 10))
    rolls = get(suite, "/portfolio/roll-rates", start="2027-01-10", end="2027-02-10").json()
    assert rolls["counts"] == {"M0": 2, "M1": 0, "M2": 1, "M3": 0, "M4+": 1}
    assert rolls["rates"]["M0"]["M0"] == 1 and rolls["rates"]["M2"]["M3"] == 1 and rolls["rates"]["M4+"]["M4+"] == 1
    vintages = {v["cohort"]: v for v in get(suite, "/portfolio/vintages", months=6).json()}
    assert vintages["2027-01"]["curve"] == [0.0] and vintages["2027-01"]["principal"] == "24000.00"
    assert vintages["2026-09"]["curve"][-1] == 1.0 and vintages["2026-11"]["curve"][-1] == 1.0
    assert suite.direct["monitoring"].get("/portfolio/roll-rates", params={"start": "2027-03-01", "end": "2027-02-01"},
                                          headers=role(suite, "auditor")).status_code == 422


def test_figures_by_segment_and_value_tier_follow_the_customer_portraits(suite, book):
    loans = book[:4]
    # COB's contact check reads each borrower's portrait and keeps its segments and value tier on the loans.
    assert cob(suite, date(2027, 2, 10)).status_code == 200
    portraits = [suite.direct["customer"].get(f"/customers/{loan['customer_id']}/portrait", headers=admin(suite))
                 .json() for loan in loans]
    # A loan counts once in each of its borrower's segments; one in none is in the null group.
    want = Counter(s for p in portraits for s in p["segments"] or [None])
    assert len(portraits[1]["segments"]) > 1, portraits[1]  # the unhappy borrower's loan counts more than once
    by_segment = get(suite, "/portfolio/figures", group_by="segment").json()["groups"]
    assert {g["group"]: g["loans"] for g in by_segment} == want
    tiers = get(suite, "/portfolio/figures", group_by="value_tier").json()["groups"]
    assert {g["group"]: g["loans"] for g in tiers} == Counter(p["value_tier"] for p in portraits)
    # The re-score in the same COB kept the scoring service's PD: expected loss still uses it.
    [scored] = get(suite, "/portfolio/figures", headers=officer(suite, "GZ003")).json()["groups"]
    assert (scored["pd_from_score"], scored["pd_from_class"]) == (1, 0)
    assert_problem(suite.direct["monitoring"].get("/portfolio/figures", params={"group_by": "colour"},
                                                  headers=role(suite, "auditor")), 422, "query.group_by")


@pytest.mark.parametrize("chart", ["buckets", "vintages", "roll_rates"])
def test_each_chart_is_a_png(suite, book, chart):
    response = get(suite, f"/portfolio/charts/{chart}.png")
    assert response.headers["content-type"] == "image/png" and response.content.startswith(b"\x89PNG")
