"""Loans and schedules through the API: what a loan officer books is what the schedule and the list show."""

import asyncio
import uuid
from datetime import date
from decimal import Decimal

import httpx
import pytest
from sqlalchemy import text

from shared.clients.monitoring import MonitoringClient

from tests.monitoring.api.helpers import admin, assert_problem, loan_body, officer, peer_down, register, role, \
    set_today

PREVIEW = {"principal": "10000.00", "annual_rate": "0.0435", "term_months": 7, "disbursement_date": "2026-01-31"}


@pytest.fixture(autouse=True)
def today(suite):
    set_today(suite, date(2026, 1, 31))


def _preview(suite, method, **overrides):
    response = suite.direct["monitoring"].post("/loans/schedule-preview", headers=officer(suite),
                                               json={**PREVIEW, "repayment_method": method, **overrides})
    assert response.status_code == 200, response.text
    return response.json()


@pytest.mark.parametrize("method", ["equal_instalment", "equal_principal", "interest_only_bullet"])
def test_every_schedule_repays_the_principal_to_the_cent(suite, method):
    body = _preview(suite, method)
    rows = body["instalments"]
    assert len(rows) == 7
    assert sum(Decimal(r["principal"]) for r in rows) == Decimal("10000.00") == Decimal(body["total_principal"])
    assert sum(Decimal(r["interest"]) for r in rows) == Decimal(body["total_interest"])
    assert all(Decimal(r["total"]) == Decimal(r["principal"]) + Decimal(r["interest"]) for r in rows)
    assert all(len(r["principal"].split(".")[1]) == 2 for r in rows)
    # Jan 31 disbursement: due on the last day of short months, back on the 31st afterwards.
    assert [r["due_date"] for r in rows[:3]] == ["2026-02-28", "2026-03-31", "2026-04-30"]


def test_each_method_has_its_shape(suite):
    annuity = _preview(suite, "equal_instalment")["instalments"]
    assert len({r["total"] for r in annuity[:-1]}) == 1
    equal_principal = _preview(suite, "equal_principal")["instalments"]
    assert len({r["principal"] for r in equal_principal[:-1]}) == 1
    assert Decimal(equal_principal[0]["interest"]) > Decimal(equal_principal[-1]["interest"])
    bullet = _preview(suite, "interest_only_bullet")["instalments"]
    assert [r["principal"] for r in bullet[:-1]] == ["0.00"] * 6 and bullet[-1]["principal"] == "10000.00"
    # Interest-only costs the most, equal principal the least.
    totals = [sum(Decimal(r["interest"]) for r in s) for s in (equal_principal, annuity, bullet)]
    assert totals == sorted(totals)


@pytest.mark.parametrize("overrides, field", [
    ({"term_months": 0}, "body.term_months"),
    ({"principal": "-5"}, "body.principal"),
    ({"principal": "100.001"}, "body.principal"),
    ({"annual_rate": "1.5"}, "body.annual_rate"),
    ({"repayment_method": "balloon"}, "body.repayment_method"),
    ({"disbursement_date": "2026-02-30"}, "body.disbursement_date"),
    ({"first_due_date": "2026-01-01"}, "body.first_due_date"),
])
def test_bad_schedule_input_is_a_422_naming_the_field(suite, overrides, field):
    response = suite.direct["monitoring"].post("/loans/schedule-preview", headers=officer(suite),
                                               json={**PREVIEW, "repayment_method": "equal_instalment", **overrides})
    assert_problem(response, 422, field)


def test_a_registered_loan_keeps_its_schedule_and_is_listed_for_its_customer(suite, borrowers):
    loan = register(suite, borrowers, external_id=f"CORE-{uuid.uuid4().hex[:8]}")
    assert loan["status"] == "active" and loan["dpd"] == 0 and loan["bucket"] == "M0"
    assert loan["classification"] == "normal" and loan["ifrs9_stage"] == 1
    assert loan["outstanding_principal"] == "12000.00" and len(loan["schedule"]) == 12
    listed = suite.direct["monitoring"].get("/loans", params={"customer_id": loan["customer_id"]},
                                            headers=role(suite, "auditor")).json()["items"]
    assert [row["id"] for row in listed] == [loan["id"]]
    assert set(listed[0]) == {"id", "external_id", "customer_id", "product", "principal", "outstanding_principal",
                              "dpd", "bucket", "classification", "ifrs9_stage", "status", "disbursement_date"}
    by_external = suite.direct["monitoring"].get("/loans", params={"external_id": loan["external_id"]},
                                                 headers=officer(suite)).json()["items"]
    assert [row["id"] for row in by_external] == [loan["id"]]


