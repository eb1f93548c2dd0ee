"""OAuth2 as standard clients speak it (issue 17, Found 5): RFC 6749 errors and no-store at the token endpoint,
refresh tokens rotated with reuse detection, client credentials for partner systems, OIDC discovery, CORS."""

from __future__ import annotations

import asyncio
import base64
import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from fastapi.testclient import TestClient
from jose import jwt
from sqlalchemy import update
from sqlmodel import select

from gateway.clients.models import OAuthClient
from gateway.main import create_app
from gateway.sessions.models import RefreshToken
from gateway.settings import GatewaySettings
from shared.settings import KernelSettings
from tests.customer.factory import key, person
from tests.support import PASSWORD, until_refused

NO_STORE = {"cache-control": "no-store", "pragma": "no-cache"}


def _name(prefix: str) -> str:
    return f"{prefix}.{uuid.uuid4().hex[:8]}"


def _sign_in(suite, username: str, **extra: str) -> httpx.Response:
    return suite.client.post("/auth/token", data={"grant_type": "password", "username": username,
                                                  "password": PASSWORD, **extra})


def _user(suite, roles=("loan_officer",), branch="BJ001") -> str:
    username = _name("oauth")
    suite.add_user(username, list(roles), branch)
    return username


def _refresh(suite, refresh_token: str, **extra: str) -> httpx.Response:
    return suite.client.post("/auth/token", data={"grant_type": "refresh_token", "refresh_token": refresh_token,
                                                  **extra})


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _basic(client_id: str, secret: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()}


def _client(suite, **body) -> dict:  # noqa: ANN003
    body.setdefault("client_id", _name("partner").replace(".", "-"))
    body.setdefault("name", "A partner system")
    created = suite.client.post("/clients", json=body, headers=suite.headers("admin"))
    assert created.status_code == 201, created.text
    return created.json()


def _client_token(suite, client: dict, **extra: str) -> httpx.Response:
    return suite.client.post("/auth/token", data={"grant_type": "client_credentials", **extra},
                             headers=_basic(client["client_id"], client["client_secret"]))


def _assert_oauth_error(response: httpx.Response, status: int, error: str) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"] == error and body["error_description"], body
    assert {k: response.headers.get(k) for k in NO_STORE} == NO_STORE
    return body


# -- RFC 6749 errors and no-store -------------------------------------------------------------------------------

@pytest.mark.parametrize("case, body, status, error", [
    ("unsupported grant", "grant_type=authorization_code&code=x", 400, "unsupported_grant_type"),
    ("no grant type", "scope=customer:read", 400, "invalid_request"),
    ("password grant without a password", "grant_type=password&username=admin", 400, "invalid_request"),
    ("refresh grant without a token", "grant_type=refresh_token", 400, "invalid_request"),
    ("a parameter twice", "grant_type=password&username=admin&username=other&password=x", 400, "invalid_request"),
    ("a wrong password", "grant_type=password&username=nobody.at.all&password=not-it", 400, "invalid_grant"),
    ("an unknown refresh token", "grant_type=refresh_token&refresh_token=not-a-token", 400, "invalid_grant"),
    ("client credentials without a client", "grant_type=client_credentials", 401, "invalid_client"),
    ("a wrong client secret", "grant_type=client_credentials&client_id=nobody&client_secret=x", 401,
     "invalid_client"),
])
def test_every_refusal_of_the_token_endpoint_is_an_rfc6749_error_that_is_not_cached(suite, case, body, status,
                                                                                      error):
    """Found 5: an unsupported grant_type or a missing field answered 422."""
    response = suite.client.post("/auth/token", content=body,
                                 headers={"Content-Type": "application/x-www-form-urlencoded"})
    _assert_oauth_error(response, status, error)
    if error == "invalid_client":
        assert response.headers["www-authenticate"].startswith("Basic")


