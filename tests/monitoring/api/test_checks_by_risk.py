"""Post-loan checks that follow the borrower's risk: a weak grade is checked sooner, more often, and on site."""

from datetime import date

import pytest

from tests.monitoring.api.helpers import admin, cob, officer, register, set_today
from tests.scoring.api.conftest import german_rows


@pytest.fixture(scope="module")
def rows_by_grade(suite, champion):  # noqa: ANN001, ANN201
    """One German applicant per grade the default champion gives, from the first 300 rows."""
    rows = german_rows()[:300]
    scores = suite.direct["scoring"].post("/scores:batch", json={"rows": [{"features": r} for r in rows]},
                                          headers=admin(suite)).json()["scores"]
    found = {}
    for row, score in zip(rows, scores, strict=True):
        found.setdefault(score["grade"], row)
    assert {"A", "E"} <= set(found), set(found)
    return found


def _scored_borrower(suite, borrowers, features):  # noqa: ANN001, ANN202
    customer = borrowers.new_customer()
    scored = suite.direct["scoring"].post("/scores", json={"customer_id": customer, "features": features},
                                          headers=admin(suite))
    assert scored.status_code == 201, scored.text
    return customer


def _checks(suite, loan_id):  # noqa: ANN001, ANN202
    return suite.direct["monitoring"].get("/checks", params={"loan_id": loan_id, "status": "open"},
                                          headers=officer(suite)).json()["items"]


def test_a_weaker_grade_is_checked_sooner_more_often_and_on_site(suite, borrowers, rows_by_grade):
    set_today(suite, date(2033, 1, 10))
    strong, weak = (register(suite, borrowers, disbursement_date="2033-01-10", first_due_date="2033-03-10",
                             customer_id=_scored_borrower(suite, borrowers, rows_by_grade[grade]))
                    for grade in ("A", "E"))
    [strong_first], [weak_first] = _checks(suite, strong["id"]), _checks(suite, weak["id"])
    assert (strong_first["kind"], strong_first["due_date"], strong_first["visit_type"]) == (
        "use_of_funds", "2033-01-25", "document_review")
    assert (weak_first["kind"], weak_first["due_date"], weak_first["visit_type"]) == (
        "use_of_funds", "2033-01-17", "on_site_visit")  # 7 days instead of 15, seen on site
    for task in (strong_first, weak_first):
        done = suite.direct["monitoring"].post(f"/checks/{task['id']}/complete", headers=officer(suite),
                                               json={"outcome": "satisfactory", "findings": "invoices seen"})
        assert done.status_code == 200, done.text
    cob(suite, date(2033, 1, 11))
    [strong_next], [weak_next] = _checks(suite, strong["id"]), _checks(suite, weak["id"])
    assert (strong_next["kind"], strong_next["due_date"], strong_next["visit_type"]) == (
        "periodic", "2033-07-09", "phone")  # 180 days for a normal loan of a strong borrower
    assert (weak_next["kind"], weak_next["due_date"], weak_next["visit_type"]) == (
        "periodic", "2033-02-09", "on_site_visit")  # grade E: every 30 days, on site
