"""GET /loans/outcomes: what a loan was on as_of comes only from history effective by then; what followed only
from the window after. Through the typed client, as the study reads it."""

from __future__ import annotations

import asyncio
import uuid
from datetime import date

import httpx
import pytest

from shared.clients.monitoring import MonitoringClient
from tests.monitoring.api.helpers import assert_problem, officer, register, role, set_today

AS_OF = date(2024, 12, 31)
WINDOW = 4  # months: the window is (2024-12-31, 2025-04-30]


def outcomes(suite, as_of: date = AS_OF, window: int = WINDOW, limit: int = 1000):  # noqa: ANN001, ANN201
    """Every page, through the monitoring client over the in-process app, as an analyst."""
    token = role(suite, "risk_analyst")["Authorization"].partition(" ")[2]
    client = MonitoringClient(suite.kernel, httpx.ASGITransport(app=suite.services["monitoring"]))

    async def walk():  # noqa: ANN202
        pages, cursor = [], None
        while True:
            page = await client.loan_outcomes(as_of, window_months=window, token=token, cursor=cursor, limit=limit)
            pages.append(page)
            if not (cursor := page.next_cursor):
                return pages
    try:
        return asyncio.run(walk())
    finally:
        asyncio.run(client.aclose())


def of(pages, loan_id: str):  # noqa: ANN001, ANN201
    return next((item for page in pages for item in page.items if item.loan_id == loan_id), None)


def pay(suite, loan_id: str, amount: str, value_date: date) -> None:  # noqa: ANN001
    response = suite.direct["monitoring"].post(
        f"/loans/{loan_id}/repayments", json={"amount": amount, "value_date": value_date.isoformat()},
        headers={**officer(suite), "Idempotency-Key": uuid.uuid4().hex})
    assert response.status_code == 201, response.text


@pytest.fixture(scope="module")
def book(suite, borrowers):  # noqa: ANN001, ANN201
    """A current loan and one already 90+ days past due, booked on 2024-12-15; one booked only in May 2025."""
    set_today(suite, date(2024, 12, 15))
    current = register(suite, borrowers, disbursement_date="2024-12-01")
    defaulted = register(suite, borrowers, disbursement_date="2024-08-01")
    set_today(suite, date(2025, 5, 1))
    late = register(suite, borrowers, disbursement_date="2024-12-01")
    return {"current": current, "defaulted": defaulted, "late": late}


def test_a_payment_after_as_of_changes_the_outcome_never_the_facts_of_as_of(suite, book) -> None:  # noqa: ANN001
    loan = book["current"]["id"]
    before = of(outcomes(suite), loan)
    assert before is not None and before.dpd_at_as_of == 0 and before.bucket_at_as_of == "M0"
    assert before.vintage == "2024-12" and before.product == "personal_loan" and not before.default_in_window
    # Nothing paid since the first due date (2025-01-01): a small payment on 2025-04-20 replays the path and
    # finds the loan 109 days past due then, inside the window.
    pay(suite, loan, "10.00", date(2025, 4, 20))
    after = of(outcomes(suite), loan)
    assert after.default_in_window and after.default_on == date(2025, 4, 20)
    facts = {"dpd_at_as_of", "bucket_at_as_of", "grade_at_origination", "pd_at_origination", "vintage", "principal",
             "product", "disbursement_date"}
    assert after.model_dump(include=facts) == before.model_dump(include=facts)
    # A shorter window ending before that day does not see it.
    assert not of(outcomes(suite, window=3), loan).default_in_window


def test_loans_already_past_90_days_or_unknown_on_as_of_are_left_out_and_counted(suite, book) -> None:  # noqa: ANN001
    pages = outcomes(suite)
    assert of(pages, book["defaulted"]["id"]) is None and of(pages, book["late"]["id"]) is None
    assert sum(p.excluded_already_defaulted for p in pages) >= 1
    assert sum(p.excluded_unknown_at_as_of for p in pages) >= 1


def test_pages_walk_every_loan_once(suite, book) -> None:  # noqa: ANN001
    one_by_one = outcomes(suite, limit=1)
    ids = [item.loan_id for page in one_by_one for item in page.items]
    assert len(ids) == len(set(ids)) == sum(len(p.items) for p in outcomes(suite))
    assert book["current"]["id"] in ids


def test_a_window_not_closed_by_the_business_date_is_refused(suite, book) -> None:  # noqa: ANN001
    response = suite.direct["monitoring"].get("/loans/outcomes", params={"as_of": "2025-03-01", "window_months": 12},
                                              headers=role(suite, "risk_analyst"))
    assert_problem(response, 422, "query.as_of")


def test_only_analysts_auditors_and_admins_read_outcomes(suite, book) -> None:  # noqa: ANN001
    params = {"as_of": AS_OF.isoformat(), "window_months": WINDOW}
    assert suite.direct["monitoring"].get("/loans/outcomes", params=params,
                                          headers=officer(suite)).status_code == 403
    assert suite.direct["monitoring"].get("/loans/outcomes", params=params,
                                          headers=role(suite, "auditor")).status_code == 200
