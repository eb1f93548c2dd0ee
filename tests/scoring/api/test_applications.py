"""Applications: policy decision at submission, maker-checker review, disbursement registering the loan."""

import uuid

import pytest
from fastapi.testclient import TestClient

from services.scoring.main import create_app
from shared.settings import KernelSettings
from tests.scoring.api.helpers import acknowledge_terms, closed_port, new_customer
from tests.support import PASSWORD, every_page
from tests.test_idempotency import assert_one_answer, race


@pytest.fixture(scope="module")
def people(suite, champion):  # noqa: ANN001, ANN201
    return {
        "maker": suite.headers("maker.app", ["loan_officer"], branch="BJ001"),
        "checker": suite.headers("checker.app", ["loan_officer"], branch="BJ001"),
        "analyst": suite.headers("analyst.app", ["risk_analyst"]),
        "other_branch": suite.headers("officer.sh", ["loan_officer"], branch="SH001"),
    }


@pytest.fixture(scope="module")
def by_decision(suite, people, applicants):  # noqa: ANN001, ANN201
    """One German applicant per policy decision, found by scoring the first 200."""
    rows = [{"features": a} for a in applicants[:200]]
    scores = suite.direct["scoring"].post("/scores:batch", json={"rows": rows}, headers=people["analyst"]).json()
    found = {}
    for applicant, score in zip(applicants, scores["scores"]):
        found.setdefault(score["decision"], applicant)
    assert set(found) == {"approve", "review", "decline"}
    return found


def _body(suite, headers, features):  # noqa: ANN001, ANN202
    return {"customer_id": new_customer(suite, headers), "product": "personal_loan", "amount": "8000.00",
            "term_months": 12, "purpose": "home renovation", "features": features,
            "collateral": "apartment, Chaoyang"}  # weak grades need security (test_care.py)


def _submit(suite, headers, features, key=None, body=None):  # noqa: ANN001, ANN202
    extra = {"Idempotency-Key": key} if key else {}
    return suite.direct["scoring"].post("/applications", json=body or _body(suite, headers, features),
                                        headers={**headers, **extra})


def test_the_policy_approves_declines_or_queues_for_review(suite, people, by_decision):
    expected = {"approve": "approved", "decline": "declined", "review": "in_review"}
    for decision, features in by_decision.items():
        response = _submit(suite, people["maker"], features)
        assert response.status_code == 201, response.text
        body = response.json()
        assert body["policy_decision"] == decision and body["status"] == expected[decision]
        assert body["score"]["decision"] == decision and body["branch"] == "BJ001"
        assert [h["to_status"] for h in body["history"]] == [expected[decision]]
    queue = suite.direct["scoring"].get("/applications", params={"status": "in_review"}, headers=people["checker"])
    assert queue.status_code == 200 and {a["status"] for a in queue.json()["items"]} == {"in_review"}


def test_review_needs_a_second_person_and_a_reason(suite, people, by_decision):
    application = _submit(suite, people["maker"], by_decision["review"]).json()
    path = f"/applications/{application['id']}/decision"
    client = suite.direct["scoring"]
    own = client.post(path, json={"decision": "approve", "reason": "my own customer"}, headers=people["maker"])
    assert own.status_code == 403 and "maker-checker" in own.json()["detail"].lower()
    assert client.post(path, json={"decision": "approve"}, headers=people["checker"]).status_code == 422
    assert client.post(path, json={"decision": "approve", "reason": "not my branch"},
                       headers=people["other_branch"]).status_code == 404
    decided = client.post(path, json={"decision": "approve", "reason": "income verified"}, headers=people["checker"])
    assert decided.status_code == 200, decided.text
    body = decided.json()
    assert body["status"] == "approved" and body["decided_by"] == "checker.app"
    assert body["decision_reason"] == "income verified" and body["approved_amount"] is not None
    assert [(h["from_status"], h["to_status"], h["actor"]) for h in body["history"]] == [
        (None, "in_review", "maker.app"), ("in_review", "approved", "checker.app")]
    again = client.post(path, json={"decision": "decline", "reason": "changed my mind"}, headers=people["analyst"])
    assert again.status_code == 409


