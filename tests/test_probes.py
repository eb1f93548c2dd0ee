"""Defects a penetration tester or an integrator found through the public API, each kept as the behaviour a client
relies on (issue 17's public contract)."""

from __future__ import annotations

import uuid
from datetime import date

from tests.customer.factory import person
from tests.monitoring.api.helpers import borrowers, champion, loan_body, officer, register  # noqa: F401
from tests.scoring.api.conftest import german_rows
from tests.scoring.api.helpers import new_customer


def _key() -> dict[str, str]:
    return {"Idempotency-Key": uuid.uuid4().hex}


def test_an_amount_in_exponent_notation_is_answered_with_two_decimals(suite, borrowers, champion):  # noqa: ANN001, F811
    """`1e2` is a valid decimal for 100; the answer (and what a retry replays) says "100.00", never "1E+2"."""
    bj = officer(suite)
    loan = suite.client.post("/api/monitoring/loans", headers={**bj, **_key()},
                             json=loan_body(borrowers.new_customer(), principal="1.2E4"))
    assert loan.status_code == 201, loan.text
    assert loan.json()["principal"] == "12000.00"
    key = _key()
    paid = suite.client.post(f"/api/monitoring/loans/{loan.json()['id']}/repayments", headers={**bj, **key},
                             json={"amount": "1e2"})
    replayed = suite.client.post(f"/api/monitoring/loans/{loan.json()['id']}/repayments", headers={**bj, **key},
                                 json={"amount": "1e2"})
    assert paid.status_code == 201 and replayed.status_code == 201, (paid.text, replayed.text)
    assert paid.json()["amount"] == replayed.json()["amount"] == "100.00"
    application = suite.client.post("/api/scoring/applications", headers={**bj, **_key()}, json={
        "customer_id": new_customer(suite, bj), "product": "personal_loan", "amount": "8E3", "term_months": 12,
        "purpose": "home renovation", "features": german_rows()[0], "branch": "BJ001"})
    assert application.status_code == 201, application.text
    assert application.json()["amount"] == "8000.00"


def test_an_application_belongs_to_its_customers_branch_whatever_the_body_says(suite, champion):  # noqa: ANN001, F811
    """A partner's customer of SH001 stays SH001's: an application naming another branch is refused, so BJ001's
    officers never see an application (nor, once paid out, a loan) about a customer they cannot read."""
    partner = suite.headers("partner.branches", ["partner"])
    customer_id = new_customer(suite, partner, branch="SH001")
    body = {"customer_id": customer_id, "product": "personal_loan", "amount": "8000.00", "term_months": 12,
            "purpose": "home renovation", "features": german_rows()[0]}
    elsewhere = suite.client.post("/api/scoring/applications", headers={**partner, **_key()},
                                  json={**body, "branch": "BJ001"})
    assert elsewhere.status_code == 422, elsewhere.text
    assert [e["field"] for e in elsewhere.json()["errors"]] == ["body.branch"]
    submitted = suite.client.post("/api/scoring/applications", headers={**partner, **_key()},
                                  json={**body, "branch": "SH001"})
    assert submitted.status_code == 201, submitted.text
    assert submitted.json()["branch"] == "SH001"
    bj = officer(suite)
    seen = suite.client.get("/api/scoring/applications", params={"limit": 500}, headers=bj).json()["items"]
    assert customer_id not in {a["customer_id"] for a in seen}


def test_an_admin_cannot_make_a_client_of_the_suites_own_identities(suite):  # noqa: ANN001
    """A `system` client would read every branch's event feed; `batch` is close of business's one client."""
    for role in ("system", "batch", "admin"):
        created = suite.client.post("/clients", json={"client_id": f"probe-{role}", "name": role, "role": role},
                                    headers={**suite.headers("admin"), **_key()})
        assert created.status_code == 422, created.text
        assert [e["field"] for e in created.json()["errors"]] == ["body.role"]


