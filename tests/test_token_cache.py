"""The verifier remembers tokens it has checked, but never past their expiry or their signing key."""

import asyncio
import time

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jose import jwk, jwt

from shared.auth.tokens import InvalidToken, TokenVerifier

ISSUER, AUDIENCE = "https://issuer.test", "loancrm"


def _key(kid: str) -> tuple[str, dict]:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    public = jwk.construct(private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode(), "RS256").to_dict()
    return pem, {**public, "kid": kid, "alg": "RS256", "use": "sig"}


class KeySet:
    def __init__(self, *keys: dict) -> None:
        self.keys = list(keys)
        self.fetches = 0

    async def __call__(self) -> dict:
        self.fetches += 1
        return {"keys": self.keys}


def _token(pem: str, kid: str, exp: int) -> str:
    claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": "olga", "iat": min(exp, int(time.time())), "exp": exp, "jti": "j1",
              "roles": ["loan_officer"]}
    return jwt.encode(claims, pem, algorithm="RS256", headers={"kid": kid, "typ": "at+jwt"})


def _verifier(keys: KeySet, clock: list[float]) -> TokenVerifier:
    return TokenVerifier(issuer=ISSUER, audience=AUDIENCE, jwks_source=keys, cache_seconds=60,
                         clock=lambda: clock[0])


def test_a_remembered_token_is_refused_once_it_expires():
    pem, public = _key("k1")
    expires = int(time.time()) + 1
    token = _token(pem, "k1", expires)
    verifier = _verifier(KeySet(public), [0.0])
    assert asyncio.run(verifier.verify(token)).sub == "olga"
    assert asyncio.run(verifier.verify(token)).sub == "olga"  # from memory
    time.sleep(max(0.0, expires + 1 - time.time()) + 0.05)  # jose compares whole seconds
    with pytest.raises(InvalidToken, match="expired"):
        asyncio.run(verifier.verify(token))


def test_a_withdrawn_signing_key_takes_its_remembered_tokens_with_it():
    old_pem, old_public = _key("old")
    _, new_public = _key("new")
    now = time.time()
    token = _token(old_pem, "old", int(now) + 600)
    keys, clock = KeySet(old_public), [0.0]
    verifier = _verifier(keys, clock)
    assert asyncio.run(verifier.verify(token)).sub == "olga"
    keys.keys = [new_public]  # the gateway rotated and withdrew the old key
    clock[0] = 61.0  # the key set is due for a refetch
    with pytest.raises(InvalidToken, match="unknown key"):
        asyncio.run(verifier.verify(token))
    assert keys.fetches == 2


def test_a_different_token_string_is_verified_afresh():
    pem, public = _key("k1")
    now = time.time()
    token = _token(pem, "k1", int(now) + 600)
    verifier = _verifier(KeySet(public), [0.0])
    asyncio.run(verifier.verify(token))
    head, payload, signature = token.split(".")
    forged = f"{head}.{payload}.{signature[:-4]}AAAA"
    with pytest.raises(InvalidToken, match="signature"):
        asyncio.run(verifier.verify(forged))


def test_a_role_gate_on_a_route_without_the_services_token_check_still_verifies_the_token():
    """require_roles reuses the principal the business routers' token check found, and checks the token itself
    wherever that check did not run first."""
    from fastapi import Depends, FastAPI
    from fastapi.testclient import TestClient

    from shared.auth.dependencies import require_roles
    from shared.errors import install_problem_handlers

    pem, public = _key("k1")
    app = FastAPI()
    install_problem_handlers(app)
    app.state.verifier = _verifier(KeySet(public), [0.0])

    @app.get("/officers-only", dependencies=[Depends(require_roles("loan_officer"))])
    async def officers_only() -> dict:
        return {"ok": True}

    @app.get("/admins-only", dependencies=[Depends(require_roles("admin"))])
    async def admins_only() -> dict:
        return {"ok": True}

    token = _token(pem, "k1", int(time.time()) + 300)
    with TestClient(app) as client:
        assert client.get("/officers-only").status_code == 401
        assert client.get("/officers-only", headers={"Authorization": "Bearer not-a-token"}).status_code == 401
        assert client.get("/officers-only", headers={"Authorization": f"Bearer {token}"}).json() == {"ok": True}
        refused = client.get("/admins-only", headers={"Authorization": f"Bearer {token}"})
        assert refused.status_code == 403 and refused.headers["content-type"] == "application/problem+json"