def test_an_approved_application_is_disbursed_once_and_linked_both_ways(suite, people, by_decision):
    body = _body(suite, people["maker"], by_decision["approve"])
    application = _submit(suite, people["maker"], None, key="submit-approve-1", body=body).json()
    replay = _submit(suite, people["maker"], None, key="submit-approve-1", body=body)
    assert replay.status_code == 201 and replay.json()["id"] == application["id"]
    path = f"/applications/{application['id']}/disbursement"
    client = suite.direct["scoring"]
    acknowledge_terms(suite, application["id"], people["maker"])
    first = client.post(path, json={"disbursement_date": "2026-01-15"}, headers=people["maker"])
    assert first.status_code == 200, first.text
    loan_id = first.json()["loan_id"]
    assert first.json()["status"] == "disbursed" and loan_id
    second = client.post(path, json={"disbursement_date": "2026-01-15"}, headers=people["checker"])
    assert second.status_code == 200 and second.json()["loan_id"] == loan_id
    loan = suite.direct["monitoring"].get(f"/loans/{loan_id}", headers=people["maker"]).json()
    assert loan["external_id"] == application["id"] and loan["customer_id"] == application["customer_id"]
    assert loan["principal"] == application["approved_amount"]


def test_an_approved_application_of_a_customer_closed_since_is_not_disbursed(suite, people, by_decision):
    """The pen test: disbursement books through monitoring's `POST /loans`, which booked a loan for a closed
    customer. Now monitoring's refusal (the customer is closed, naming body.customer_id) is the disbursement's
    422; the application stays approved and no loan is booked."""
    application = _submit(suite, people["maker"], by_decision["approve"]).json()
    acknowledge_terms(suite, application["id"], people["maker"])
    closed = suite.direct["customer"].post(f"/customers/{application['customer_id']}/closure",
                                           json={"reason": "moved abroad"}, headers=people["maker"])
    assert closed.status_code == 200 and closed.json()["status"] == "closed", closed.text
    response = suite.direct["scoring"].post(f"/applications/{application['id']}/disbursement",
                                            json={"disbursement_date": "2026-01-15"}, headers=people["maker"])
    assert response.status_code == 422, response.text
    assert "body.customer_id: the customer is closed" in response.json()["detail"], response.text
    still = suite.direct["scoring"].get(f"/applications/{application['id']}", headers=people["maker"]).json()
    assert still["status"] == "approved" and still["loan_id"] is None
    loans = suite.direct["monitoring"].get("/loans", params={"customer_id": application["customer_id"]},
                                           headers=people["maker"])
    assert loans.status_code == 200 and loans.json()["items"] == []


@pytest.mark.parametrize("how", ["closure", "kyc_rejected"])
def test_no_credit_decision_is_made_for_a_customer_the_bank_may_not_lend_to(suite, people, by_decision, how):
    """Booking refused a closed customer, but an application for one was still scored and filed (only its payout
    was stopped): new credit decisions, an application or a score by id, are for active customers only. Nor for
    one whose KYC was rejected: the same rule (`lending_refusal`) as booking's and the portrait's credit hold."""
    body = _body(suite, people["maker"], by_decision["approve"])
    customer = suite.direct["customer"]
    if how == "closure":
        ended = customer.post(f"/customers/{body['customer_id']}/closure", json={"reason": "moved abroad"},
                              headers=people["maker"])
        reason = "the customer is closed"
    else:
        version = customer.get(f"/customers/{body['customer_id']}", headers=people["maker"]).headers["ETag"]
        ended = customer.patch(f"/customers/{body['customer_id']}", json={"kyc_status": "rejected"},
                               headers={**people["maker"], "If-Match": version})
        reason = "the customer's KYC was rejected"
    assert ended.status_code == 200, ended.text
    portrait = customer.get(f"/customers/{body['customer_id']}/portrait", headers=people["maker"])
    assert portrait.status_code == 200 and portrait.json()["credit_hold"] == f"{reason}: no new credit", portrait.text
    for path, request in (("/applications", body), ("/scores", {"customer_id": body["customer_id"]})):
        refused = suite.direct["scoring"].post(path, json=request, headers={
            **people["maker"], "Idempotency-Key": uuid.uuid4().hex})
        assert refused.status_code == 422, (path, refused.text)
        assert [(e["field"], e["message"]) for e in refused.json()["errors"]] == [
            ("body.customer_id", f"{reason}; no credit decision is made for them")]
    filed = every_page(suite.direct["scoring"], "/applications", people["maker"], limit=100)
    assert body["customer_id"] not in {application["customer_id"] for application in filed}


