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
    }


@pytest.mark.parametrize("case", ["expired", "wrong_audience", "wrong_issuer", "tampered", "alg_none",
                                  "hs256_with_public_key", "unknown_kid", "no_roles", "no_expiry", "garbage"])
@pytest.mark.parametrize("target", ["gateway", "customer", "monitoring"])
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