class Revocations:
    def __init__(self) -> None:
        self.revoked: list[dict] = []
        self.fetches = 0
        self.down = False

    async def __call__(self) -> dict:
        from shared.auth.tokens import RevocationsUnavailable

        self.fetches += 1
        if self.down:
            raise RevocationsUnavailable("gateway unreachable")
        return {"revoked": list(self.revoked)}


def _session_token(pem: str, kid: str, sid: str = "s1") -> str:
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": "olga", "iat": now, "exp": now + 600, "jti": "j1",
              "roles": ["loan_officer"], "sid": sid}
    return jwt.encode(claims, pem, algorithm="RS256", headers={"kid": kid, "typ": "at+jwt"})


def _revoking_verifier(public: dict, feed: Revocations, clock: list[float]) -> TokenVerifier:
    # The default poll (10 s), on a clock the test moves.
    return TokenVerifier(issuer=ISSUER, audience=AUDIENCE, jwks_source=KeySet(public), cache_seconds=300,
                         clock=lambda: clock[0], revocation_source=feed)


def test_a_revocation_reaches_a_remembered_token_by_the_next_poll():
    pem, public = _key("k1")
    token = _session_token(pem, "k1")
    feed, clock = Revocations(), [0.0]
    verifier = _revoking_verifier(public, feed, clock)
    assert asyncio.run(verifier.verify(token)).sid == "s1"
    feed.revoked = [{"sid": "s1", "until": time.time() + 600}]
    clock[0] = 5.0  # within the poll: the list this process has is still used
    assert asyncio.run(verifier.verify(token)).sub == "olga"
    clock[0] = 10.0  # a poll later: refused, though the token itself is remembered as verified
    with pytest.raises(InvalidToken, match="revoked"):
        asyncio.run(verifier.verify(token))
    assert feed.fetches == 2
    other = _session_token(pem, "k1", sid="s2")
    assert asyncio.run(verifier.verify(other)).sid == "s2"


def test_without_a_fresh_revocation_list_nothing_is_accepted_after_three_polls():
    """The bound holds while the gateway is unreachable: at most 30 s with the default 10 s poll."""
    from shared.auth.tokens import RevocationsUnavailable

    pem, public = _key("k1")
    token = _session_token(pem, "k1")
    feed, clock = Revocations(), [0.0]
    verifier = _revoking_verifier(public, feed, clock)
    asyncio.run(verifier.verify(token))
    feed.down = True
    clock[0] = 29.0  # polls fail, but the list is recent enough
    assert asyncio.run(verifier.verify(token)).sub == "olga"
    clock[0] = 30.0
    with pytest.raises(RevocationsUnavailable):
        asyncio.run(verifier.verify(token))
    fetches = feed.fetches
    with pytest.raises(RevocationsUnavailable):  # no new fetch within a second of a failed one
        asyncio.run(verifier.verify(token))
    assert feed.fetches == fetches
    feed.down = False
    clock[0] = 31.0
    assert asyncio.run(verifier.verify(token)).sub == "olga"


def test_a_token_over_the_size_limit_is_refused_before_it_is_decoded():
    pem, public = _key("k1")
    verifier = _verifier(KeySet(public), [0.0])
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": "olga", "iat": now, "exp": now + 300, "jti": "j1",
              "roles": ["loan_officer"], "padding": "x" * 60_000}
    big = jwt.encode(claims, pem, algorithm="RS256", headers={"kid": "k1", "typ": "at+jwt"})
    with pytest.raises(InvalidToken, match="too large"):
        asyncio.run(verifier.verify(big))


def test_a_stale_revocation_list_is_a_503_that_says_so():
    """A service that cannot tell whether a token was revoked says that, not that keys are missing."""
    from types import SimpleNamespace

    from starlette.requests import Request

    from shared.auth.dependencies import current_principal
    from shared.auth.tokens import RevocationsUnavailable
    from shared.errors import Problem

    class StaleVerifier:
        async def verify(self, token: str):  # noqa: ANN202
            raise RevocationsUnavailable("list too old")

    app = SimpleNamespace(state=SimpleNamespace(verifier=StaleVerifier()))
    request = Request({"type": "http", "headers": [(b"authorization", b"Bearer t")], "app": app, "state": {}})
    with pytest.raises(Problem) as refused:
        asyncio.run(current_principal(request))
    assert refused.value.status == 503 and "revocation list" in refused.value.detail
    assert refused.value.headers["Retry-After"] == "5"