def test_a_declined_application_cannot_be_disbursed(suite, people, by_decision):
    application = _submit(suite, people["maker"], by_decision["decline"]).json()
    response = suite.direct["scoring"].post(f"/applications/{application['id']}/disbursement",
                                            json={"disbursement_date": "2026-01-15"}, headers=people["maker"])
    assert response.status_code == 409


def test_a_monitoring_service_that_is_down_is_a_503_and_the_application_stays_approved(suite, people, by_decision):
    application = _submit(suite, people["maker"], by_decision["approve"]).json()
    kernel = KernelSettings(**{**suite.kernel.model_dump(), "monitoring_url": f"http://127.0.0.1:{closed_port()}"})
    acknowledge_terms(suite, application["id"], people["maker"])
    app = create_app(kernel, verifier=suite.services["scoring"].state.verifier)
    with TestClient(app, base_url="http://scoring") as client:
        response = client.post(f"/applications/{application['id']}/disbursement",
                               json={"disbursement_date": "2026-01-15"}, headers=people["maker"])
    assert response.status_code == 503 and response.json()["service"] == "monitoring"
    still = suite.direct["scoring"].get(f"/applications/{application['id']}", headers=people["maker"]).json()
    assert still["status"] == "approved" and still["loan_id"] is None


def test_a_partner_submits_and_sees_only_its_own_applications(suite, people, by_decision):
    partner = suite.headers("partner.app", ["partner"])
    rival = suite.headers("rival.app", ["partner"])
    client = suite.direct["scoring"]
    body = {**_body(suite, partner, by_decision["review"]), "branch": "BJ001"}
    submitted = client.post("/applications", json=body, headers=partner)
    assert submitted.status_code == 201, submitted.text
    application = submitted.json()
    assert application["submitted_by"] == "partner.app" and application["status"] == "in_review"
    mine = client.get(f"/applications/{application['id']}", headers=partner)
    assert mine.status_code == 200 and mine.json()["score"]["id"] == application["score_id"]
    assert client.get(f"/scores/{application['score_id']}", headers=partner).status_code == 200
    # Another partner sees none of it; staff see it as before.
    assert client.get(f"/applications/{application['id']}", headers=rival).status_code == 404
    assert client.get(f"/scores/{application['score_id']}", headers=rival).status_code == 404
    assert application["id"] not in {a["id"] for a in client.get("/applications", headers=rival).json()["items"]}
    listed = client.get("/applications", params={"limit": 500}, headers=partner).json()["items"]
    assert application["id"] in {a["id"] for a in listed} and {a["submitted_by"] for a in listed} == {"partner.app"}
    assert client.get(f"/applications/{application['id']}", headers=people["checker"]).status_code == 200
    # A partner neither decides nor disburses; the bank's checker decides the partner's application.
    path = f"/applications/{application['id']}"
    assert client.post(f"{path}/decision", json={"decision": "approve", "reason": "looks fine"},
                       headers=partner).status_code == 403
    assert client.post(f"{path}/disbursement", json={"disbursement_date": "2026-01-15"},
                       headers=partner).status_code == 403
    decided = client.post(f"{path}/decision", json={"decision": "approve", "reason": "partner file checked"},
                          headers=people["checker"])
    assert decided.status_code == 200 and decided.json()["status"] == "approved"
    assert client.get(path, headers=partner).json()["status"] == "approved"


def test_a_partner_without_a_branch_must_name_one(suite, by_decision):
    partner = suite.headers("partner.app", ["partner"])
    response = suite.direct["scoring"].post("/applications", json=_body(suite, partner, by_decision["approve"]),
                                            headers=partner)
    assert response.status_code == 422 and response.json()["errors"][0]["field"] == "body.branch"