def test_a_json_body_and_two_ways_of_client_authentication_are_invalid_requests(suite):
    _assert_oauth_error(suite.client.post("/auth/token", json={"grant_type": "password"}), 400, "invalid_request")
    both = suite.client.post("/auth/token", data={"grant_type": "client_credentials", "client_secret": "x"},
                             headers=_basic("some-client", "y"))
    _assert_oauth_error(both, 400, "invalid_request")


def test_a_scope_beyond_the_callers_is_invalid_scope(suite):
    username = _user(suite, ["auditor"], None)
    _assert_oauth_error(_sign_in(suite, username, scope="customer:write"), 400, "invalid_scope")


def test_a_token_answer_is_not_cached_and_a_sign_in_gets_a_refresh_token(suite):
    response = _sign_in(suite, _user(suite))
    assert response.status_code == 200, response.text
    assert {k: response.headers.get(k) for k in NO_STORE} == NO_STORE
    body = response.json()
    assert body["token_type"].lower() == "bearer" and body["refresh_token"] and body["expires_in"] == 900


# -- Refresh tokens ----------------------------------------------------------------------------------------------

def test_a_refresh_token_rotates_and_the_new_access_token_works(suite):
    username = _user(suite)
    first = _sign_in(suite, username).json()
    second = _refresh(suite, first["refresh_token"])
    assert second.status_code == 200, second.text
    assert {k: second.headers.get(k) for k in NO_STORE} == NO_STORE
    body = second.json()
    assert body["refresh_token"] != first["refresh_token"]
    assert jwt.get_unverified_claims(body["access_token"])["sid"] == \
        jwt.get_unverified_claims(first["access_token"])["sid"]  # one family, one sid
    assert suite.direct["customer"].get("/whoami", headers=_bearer(body["access_token"])).json()["sub"] == username
    third = _refresh(suite, body["refresh_token"])
    assert third.status_code == 200, third.text
    with suite.database("gateway").session() as session:
        stored = session.exec(select(RefreshToken).where(RefreshToken.username == username)).all()
    assert len(stored) == 3
    # Stored hashed: no value handed out is in the table.
    assert not {t.token_hash for t in stored} & {first["refresh_token"], body["refresh_token"]}


def test_a_reused_refresh_token_revokes_its_whole_family_and_only_it(suite):
    username = _user(suite)
    stolen = _sign_in(suite, username).json()
    other_device = _sign_in(suite, username).json()
    rotated = _refresh(suite, stolen["refresh_token"]).json()  # the rightful app refreshes
    for token in (stolen["access_token"], rotated["access_token"]):
        assert suite.direct["scoring"].get("/whoami", headers=_bearer(token)).status_code == 200
    reused = _refresh(suite, stolen["refresh_token"])  # ...and the thief replays the old one
    assert "already used" in _assert_oauth_error(reused, 400, "invalid_grant")["error_description"]
    # Every refresh token of the family is void, and so is every access token it carried.
    _assert_oauth_error(_refresh(suite, rotated["refresh_token"]), 400, "invalid_grant")
    for token in (stolen["access_token"], rotated["access_token"]):
        assert suite.client.get("/whoami", headers=_bearer(token)).status_code == 401
        until_refused(suite.direct["scoring"], "/whoami", _bearer(token), suite.kernel.revocation_poll_seconds + 1)
    # The user's other sign-in is a family of its own and goes on.
    assert suite.client.get("/whoami", headers=_bearer(other_device["access_token"])).status_code == 200
    assert _refresh(suite, other_device["refresh_token"]).status_code == 200


def test_an_app_signs_out_by_revoking_its_refresh_token(suite):
    username = _user(suite)
    signed_in = _sign_in(suite, username).json()
    revoked = suite.client.post("/auth/revoke", data={"token": signed_in["refresh_token"],
                                                      "token_type_hint": "refresh_token"})
    assert revoked.status_code == 200 and revoked.headers["cache-control"] == "no-store"
    _assert_oauth_error(_refresh(suite, signed_in["refresh_token"]), 400, "invalid_grant")
    assert suite.client.get("/whoami", headers=_bearer(signed_in["access_token"])).status_code == 401
    # Unknown tokens are no error (RFC 7009 §2.2); a request without one is.
    assert suite.client.post("/auth/revoke", data={"token": "not-a-token"}).status_code == 200
    _assert_oauth_error(suite.client.post("/auth/revoke", data={}), 400, "invalid_request")