def test_registering_twice_with_one_key_books_one_loan(suite, borrowers):
    body = loan_body(borrowers.new_customer(), external_id=f"CORE-{uuid.uuid4().hex[:8]}")
    headers = {**officer(suite), "Idempotency-Key": uuid.uuid4().hex}
    first = suite.direct["monitoring"].post("/loans", json=body, headers=headers)
    again = suite.direct["monitoring"].post("/loans", json=body, headers=headers)
    assert first.status_code == again.status_code == 201 and first.json() == again.json()
    listed = suite.direct["monitoring"].get("/loans", params={"customer_id": body["customer_id"]},
                                            headers=officer(suite))
    assert len(listed.json()["items"]) == 1
    changed = suite.direct["monitoring"].post("/loans", json={**body, "principal": "13000.00"}, headers=headers)
    assert_problem(changed, 422, "header.Idempotency-Key")
    duplicate = suite.direct["monitoring"].post("/loans", json=body,
                                                headers={**officer(suite), "Idempotency-Key": "other"})
    assert_problem(duplicate, 409)


def test_an_unknown_customer_or_a_missing_customer_service_is_a_clear_problem(suite, borrowers):
    unknown = suite.direct["monitoring"].post("/loans", json=loan_body("nobody"), headers=officer(suite))
    assert_problem(unknown, 422, "body.customer_id")
    customer = borrowers.new_customer()
    with peer_down(suite, "customer"):
        down = suite.direct["monitoring"].post("/loans", json=loan_body(customer), headers=officer(suite))
    assert assert_problem(down, 503)["service"] == "customer"
    with peer_down(suite, "scoring"):
        without_score = register(suite, borrowers)  # the score baseline is optional; booking goes on
    assert without_score["status"] == "active"


def test_a_loan_in_the_future_is_refused(suite, borrowers):
    body = loan_body(borrowers.new_customer(), disbursement_date="2026-02-01")
    response = suite.direct["monitoring"].post("/loans", json=body, headers=officer(suite))
    assert_problem(response, 422, "body.disbursement_date")


def test_branches_and_roles_bound_who_sees_and_books_what(suite, borrowers):
    loan = register(suite, borrowers)
    assert suite.direct["monitoring"].get(f"/loans/{loan['id']}", headers=officer(suite, "SH002")).status_code == 404
    assert suite.direct["monitoring"].get(f"/loans/{loan['id']}", headers=officer(suite)).status_code == 200
    other_branch = suite.direct["monitoring"].post("/loans", json=loan_body(borrowers.new_customer(), branch="SH002"),
                                                   headers=officer(suite))
    assert_problem(other_branch, 403)
    by_collector = suite.direct["monitoring"].post("/loans", json=loan_body(borrowers.new_customer()),
                                                   headers=role(suite, "collector"))
    assert_problem(by_collector, 403)
    listed = suite.direct["monitoring"].get("/loans", params={"customer_id": loan["customer_id"]},
                                            headers=officer(suite, "SH002"))
    assert listed.json()["items"] == []


@pytest.mark.parametrize("branch", ["SH002", "NOPE99"], ids=["another_branch", "no_such_branch"])
def test_a_loan_is_booked_at_its_customers_branch_only(suite, borrowers, branch):
    """Even an admin, who may book at any branch, books a customer's loan at the customer's own branch: a loan
    elsewhere would be invisible to the branch that closes the customer (and one at no branch to everyone)."""
    customer = borrowers.new_customer("BJ001")
    for client, path in ((suite.direct["monitoring"], "/loans"), (suite.client, "/api/monitoring/loans")):
        refused = client.post(path, json=loan_body(customer, branch=branch),
                              headers={**admin(suite), "Idempotency-Key": uuid.uuid4().hex})
        problem = assert_problem(refused, 422, "body.branch")
        assert "BJ001" in problem["detail"], problem
    listed = suite.direct["monitoring"].get("/loans", params={"customer_id": customer}, headers=admin(suite))
    assert listed.status_code == 200 and listed.json()["items"] == []
    # At the customer's branch the same booking goes through.
    assert register(suite, borrowers, admin(suite), customer_id=customer)["branch"] == "BJ001"


