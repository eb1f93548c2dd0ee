"""Post-loan checks that follow the borrower's risk: a weak grade is checked sooner, more often, and on site."""

from datetime import date

from tests.monitoring.api.helpers import cob, officer, register, scored_borrower, set_today


def _checks(suite, loan_id):  # noqa: ANN001, ANN202
    return suite.direct["monitoring"].get("/checks", params={"loan_id": loan_id, "status": "open"},
                                          headers=officer(suite)).json()["items"]


def test_a_weaker_grade_is_checked_sooner_more_often_and_on_site(suite, borrowers, rows_by_grade):
    set_today(suite, date(2033, 1, 10))
    strong, weak = (register(suite, borrowers, disbursement_date="2033-01-10", first_due_date="2033-03-10",
                             customer_id=scored_borrower(suite, borrowers, rows_by_grade[grade]))
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