def test_a_refresh_may_narrow_the_scope_never_widen_it(suite):
    username = _user(suite)
    signed_in = _sign_in(suite, username, scope="customer:read customer:write").json()
    wider = _refresh(suite, signed_in["refresh_token"], scope="customer:read monitoring:read")
    _assert_oauth_error(wider, 400, "invalid_scope")
    # The refused request did not spend the token.
    narrower = _refresh(suite, signed_in["refresh_token"], scope="customer:read")
    assert narrower.status_code == 200 and narrower.json()["scope"] == "customer:read"
    # The family keeps what the sign-in granted: the next refresh may ask for it all again.
    again = _refresh(suite, narrower.json()["refresh_token"])
    assert again.json()["scope"] == "customer:read customer:write"


def test_an_expired_refresh_token_is_refused(suite):
    username = _user(suite)
    signed_in = _sign_in(suite, username).json()
    with suite.database("gateway").session() as session:
        session.execute(update(RefreshToken).where(RefreshToken.username == username).values(
            expires_at=datetime.now(UTC) - timedelta(seconds=1)))
        session.commit()
    _assert_oauth_error(_refresh(suite, signed_in["refresh_token"]), 400, "invalid_grant")


def test_the_refresh_token_lifetime_is_a_setting(monkeypatch):
    monkeypatch.setenv("LOANCRM_GATEWAY_REFRESH_TOKEN_TTL_SECONDS", "3600")
    assert GatewaySettings().refresh_token_ttl_seconds == 3600
    assert GatewaySettings(_env_file=None).refresh_token_ttl_seconds == 3600


@pytest.mark.parametrize("change", ["disable", "password_change", "password_reset"])
def test_disabling_or_a_new_password_revokes_every_sign_in_family(suite, change):
    username = _user(suite)
    signed_in = _sign_in(suite, username).json()
    refreshed = _refresh(suite, signed_in["refresh_token"]).json()
    admin = suite.headers("admin")
    if change == "disable":
        assert suite.client.post(f"/auth/users/{username}/disable", headers=admin).status_code == 200
    elif change == "password_reset":
        assert suite.client.post(f"/auth/users/{username}/password-reset", headers=admin).status_code == 200
    else:
        assert suite.client.post("/auth/password", json={"username": username, "current_password": PASSWORD,
                                                         "new_password": "another long passphrase"}
                                 ).status_code == 204
    _assert_oauth_error(_refresh(suite, refreshed["refresh_token"]), 400, "invalid_grant")
    assert suite.client.get("/whoami", headers=_bearer(refreshed["access_token"])).status_code == 401
    until_refused(suite.direct["monitoring"], "/whoami", _bearer(refreshed["access_token"]),
                   suite.kernel.revocation_poll_seconds + 1)


# -- Client credentials ------------------------------------------------------------------------------------------

def test_an_admin_registers_a_partner_client_whose_secret_is_shown_once_and_stored_hashed(suite):
    client = _client(suite, scopes=["customer:read", "customer:write"])
    assert client["role"] == "partner" and client["scopes"] == ["customer:read", "customer:write"]
    assert len(client["client_secret"]) >= 40
    shown = suite.client.get(f"/clients/{client['client_id']}", headers=suite.headers("admin"))
    assert shown.status_code == 200 and "client_secret" not in shown.json()
    listed = suite.client.get("/clients", headers=suite.headers("admin"), params={"limit": 200}).json()
    assert client["client_id"] in {c["client_id"] for c in listed["items"]}
    with suite.database("gateway").session() as session:
        stored = session.exec(select(OAuthClient).where(OAuthClient.client_id == client["client_id"])).one()
    assert stored.secret_hash.startswith("$argon2") and client["client_secret"] not in stored.secret_hash
    again = suite.client.post("/clients", json={"client_id": client["client_id"], "name": "again"},
                              headers=suite.headers("admin"))
    assert again.status_code == 409
    for refused in ({"role": "admin"}, {"scopes": ["users:admin"]}, {"role": "loan_officer"}):
        answer = suite.client.post("/clients", json={"client_id": _name("bad").replace(".", "-"), "name": "x",
                                                     **refused}, headers=suite.headers("admin"))
        assert answer.status_code == 422, answer.text


