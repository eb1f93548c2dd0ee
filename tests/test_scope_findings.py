"""Who may see and do what, finding by finding (issue 14): duplicates that reveal nobody, partners and loan
figures, scopes that narrow, who-did-it fields from the token, the rule review's roles."""

from __future__ import annotations

import uuid
from datetime import date

from tests.customer.factory import person
from tests.support import ADMIN_PASSWORD, PASSWORD

BRANCH, OTHER = "SF01", "SF02"


def _key() -> dict[str, str]:
    return {"Idempotency-Key": uuid.uuid4().hex}


def _register(suite, headers, **overrides):  # noqa: ANN001, ANN202
    body = person(**overrides)
    response = suite.direct["customer"].post("/customers", json=body, headers={**headers, **_key()})
    return body, response


def _token(suite, username: str, scope: str) -> str:  # noqa: ANN001
    response = suite.client.post("/auth/token", data={"username": username, "password": ADMIN_PASSWORD,
                                                      "scope": scope})
    assert response.status_code == 200, response.text
    return response.json()["access_token"]


def test_a_duplicate_is_named_only_to_callers_who_may_see_the_existing_customer(suite) -> None:  # noqa: ANN001
    officer = suite.headers("sf.officer.dup", ["loan_officer"], BRANCH)
    elsewhere = suite.headers("sf.officer.dup.other", ["loan_officer"], OTHER)
    partner = suite.headers("sf.partner.dup", ["partner"])
    body, created = _register(suite, officer, branch=BRANCH)
    assert created.status_code == 201, created.text
    existing = created.json()["id"]
    seen = suite.direct["customer"].post("/customers", json=body, headers={**officer, **_key()})
    assert seen.status_code == 409 and seen.json()["existing_customer_id"] == existing
    by_id, by_phone = {**person(branch=OTHER), "national_id": body["national_id"],
                       "date_of_birth": body["date_of_birth"]}, {**person(branch=OTHER), "phone": body["phone"]}
    answers = []
    for caller in (elsewhere, partner):
        for probe in (by_id, by_phone):
            answer = suite.direct["customer"].post("/customers", json=probe, headers={**caller, **_key()})
            gateway = suite.client.post("/api/customer/customers", json=probe, headers={**caller, **_key()})
            for response in (answer, gateway):
                assert response.status_code == 409, response.text
                assert existing not in response.text and "existing_customer_id" not in response.json()
                answers.append({k: v for k, v in response.json().items() if k not in ("request_id", "instance")})
    # One answer whatever matched and whoever asked: it tells only that this person cannot be registered here.
    assert all(a == answers[0] for a in answers) and "contact your branch" in answers[0]["detail"]
    # An update to another customer's phone is refused the same way.
    _, mine = _register(suite, elsewhere, branch=OTHER)
    url = f"/customers/{mine.json()['id']}"
    patched = suite.direct["customer"].patch(url, json={"phone": body["phone"]}, headers={
        **elsewhere, "If-Match": mine.headers["etag"]})
    assert patched.status_code == 409 and existing not in patched.text


def test_a_partner_sees_no_loan_figure_and_cannot_ask_for_monitoring_scopes(suite) -> None:  # noqa: ANN001
    partner = suite.headers("sf.partner.loans", ["partner"])
    officer = suite.headers("sf.officer.loans", ["loan_officer"], BRANCH)
    _, created = _register(suite, partner, branch=BRANCH)
    customer_id = created.json()["id"]
    loan = {"customer_id": customer_id, "product": "personal_loan", "principal": "12000.00", "annual_rate": "0.12",
            "term_months": 12, "repayment_method": "equal_instalment",
            "disbursement_date": date.today().replace(day=1).isoformat(), "purpose": "car", "branch": BRANCH}
    assert suite.direct["monitoring"].post("/loans", json=loan, headers={**officer, **_key()}).status_code == 201
    portrait = f"/customers/{customer_id}/portrait"
    assert suite.direct["customer"].get(portrait, headers=officer).json()["products_held"] == 1
    for client, path in ((suite.direct["customer"], portrait), (suite.client, f"/api/customer{portrait}")):
        shown = client.get(path, headers=partner)
        assert shown.status_code == 200 and shown.json()["products_held"] is None
    overview = suite.direct["customer"].get(f"/customers/{customer_id}/overview", headers=partner).json()
    assert overview["portrait"]["products_held"] is None
    assert overview["loans"]["status"] == overview["alerts"]["status"] == "unavailable"
    signed_in = suite.client.post("/auth/token", data={"username": "sf.partner.loans", "password": PASSWORD,
                                                       "scope": "monitoring:read"})
    assert signed_in.status_code == 400 and signed_in.json()["error"] == "invalid_scope"
    assert "monitoring:read" not in suite.client.get("/whoami", headers=partner).json()["scopes"]


def test_a_tokens_scope_narrows_what_its_roles_allow_in_every_service(suite) -> None:  # noqa: ANN001
    narrowed = {"Authorization": f"Bearer {_token(suite, 'admin', 'customer:read')}"}
    users = suite.client.get("/auth/users", headers=narrowed)
    assert users.status_code == 403 and users.json()["needed_scopes"] == ["users:admin", "audit:read"]
    assert 'insufficient_scope' in users.headers["www-authenticate"]
    assert suite.client.get("/auth/users", headers=suite.headers("admin")).status_code == 200
    assert suite.direct["customer"].get("/customers", headers=narrowed).status_code == 200
    assert suite.direct["customer"].post("/customers", json=person(branch=BRANCH),
                                         headers={**narrowed, **_key()}).status_code == 403
    for service, path in (("scoring", "/models"), ("monitoring", "/loans")):
        assert suite.direct[service].get(path, headers=narrowed).status_code == 403
        assert suite.client.get(f"/api/{service}{path}", headers=narrowed).status_code == 403


