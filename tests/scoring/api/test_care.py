"""Issue 19 at application: security asked of weak grades, the fast lane for strong ones, what the customer is
shown and acknowledges before the money leaves, their evaluation in plain words, and education for the high-risk."""

from decimal import Decimal

import pytest

from tests.scoring.api.helpers import new_customer


@pytest.fixture(scope="module")
def people(suite, champion):  # noqa: ANN001, ANN201
    return {
        "maker": suite.headers("maker.care", ["loan_officer"], branch="BJ001"),
        "checker": suite.headers("checker.care", ["loan_officer"], branch="BJ001"),
        "other_branch": suite.headers("officer.care", ["loan_officer"], branch="SH001"),
        "analyst": suite.headers("analyst.care", ["risk_analyst"]),
    }


@pytest.fixture(scope="module")
def by_grade(suite, people, applicants):  # noqa: ANN001, ANN201
    """One German applicant per grade, from the first 300."""
    rows = applicants[:300]
    scores = suite.direct["scoring"].post("/scores:batch", json={"rows": [{"features": r} for r in rows]},
                                          headers=people["analyst"]).json()["scores"]
    found = {}
    for row, score in zip(rows, scores, strict=True):
        found.setdefault(score["grade"], row)
    assert {"A", "B", "C", "D", "E"} <= set(found), set(found)
    return found


