"""Tokens: issued by the gateway, verified by every service itself, rejected in every forged shape."""

import base64
import hashlib
import hmac
import json
import time

import pytest
from jose import jwt

from gateway.tokens.models import SigningKey
from shared.settings import SERVICES
from tests.support import PASSWORD, until_refused


def _signing_key(suite) -> SigningKey:
    from sqlmodel import select

    with suite.database("gateway").session() as session:
        return session.exec(select(SigningKey)).first()


def _claims(suite, **overrides):
    now = int(time.time())
    claims = {"iss": suite.kernel.jwt_issuer, "aud": suite.kernel.jwt_audience, "sub": "mallory", "iat": now,
              "exp": now + 300, "jti": "x1", "roles": ["admin"], "scope": "customer:read", "branch": None,
              "sid": "forged-session"}
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not ...}


def _sign(suite, claims, kid=None):
    return suite.sign(claims, kid=kid)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _assert_401(response):
    assert response.status_code == 401, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == 401 and body["title"] == "Unauthorized"
    assert "Bearer" in response.headers["www-authenticate"]
    return body


def test_password_flow_issues_a_signed_token_with_the_claims_services_need(suite):
    suite.add_user("wang.fang", ["loan_officer"], branch="BJ001")
    response = suite.client.post("/auth/token", data={"username": "wang.fang", "password": "a-long-test-password"})
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "bearer" and body["expires_in"] == 900
    header = jwt.get_unverified_header(body["access_token"])
    assert header["alg"] == "RS256"
    kids = [k["kid"] for k in suite.client.get("/.well-known/jwks.json").json()["keys"]]
    assert header["kid"] in kids
    claims = jwt.get_unverified_claims(body["access_token"])
    assert claims["sub"] == "wang.fang" and claims["roles"] == ["loan_officer"] and claims["branch"] == "BJ001"
    assert claims["iss"] == "loancrm-gateway" and claims["aud"] == "loancrm"
    assert claims["exp"] - claims["iat"] == 900 and claims["jti"]
    assert "customer:write" in claims["scope"].split() and "users:admin" not in claims["scope"].split()


def test_wrong_password_and_unknown_user_get_the_same_answer(suite):
    suite.add_user("zhao.lei", ["collector"])
    wrong = suite.client.post("/auth/token", data={"username": "zhao.lei", "password": "not-the-password"})
    unknown = suite.client.post("/auth/token", data={"username": "nobody.here", "password": "whatever-it-is"})
    for response in (wrong, unknown):
        assert response.status_code == 400
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["error"] == "invalid_grant"
    assert wrong.json()["detail"] == unknown.json()["detail"]


def test_a_scope_beyond_the_roles_is_refused(suite):
    suite.add_user("qian.yu", ["auditor"])
    response = suite.client.post(
        "/auth/token", data={"username": "qian.yu", "password": "a-long-test-password", "scope": "customer:write"})
    assert response.status_code == 400 and response.json()["error"] == "invalid_scope"


@pytest.mark.parametrize("service", [s for s in SERVICES if s != "gateway"])
def test_each_service_verifies_a_real_token_itself(suite, service):
    response = suite.direct[service].get("/whoami", headers=suite.headers("admin"))
    assert response.status_code == 200
    assert response.json()["sub"] == "admin" and response.json()["roles"] == ["admin"]


@pytest.mark.parametrize("service", [s for s in SERVICES if s != "gateway"])
def test_a_direct_call_without_a_token_is_refused(suite, service):
    body = _assert_401(suite.direct[service].get("/whoami"))
    assert body["detail"] == "A bearer access token is required."


