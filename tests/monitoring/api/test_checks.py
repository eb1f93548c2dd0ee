"""Post-loan check tasks, and the review of an early-warning rule's precision and recall."""

from datetime import date
from decimal import Decimal

import pytest

from tests.monitoring.api.helpers import alerts_of, assert_problem, cob, officer, register, role, set_today


def checks_of(suite, loan_id, **params):
    return suite.direct["monitoring"].get("/checks", params={"loan_id": loan_id, **params},
                                          headers=officer(suite)).json()["items"]


def complete(suite, check_id, headers, outcome="satisfactory"):
    return suite.direct["monitoring"].post(f"/checks/{check_id}/complete", headers=headers,
                                           json={"outcome": outcome, "findings": "invoices seen on site"})


def test_a_new_loan_gets_its_use_of_funds_check_and_the_officer_records_it(suite, borrowers):
    set_today(suite, date(2027, 1, 10))
    loan = register(suite, borrowers, disbursement_date="2027-01-10")
    [task] = checks_of(suite, loan["id"])
    assert (task["kind"], task["due_date"], task["status"], task["officer"]) == (
        "use_of_funds", "2027-01-25", "open", "officer.bj001")
    assert_problem(complete(suite, task["id"], officer(suite, "SH002")), 404)
    assert_problem(complete(suite, task["id"], role(suite, "collector")), 403)
    done = complete(suite, task["id"], officer(suite)).json()
    assert (done["status"], done["outcome"], done["completed_by"], done["completed_on"]) == (
        "done", "satisfactory", "officer.bj001", "2027-01-10")
    assert_problem(complete(suite, task["id"], officer(suite)), 409)
    assert checks_of(suite, loan["id"], status="open") == []


def test_a_loan_that_turns_bad_gets_one_review(suite, borrowers):
    set_today(suite, date(2028, 1, 10))
    loan = register(suite, borrowers, disbursement_date="2028-01-10")
    report = cob(suite, date(2028, 2, 11)).json()
    assert report["steps"]["check_tasks"]["status"] == "done"
    cob(suite, date(2028, 2, 11))
    cob(suite, date(2028, 2, 12))
    reviews = [c for c in checks_of(suite, loan["id"]) if c["kind"] == "risk_review"]
    assert [(r["due_date"], r["status"]) for r in reviews] == [("2028-02-18", "open")]


def _act(suite, alert_id, *actions):
    for action in actions:
        response = suite.direct["monitoring"].post(f"/alerts/{alert_id}/{action}", json={},
                                                   headers=role(suite, "collector"))
        assert response.status_code == 200, response.text


def _payoff(loan) -> str:
    """Repaid in full before anything falls due: every instalment's total (no penalty yet). More is refused."""
    return str(sum(Decimal(r["total"]) for r in loan["schedule"]))


def test_a_rule_review_measures_precision_and_recall(suite, borrowers):
    set_today(suite, date(2029, 1, 10))
    # A branch of their own, so loans of the tests above do not count.
    warned, noise, unwarned = (register(suite, borrowers, disbursement_date="2029-01-10", branch="RV001")
                               for _ in range(3))
    cob(suite, date(2029, 1, 20))
    overridden = suite.direct["monitoring"].post(
        f"/loans/{unwarned['id']}/class-overrides", headers=officer(suite, "RV001"),
        json={"requested_class": "substandard", "reason": "fraud suspected"})
    decided = suite.direct["monitoring"].post(f"/class-overrides/{overridden.json()['id']}/decision",
                                              json={"approve": True}, headers=role(suite, "risk_analyst"))
    assert decided.status_code == 200
    paid = suite.direct["monitoring"].post(f"/loans/{unwarned['id']}/repayments", headers={
        **officer(suite, "RV001"), "Idempotency-Key": f"keep-current-{unwarned['id']}"},
        json={"amount": _payoff(unwarned)})
    assert paid.status_code == 201
    cob(suite, date(2029, 2, 11))
    _act(suite, alerts_of(suite, warned["id"])[0]["id"], "acknowledge", "resolve")
    _act(suite, alerts_of(suite, noise["id"])[0]["id"], "dismiss")
    cob(suite, date(2029, 5, 13))  # 92 days overdue: substandard
    review = suite.direct["monitoring"].get(
        "/rules/missed_payment/review", headers=role(suite, "risk_analyst"),
        params={"since": "2029-01-01", "until": "2029-12-31", "branch": "RV001"}).json()
    assert review["alerts"] == 2 and (review["resolved"], review["false_positives"]) == (1, 1)
    assert review["precision"] == pytest.approx(0.5)
    # Gone bad: warned and noise (both aged to substandard), and the overridden loan, which the rule missed.
    assert (review["loans_gone_bad"], review["warned_before"]) == (3, 2)
    assert review["recall"] == pytest.approx(2 / 3)
    bad_window = suite.direct["monitoring"].get("/rules/missed_payment/review", headers=role(suite, "auditor"),
                                                params={"since": "2029-12-31", "until": "2029-01-01"})
    assert_problem(bad_window, 422, "query.until")
    assert_problem(suite.direct["monitoring"].get("/rules/nope/review", headers=role(suite, "auditor"),
                                                  params={"since": "2029-01-01", "until": "2029-12-31"}), 404)


def test_after_the_first_check_periodic_checks_follow_closer_for_worse_and_larger_loans(suite, borrowers):
    set_today(suite, date(2030, 1, 10))
    small = register(suite, borrowers, disbursement_date="2030-01-10", first_due_date="2030-03-10")
    large = register(suite, borrowers, disbursement_date="2030-01-10", first_due_date="2030-03-10",
                     principal="1500000.00")
    cob(suite, date(2030, 1, 11))
    assert {c["kind"] for c in checks_of(suite, small["id"])} == {"use_of_funds"}  # the first check comes first
    for loan in (small, large):
        [first] = checks_of(suite, loan["id"])
        assert complete(suite, first["id"], officer(suite)).status_code == 200
    report = cob(suite, date(2030, 1, 12)).json()
    assert report["steps"]["check_tasks"]["periodic_checks_scheduled"] == 2
    periodic = {name: [c["due_date"] for c in checks_of(suite, loan["id"], status="open")]
                for name, loan in (("small", small), ("large", large))}
    assert periodic == {"small": ["2030-07-10"], "large": ["2030-04-11"]}  # 180 and 90 days after the first check
    cob(suite, date(2030, 3, 11))  # the first instalment is missed: special mention
    [due] = [c["due_date"] for c in checks_of(suite, small["id"], status="open") if c["kind"] == "periodic"]
    assert due == "2030-04-10"  # brought forward to a month
    cob(suite, date(2030, 3, 12))
    assert [c["due_date"] for c in checks_of(suite, small["id"], status="open") if c["kind"] == "periodic"] == [
        "2030-04-10"]  # and left there, not pushed on day by day
