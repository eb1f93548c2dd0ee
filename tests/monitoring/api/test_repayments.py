"""Repayments: allocation, idempotency, reversal, backdating and parallel postings, seen through balances."""

import json
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from decimal import Decimal

import psycopg
import pytest

from services.monitoring.errors import DomainError
from services.monitoring.loans.service import lock_loan
from services.monitoring.repayments.models import RepaymentCreate
from services.monitoring.repayments.service import post_repayment
from shared.auth.scope import EVERYTHING, Visibility
from shared.errors import Problem
from tests.monitoring.api.helpers import assert_problem, officer, register, role, set_today
from tests.support import _libpq

D = Decimal


def pay(suite, loan_id, amount, key=None, headers=None, **extra):
    return suite.direct["monitoring"].post(
        f"/loans/{loan_id}/repayments", json={"amount": amount, **extra},
        headers={**(headers or officer(suite)), "Idempotency-Key": key or uuid.uuid4().hex})


def check(suite, loan_id):
    body = suite.direct["monitoring"].get(f"/loans/{loan_id}/balance-check", headers=role(suite, "auditor")).json()
    assert body["consistent"], body
    return body


def loan_detail(suite, loan_id):
    return suite.direct["monitoring"].get(f"/loans/{loan_id}", headers=officer(suite)).json()


@pytest.fixture
def loan(suite, borrowers):
    set_today(suite, date(2026, 2, 15))
    return register(suite, borrowers)


def test_an_instalment_paid_on_its_due_date_pays_interest_then_principal(suite, loan):
    first = loan["schedule"][0]
    response = pay(suite, loan["id"], first["total"])
    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["interest"], body["principal"], body["overpayment"]) == (first["interest"], first["principal"], "0.00")
    assert body["loan"]["outstanding_principal"] == str(D("12000.00") - D(first["principal"]))
    assert body["loan"]["dpd"] == 0 and body["value_date"] == "2026-02-15"
    assert check(suite, loan["id"])["principal_repaid"] == first["principal"]


def test_a_partial_payment_goes_to_interest_first(suite, loan):
    body = pay(suite, loan["id"], "50.00").json()
    assert (body["interest"], body["principal"]) == ("50.00", "0.00")
    check(suite, loan["id"])


def test_early_and_over_payment_close_the_loan_and_keep_the_excess_as_credit(suite, loan):
    total_owed = sum(D(r["total"]) for r in loan["schedule"])
    body = pay(suite, loan["id"], str(total_owed + D("10.00"))).json()
    assert body["overpayment"] == "10.00" and body["principal"] == "12000.00"
    assert body["loan"]["status"] == "closed" and body["loan"]["outstanding_principal"] == "0.00"
    assert check(suite, loan["id"])["credit_balance"] == "10.00"
    assert_problem(pay(suite, loan["id"], "1.00"), 422, "body.amount")


def test_a_repayment_needs_an_idempotency_key_and_a_retry_posts_once(suite, loan):
    no_key = suite.direct["monitoring"].post(f"/loans/{loan['id']}/repayments", json={"amount": "100.00"},
                                             headers=officer(suite))
    assert_problem(no_key, 428)
    first, again = pay(suite, loan["id"], "100.00", key="pay-1"), pay(suite, loan["id"], "100.00", key="pay-1")
    assert first.status_code == again.status_code == 201 and first.json() == again.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert check(suite, loan["id"])["received"] == "100.00"
    assert_problem(pay(suite, loan["id"], "200.00", key="pay-1"), 422, "header.Idempotency-Key")


@pytest.mark.parametrize("body, field", [
    ({"amount": "0"}, "body.amount"), ({"amount": "-1"}, "body.amount"), ({"amount": "1.234"}, "body.amount"),
    ({"amount": "10", "value_date": "2026-02-16"}, "body.value_date"),
    ({"amount": "10", "value_date": "2026-01-01"}, "body.value_date"),
])
def test_bad_repayments_are_refused_naming_the_field(suite, loan, body, field):
    response = suite.direct["monitoring"].post(f"/loans/{loan['id']}/repayments", json=body,
                                               headers={**officer(suite), "Idempotency-Key": uuid.uuid4().hex})
    assert_problem(response, 422, field)


def test_only_the_loans_branch_and_officers_post(suite, loan):
    assert_problem(pay(suite, loan["id"], "10.00", headers=officer(suite, "SH002")), 404)
    assert_problem(pay(suite, loan["id"], "10.00", headers=role(suite, "collector")), 403)
    assert_problem(pay(suite, "no-such-loan", "10.00"), 404)


