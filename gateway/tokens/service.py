"""Signing keys and the access tokens the gateway issues with them."""

from __future__ import annotations

import base64
import time
import uuid

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jose import jwt
from sqlmodel import Session, select

from gateway.tokens.models import Jwk, JwkSet, SigningKey
from gateway.users.models import User
from shared.auth.roles import scopes_for
from shared.errors import Problem


def _b64url_uint(value: int) -> str:
    raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def create_signing_key(session: Session, passphrase: str | None) -> SigningKey:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    encryption = (
        serialization.BestAvailableEncryption(passphrase.encode()) if passphrase else serialization.NoEncryption()
    )
    key = SigningKey(
        kid=uuid.uuid4().hex[:16],
        private_pem=private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
        ).decode(),
        public_pem=private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode(),
        encrypted=bool(passphrase),
    )
    session.add(key)
    session.commit()
    return key


def active_key(session: Session) -> SigningKey | None:
    return session.exec(
        select(SigningKey).where(SigningKey.retired_at.is_(None)).order_by(SigningKey.created_at.desc())  # type: ignore[union-attr]
    ).first()


def ensure_signing_key(session: Session, passphrase: str | None) -> SigningKey:
    return active_key(session) or create_signing_key(session, passphrase)


def _private_pem(key: SigningKey, passphrase: str | None) -> bytes:
    if not key.encrypted:
        return key.private_pem.encode()
    if not passphrase:
        raise Problem(503, "Service unavailable", "Signing key is encrypted; LOANCRM_GATEWAY_KEY_PASSPHRASE is unset.")
    private = serialization.load_pem_private_key(key.private_pem.encode(), passphrase.encode())
    return private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def jwks(session: Session) -> JwkSet:
    # Retired keys stay published so tokens they signed remain verifiable until they expire.
    keys = session.exec(select(SigningKey)).all()
    published = []
    for key in keys:
        numbers = serialization.load_pem_public_key(key.public_pem.encode()).public_numbers()  # type: ignore[union-attr]
        published.append(
            Jwk(kty="RSA", kid=key.kid, alg=key.algorithm, use="sig", n=_b64url_uint(numbers.n),
                e=_b64url_uint(numbers.e))
        )
    return JwkSet(keys=published)


def issue_access_token(
    session: Session,
    user: User,
    *,
    requested_scopes: list[str],
    issuer: str,
    audience: str,
    ttl_seconds: int,
    passphrase: str | None,
) -> tuple[str, str]:
    allowed = scopes_for(user.roles)
    unknown = [s for s in requested_scopes if s not in allowed]
    if unknown:
        raise Problem(400, "Invalid scope", f"Scopes not allowed for this user: {' '.join(unknown)}.",
                      extra={"error": "invalid_scope"})
    scope = " ".join(sorted(requested_scopes or allowed))
    key = ensure_signing_key(session, passphrase)
    now = int(time.time())
    claims = {
        "iss": issuer,
        "aud": audience,
        "sub": user.username,
        "iat": now,
        "nbf": now,
        "exp": now + ttl_seconds,
        "jti": uuid.uuid4().hex,
        "roles": list(user.roles),
        "scope": scope,
        "branch": user.branch,
    }
    token = jwt.encode(claims, _private_pem(key, passphrase), algorithm=key.algorithm, headers={"kid": key.kid})
    return token, scope
