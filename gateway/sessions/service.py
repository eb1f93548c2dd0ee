"""Refresh tokens (RFC 6749 §6) with rotation and reuse detection. No web framework here.

A password sign-in starts a family: one refresh token, and a `sid` of its own that every access token of the
family carries. Each refresh spends its token and hands out the next one. A spent token presented again means
two parties hold the family (a stolen copy, or the rightful app after the thief): the whole family is revoked,
refresh tokens and the access tokens behind its `sid`, and its user signs in again.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import or_, update
from sqlmodel import Session, select

from gateway.sessions.models import RefreshToken
from gateway.users.models import RevokedSession, new_session_id


class RefreshRefused(Exception):
    """The refresh token cannot be used: unknown, expired or revoked."""


class RefreshReused(RefreshRefused):
    """A spent refresh token came back; its family is revoked (the caller commits that before answering)."""


@dataclass(frozen=True)
class Issued:
    refresh_token: str  # in clear, for the answer only
    family: str
    username: str
    scope: str


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _issue(session: Session, family: str, username: str, scope: str, ttl_seconds: int) -> Issued:
    value = secrets.token_urlsafe(32)
    now = datetime.now(UTC)
    session.add(RefreshToken(token_hash=_digest(value), family=family, username=username, scope=scope,
                             issued_at=now, expires_at=now + timedelta(seconds=ttl_seconds)))
    return Issued(refresh_token=value, family=family, username=username, scope=scope)


def start_session(session: Session, username: str, scope: str, *, ttl_seconds: int) -> Issued:
    """A new family for a sign-in, with its first refresh token."""
    return _issue(session, new_session_id(), username, scope, ttl_seconds)


def rotate_refresh_token(session: Session, value: str, *, ttl_seconds: int, token_lifetime_seconds: int) -> Issued:
    """Spend `value` and issue the next token of its family. Raises RefreshReused (the family revoked, to be
    committed) for a spent token, RefreshRefused for anything else that cannot be used."""
    token = session.exec(select(RefreshToken).where(RefreshToken.token_hash == _digest(value))).first()
    if token is None or token.revoked_at is not None:
        raise RefreshRefused("unknown or revoked")
    now = datetime.now(UTC)
    if token.used_at is not None:
        revoke_family(session, token.family, token.username, "refresh_reused", token_lifetime_seconds)
        raise RefreshReused("already used")
    if _utc(token.expires_at) <= now:
        raise RefreshRefused("expired")
    # Spent only if nobody spent it meanwhile: of two concurrent refreshes with one token, one is a reuse.
    spent = session.execute(update(RefreshToken).where(RefreshToken.id == token.id,
                                                       RefreshToken.used_at.is_(None))  # type: ignore[union-attr]
                            .values(used_at=now))
    if spent.rowcount != 1:  # type: ignore[attr-defined]
        revoke_family(session, token.family, token.username, "refresh_reused", token_lifetime_seconds)
        raise RefreshReused("used concurrently")
    return _issue(session, token.family, token.username, token.scope, ttl_seconds)


def sign_out(session: Session, value: str, *, token_lifetime_seconds: int) -> None:
    """Revoke the family of this refresh token (RFC 7009); an unknown or already revoked one is no error."""
    token = session.exec(select(RefreshToken).where(RefreshToken.token_hash == _digest(value))).first()
    if token is not None and token.revoked_at is None:
        revoke_family(session, token.family, token.username, "signed_out", token_lifetime_seconds)


def revoke_family(session: Session, family: str, username: str, reason: str, token_lifetime_seconds: int) -> None:
    """Every refresh token of the family void, and its `sid` published as revoked."""
    now = datetime.now(UTC)
    session.execute(update(RefreshToken).where(RefreshToken.family == family,
                                               RefreshToken.revoked_at.is_(None))  # type: ignore[union-attr]
                    .values(revoked_at=now))
    if session.get(RevokedSession, family) is None:
        session.add(RevokedSession(sid=family, username=username, reason=reason, revoked_at=now,
                                   expires_at=now + timedelta(seconds=token_lifetime_seconds)))


def revoke_user_sessions(session: Session, username: str, reason: str, token_lifetime_seconds: int) -> None:
    """Revoke each family of the user that may still refresh, or whose access tokens may not have expired."""
    now = datetime.now(UTC)
    recent = now - timedelta(seconds=token_lifetime_seconds)
    families = session.exec(select(RefreshToken.family).where(
        RefreshToken.username == username, RefreshToken.revoked_at.is_(None),  # type: ignore[union-attr]
        or_(RefreshToken.expires_at > now, RefreshToken.issued_at > recent)).distinct()).all()
    for family in families:
        revoke_family(session, family, username, reason, token_lifetime_seconds)