@pytest.mark.parametrize("method", ["client_secret_basic", "client_secret_post"])
def test_a_partner_client_gets_a_token_of_its_own_without_a_refresh_token(suite, method):
    client = _client(suite, scopes=["customer:read", "customer:write", "scoring:read"])
    if method == "client_secret_basic":
        response = _client_token(suite, client)
    else:
        response = suite.client.post("/auth/token", data={"grant_type": "client_credentials", "client_id":
                                                          client["client_id"], "client_secret":
                                                          client["client_secret"]})
    assert response.status_code == 200, response.text
    assert {k: response.headers.get(k) for k in NO_STORE} == NO_STORE
    body = response.json()
    assert "refresh_token" not in body or body["refresh_token"] is None  # RFC 6749 §4.4.3
    assert body["scope"] == "customer:read customer:write scoring:read"
    claims = jwt.get_unverified_claims(body["access_token"])
    assert claims["sub"] == f"client:{client['client_id']}" and claims["client_id"] == client["client_id"]
    assert claims["roles"] == ["partner"] and claims["sid"]
    whoami = suite.direct["scoring"].get("/whoami", headers=_bearer(body["access_token"])).json()
    assert whoami["sub"] == f"client:{client['client_id']}" and whoami["roles"] == ["partner"]


def test_a_client_asking_for_more_than_its_scopes_gets_invalid_scope(suite):
    client = _client(suite, scopes=["customer:read"])
    _assert_oauth_error(_client_token(suite, client, scope="customer:read customer:write"), 400, "invalid_scope")
    narrowed = _client_token(suite, client, scope="customer:read")
    assert narrowed.status_code == 200 and narrowed.json()["scope"] == "customer:read"


def test_a_client_may_not_use_the_password_or_refresh_grants(suite):
    client = _client(suite)
    username = _user(suite)
    answer = suite.client.post("/auth/token", data={"grant_type": "password", "username": username,
                                                    "password": PASSWORD},
                               headers=_basic(client["client_id"], client["client_secret"]))
    _assert_oauth_error(answer, 400, "unauthorized_client")


def test_a_partner_client_sees_what_it_referred_and_nothing_of_another_partners(suite):
    client = _client(suite)
    token = _client_token(suite, client).json()["access_token"]
    partner_user = suite.headers(_name("partner.user"), ["partner"])
    mine = suite.client.post("/api/customer/customers", json=person(), headers={**_bearer(token), **key()})
    theirs = suite.client.post("/api/customer/customers", json=person(), headers={**partner_user, **key()})
    assert mine.status_code == theirs.status_code == 201, (mine.text, theirs.text)
    assert mine.json()["referred_by"] == f"client:{client['client_id']}"
    own = suite.client.get(f"/api/customer/customers/{mine.json()['id']}", headers=_bearer(token))
    other = suite.client.get(f"/api/customer/customers/{theirs.json()['id']}", headers=_bearer(token))
    assert own.status_code == 200 and other.status_code == 404
    assert suite.client.get(f"/api/customer/customers/{mine.json()['id']}",
                            headers=partner_user).status_code == 404