def test_who_did_it_comes_from_the_token(suite) -> None:  # noqa: ANN001
    officer = suite.headers("sf.officer.who", ["loan_officer"], BRANCH)
    _, created = _register(suite, officer, branch=BRANCH)
    customer_id = created.json()["id"]
    loan = {"customer_id": customer_id, "product": "personal_loan", "principal": "12000.00", "annual_rate": "0.12",
            "term_months": 12, "repayment_method": "equal_instalment", "officer": "officer_a",
            "disbursement_date": date.today().replace(day=1).isoformat(), "purpose": "car", "branch": BRANCH}
    booked = suite.direct["monitoring"].post("/loans", json=loan, headers={**officer, **_key()})
    assert booked.status_code == 201 and booked.json()["officer"] == "sf.officer.who"
    contact = {"channel": "phone", "direction": "outbound", "purpose": "service", "outcome": "reached",
               "occurred_at": "2026-01-05T10:00:00Z"}
    url = f"/customers/{customer_id}/interactions"
    as_admin = suite.direct["customer"].post(url, json={**contact, "officer": "admin"}, headers={**officer, **_key()})
    assert as_admin.status_code == 422 and as_admin.json()["errors"][0]["field"] == "body.officer"
    logged = suite.direct["customer"].post(url, json=contact, headers={**officer, **_key()})
    assert logged.status_code == 201 and logged.json()["officer"] == "sf.officer.who"


def test_the_rule_review_is_for_analysts_auditors_and_admins(suite) -> None:  # noqa: ANN001
    path, window = "/rules/dpd_over_30/review", {"since": "2026-01-01", "until": "2026-12-31"}
    for role, status in (("risk_analyst", 200), ("auditor", 200), ("loan_officer", 403), ("collector", 403)):
        headers = suite.headers(f"sf.review.{role}", [role], BRANCH if role == "loan_officer" else None)
        response = suite.direct["monitoring"].get(path, params=window, headers=headers)
        assert response.status_code == status, response.text


def _branchless_officer(suite, username: str) -> dict[str, str]:  # noqa: ANN001
    """A loan officer whose token names no branch (made before the rule that every officer has one)."""
    from sqlalchemy import update

    from gateway.users.models import User
    suite.add_user(username, ["loan_officer"], BRANCH)
    with suite.database("gateway").session() as session:
        session.execute(update(User).where(User.username == username).values(branch=None))
        session.commit()
    signed_in = suite.client.post("/auth/token", data={"username": username, "password": PASSWORD})
    return {"Authorization": f"Bearer {signed_in.json()['access_token']}"}


def test_a_loan_officer_without_a_branch_registers_and_sees_no_customer(suite) -> None:  # noqa: ANN001
    branchless = _branchless_officer(suite, "sf.officer.nobranch")
    _, refused = _register(suite, branchless, branch=OTHER)
    assert refused.status_code == 403, refused.text
    _, created = _register(suite, suite.headers("admin"), branch=OTHER)
    assert suite.direct["customer"].get(f"/customers/{created.json()['id']}", headers=branchless).status_code == 404
    assert suite.direct["customer"].get("/customers", headers=branchless).json()["items"] == []


def test_a_campaign_is_seen_by_the_one_scope_rule(suite) -> None:  # noqa: ANN001
    """Campaigns had a rule of their own (the campaign's branch equal to the caller's): a loan officer whose token
    names no branch saw a bank-wide campaign's audience, and made bank-wide campaigns of its own, every branch's
    customers. Now it sees nothing, as everywhere, and an officer sees its own branch's campaigns only."""
    admin, branchless = suite.headers("admin"), _branchless_officer(suite, "sf.officer.campaigns")
    officer, other = (suite.headers(f"sf.campaigns.{b.lower()}", ["loan_officer"], b) for b in (BRANCH, OTHER))
    api = suite.direct["customer"]
    bank_wide = api.post("/campaigns", json={"name": "Bank-wide"}, headers={**admin, **_key()}).json()["id"]
    own = api.post("/campaigns", json={"name": "Own branch"}, headers={**officer, **_key()})
    assert own.status_code == 201 and own.json()["branch"] == BRANCH, own.text
    for campaign in (bank_wide, own.json()["id"]):
        for path in (f"/campaigns/{campaign}/audience", f"/campaigns/{campaign}/report"):
            assert api.get(path, headers=branchless).status_code == 404, path
        assert api.post(f"/campaigns/{campaign}/audience", headers={**branchless, **_key()}).status_code == 404
    assert api.get(f"/campaigns/{own.json()['id']}/audience", headers=other).status_code == 404
    assert api.get(f"/campaigns/{own.json()['id']}/audience", headers=officer).status_code == 200
    made = api.post("/campaigns", json={"name": "Everyone"}, headers={**branchless, **_key()})
    assert made.status_code == 422 and [e["field"] for e in made.json()["errors"]] == ["body.branch"], made.text