def test_screening_facts_are_only_of_a_customer_the_caller_may_see(suite, borrowers):  # noqa: ANN001, F811
    """A loan officer of another branch read a customer's account feed (amounts, dates, payers) by its id."""
    own, other = officer(suite, "SF1"), officer(suite, "SF2")
    loan = register(suite, borrowers, branch="SF1", disbursement_date=date.today().isoformat())
    fed = suite.client.post("/api/monitoring/transactions:batch", headers={**own, **_key()}, json={"rows": [{
        "account": "6222-0001", "customer_id": loan["customer_id"], "loan_id": loan["id"],
        "booked_on": date.today().isoformat(), "amount": "1066.19", "direction": "credit", "kind": "repayment",
        "payer_account": "62220777"}]})
    assert fed.status_code == 201, fed.text
    path = f"/customers/{loan['customer_id']}/screening-facts"
    for client, url in ((suite.client, f"/api/monitoring{path}"), (suite.direct["monitoring"], path)):
        refused = client.get(url, headers=other)
        assert refused.status_code == 404 and "1066.19" not in refused.text, refused.text
        seen = client.get(url, headers=own)
        assert seen.status_code == 200 and [t["amount"] for t in seen.json()["transactions"]] == ["1066.19"]


def test_a_record_of_another_branchs_loan_is_a_404_as_if_it_did_not_exist(suite, borrowers):  # noqa: ANN001, F811
    """A posting or a collection action reached by its own id answered another branch's officer "No loan <its
    loan's id>": that it exists, and the id of a loan the officer may not see."""
    own, other = officer(suite, "NF1"), officer(suite, "NF2")
    loan = register(suite, borrowers, branch="NF1", disbursement_date=date.today().isoformat())
    paid = suite.client.post(f"/api/monitoring/loans/{loan['id']}/repayments", headers={**own, **_key()},
                             json={"amount": "100.00"})
    action = suite.client.post(f"/api/monitoring/loans/{loan['id']}/collection-actions", headers={**own, **_key()},
                               json={"kind": "asset_preservation", "channel": "visit", "outcome": "case opened"})
    assert paid.status_code == action.status_code == 201, (paid.text, action.text)
    step = {"step": "freeze_request", "occurred_on": date.today().isoformat(), "outcome": "filed"}
    posting, steps = "/api/monitoring/postings/{}/reversal", "/api/monitoring/collection-actions/{}/preservation-steps"
    for method, path, record, body in (("POST", posting, paid.json()["id"], {"reason": "cheque bounced"}),
                                       ("GET", steps, action.json()["id"], None),
                                       ("POST", steps, action.json()["id"], step)):
        unknown, outside = (suite.client.request(method, path.format(record_id), headers={**other, **_key()},
                                                 json=body) for record_id in ("0" * 32, record))
        assert unknown.status_code == outside.status_code == 404, outside.text
        assert loan["id"] not in outside.text
        assert outside.json()["detail"] == unknown.json()["detail"].replace("0" * 32, record)


def test_a_closure_retried_with_its_key_gets_the_first_answer(suite):  # noqa: ANN001
    """Closing a product or a customer took no Idempotency-Key: a client retrying after a lost answer got a 409
    (already closed, not active) instead of the closure it had made."""
    officer_ = officer(suite, "IK1")
    api = suite.client
    customer = api.post("/api/customer/customers", json=person(branch="IK1"), headers={**officer_, **_key()}).json()
    url = f"/api/customer/customers/{customer['id']}"
    held = api.post(f"{url}/products", json={"product_code": "DEP-PLUS", "opened_on": "2026-03-01"},
                    headers={**officer_, **_key()})
    assert held.status_code == 201, held.text
    for path, body in ((f"{url}/products/{held.json()['id']}/closure", {"closed_on": "2026-11-30"}),
                       (f"{url}/closure", {"reason": "moved abroad"})):
        key = _key()
        first, retried = (api.post(path, json=body, headers={**officer_, **key}) for _ in range(2))
        assert first.status_code == retried.status_code == 200, (first.text, retried.text)
        assert retried.json() == first.json() and retried.headers["Idempotent-Replayed"] == "true"
        assert api.post(path, json=body, headers={**officer_, **_key()}).status_code == 409