def test_a_reversal_makes_the_money_owed_again(suite, loan):
    posting = pay(suite, loan["id"], loan["schedule"][0]["total"]).json()
    reversed_ = suite.direct["monitoring"].post(f"/postings/{posting['id']}/reversal",
                                                json={"reason": "cheque bounced"}, headers=officer(suite))
    assert reversed_.status_code == 200, reversed_.text
    assert reversed_.json()["status"] == "reversed" and reversed_.json()["loan"]["outstanding_principal"] == "12000.00"
    assert check(suite, loan["id"])["received"] == "0.00"
    again = suite.direct["monitoring"].post(f"/postings/{posting['id']}/reversal", json={"reason": "again"},
                                            headers=officer(suite))
    assert_problem(again, 409)


def test_a_backdated_repayment_cures_the_past_and_supersedes_what_it_disproves(suite, borrowers):
    set_today(suite, date(2026, 2, 15))
    loan = register(suite, borrowers)
    set_today(suite, date(2026, 5, 1))
    three = str(sum(D(r["total"]) for r in loan["schedule"][:3]))
    late = pay(suite, loan["id"], "10.00").json()["loan"]
    assert (late["dpd"], late["bucket"], late["classification"]) == (75, "M3", "special_mention")
    body = pay(suite, loan["id"], three, value_date="2026-02-15").json()
    assert (body["loan"]["dpd"], body["loan"]["bucket"], body["loan"]["classification"]) == (0, "M0", "normal")
    # In effect the loan was never late: the 10.00's row (M3 from 1 May) is superseded, only the booking stands.
    path = f"/loans/{loan['id']}/history"
    history = suite.direct["monitoring"].get(path, headers=officer(suite)).json()["items"]
    assert [(h["field"], h["from_value"], h["to_value"], h["effective_date"]) for h in history] == [
        ("bucket", None, "M0", "2026-02-15"), ("loan_class", None, "normal", "2026-02-15"),
        ("stage", None, "1", "2026-02-15")]
    # What was recorded before stays in the as-recorded trail, marked with the correction that superseded it: M3
    # from 1 May, recorded by the inline COB that aged the loan to the business date before the 10.00 was posted.
    recorded = suite.direct["monitoring"].get(path, params={"view": "recorded"}, headers=officer(suite)).json()["items"]
    [was_late] = [h for h in recorded if h["cause"] == "cob_ageing" and h["to_value"] == "M3"]
    assert was_late["superseded_by"] == body["id"] and was_late["superseded_at"] is not None
    # The earlier 10.00 now lands after the backdated three instalments: on the fourth.
    assert check(suite, loan["id"])["received"] == str(D(three) + D("10.00"))


def test_parallel_postings_on_one_loan_end_with_an_exact_balance(suite, loan):
    def post(i):
        return pay(suite, loan["id"], "100.00", key=f"parallel-{loan['id']}-{i}").status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        codes = list(pool.map(post, range(24)))
    assert codes == [201] * 24
    body = check(suite, loan["id"])
    assert body["received"] == "2400.00"
    postings = suite.direct["monitoring"].get(f"/loans/{loan['id']}/postings", headers=officer(suite)).json()["items"]
    assert len(postings) == 24
    assert sum(D(p["principal"]) + D(p["interest"]) for p in postings) == D("2400.00")


def _fined_loan(suite, borrowers) -> dict:  # noqa: ANN001
    """A business loan booked while its product charges 0.05% a day of penalty on what is overdue."""
    app = suite.services["monitoring"]
    settings = app.state.monitoring_settings
    app.state.monitoring_settings = settings.model_copy(update={"penalty_daily_rates": {"business_loan": D("0.0005")}})
    try:
        return register(suite, borrowers, product="business_loan")
    finally:
        app.state.monitoring_settings = settings


def test_penalty_interest_is_charged_per_product_and_taken_first(suite, borrowers):
    set_today(suite, date(2026, 2, 25))
    fined = _fined_loan(suite, borrowers)
    plain = register(suite, borrowers)  # personal loans carry no penalty unless configured
    assert (D(fined["penalty_daily_rate"]), D(plain["penalty_daily_rate"])) == (D("0.0005"), 0)
    first = fined["schedule"][0]  # due 2026-02-15, ten days overdue on the business date
    penalty = (D(first["total"]) * D("0.0005") * 10).quantize(D("0.01"))
    body = pay(suite, fined["id"], "100.00").json()
    assert (body["penalty"], body["interest"]) == (str(penalty), str(D("100.00") - penalty))
    again = pay(suite, fined["id"], "1.00").json()
    assert again["penalty"] == "0.00"  # already paid for these days
    assert loan_detail(suite, fined["id"])["schedule"][0]["penalty_paid"] == str(penalty)
    check(suite, fined["id"])
    assert pay(suite, plain["id"], "100.00").json()["penalty"] == "0.00"