def test_rotating_a_secret_or_disabling_a_client_voids_the_old_secret_and_its_tokens(suite):
    client = _client(suite)
    token = _client_token(suite, client).json()["access_token"]
    admin = suite.headers("admin")
    rotated = suite.client.post(f"/clients/{client['client_id']}/secret", headers=admin)
    assert rotated.status_code == 200 and rotated.json()["client_secret"] != client["client_secret"]
    _assert_oauth_error(_client_token(suite, client), 401, "invalid_client")
    assert suite.client.get("/whoami", headers=_bearer(token)).status_code == 401
    until_refused(suite.direct["customer"], "/whoami", _bearer(token), suite.kernel.revocation_poll_seconds + 1)
    renewed = {**client, "client_secret": rotated.json()["client_secret"]}
    fresh = _client_token(suite, renewed).json()["access_token"]
    disabled = suite.client.post(f"/clients/{client['client_id']}/disable", headers=admin)
    assert disabled.status_code == 200 and disabled.json()["active"] is False
    _assert_oauth_error(_client_token(suite, renewed), 401, "invalid_client")
    assert suite.client.get("/whoami", headers=_bearer(fresh)).status_code == 401
    assert suite.client.post(f"/clients/{client['client_id']}/enable", headers=admin).json()["active"] is True
    assert _client_token(suite, renewed).status_code == 200


def test_each_client_has_its_own_rate_limit(suite):
    slow = _client(suite, rate_limit_per_minute=2)
    busy = _client(suite)
    slow_token = _client_token(suite, slow).json()["access_token"]
    busy_token = _client_token(suite, busy).json()["access_token"]
    statuses = [suite.client.get("/api/customer/whoami", headers=_bearer(slow_token)).status_code
                for _ in range(3)]
    assert statuses == [200, 200, 429]
    refused = suite.client.get("/api/customer/whoami", headers=_bearer(slow_token))
    assert refused.headers["ratelimit-limit"] == "2" and "client" in refused.json()["detail"]
    assert all(suite.client.get("/api/customer/whoami", headers=_bearer(busy_token)).status_code == 200
               for _ in range(3))


# -- Discovery ---------------------------------------------------------------------------------------------------

def test_discovery_names_the_token_endpoint_and_keys(suite):
    for path in ("/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"):
        response = suite.client.get(path)
        assert response.status_code == 200
        metadata = response.json()
        assert metadata["issuer"] == suite.kernel.jwt_issuer
        assert metadata["token_endpoint"] == "http://gateway/auth/token"
        assert metadata["jwks_uri"] == "http://gateway/.well-known/jwks.json"
        assert metadata["revocation_endpoint"] == "http://gateway/auth/revoke"
        assert set(metadata["grant_types_supported"]) == {"password", "refresh_token", "client_credentials"}
        assert {"client_secret_basic", "client_secret_post"} <= set(metadata["token_endpoint_auth_methods_supported"])
        assert "customer:read" in metadata["scopes_supported"]


def test_a_standard_oauth_client_discovers_the_gateway_and_gets_a_token_it_can_verify(suite):
    """authlib, configured from discovery alone: client credentials, then the token checked against the JWKS."""
    from authlib.integrations.httpx_client import AsyncOAuth2Client

    client = _client(suite, scopes=["customer:read", "scoring:read"])

    async def journey() -> tuple[dict, dict, dict]:
        transport = httpx.ASGITransport(app=suite.gateway)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as plain:
            metadata = (await plain.get("/.well-known/openid-configuration")).json()
            keys = (await plain.get(metadata["jwks_uri"])).json()
        for method in ("client_secret_basic", "client_secret_post"):
            async with AsyncOAuth2Client(client["client_id"], client["client_secret"], scope="customer:read",
                                         token_endpoint_auth_method=method, transport=transport) as oauth:
                token = await oauth.fetch_token(metadata["token_endpoint"], grant_type="client_credentials")
                whoami = (await oauth.get("http://gateway/api/customer/whoami")).json()
        return metadata, keys, {**token, "whoami": whoami}

    metadata, keys, token = asyncio.run(journey())
    assert token["token_type"].lower() == "bearer" and token["scope"] == "customer:read"
    assert token["whoami"]["sub"] == f"client:{client['client_id']}"
    claims = jwt.decode(token["access_token"], keys, algorithms=["RS256"], issuer=metadata["issuer"],
                        audience=suite.kernel.jwt_audience)
    assert claims["client_id"] == client["client_id"]