def _forged_tokens(suite):
    key = _signing_key(suite)
    now = int(time.time())
    good = _sign(suite, _claims(suite))
    head, payload, signature = good.split(".")
    tampered_payload = _b64(json.dumps(_claims(suite, roles=["admin", "auditor"], sub="admin")).encode())
    header_none = _b64(json.dumps({"alg": "none", "typ": "JWT", "kid": key.kid}).encode())
    header_hs = _b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": key.kid}).encode())
    hs_signing_input = f"{header_hs}.{payload}".encode()
    hs_signature = _b64(hmac.new(key.public_pem.encode(), hs_signing_input, hashlib.sha256).digest())
    return {
        "expired": (_sign(suite, _claims(suite, iat=now - 600, exp=now - 60)), "expired"),
        "wrong_audience": (_sign(suite, _claims(suite, aud="someone-else")), "claims rejected"),
        "wrong_issuer": (_sign(suite, _claims(suite, iss="https://evil.example")), "claims rejected"),
        "tampered": (f"{head}.{tampered_payload}.{signature}", "signature invalid"),
        "alg_none": (f"{header_none}.{payload}.", "algorithm not accepted"),
        "hs256_with_public_key": (f"{header_hs}.{payload}.{hs_signature}", "algorithm not accepted"),
        "unknown_kid": (_sign(suite, _claims(suite), kid="not-a-key"), "unknown key"),
        "no_roles": (_sign(suite, _claims(suite, roles=...)), "no roles"),
        "no_expiry": (_sign(suite, _claims(suite, exp=...)), "claims rejected"),
        "garbage": ("not.a.jwt", "malformed"),
        # RFC 8725: explicit typing, critical extensions, times (Found 13).
        "untyped_jwt": (suite.sign(_claims(suite), headers={"typ": "JWT"}), "type not accepted"),
        "unknown_crit": (suite.sign(_claims(suite), headers={"crit": ["exp-ext"], "exp-ext": 1}), "critical"),
        "issued_a_year_ahead": (_sign(suite, _claims(suite, iat=now + 365 * 86400, nbf=now,
                                                     exp=now + 365 * 86400 + 300)), "future"),
        "lives_a_century": (_sign(suite, _claims(suite, exp=now + 100 * 365 * 86400)), "lives longer"),
        "no_session_id": (_sign(suite, _claims(suite, sid=...)), "no session id"),
        # Claims of the wrong type (the scope rule binds `branch` into SQL, where a list was a 500).
        "branch_not_text": (_sign(suite, _claims(suite, roles=["loan_officer"], branch=["BJ001", "SH001"])),
                            "branch must be a string"),
        "scope_not_text": (_sign(suite, _claims(suite, scope=["customer:read"])), "scope must be a string"),
    }


@pytest.mark.parametrize("case", ["expired", "wrong_audience", "wrong_issuer", "tampered", "alg_none",
                                  "hs256_with_public_key", "unknown_kid", "no_roles", "no_expiry", "garbage",
                                  "untyped_jwt", "unknown_crit", "issued_a_year_ahead", "lives_a_century",
                                  "no_session_id", "branch_not_text", "scope_not_text"])
@pytest.mark.parametrize("target", ["gateway", "customer", "scoring", "monitoring"])
def test_forged_or_stale_tokens_are_refused_everywhere(suite, case, target):
    token, reason = _forged_tokens(suite)[case]
    client = suite.client if target == "gateway" else suite.direct[target]
    path = "/api/customer/whoami" if target == "gateway" else "/whoami"
    body = _assert_401(client.get(path, headers={"Authorization": f"Bearer {token}"}))
    assert reason in body["detail"] or (case == "no_expiry" and "exp" in body["detail"].lower())


def test_a_role_that_may_not_act_gets_403_problem(suite):
    response = suite.client.post(
        "/auth/users",
        json={"username": "new.user", "password": "a-long-password!", "roles": ["collector"]},
        headers=suite.headers("sun.li", ["loan_officer"], branch="BJ001"),
    )
    assert response.status_code == 403
    assert response.headers["content-type"] == "application/problem+json"
    assert "admin" in response.json()["detail"]


def test_admin_creates_a_user_who_can_then_sign_in_and_retries_are_safe(suite):
    payload = {"username": "zhou.min", "password": "a-long-password!", "roles": ["risk_analyst"], "branch": "SH002"}
    headers = {**suite.headers("admin"), "Idempotency-Key": "create-zhou-1"}
    first = suite.client.post("/auth/users", json=payload, headers=headers)
    again = suite.client.post("/auth/users", json=payload, headers=headers)
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
    reused = suite.client.post("/auth/users", json={**payload, "branch": "GZ003"}, headers=headers)
    assert reused.status_code == 422 and reused.json()["errors"][0]["field"] == "header.Idempotency-Key"
    duplicate = suite.client.post("/auth/users", json=payload, headers=suite.headers("admin"))
    assert duplicate.status_code == 409
    login = suite.client.post("/auth/token", data={"username": "zhou.min", "password": "a-long-password!"})
    assert login.status_code == 200
    listed = suite.client.get("/auth/users", headers=suite.headers("admin")).json()
    assert [u["username"] for u in listed["items"]].count("zhou.min") == 1