def test_a_caller_who_may_not_see_a_loan_never_holds_its_lock(suite, loan):
    """The write lock was taken before the scope check: another branch's officer, refused with a 404, held the
    loan's row lock until their transaction ended, and the loan's own officers' postings waited on it."""
    if suite.backend != "postgres":
        pytest.skip("SQLite has no row locks: a write there takes the database's one write lock")
    database = suite.database("monitoring")
    with database.session() as stranger:
        with pytest.raises(Problem) as refused:
            lock_loan(stranger, loan["id"], Visibility(branch="SH002"))
        assert refused.value.status == 404
        # The stranger's transaction is still open: the loan's own branch can lock it at once.
        with psycopg.connect(_libpq(database.engine.url), autocommit=True) as other:
            other.execute("SET lock_timeout = '2s'")
            with other.transaction():
                assert other.execute("SELECT id FROM loans WHERE id = %s FOR UPDATE",
                                     (loan["id"],)).fetchone() == (loan["id"],)
    assert pay(suite, loan["id"], "10.00").status_code == 201


def _tolerance(suite) -> Decimal:
    return suite.services["monitoring"].state.monitoring_settings.overpayment_tolerance


def test_a_repayment_beyond_what_settles_the_loan_is_refused_and_writes_nothing(suite, loan):
    """50,000,000.00 on a loan owing 12,000-odd was booked, the loan closed with a credit of nearly all of it. More
    than the payoff plus the tolerance is now a 422 naming body.amount and the most that can be taken."""
    payoff = sum(D(r["total"]) for r in loan["schedule"])  # nothing paid, no penalty on this product
    most = payoff + _tolerance(suite)
    before = loan_detail(suite, loan["id"])
    for amount in (str(most + D("0.01")), "50000000.00", "99999999999999.99"):
        problem = assert_problem(pay(suite, loan["id"], amount), 422, "body.amount")
        assert str(most) in json.dumps(problem), problem
    assert loan_detail(suite, loan["id"]) == before
    assert check(suite, loan["id"])["received"] == "0.00"
    backdated = pay(suite, loan["id"], "50000000.00", value_date="2026-02-01")  # the replaying path
    assert_problem(backdated, 422, "body.amount")
    assert loan_detail(suite, loan["id"]) == before


def test_exactly_the_payoff_with_its_penalty_closes_the_loan_and_a_cent_over_the_tolerance_does_not(suite, borrowers):
    set_today(suite, date(2026, 2, 25))
    fined = _fined_loan(suite, borrowers)
    first = fined["schedule"][0]  # ten days overdue
    payoff = sum(D(r["total"]) for r in fined["schedule"]) + (D(first["total"]) * D("0.0005") * 10).quantize(D("0.01"))
    assert_problem(pay(suite, fined["id"], str(payoff + _tolerance(suite) + D("0.01"))), 422, "body.amount")
    body = pay(suite, fined["id"], str(payoff))
    assert body.status_code == 201, body.text
    assert (body.json()["overpayment"], body.json()["loan"]["status"]) == ("0.00", "closed")
    assert check(suite, fined["id"])["credit_balance"] == "0.00"


def test_the_orm_path_refuses_more_than_the_payoff_too(suite, loan):
    """`service.post_repayment` (what a posting that changes the past replays through) holds the same rule."""
    most = sum(D(r["total"]) for r in loan["schedule"]) + D("5.00")
    with suite.database("monitoring").session() as session:
        with pytest.raises(DomainError) as refused:
            post_repayment(session, loan["id"], RepaymentCreate(amount=most + D("0.01"), value_date=date(2026, 2, 1)),
                           scope=EVERYTHING, posted_by="test", as_of=date(2026, 2, 15), tolerance=D("5.00"))
        assert refused.value.field == "amount" and str(most) in refused.value.message
        posting, _ = post_repayment(session, loan["id"], RepaymentCreate(amount=most, value_date=date(2026, 2, 1)),
                                    scope=EVERYTHING, posted_by="test", as_of=date(2026, 2, 15), tolerance=D("5.00"))
        assert posting.overpayment == D("5.00")
        session.rollback()
