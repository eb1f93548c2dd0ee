"""Screening before the money leaves: each known pattern planted through the public API stops a new application in
review with its evidence; a reviewer (not the submitter) confirms or clears it; a peer down is "not done"."""

import itertools
import random
import uuid
from datetime import date, timedelta

import httpx
import pytest
from fastapi.testclient import TestClient

from services.scoring.main import create_app
from shared.settings import KernelSettings
from tests.scoring.api.helpers import acknowledge_terms, closed_port, national_id

_serial = itertools.count(random.randint(100, 800) * 1000 + 500)


@pytest.fixture(scope="module")
def people(suite, champion):  # noqa: ANN001, ANN201
    return {
        "maker": suite.headers("maker.scr", ["loan_officer"], branch="BJ001"),
        "analyst": suite.headers("analyst.scr", ["risk_analyst"]),
        "committee": suite.headers("committee.scr", ["credit_committee"]),
        "admin": suite.headers("admin"),
    }


@pytest.fixture(scope="module")
def approvable(suite, people, applicants):  # noqa: ANN001, ANN201
    """A German applicant the policy approves on its own."""
    rows = [{"features": a} for a in applicants[:100]]
    scores = suite.direct["scoring"].post("/scores:batch", json={"rows": rows}, headers=people["analyst"]).json()
    return next(a for a, s in zip(applicants, scores["scores"]) if s["decision"] == "approve" and s["grade"] == "A")


def _customer(suite, headers, address=None) -> str:  # noqa: ANN001
    n = next(_serial)
    body = {"kind": "individual", "name": f"Screened {n}", "date_of_birth": f"1990-03-{1 + n % 28:02d}",
            "national_id": national_id(n), "phone": f"139{n:08d}", "branch": "BJ001", "address": address}
    created = suite.client.post("/api/customer/customers", json=body,
                                headers={**headers, "Idempotency-Key": uuid.uuid4().hex})
    assert created.status_code == 201, created.text
    customer_id = created.json()["id"]
    granted = suite.client.post(f"/api/customer/customers/{customer_id}/consents",
                                headers={**headers, "Idempotency-Key": uuid.uuid4().hex},
                                json={"purpose": "credit_bureau_query", "source": "branch_form"})
    assert granted.status_code == 201, granted.text
    return customer_id


