"""Restructuring with new terms: the schedule after the effective date is rebooked, the old one kept as history."""

import uuid
from datetime import date
from decimal import Decimal

from tests.monitoring.api.helpers import assert_problem, decide, officer, register, role, set_today

D = Decimal


def pay(suite, loan_id, amount, **extra):
    return suite.direct["monitoring"].post(
        f"/loans/{loan_id}/repayments", json={"amount": str(amount), **extra},
        headers={**officer(suite), "Idempotency-Key": uuid.uuid4().hex})


def detail(suite, loan_id):
    return suite.direct["monitoring"].get(f"/loans/{loan_id}", headers=officer(suite)).json()


def consistent(suite, loan_id):
    body = suite.direct["monitoring"].get(f"/loans/{loan_id}/balance-check", headers=role(suite, "auditor")).json()
    assert body["consistent"], body
    return body


def restructure(suite, loan_id, **body):
    """Request a restructuring and, when the request is accepted, have a risk analyst approve it."""
    requested = suite.direct["monitoring"].post(f"/loans/{loan_id}/restructuring",
                                                json={"reason": "hardship", **body}, headers=officer(suite))
    return decide(suite, requested.json()["id"]) if requested.status_code == 201 else requested


def test_a_new_rate_and_term_rebook_what_is_not_yet_due_and_keep_the_old_schedule(suite, borrowers):
    set_today(suite, date(2026, 1, 15))
    loan = register(suite, borrowers, disbursement_date="2026-01-15")  # 12 000 at 12% over 12 months
    original = loan["schedule"]
    set_today(suite, date(2026, 4, 20))  # instalments 1-3 due; the borrower pays two of them
    assert pay(suite, loan["id"], D(original[0]["total"]) + D(original[1]["total"])).status_code == 201
    before = detail(suite, loan["id"])
    assert before["dpd"] == 5

    rebooked = restructure(suite, loan["id"], annual_rate="0.06", term_months=24)
    assert rebooked.status_code == 200, rebooked.text
    after = detail(suite, loan["id"])
    schedule = after["schedule"]
    assert [i["number"] for i in schedule] == list(range(1, 28))
    assert schedule[:3] == before["schedule"][:3]  # what fell due stays, paid or in arrears
    fresh = schedule[3:]
    arrears = D(original[2]["principal"])
    assert sum(D(i["principal"]) for i in fresh) == D(before["outstanding_principal"]) - arrears
    assert fresh[0]["due_date"] == "2026-05-15" and fresh[-1]["due_date"] == "2028-04-15"
    # The first new month's interest runs from the last due date at the new rate.
    assert D(fresh[0]["interest"]) == (sum(D(i["principal"]) for i in fresh) * D("0.005")).quantize(D("0.01"))
    assert (after["annual_rate"], after["term_months"], after["restructured_on"]) == ("0.060000", 27, "2026-04-20")
    # Arrears stay arrears: still 5 days past due, and restructured, so at least special mention.
    assert (after["dpd"], after["classification"]) == (5, "special_mention")
    [history] = after["rebookings"]
    assert (history["effective_date"], history["annual_rate_before"], history["annual_rate_after"],
            history["term_months"]) == ("2026-04-20", "0.120000", "0.060000", 24)
    assert D(history["principal_rescheduled"]) == sum(D(i["principal"]) for i in fresh)
    assert [(i["number"], i["due_date"], i["principal"], i["interest"]) for i in history["superseded"]] == [
        (i["number"], i["due_date"], i["principal"], i["interest"]) for i in original[3:]]
    consistent(suite, loan["id"])

    # Money after the rebooking pays the arrears, then the new schedule; none may be dated before it.
    assert pay(suite, loan["id"], D(original[2]["total"]) + D(fresh[0]["total"])).status_code == 201
    paid = detail(suite, loan["id"])
    assert paid["dpd"] == 0 and paid["schedule"][3]["principal_paid"] == fresh[0]["principal"]
    consistent(suite, loan["id"])
    assert_problem(pay(suite, loan["id"], "10.00", value_date="2026-04-19"), 422, "body.value_date")


def test_a_rate_cut_alone_keeps_the_remaining_term_and_dates_are_checked(suite, borrowers):
    set_today(suite, date(2027, 1, 15))
    loan = register(suite, borrowers, disbursement_date="2027-01-15")
    set_today(suite, date(2027, 3, 1))
    assert pay(suite, loan["id"], "500.00", value_date="2027-02-20").status_code == 201
    assert_problem(restructure(suite, loan["id"], annual_rate="0.08", effective_date="2027-02-19"), 422,
                   "body.effective_date")  # before the last posting's value date
    assert_problem(restructure(suite, loan["id"], annual_rate="0.08", effective_date="2027-03-02"), 422,
                   "body.effective_date")  # after the business date
    assert_problem(restructure(suite, loan["id"], effective_date="2027-03-01"), 422, "body.effective_date")
    rebooked = restructure(suite, loan["id"], annual_rate="0.08", effective_date="2027-02-20")
    assert rebooked.status_code == 200, rebooked.text
    after = detail(suite, loan["id"])
    # Instalment 1 (due 15 Feb) was paid in part and stays; the 11 after it are rebooked over 11 months at 8%.
    assert [i["number"] for i in after["schedule"]] == list(range(1, 13))
    assert after["schedule"][1]["due_date"] == "2027-03-15" and after["rebookings"][0]["term_months"] == 11
    assert D(after["schedule"][1]["interest"]) < D(loan["schedule"][1]["interest"])
    consistent(suite, loan["id"])
