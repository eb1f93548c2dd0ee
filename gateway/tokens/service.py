"""Signing keys and the access tokens the gateway issues with them.

Private keys are stored encrypted (PKCS#8, the passphrase from LOANCRM_GATEWAY_KEY_PASSPHRASE or generated into
a 0600 file beside the other keys), so a copy of the database alone cannot sign tokens. A rotation publishes the
new key at once and signs with it only after a delay longer than the services' JWKS cache; the old key stays
published until the last token it signed has expired.
"""

from __future__ import annotations

import base64
import secrets
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jose import jwk, jwt
from jose.backends.base import Key
from sqlmodel import Session, select

from gateway.tokens.models import Jwk, JwkSet, KeyRead, SigningKey
from gateway.users.models import User
from shared.errors import Problem
from shared.files import generated_once
from shared.settings import KernelSettings

PASSPHRASE_FILE = "gateway-key-passphrase"
ACCESS_TOKEN_TYPE = "at+jwt"  # RFC 9068


def resolve_passphrase(kernel: KernelSettings, configured: str | None) -> str:
    """The operator's passphrase, else one generated once into var_dir (0600) and reused."""
    if configured:
        return configured
    return generated_once(kernel.var_dir / PASSPHRASE_FILE, lambda: secrets.token_urlsafe(32),
                          allowed=kernel.generate_secrets, variable="LOANCRM_GATEWAY_KEY_PASSPHRASE")


def _b64url_uint(value: int) -> str:
    raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _now() -> datetime:
    return datetime.now(UTC)


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _starts(key: SigningKey) -> datetime:
    return _utc(key.use_after or key.created_at)


def _encrypted_pem(private: rsa.RSAPrivateKey, passphrase: str) -> str:
    return private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                 serialization.BestAvailableEncryption(passphrase.encode())).decode()


def create_signing_key(session: Session, passphrase: str, use_after: datetime | None = None) -> SigningKey:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    key = SigningKey(
        kid=uuid.uuid4().hex[:16],
        private_pem=_encrypted_pem(private, passphrase),
        public_pem=private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode(),
        encrypted=True,
        use_after=use_after or _now(),
    )
    session.add(key)
    session.commit()
    return key


def _all_keys(session: Session) -> list[SigningKey]:
    return sorted(session.exec(select(SigningKey)).all(), key=_starts)


def active_key(session: Session) -> SigningKey | None:
    """The key that signs now: the newest whose time to sign has come."""
    now = _now()
    started = [key for key in _all_keys(session) if _starts(key) <= now]
    return started[-1] if started else None


def ensure_signing_key(session: Session, passphrase: str) -> SigningKey:
    return active_key(session) or create_signing_key(session, passphrase)


def rotate_signing_key(session: Session, passphrase: str, *, delay_seconds: int) -> SigningKey:
    """A new key, published now and signing after `delay_seconds`; the key it replaces retires then."""
    use_after = _now() + timedelta(seconds=delay_seconds)
    for key in _all_keys(session):
        if key.retired_at is None:
            key.retired_at = use_after
            session.add(key)
    return create_signing_key(session, passphrase, use_after=use_after)


def _published(key: SigningKey, now: datetime, lifetime_seconds: int) -> bool:
    return key.retired_at is None or _utc(key.retired_at) + timedelta(seconds=lifetime_seconds) > now


def key_states(session: Session, lifetime_seconds: int) -> list[KeyRead]:
    now, signer = _now(), active_key(session)
    states = []
    for key in _all_keys(session):
        if signer is not None and key.kid == signer.kid:
            state = "signing"
        elif _starts(key) > now:
            state = "upcoming"
        else:
            state = "retired" if _published(key, now, lifetime_seconds) else "withdrawn"
        states.append(KeyRead(kid=key.kid, state=state, created_at=key.created_at, use_after=key.use_after,
                              retired_at=key.retired_at))
    return states


def jwks(session: Session, lifetime_seconds: int) -> JwkSet:
    """Upcoming, signing and recently retired keys: a key drops out once no token it signed can still be valid."""
    now = _now()
    published = []
    for key in _all_keys(session):
        if not _published(key, now, lifetime_seconds):
            continue
        numbers = serialization.load_pem_public_key(key.public_pem.encode()).public_numbers()  # type: ignore[union-attr]
        published.append(
            Jwk(kty="RSA", kid=key.kid, alg=key.algorithm, use="sig", n=_b64url_uint(numbers.n),
                e=_b64url_uint(numbers.e))
        )
    return JwkSet(keys=published)


class KeyRing:
    """Decrypts a signing key once per process and keeps it in memory only."""

    def __init__(self, passphrase: str) -> None:
        self.passphrase = passphrase
        self._keys: dict[str, Key] = {}

    def signer(self, session: Session, key: SigningKey) -> Key:
        cached = self._keys.get(key.kid)
        if cached is not None:
            return cached
        if not key.encrypted:
            # A key an older version stored in clear: encrypted in place the first time it is used.
            private = serialization.load_pem_private_key(key.private_pem.encode(), None)
            key.private_pem, key.encrypted = _encrypted_pem(private, self.passphrase), True  # type: ignore[arg-type]
            session.add(key)
            session.commit()
        try:
            private = serialization.load_pem_private_key(key.private_pem.encode(), self.passphrase.encode())
        except (ValueError, TypeError):
            raise Problem(503, "Service unavailable",
                          "The signing key cannot be decrypted: LOANCRM_GATEWAY_KEY_PASSPHRASE is unset or not the "
                          "passphrase it was stored with.") from None
        pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
        self._keys[key.kid] = jwk.construct(pem.decode(), key.algorithm)
        return self._keys[key.kid]


@dataclass(frozen=True)
class Subject:
    """Who a token is issued to: a user signing in, or an OAuth client for itself."""

    sub: str
    roles: tuple[str, ...]
    branch: str | None
    sid: str
    claims: dict[str, Any] = field(default_factory=dict)  # further claims, e.g. an OAuth client's `client_id`


def user_subject(user: User, sid: str) -> Subject:
    return Subject(sub=user.username, roles=tuple(user.roles), branch=user.branch, sid=sid)


def granted_scope(requested: list[str], allowed: frozenset[str]) -> str:
    """The scope to grant: what was asked for when all of it is allowed, everything allowed when nothing was."""
    unknown = [s for s in requested if s not in allowed]
    if unknown:
        raise Problem(400, "Invalid scope", f"Scopes not allowed here: {' '.join(unknown)}.",
                      extra={"error": "invalid_scope", "error_description": f"not allowed: {' '.join(unknown)}"})
    return " ".join(sorted(set(requested) or allowed))


def issue_access_token(
    session: Session,
    subject: Subject,
    *,
    scope: str,
    issuer: str,
    audience: str,
    ttl_seconds: int,
    keyring: KeyRing,
) -> str:
    key = ensure_signing_key(session, keyring.passphrase)
    now = int(time.time())
    claims = {
        "iss": issuer,
        "aud": audience,
        "sub": subject.sub,
        "iat": now,
        "nbf": now,
        "exp": now + ttl_seconds,
        "jti": uuid.uuid4().hex,
        "sid": subject.sid,
        "roles": list(subject.roles),
        "scope": scope,
        "branch": subject.branch,
        **subject.claims,
    }
    return jwt.encode(claims, keyring.signer(session, key), algorithm=key.algorithm,
                      headers={"kid": key.kid, "typ": ACCESS_TOKEN_TYPE})