def _submit(client, headers, customer_id, features, prefix="/api/scoring", **extra):  # noqa: ANN001, ANN202
    body = {"customer_id": customer_id, "product": "personal_loan", "amount": "8000.00", "term_months": 12,
            "purpose": "home renovation", "features": features, "collateral": "apartment, Chaoyang", **extra}
    response = client.post(f"{prefix}/applications", json=body, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


def _feed(suite, people, rows) -> None:  # noqa: ANN001
    response = suite.client.post("/api/monitoring/transactions:batch", json={"rows": rows},
                                 headers={**people["admin"], "Idempotency-Key": uuid.uuid4().hex})
    assert response.status_code == 201, response.text


def _today(suite, people) -> date:  # noqa: ANN001
    answer = suite.client.get("/api/monitoring/business-date", headers=people["admin"])
    assert answer.status_code == 200, answer.text
    return date.fromisoformat(answer.json()["business_date"])


def _row(customer_id, day, amount, direction, kind, **extra):  # noqa: ANN001, ANN202
    return {"account": f"acc-{customer_id[:10]}", "customer_id": customer_id, "booked_on": day.isoformat(),
            "amount": amount, "direction": direction, "kind": kind, **extra}


def _held(application, check):  # noqa: ANN001, ANN202
    assert application["status"] == "in_review", application
    assert application["policy_decision"] == "approve"  # the policy alone would have approved it
    hits = [h for h in application["screening_hits"] if h["check"] == check]
    assert len(hits) == 1 and hits[0]["status"] == "open" and hits[0]["stage"] == "submission", application
    assert "screening" in application["history"][-1]["reason"]
    return hits[0]


def test_a_clean_applicant_passes(suite, people, approvable):
    application = _submit(suite.client, people["maker"], _customer(suite, people["maker"]), approvable,
                          device_id=f"dev-{uuid.uuid4().hex}", payout_account=f"6222-{uuid.uuid4().hex[:8]}")
    assert application["status"] == "approved" and application["screening_hits"] == []


def test_a_device_or_payout_account_seen_on_another_customer_stops_the_application(suite, people, approvable):
    device, payout = f"dev-{uuid.uuid4().hex}", f"6222-{uuid.uuid4().hex[:8]}"
    first = _customer(suite, people["maker"])
    assert _submit(suite.client, people["maker"], first, approvable, device_id=device)["status"] == "approved"
    # The same customer again on the same device is not "unrelated".
    again = _submit(suite.client, people["maker"], first, approvable, device_id=device, payout_account=payout)
    assert again["status"] == "approved"
    second = _submit(suite.client, people["maker"], _customer(suite, people["maker"]), approvable,
                     device_id=device, payout_account=payout)
    hit = _held(second, "shared_identifiers")
    assert hit["facts"]["device_id"] == {"other_customers": 1, "customer_ids": [first]}
    assert hit["facts"]["payout_account"] == {"other_customers": 1, "customer_ids": [first]}
    assert hit["thresholds"]["identifier_min_others"] == 1
    assert device not in str(hit) and payout not in str(hit)  # counts and ids, never the values


def test_an_address_shared_by_unrelated_customers_stops_the_application(suite, people, approvable):
    address = f"Room {uuid.uuid4().hex[:6]}, 12 Hope Road, Estate 7"
    others = sorted(_customer(suite, people["maker"], address) for _ in range(2))
    applicant = _customer(suite, people["maker"], "  " + address.upper().replace(" ", "  ") + " ")
    shared = suite.client.get(f"/api/customer/customers/{applicant}/shared-identifiers", headers=people["analyst"])
    assert shared.status_code == 200 and shared.json()["shared"] == [
        {"kind": "address", "count": 2, "customer_ids": others}]
    hit = _held(_submit(suite.client, people["maker"], applicant, approvable), "shared_identifiers")
    assert hit["facts"] == {"address": {"other_customers": 2, "customer_ids": others}}
    assert hit["thresholds"]["address_min_others"] == 2


def test_one_payer_repaying_other_borrowers_in_one_estate_stops_the_application(suite, people, approvable):
    today, payer = _today(suite, people), f"6222-{uuid.uuid4().hex[:8]}"
    borrowers = [_customer(suite, people["maker"]) for _ in range(3)]
    _feed(suite, people, [_row(b, today - timedelta(days=5), "1066.19", "credit", "repayment", payer_account=payer,
                               housing_estate="Sunshine Garden") for b in borrowers])
    hit = _held(_submit(suite.client, people["maker"], borrowers[0], approvable), "shared_payer")
    [paid] = hit["facts"]["payers"]
    assert paid["other_borrowers"] == 2 and paid["same_estate"] is True
    # The hit is kept in scoring's database: it names the payer masked, with the keyed hash it matched on.
    assert paid["payer_account"] == "*" * 9 + payer[-4:] and len(paid["payer_account_hash"]) == 64
    assert payer not in str(hit) and payer.replace("-", "") not in str(hit)
    assert sorted(paid["other_borrower_ids"]) == sorted(borrowers[1:]) and paid["estates"] == ["Sunshine Garden"]


def test_card_spend_cashed_out_the_next_day_stops_the_application(suite, people, approvable):
    today, applicant = _today(suite, people), _customer(suite, people["maker"])
    rows = []
    for i, amount in enumerate(("4999.00", "5200.00", "4800.00")):
        day = today - timedelta(days=20 - 3 * i)
        rows += [_row(applicant, day, amount, "debit", "card_purchase", merchant="Lucky Trading POS"),
                 _row(applicant, day + timedelta(days=1), str(round(float(amount) * 0.98, 2)), "credit", "transfer",
                      counterparty="acc-merchant")]
    _feed(suite, people, rows)
    hit = _held(_submit(suite.client, people["maker"], applicant, approvable), "card_cash_out")
    assert hit["facts"]["pairs"] == 3 and hit["facts"]["top_merchant_share"] == "1.0000"
    assert hit["thresholds"]["cashout_min_pairs"] == 3 and hit["thresholds"]["cashout_days"] == 1


def test_many_small_inflows_funnelled_out_stop_the_application(suite, people, approvable):
    today, applicant = _today(suite, people), _customer(suite, people["maker"])
    rows = [_row(applicant, today - timedelta(days=10), "2000.00", "credit", "transfer", counterparty=f"payer-{i}")
            for i in range(12)]
    rows.append(_row(applicant, today - timedelta(days=8), "22000.00", "debit", "transfer", counterparty="acc-boss"))
    _feed(suite, people, rows)
    hit = _held(_submit(suite.client, people["maker"], applicant, approvable), "illegal_fundraising")
    assert hit["facts"]["distinct_payers"] == 12 and hit["facts"]["out_accounts"] == ["****boss"]
    assert hit["facts"]["funnelled_share"] == "0.9167" and hit["thresholds"]["fundraising_min_payers"] == 10


def _device_hit(suite, people, approvable, submitter="maker"):  # noqa: ANN001, ANN202
    device = f"dev-{uuid.uuid4().hex}"
    _submit(suite.client, people["maker"], _customer(suite, people["maker"]), approvable, device_id=device)
    return _submit(suite.client, people[submitter], _customer(suite, people["maker"]), approvable, device_id=device,
                   branch="BJ001")


def test_a_reviewer_clears_the_hit_and_the_loan_is_disbursed(suite, people, approvable):
    held = _device_hit(suite, people, approvable)
    path = f"/api/scoring/applications/{held['id']}"
    blocked = suite.client.post(f"{path}/decision", json={"decision": "approve", "reason": "looks fine"},
                                headers=people["analyst"])
    assert blocked.status_code == 409 and "screening" in blocked.json()["detail"].lower()
    key = {"Idempotency-Key": uuid.uuid4().hex}
    cleared = suite.client.post(f"{path}/screening/clearance", json={"reason": "shared family tablet, verified"},
                                headers={**people["analyst"], **key})
    again = suite.client.post(f"{path}/screening/clearance", json={"reason": "shared family tablet, verified"},
                              headers={**people["analyst"], **key})
    assert cleared.status_code == again.status_code == 200, cleared.text
    assert cleared.json() == again.json()
    body = cleared.json()
    assert body["status"] == "approved" and body["approved_amount"] == "8000.00"
    [hit] = body["screening_hits"]
    assert hit["status"] == "cleared" and hit["resolved_by"] == "analyst.scr"
    assert body["history"][-1]["reason"] == "screening cleared: shared family tablet, verified"
    acknowledge_terms(suite, held["id"], people["maker"])
    paid = suite.client.post(f"{path}/disbursement", json={"disbursement_date": _today(suite, people).isoformat()},
                             headers=people["maker"])
    assert paid.status_code == 200, paid.text
    assert paid.json()["status"] == "disbursed" and paid.json()["loan_id"]


def test_a_confirmed_hit_declines_the_application(suite, people, approvable):
    held = _device_hit(suite, people, approvable)
    confirmed = suite.client.post(f"/api/scoring/applications/{held['id']}/screening/confirmation",
                                  json={"reason": "device farm, same as case 2026-114"}, headers=people["committee"])
    assert confirmed.status_code == 200, confirmed.text
    body = confirmed.json()
    assert body["status"] == "declined" and body["decision_reason"] == "device farm, same as case 2026-114"
    assert body["screening_hits"][0]["status"] == "confirmed" and body["history"][-1]["to_status"] == "declined"
    # Nothing left to resolve.
    assert suite.client.post(f"/api/scoring/applications/{held['id']}/screening/clearance", json={"reason": "oops"},
                             headers=people["analyst"]).status_code == 409


def test_the_submitter_cannot_resolve_their_own_hit(suite, people, approvable):
    held = _device_hit(suite, people, approvable, submitter="admin")
    path = f"/api/scoring/applications/{held['id']}/screening"
    own = suite.client.post(f"{path}/clearance", json={"reason": "fine by me"}, headers=people["admin"])
    assert own.status_code == 403 and "maker-checker" in own.json()["detail"].lower()
    officer = suite.client.post(f"{path}/clearance", json={"reason": "fine by me"}, headers=people["maker"])
    assert officer.status_code == 403  # a loan officer is not a reviewer of screening hits
    after = suite.client.get(f"/api/scoring/applications/{held['id']}", headers=people["analyst"]).json()
    assert after["status"] == "in_review" and after["screening_hits"][0]["status"] == "open"


def test_a_monitoring_service_that_is_down_sends_the_application_to_review(suite, people, approvable):
    applicant = _customer(suite, people["maker"])
    kernel = KernelSettings(**{**suite.kernel.model_dump(), "monitoring_url": f"http://127.0.0.1:{closed_port()}"})
    app = create_app(kernel, verifier=suite.services["scoring"].state.verifier,
                     transports={"customer": httpx.ASGITransport(suite.services["customer"])})
    with TestClient(app, base_url="http://scoring") as client:
        application = _submit(client, people["maker"], applicant, approvable, prefix="")
    hit = _held(application, "not_done")
    assert set(hit["facts"]["peers"]) == {"monitoring"}


def test_a_hit_found_before_disbursement_blocks_the_payout(suite, people, approvable):
    applicant = _customer(suite, people["maker"])
    approved = _submit(suite.client, people["maker"], applicant, approvable)
    assert approved["status"] == "approved"
    acknowledge_terms(suite, approved["id"], people["maker"])
    today, payer = _today(suite, people), f"6222-{uuid.uuid4().hex[:8]}"
    others = [_customer(suite, people["maker"]) for _ in range(2)]
    _feed(suite, people, [_row(b, today - timedelta(days=2), "900.00", "credit", "repayment", payer_account=payer)
                          for b in [applicant, *others]])
    path = f"/api/scoring/applications/{approved['id']}"
    refused = suite.client.post(f"{path}/disbursement", json={"disbursement_date": today.isoformat()},
                                headers=people["maker"])
    assert refused.status_code == 409 and "shared_payer" in refused.json()["detail"]
    after = suite.client.get(path, headers=people["maker"]).json()
    assert after["status"] == "approved" and after["loan_id"] is None
    assert [h["stage"] for h in after["screening_hits"]] == ["disbursement"]
    assert suite.client.post(f"{path}/disbursement", json={"disbursement_date": today.isoformat()},
                             headers=people["maker"]).status_code == 409