def _lose_standing(suite, customer: str, how: str) -> str:  # noqa: ANN001
    """Closes, erases or fails the KYC of the customer; the reason booking then gives."""
    if how == "kyc_rejected":
        changed = suite.direct["customer"].patch(f"/customers/{customer}", json={"kyc_status": "rejected"},
                                                 headers={**admin(suite), "If-Match": '"1"'})
        assert changed.status_code == 200 and changed.json()["kyc_status"] == "rejected", changed.text
        return "the customer's KYC was rejected"
    ended = suite.direct["customer"].post(f"/customers/{customer}/{how}",
                                          json={"reason": "moved abroad"} if how == "closure" else None,
                                          headers={**admin(suite), "Idempotency-Key": uuid.uuid4().hex})
    status = {"closure": "closed", "erasure": "erased"}[how]
    assert ended.status_code == 200 and ended.json()["status"] == status, ended.text
    return f"the customer is {status}"


@pytest.mark.parametrize("how", ["closure", "erasure", "kyc_rejected"])
def test_no_loan_is_booked_for_a_customer_the_bank_may_not_lend_to(suite, borrowers, how):
    """The pen test: a loan was booked for a customer the bank had closed, or erased (booking asked the customer
    service for the branch only), and for one whose KYC was rejected (failed due diligence: anti-money-laundering
    rules forbid lending). Now a 422 naming `body.customer_id` says why, directly and through the gateway, and
    nothing is written: no loan, no audit row, no event."""
    from tests.test_audit import audit_rows, rid

    customer = borrowers.new_customer()
    reason = _lose_standing(suite, customer, how)
    for client, path in ((suite.direct["monitoring"], "/loans"), (suite.client, "/api/monitoring/loans")):
        request = rid()
        refused = client.post(path, json=loan_body(customer),
                              headers={**admin(suite), "Idempotency-Key": uuid.uuid4().hex, **request})
        problem = assert_problem(refused, 422, "body.customer_id")
        assert reason in problem["detail"], problem
        assert audit_rows(suite, "monitoring", request["X-Request-Id"]) == []
    listed = suite.direct["monitoring"].get("/loans", params={"customer_id": customer}, headers=admin(suite))
    assert listed.status_code == 200 and listed.json()["items"] == []
    with suite.database("monitoring").session() as session:
        events = session.execute(text("SELECT count(*) FROM monitoring_outbox WHERE customer_id = :id"),
                                 {"id": customer}).scalar_one()
    assert events == 0


def test_a_loan_booked_late_is_aged_on_the_business_date(suite, borrowers):
    loan = register(suite, borrowers, disbursement_date="2025-10-01")
    # First instalment due 2025-11-01, nothing paid by 2026-01-31: 91 days overdue.
    assert (loan["dpd"], loan["bucket"], loan["classification"], loan["ifrs9_stage"]) == (91, "M4+", "substandard", 3)


def test_the_shared_client_reads_what_other_services_rely_on(suite, borrowers):
    loan = register(suite, borrowers)
    token = suite.token("officer.bj001")

    async def read():
        client = MonitoringClient(suite.kernel, transport=httpx.ASGITransport(suite.services["monitoring"]))
        try:
            return (await client.loans_for_customer(loan["customer_id"], token),
                    await client.open_alerts_for_customer(loan["customer_id"], token))
        finally:
            await client.aclose()

    loans, alerts = asyncio.run(read())
    assert [(x.id, x.principal, x.classification) for x in loans] == [(loan["id"], Decimal("12000.00"), "normal")]
    assert alerts == []


def test_the_gateway_routes_to_monitoring_with_the_callers_token(suite, borrowers):
    loan = register(suite, borrowers)
    response = suite.client.get("/api/monitoring/loans", params={"customer_id": loan["customer_id"]},
                                headers=officer(suite))
    assert response.status_code == 200 and [row["id"] for row in response.json()["items"]] == [loan["id"]]
