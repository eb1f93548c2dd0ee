"""Portfolio figures a risk committee reads: NPL, PAR, buckets, expected loss, roll rates, vintages, charts."""

from datetime import date, timedelta

import pytest

from tests.monitoring.api.helpers import cob, officer, register, role, set_today

TODAY = date(2027, 1, 10)


def overdue(suite, borrowers, dpd, **overrides):
    first_due = TODAY - timedelta(days=dpd)
    return register(suite, borrowers, first_due_date=first_due.isoformat(),
                    disbursement_date=(first_due - timedelta(days=20)).isoformat(), **overrides)


@pytest.fixture(scope="module")
def book(suite, borrowers):
    set_today(suite, TODAY)
    current = register(suite, borrowers, disbursement_date="2027-01-10")
    late = overdue(suite, borrowers, 45)
    bad = overdue(suite, borrowers, 100, principal="6000.00", branch="SH002", officer="officer.sh002",
                  headers=officer(suite, "SH002"))
    return current, late, bad


def get(suite, path, headers=None, **params):
    response = suite.direct["monitoring"].get(path, params=params, headers=headers or role(suite, "risk_analyst"))
    assert response.status_code == 200, response.text
    return response


def test_the_portfolio_shows_npl_par_buckets_and_expected_loss(suite, book):
    [whole] = get(suite, "/portfolio/figures").json()["groups"]
    assert (whole["group"], whole["loans"], whole["outstanding"]) == (None, 3, "30000.00")
    assert whole["npl_ratio"] == pytest.approx(0.2)
    assert (whole["par30"], whole["par90"]) == (pytest.approx(0.6), pytest.approx(0.2))
    # PD 1% / 5% / 30% by class, LGD 45%: 54.00 + 270.00 + 810.00.
    assert whole["expected_loss"] == "1134.00"
    assert {b["bucket"]: (b["loans"], b["outstanding"]) for b in whole["buckets"]} == {
        "M0": (1, "12000.00"), "M1": (0, "0.00"), "M2": (1, "12000.00"), "M3": (0, "0.00"), "M4+": (1, "6000.00")}


def test_figures_split_by_branch_and_a_loan_officer_sees_only_theirs(suite, book):
    by_branch = {g["group"]: g for g in get(suite, "/portfolio/figures", group_by="branch").json()["groups"]}
    assert by_branch["BJ001"]["npl_ratio"] == 0 and by_branch["SH002"]["npl_ratio"] == 1
    own = get(suite, "/portfolio/figures", headers=officer(suite, "SH002")).json()["groups"]
    assert [(g["loans"], g["outstanding"]) for g in own] == [(1, "6000.00")]
    by_product = get(suite, "/portfolio/figures", group_by="product").json()["groups"]
    assert [g["group"] for g in by_product] == ["personal_loan"]


def test_roll_rates_and_vintages_follow_the_history(suite, book):
    current, late, bad = book
    cob(suite, date(2027, 2, 10))
    rolls = get(suite, "/portfolio/roll-rates", start="2027-01-10", end="2027-02-10").json()
    assert rolls["counts"] == {"M0": 1, "M1": 0, "M2": 1, "M3": 0, "M4+": 1}
    assert rolls["rates"]["M0"]["M0"] == 1 and rolls["rates"]["M2"]["M3"] == 1 and rolls["rates"]["M4+"]["M4+"] == 1
    vintages = {v["cohort"]: v for v in get(suite, "/portfolio/vintages", months=6).json()}
    assert vintages["2027-01"]["curve"] == [0.0] and vintages["2027-01"]["principal"] == "12000.00"
    assert vintages["2026-09"]["curve"][-1] == 1.0 and vintages["2026-11"]["curve"][-1] == 1.0
    assert suite.direct["monitoring"].get("/portfolio/roll-rates", params={"start": "2027-03-01", "end": "2027-02-01"},
                                          headers=role(suite, "auditor")).status_code == 422


@pytest.mark.parametrize("chart", ["buckets", "vintages", "roll_rates"])
def test_each_chart_is_a_png(suite, book, chart):
    response = get(suite, f"/portfolio/charts/{chart}.png")
    assert response.headers["content-type"] == "image/png" and response.content.startswith(b"\x89PNG")