def test_issued_tokens_are_typed_access_tokens_with_a_session_id(suite):
    token = suite.token("typed.user", ["auditor"])
    assert jwt.get_unverified_header(token)["typ"] == "at+jwt"
    assert len(jwt.get_unverified_claims(token)["sid"]) == 32


@pytest.mark.parametrize("username", ["system", "cli"])
def test_no_user_takes_a_name_the_suites_own_jobs_sign_the_audit_trail_with(suite, username):
    """Found: a user could be named `system`, and the trail could not tell their acts from scheduled jobs'."""
    response = suite.client.post("/auth/users", headers=suite.headers("admin"),
                                 json={"username": username, "password": PASSWORD, "roles": ["auditor"]})
    assert _problem_field(response) == "body.username"
    assert suite.client.get(f"/auth/users/{username}", headers=suite.headers("admin")).status_code == 404


def _problem_field(response, status=422):
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    return response.json()["errors"][0]["field"]


def test_a_loan_officer_cannot_be_created_or_left_without_a_branch(suite):
    """Found 2: a branchless loan officer was created and then saw every branch in scoring."""
    admin = suite.headers("admin")
    refused = suite.client.post("/auth/users", headers=admin,
                                json={"username": "no.branch", "password": PASSWORD, "roles": ["loan_officer"]})
    assert _problem_field(refused) == "body.branch"
    assert suite.client.get("/auth/users/no.branch", headers=admin).status_code == 404
    suite.client.post("/auth/users", headers=admin,
                      json={"username": "branch.officer", "password": PASSWORD, "roles": ["loan_officer"],
                            "branch": "BJ001"}).raise_for_status()
    assert _problem_field(suite.client.patch("/auth/users/branch.officer", headers=admin,
                                             json={"branch": None})) == "body.branch"
    suite.client.post("/auth/users", headers=admin,
                      json={"username": "plain.auditor", "password": PASSWORD, "roles": ["auditor"]}).raise_for_status()
    assert _problem_field(suite.client.patch("/auth/users/plain.auditor", headers=admin,
                                             json={"roles": ["loan_officer"]})) == "body.branch"


@pytest.mark.parametrize("password", ["aaaaaaaaaaaa", "Password123!", "123456789012", "qwertyuiop12",
                                      "abcabcabcabc", "weak.user-is-me", "short"])
def test_weak_passwords_are_refused_naming_the_field(suite, password):
    """Found 9: an admin password of twelve 'a' was accepted."""
    response = suite.client.post("/auth/users", headers=suite.headers("admin"),
                                 json={"username": "weak.user", "password": password, "roles": ["auditor"]})
    assert _problem_field(response) == "body.password"


def _everywhere(suite, headers):
    return [(suite.client, "/whoami"), *((suite.client, f"/api/{s}/whoami") for s in ("customer", "scoring",
            "monitoring")), *((suite.direct[s], "/whoami") for s in ("customer", "scoring", "monitoring"))]


def test_disabling_a_user_voids_its_tokens_in_every_service_within_a_poll(suite):
    """Found 9: a token stayed valid until it expired whatever happened to its user."""
    headers = suite.headers("leaving.user", ["collector"])
    for client, path in _everywhere(suite, headers):
        assert client.get(path, headers=headers).status_code == 200  # every verifier has it cached now
    admin = suite.headers("admin")
    disabled = suite.client.post("/auth/users/leaving.user/disable", headers=admin)
    disabled_at = time.monotonic()
    assert disabled.status_code == 200 and disabled.json()["status"] == "disabled"
    assert disabled.json()["updated_by"] == "admin"
    # The gateway applies its own revocations at once; the services within their poll (the harness: 0.5 s).
    assert suite.client.get("/whoami", headers=headers).status_code == 401
    bound = suite.kernel.revocation_poll_seconds + 1.0
    for client, path in _everywhere(suite, headers):
        until_refused(client, path, headers, bound, since=disabled_at)
    login = suite.client.post("/auth/token", data={"username": "leaving.user", "password": PASSWORD})
    assert login.status_code == 400 and login.json()["error"] == "invalid_grant"
    enabled = suite.client.post("/auth/users/leaving.user/enable", headers=admin)
    assert enabled.json()["status"] == "active"
    assert suite.client.post("/auth/token", data={"username": "leaving.user", "password": PASSWORD}).status_code == 200
    assert suite.direct["customer"].get("/whoami", headers=headers).status_code == 401  # the old one stays void


