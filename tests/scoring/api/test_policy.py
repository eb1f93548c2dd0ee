"""Issue 15, Found 1 and 2 through the API: odd inputs never score better than real ones and never skip review;
approvals stay inside the decision policy's bounds, a credit committee above what an officer may approve."""

from decimal import Decimal

import pytest

from tests.scoring.api.helpers import acknowledge_terms, new_customer

ODD_PURPOSES = ["Education", "education ", None, "crypto"]


@pytest.fixture(scope="module")
def people(suite, champion):  # noqa: ANN001, ANN201
    return {
        "maker": suite.headers("maker.pol", ["loan_officer"], branch="BJ001"),
        "checker": suite.headers("checker.pol", ["loan_officer"], branch="BJ001"),
        "analyst": suite.headers("analyst.pol", ["risk_analyst"]),
        "committee": suite.headers("committee.pol", ["credit_committee"]),
        "committee2": suite.headers("committee2.pol", ["credit_committee"]),
        "partner": suite.headers("partner.pol", ["partner"]),
    }


@pytest.fixture(scope="module")
def graded(suite, people, applicants):  # noqa: ANN001, ANN201
    """The first 200 German applicants with their scores (raw features, so no warning)."""
    rows = [{"features": a} for a in applicants[:200]]
    scores = suite.direct["scoring"].post("/scores:batch", json={"rows": rows}, headers=people["analyst"]).json()
    return list(zip(applicants[:200], scores["scores"], strict=True))