def test_discovery_uses_the_public_url_when_set(suite):
    app = create_app(suite.kernel, GatewaySettings(public_url="https://api.bank.example/"),
                     transports={name: httpx.ASGITransport(a) for name, a in suite.services.items()})
    with TestClient(app, base_url="http://internal") as client:
        metadata = client.get("/.well-known/openid-configuration").json()
    assert metadata["token_endpoint"] == "https://api.bank.example/auth/token"


# -- CORS --------------------------------------------------------------------------------------------------------

ALLOWED, UNLISTED = "https://app.bank.example", "https://evil.example"


def _preflight(client, origin: str) -> httpx.Response:  # noqa: ANN001
    return client.options("/api/customer/customers", headers={
        "Origin": origin, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type, idempotency-key"})


def test_cors_answers_listed_origins_only(suite):
    app = create_app(suite.kernel, GatewaySettings(cors_origins=[ALLOWED]),
                     transports={name: httpx.ASGITransport(a) for name, a in suite.services.items()})
    with TestClient(app, base_url="http://gateway") as client:
        preflight = _preflight(client, ALLOWED)
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] == ALLOWED
        assert "POST" in preflight.headers["access-control-allow-methods"]
        assert "idempotency-key" in preflight.headers["access-control-allow-headers"].lower()
        real = client.get("/api/customer/whoami", headers={"Origin": ALLOWED, **suite.headers("admin")})
        assert real.status_code == 200 and real.headers["access-control-allow-origin"] == ALLOWED
        refused = _preflight(client, UNLISTED)
        assert "access-control-allow-origin" not in refused.headers
        other = client.get("/api/customer/whoami", headers={"Origin": UNLISTED, **suite.headers("admin")})
        assert "access-control-allow-origin" not in other.headers


def test_cors_is_off_by_default(suite):
    assert GatewaySettings().cors_origins == []
    preflight = _preflight(suite.client, ALLOWED)
    assert "access-control-allow-origin" not in preflight.headers
    real = suite.client.get("/whoami", headers={"Origin": ALLOWED, **suite.headers("admin")})
    assert "access-control-allow-origin" not in real.headers


def test_cors_origins_come_from_a_comma_separated_setting(monkeypatch):
    monkeypatch.setenv("LOANCRM_GATEWAY_CORS_ORIGINS", f"{ALLOWED}, http://localhost:3000")
    assert GatewaySettings().cors_origins == [ALLOWED, "http://localhost:3000"]
    monkeypatch.setenv("LOANCRM_GATEWAY_CORS_ORIGINS", "*")
    with pytest.raises(ValueError):
        GatewaySettings()


# -- CLI ---------------------------------------------------------------------------------------------------------

def test_loancrm_client_create_prints_a_secret_that_gets_a_token(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOANCRM_")}
    env["LOANCRM_VAR_DIR"] = str(tmp_path)

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "loancrm", "client", *args], env=env, capture_output=True,
                              text=True, timeout=120)

    created = run("create", "acme-broker", "--name", "ACME Brokers", "--scope", "customer:read",
                  "--rate-limit", "600")
    assert created.returncode == 0, created.stderr
    secret = next(line.split(": ", 1)[1] for line in created.stdout.splitlines() if line.startswith("client_secret"))
    assert run("create", "acme-broker").returncode == 1
    assert "acme-broker\tactive\tpartner\tcustomer:read\t600" in run("list").stdout
    with TestClient(create_app(KernelSettings(var_dir=tmp_path), GatewaySettings())) as client:
        token = client.post("/auth/token", data={"grant_type": "client_credentials", "scope": "customer:read"},
                            headers=_basic("acme-broker", secret))
        assert token.status_code == 200, token.text
        assert run("disable", "acme-broker").returncode == 0
        refused = client.post("/auth/token", data={"grant_type": "client_credentials"},
                              headers=_basic("acme-broker", secret))
        assert refused.status_code == 401