def test_changing_roles_or_branch_voids_the_old_tokens_and_new_ones_carry_the_change(suite):
    headers = suite.headers("moving.officer", ["loan_officer"], branch="BJ001")
    assert suite.direct["monitoring"].get("/whoami", headers=headers).json()["branch"] == "BJ001"
    changed = suite.client.patch("/auth/users/moving.officer", headers=suite.headers("admin"),
                                 json={"branch": "SH002"})
    assert changed.status_code == 200 and changed.json()["branch"] == "SH002"
    assert changed.json()["roles"] == ["loan_officer"]
    until_refused(suite.direct["monitoring"], "/whoami", headers, suite.kernel.revocation_poll_seconds + 1.0)
    token = suite.client.post("/auth/token", data={"username": "moving.officer", "password": PASSWORD}).json()
    fresh = {"Authorization": f"Bearer {token['access_token']}"}
    assert suite.direct["monitoring"].get("/whoami", headers=fresh).json()["branch"] == "SH002"


def test_a_password_reset_gives_a_one_time_password_that_only_chooses_a_new_one(suite):
    headers = suite.headers("forgetful.user", ["auditor"])
    reset = suite.client.post("/auth/users/forgetful.user/password-reset", headers=suite.headers("admin"))
    assert reset.status_code == 200
    one_time = reset.json()["one_time_password"]
    assert suite.client.get("/whoami", headers=headers).status_code == 401
    assert suite.client.get("/auth/users/forgetful.user",
                            headers=suite.headers("admin")).json()["status"] == "password_change_required"
    signed = suite.client.post("/auth/token", data={"username": "forgetful.user", "password": one_time})
    assert signed.status_code == 400 and signed.json()["password_change_required"] is True
    old = suite.client.post("/auth/token", data={"username": "forgetful.user", "password": PASSWORD})
    assert old.status_code == 400
    change = {"username": "forgetful.user", "current_password": one_time}
    weak = suite.client.post("/auth/password", json={**change, "new_password": "forgetful.user-2026"})
    assert _problem_field(weak) == "body.new_password"
    wrong = suite.client.post("/auth/password", json={**change, "current_password": "not-it-at-all",
                                                      "new_password": "a brand new passphrase"})
    assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_grant"
    assert suite.client.post("/auth/password", json={**change, "new_password": "a brand new passphrase"}
                             ).status_code == 204
    used = suite.client.post("/auth/token", data={"username": "forgetful.user", "password": one_time})
    assert used.status_code == 400
    assert suite.client.post("/auth/token", data={"username": "forgetful.user",
                                                  "password": "a brand new passphrase"}).status_code == 200


def test_users_are_listed_by_page_with_their_status(suite):
    for name in ("page.a", "page.b", "page.c"):
        suite.add_user(name, ["auditor"])
    admin = suite.headers("admin")
    suite.client.post("/auth/users/page.b/disable", headers=admin).raise_for_status()
    seen, cursor = [], None
    while True:
        page = suite.client.get("/auth/users", headers=admin, params={"limit": 2, **({"cursor": cursor} if cursor
                                                                                       else {})}).json()
        assert len(page["items"]) <= 2
        seen += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    names = [u["username"] for u in seen]
    assert names == sorted(names) and len(names) == len(set(names))
    status = {u["username"]: u["status"] for u in seen}
    assert status["page.a"] == "active" and status["page.b"] == "disabled"
    disabled = suite.client.get("/auth/users", headers=admin, params={"status": "disabled"}).json()["items"]
    assert "page.b" in [u["username"] for u in disabled] and "page.a" not in [u["username"] for u in disabled]
    assert suite.client.get("/auth/users", headers=admin, params={"cursor": "%%%"}).status_code == 422
    assert suite.client.get("/auth/users", headers=suite.headers("page.reader", ["auditor"])).status_code == 200
    reader = suite.headers("page.reader", ["auditor"])
    assert suite.client.post("/auth/users/page.c/disable", headers=reader).status_code == 403