def _score(suite, headers, features):  # noqa: ANN001, ANN202
    response = suite.direct["scoring"].post("/scores", json={"features": features}, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


def _application(suite, headers, features, amount="8000.00", **extra):  # noqa: ANN001, ANN202
    body = {"customer_id": new_customer(suite, headers), "product": "personal_loan", "amount": amount,
            "term_months": 24, "purpose": "education", "branch": "BJ001", "features": features,
            "collateral": "apartment, Chaoyang", **extra}  # weak grades need security (test_care.py)
    return suite.direct["scoring"].post("/applications", json=body, headers=headers)


def test_odd_spellings_score_as_the_category_and_unknowns_as_its_worst(suite, people, applicants):
    """Found 1: "Education", "education ", null and "crypto" scored 546 points (grade B, approve) against 535."""
    applicant = applicants[3]
    scored = {p: _score(suite, people["analyst"], {**applicant, "purpose": p})
              for p in ["education", *ODD_PURPOSES]}
    assert scored["Education"]["score"] == scored["education "]["score"] == scored["education"]["score"]
    assert scored["Education"]["warnings"] == []
    seen = [_score(suite, people["analyst"], {**applicant, "purpose": p})["score"]
            for p in ("car (new)", "car (used)", "business", "domestic appliances", "education",
                      "furniture/equipment", "others", "radio/television", "repairs", "retraining")]
    for odd in (None, "crypto"):
        assert scored[odd]["score"] <= min(seen) + 1e-6
        assert scored[odd]["warnings"][0]["code"] in ("missing_value", "unseen_category")


def test_an_answer_with_a_contract_warning_goes_to_review_with_it_as_a_reason(suite, people, graded):
    """Found 1: a partner's application with an odd purpose came back approved, decided by nobody."""
    approvable = next(a for a, s in graded if s["decision"] == "approve" and s["grade"] == "B")
    odd = {**approvable, "purpose": "crypto"}
    score = _score(suite, people["analyst"], odd)
    assert score["grade"] in ("A", "B") and score["decision"] == "review"
    assert score["reasons"][0] == {"feature": "purpose", "impact": 0.0, "unit": "input_contract", "points": None,
                                   "code": "unseen_category"}
    submitted = _application(suite, people["partner"], odd)
    assert submitted.status_code == 201, submitted.text
    body = submitted.json()
    assert body["status"] == "in_review" and body["approved_amount"] is None and body["decided_by"] is None
    assert "input contract: purpose unseen_category" in body["history"][0]["reason"]
    nulled = _score(suite, people["analyst"], {**approvable, "credit_amount": None})
    assert nulled["decision"] != "approve" and nulled["warnings"][0]["code"] == "missing_value"


def _in_review(graded):  # noqa: ANN001, ANN202
    return next(a for a, s in graded if s["decision"] == "review" and s["grade"] == "C")


@pytest.mark.parametrize("change, field", [
    ({"amount": "999.99"}, "body.amount"),
    ({"amount": "500000.01"}, "body.amount"),
    ({"term_months": 120}, "body.term_months"),
    ({"term_months": 2}, "body.term_months"),
])
def test_an_application_outside_the_products_bands_is_refused_naming_the_field(suite, people, graded, change, field):
    response = _application(suite, people["maker"], _in_review(graded), **change)
    assert response.status_code == 422, response.text
    assert [e["field"] for e in response.json()["errors"]] == [field]


def test_an_approval_never_exceeds_the_amount_asked_for_nor_is_paid_out_at_a_rate_outside_the_band(
        suite, people, graded):
    """Found 2: a 2,000.00 application approved at 99,999,999,999,999.99 and disbursed at 0% interest."""
    client = suite.direct["scoring"]
    application = _application(suite, people["maker"], _in_review(graded), amount="2000.00").json()
    path = f"/applications/{application['id']}"
    for who in ("checker", "committee"):
        refused = client.post(f"{path}/decision", headers=people[who], json={
            "decision": "approve", "reason": "looks fine", "approved_amount": "99999999999999.99"})
        assert refused.status_code == 422, refused.text
        assert refused.json()["errors"][0]["field"] == "body.approved_amount"
    assert client.get(path, headers=people["checker"]).json()["status"] == "in_review"
    approved = client.post(f"{path}/decision", headers=people["checker"],
                           json={"decision": "approve", "reason": "salary slips", "approved_amount": "2000.00"})
    assert approved.status_code == 200 and approved.json()["status"] == "approved"
    for rate in ("0", "0.5"):
        shown = client.put(f"{path}/disclosure", headers=people["maker"], json={"annual_rate": rate})
        assert shown.status_code == 422 and shown.json()["errors"][0]["field"] == "body.annual_rate"
    acknowledge_terms(suite, application["id"], people["maker"])
    paid = client.post(f"{path}/disbursement", headers=people["maker"],
                       json={"disbursement_date": "2026-01-15", "annual_rate": "0.5"})
    assert paid.status_code == 409 and paid.json()["errors"][0]["field"] == "body.annual_rate"  # not as disclosed
    assert client.get(path, headers=people["checker"]).json()["loan_id"] is None
    paid = client.post(f"{path}/disbursement", headers=people["maker"], json={"disbursement_date": "2026-01-15"})
    assert paid.status_code == 200, paid.text
    loan = suite.direct["monitoring"].get(f"/loans/{paid.json()['loan_id']}", headers=people["maker"]).json()
    assert Decimal(loan["principal"]) == Decimal("2000.00") and Decimal(loan["annual_rate"]) == Decimal("0.0535")


def test_above_the_grade_limit_or_the_threshold_the_credit_committee_approves(suite, people, graded):
    client = suite.direct["scoring"]
    application = _application(suite, people["maker"], _in_review(graded), amount="150000.00").json()
    assert application["status"] == "in_review"
    path = f"/applications/{application['id']}"
    proposed = client.post(f"{path}/decision", headers=people["checker"],
                           json={"decision": "approve", "reason": "strong collateral", "approved_amount": "150000.00"})
    assert proposed.status_code == 200, proposed.text
    assert proposed.json()["status"] == "in_committee" and proposed.json()["approved_amount"] == "150000.00"
    # Not disbursable yet; no officer finishes it; the committee does.
    assert client.post(f"{path}/disbursement", headers=people["maker"],
                       json={"disbursement_date": "2026-01-15"}).status_code == 409
    officer = client.post(f"{path}/decision", headers=people["analyst"],
                          json={"decision": "approve", "reason": "fine by me"})
    assert officer.status_code == 403
    final = client.post(f"{path}/decision", headers=people["committee"],
                        json={"decision": "approve", "reason": "committee minute 14"})
    assert final.status_code == 200, final.text
    body = final.json()
    assert body["status"] == "approved" and body["decided_by"] == "committee.pol"
    assert [(h["from_status"], h["to_status"], h["actor"]) for h in body["history"]] == [
        (None, "in_review", "maker.pol"), ("in_review", "in_committee", "checker.pol"),
        ("in_committee", "approved", "committee.pol")]


def test_the_policy_alone_approves_nothing_above_the_committee_threshold(suite, people, graded, monkeypatch):
    # Without the fast lane (test_care.py), which lets grade A through up to a higher limit.
    monkeypatch.setattr(suite.services["scoring"].state.scoring.context.settings, "fast_lane_grades", [])
    top = next(a for a, s in graded if s["decision"] == "approve" and s["grade"] == "A")
    application = _application(suite, people["maker"], top, amount="150000.00").json()
    assert application["policy_decision"] == "approve" and application["status"] == "in_review"
    assert "committee threshold" in application["history"][0]["reason"]
    decided = suite.direct["scoring"].post(f"/applications/{application['id']}/decision", headers=people["committee"],
                                           json={"decision": "approve", "reason": "committee minute 15"})
    assert decided.status_code == 200 and decided.json()["status"] == "approved"
    assert decided.json()["approved_amount"] == "150000.00"


def test_the_gateway_accepts_credit_committee_members(suite):
    admin = suite.headers("admin")
    created = suite.client.post("/auth/users", headers=admin, json={
        "username": "committee.gw", "password": "a long passphrase", "roles": ["credit_committee"]})
    assert created.status_code == 201, created.text
    token = suite.client.post("/auth/token", data={"username": "committee.gw", "password": "a long passphrase"})
    assert token.status_code == 200 and "scoring:write" in token.json()["scope"].split()


@pytest.mark.parametrize("amount, term", [("99999999999999.99", 24), ("0.01", 1)])
def test_an_amount_reaches_monitoring_to_the_cent(suite, people, graded, monkeypatch, amount, term):
    """Found 2: on SQLite the scoring service's money column passed through a float; a cent was lost on the way to
    monitoring. A policy configured for such amounts (the defaults refuse them) books them exactly."""
    from services.scoring.settings import ProductBand

    settings = suite.services["scoring"].state.scoring.context.settings
    monkeypatch.setattr(settings, "products", {**settings.products, "personal_loan": ProductBand(
        min_amount=Decimal("0.01"), max_amount=Decimal("99999999999999.99"), min_term_months=1, max_term_months=480,
        min_rate=Decimal("0.01"), max_rate=Decimal("0.30"))})
    monkeypatch.setattr(settings, "grades", [g.model_copy(update={"max_limit": Decimal("99999999999999.99")})
                                             for g in settings.grades])
    client = suite.direct["scoring"]
    application = _application(suite, people["maker"], _in_review(graded), amount=amount, term_months=term).json()
    assert application["amount"] == amount
    path = f"/applications/{application['id']}"
    decided = client.post(f"{path}/decision", headers=people["committee"],
                          json={"decision": "approve", "reason": "configured policy", "approved_amount": amount})
    assert decided.status_code == 200, decided.text
    acknowledge_terms(suite, application["id"], people["maker"])
    paid = client.post(f"{path}/disbursement", headers=people["maker"], json={"disbursement_date": "2026-01-15"})
    assert paid.status_code == 200, paid.text
    assert client.get(path, headers=people["maker"]).json()["approved_amount"] == amount
    loan = suite.direct["monitoring"].get(f"/loans/{paid.json()['loan_id']}", headers=people["maker"]).json()
    assert loan["principal"] == amount