def test_racing_decisions_never_overwrite_the_first(suite, people, by_decision):
    """Two checkers decide the same application at once, one to approve, one to decline: one wins, the other
    is told so (409, or a 503 to retry on SQLite, whose retry is the 409), and the stored decision is the winner's."""
    from concurrent.futures import ThreadPoolExecutor

    application = _submit(suite, people["maker"], by_decision["review"]).json()
    path = f"/applications/{application['id']}/decision"
    client = suite.direct["scoring"]
    commands = [({"decision": "approve", "reason": "income verified"}, people["checker"]),
                ({"decision": "decline", "reason": "too much debt"}, people["analyst"])] * 3
    with ThreadPoolExecutor(len(commands)) as pool:
        answers = list(pool.map(lambda c: client.post(path, json=c[0], headers=c[1]), commands))
    won = [a for a in answers if a.status_code == 200]
    assert len(won) == 1, [a.status_code for a in answers]
    assert {a.status_code for a in answers if a is not won[0]} <= {409, 503}
    final = client.get(f"/applications/{application['id']}", headers=people["analyst"]).json()
    assert final["status"] == won[0].json()["status"] and final["decided_by"] == won[0].json()["decided_by"]
    assert [h["to_status"] for h in final["history"]] == ["in_review", final["status"]]
    retried = client.post(path, json={"decision": "decline", "reason": "second thoughts"}, headers=people["analyst"])
    assert retried.status_code == 409 and retried.headers["content-type"] == "application/problem+json"


def _branchless_officer(suite, name):  # noqa: ANN001, ANN202
    """A loan officer whose token names no branch (a user made before a branch was required)."""
    from sqlalchemy import update

    from gateway.users.models import User
    suite.add_user(name, ["loan_officer"], "BJ001")
    with suite.database("gateway").session() as session:
        session.execute(update(User).where(User.username == name).values(branch=None))
        session.commit()
    signed_in = suite.client.post("/auth/token", data={"username": name, "password": PASSWORD})
    assert signed_in.status_code == 200, signed_in.text
    return {"Authorization": f"Bearer {signed_in.json()['access_token']}"}


def test_scores_are_read_in_their_customers_branch_only(suite, people, by_decision):
    client = suite.direct["scoring"]
    customer_id = new_customer(suite, people["maker"])
    scored = client.post("/scores", json={"customer_id": customer_id, "features": by_decision["review"]},
                         headers=people["maker"])
    assert scored.status_code == 201, scored.text
    score_id = scored.json()["id"]
    for reader in (people["maker"], people["analyst"]):
        assert client.get(f"/scores/{score_id}", headers=reader).status_code == 200
        assert [s["id"] for s in client.get("/scores", params={"customer_id": customer_id},
                                            headers=reader).json()["items"]] \
            == [score_id]
    # Another branch's officer, directly and through the gateway, and an officer without a branch: as if the
    # score did not exist, like the customer and monitoring services answer for the same customer.
    branchless = _branchless_officer(suite, "officer.nobranch.scores")
    for outsider in (people["other_branch"], branchless):
        assert client.get(f"/scores/{score_id}", headers=outsider).status_code == 404
        assert suite.client.get(f"/api/scoring/scores/{score_id}", headers=outsider).status_code == 404
        assert client.get("/scores", params={"customer_id": customer_id}, headers=outsider).json()["items"] == []
    assert suite.direct["customer"].get(f"/customers/{customer_id}", headers=people["other_branch"]).status_code \
        == 404


def test_a_loan_officer_without_a_branch_sees_and_decides_no_application(suite, people, by_decision):
    client = suite.direct["scoring"]
    application = _submit(suite, people["maker"], by_decision["review"]).json()
    branchless = _branchless_officer(suite, "officer.nobranch.apps")
    assert client.get("/applications", headers=branchless).json()["items"] == []
    assert client.get(f"/applications/{application['id']}", headers=branchless).status_code == 404
    decided = client.post(f"/applications/{application['id']}/decision",
                          json={"decision": "approve", "reason": "no branch"}, headers=branchless)
    assert decided.status_code == 404
    body = {**_body(suite, people["maker"], by_decision["approve"]), "branch": "BJ001"}
    assert client.post("/applications", json=body, headers=branchless).status_code == 403
    assert client.get(f"/applications/{application['id']}", headers=people["checker"]).status_code == 200


def test_a_decision_retried_with_its_key_gets_the_first_answer_not_a_conflict(suite, people, by_decision):
    application = _submit(suite, people["maker"], by_decision["review"]).json()
    answers = race(lambda k: suite.direct["scoring"].post(
        f"/applications/{application['id']}/decision", json={"decision": "approve", "reason": "income verified"},
        headers={**people["checker"], **k}))
    decided = assert_one_answer(answers, 200)
    assert decided["status"] == "approved"
    assert [h["to_status"] for h in decided["history"]] == ["in_review", "approved"]