def _submit(suite, headers, features, customer_id=None, **extra):  # noqa: ANN001, ANN202
    body = {"customer_id": customer_id or new_customer(suite, headers), "product": "personal_loan",
            "amount": "8000.00", "term_months": 12, "purpose": "home renovation", "features": features, **extra}
    response = suite.direct["scoring"].post("/applications", json=body, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


def _decide(suite, application, headers, decision="approve"):  # noqa: ANN001, ANN202
    return suite.direct["scoring"].post(f"/applications/{application['id']}/decision", headers=headers,
                                        json={"decision": decision, "reason": "documents checked"})


def test_a_weak_grade_without_the_security_its_grade_needs_is_referred_or_declined_with_that_reason(
        suite, people, by_grade):
    referred = _submit(suite, people["maker"], by_grade["C"])
    assert referred["status"] == "in_review"
    assert "grade C requires collateral or guarantor; none was offered" in referred["history"][0]["reason"]
    refused = _decide(suite, referred, people["checker"])
    assert refused.status_code == 409 and "only be declined" in refused.json()["detail"]
    assert _decide(suite, referred, people["checker"], "decline").status_code == 200

    guaranteed = _submit(suite, people["maker"], by_grade["C"], guarantor="Wang Fang, spouse")
    approved = _decide(suite, guaranteed, people["checker"])
    assert approved.status_code == 200 and approved.json()["status"] == "approved"
    assert approved.json()["guarantor"] == "Wang Fang, spouse"

    declined = _submit(suite, people["maker"], by_grade["D"], guarantor="a friend")  # D needs collateral itself
    assert declined["status"] == "declined"
    assert "grade D requires collateral; none was offered: decline" in declined["history"][0]["reason"]
    secured = _submit(suite, people["maker"], by_grade["D"], collateral="apartment, Chaoyang")
    assert secured["status"] == "in_review" and secured["collateral"] == "apartment, Chaoyang"


def test_a_strong_grade_takes_the_fast_lane_past_the_committee_threshold(suite, people, by_grade):
    fast = _submit(suite, people["maker"], by_grade["A"], amount="150000.00", term_months=24)
    assert (fast["status"], fast["approved_amount"], fast["decided_by"]) == ("approved", "150000.00", None)
    assert "fast lane" in fast["history"][0]["reason"]
    # Grade B is not in the fast lane: its own limit (100,000) is what the policy approves alone.
    slow = _submit(suite, people["maker"], by_grade["B"], amount="150000.00", term_months=24)
    assert slow["approved_amount"] != "150000.00" and "fast lane" not in slow["history"][0]["reason"]


def test_the_money_leaves_only_after_the_customer_acknowledged_what_they_were_shown(
        suite, people, by_grade, monkeypatch):
    monkeypatch.setattr(suite.services["scoring"].state.scoring.context.settings, "fees_by_product",
                        {"personal_loan": Decimal("200.00")})
    monkeypatch.setattr(suite.services["monitoring"].state.monitoring_settings, "penalty_daily_rates",
                        {"personal_loan": Decimal("0.0005")})
    client = suite.direct["scoring"]
    application = _submit(suite, people["maker"], by_grade["B"])
    path = f"/applications/{application['id']}"
    unshown = client.post(f"{path}/disbursement", json={"disbursement_date": "2026-01-15"}, headers=people["maker"])
    assert unshown.status_code == 409 and "acknowledge" in unshown.json()["detail"]
    assert client.get(f"{path}/disclosure", headers=people["maker"]).status_code == 404

    shown = client.put(f"{path}/disclosure", json={"expected_disbursement_date": "2026-01-15"},
                       headers=people["maker"])
    assert shown.status_code == 200, shown.text
    terms = shown.json()
    schedule = suite.direct["monitoring"].post("/loans/schedule-preview", headers=people["maker"], json={
        "principal": "8000.00", "annual_rate": terms["annual_rate"], "term_months": 12,
        "repayment_method": "equal_instalment", "disbursement_date": "2026-01-15", "product": "personal_loan"}).json()
    assert (terms["amount"], terms["term_months"], terms["fees"]) == ("8000.00", 12, "200.00")
    assert Decimal(terms["annual_rate"]) == Decimal("0.0435")  # grade B: the base rate
    assert Decimal(terms["penalty_daily_rate"]) == Decimal("0.0005")
    assert terms["total_interest"] == schedule["total_interest"]
    assert Decimal(terms["total_cost"]) == Decimal(schedule["total_interest"]) + Decimal("200.00")
    assert terms["decision"].startswith("Approved automatically by the bank's credit policy, from your credit "
                                        "score (grade B). Your score was lowered mainly by: ")
    assert terms["reasons"] and not any("_" in reason for reason in terms["reasons"])
    assert terms["acknowledged_at"] is None
    assert client.post(f"{path}/disbursement", json={"disbursement_date": "2026-01-15"},
                       headers=people["maker"]).status_code == 409  # shown, not yet acknowledged

    acknowledged = client.post(f"{path}/disclosure/acknowledgement", json={"channel": "app"},
                               headers=people["maker"])
    assert acknowledged.status_code == 200, acknowledged.text
    first = acknowledged.json()
    assert (first["acknowledged_channel"], first["acknowledgement_recorded_by"]) == ("app", "maker.care")
    again = client.post(f"{path}/disclosure/acknowledgement", json={"channel": "branch"}, headers=people["checker"])
    assert again.json()["acknowledged_at"] == first["acknowledged_at"] and again.json()["acknowledged_channel"] == "app"
    assert client.put(f"{path}/disclosure", json={}, headers=people["maker"]).status_code == 409  # it stands
    other = client.post(f"{path}/disclosure/acknowledgement", json={"channel": "app"}, headers=people["other_branch"])
    assert other.status_code == 404

    paid = client.post(f"{path}/disbursement", json={"disbursement_date": "2026-01-15"}, headers=people["maker"])
    assert paid.status_code == 200, paid.text
    loan = suite.direct["monitoring"].get(f"/loans/{paid.json()['loan_id']}", headers=people["maker"]).json()
    assert Decimal(loan["annual_rate"]) == Decimal(terms["annual_rate"])
    assert client.get(f"{path}/disclosure", headers=people["analyst"]).json()["acknowledged_channel"] == "app"


def test_a_customer_hears_their_evaluation_in_plain_words_within_the_callers_scope(suite, people, by_grade):
    application = _submit(suite, people["maker"], by_grade["C"], collateral="car")
    client = suite.direct["scoring"]
    url = f"/customers/{application['customer_id']}/evaluation"
    evaluation = client.get(url, headers=people["maker"])
    assert evaluation.status_code == 200, evaluation.text
    body = evaluation.json()
    assert (body["grade"], body["outcome"]) == ("C", "Your evaluation needs a closer look by a credit officer.")
    assert body["explanation"] == f"Your score was lowered mainly by: {'; '.join(body['reasons'])}."
    assert body["reasons"] and not any("_" in reason for reason in body["reasons"])
    assert set(body) == {"customer_id", "evaluated_on", "grade", "outcome", "explanation", "reasons"}  # no points
    assert client.get(url, headers=people["other_branch"]).status_code == 404
    assert client.get("/customers/nobody/evaluation", headers=people["maker"]).status_code == 404
    assert suite.client.get(f"/api/scoring{url}", headers=people["maker"]).json() == body  # through the gateway


def test_a_high_risk_applicant_gets_one_education_task_for_their_officer(suite, people, by_grade):
    customer = new_customer(suite, people["maker"])
    for _ in range(2):  # asking twice, the customer gets one task
        _submit(suite, people["maker"], by_grade["E"], customer_id=customer)
    strong = _submit(suite, people["maker"], by_grade["A"])

    def tasks_of(customer_id):  # noqa: ANN001, ANN202
        listed = suite.client.get("/api/customer/tasks", params={"status": "open", "limit": 1000},
                                  headers=people["maker"]).json()["items"]
        return [t for t in listed if t["customer_id"] == customer_id]

    [task] = tasks_of(customer)
    assert (task["reason"], task["officer"]) == ("credit education or counselling: high-risk applicant",
                                                 "maker.care")
    assert tasks_of(strong["customer_id"]) == []
