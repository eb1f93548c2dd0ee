"""OAuth clients: partner systems that sign in with a client id and secret (RFC 6749 §4.4). No web framework here.

A secret is generated, shown once and stored as an argon2 hash, as passwords are. A client's tokens act as its
role (partner unless the admin says otherwise) and carry `sub` "client:<client_id>": the identity the scope rule
gives a partner, so a partner client sees what it referred or submitted, and nothing of another partner's.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from gateway.clients.models import ClientCreate, OAuthClient
from gateway.users.models import RevokedSession, new_session_id
from shared.auth.roles import ROLE_SCOPES, Role
from shared.errors import Problem, field_problem
from shared.pagination import Page, PageRequest, keyset

_hasher = PasswordHasher()
# Verified against when the client id is unknown, so the answer takes as long either way.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


def _new_secret() -> str:
    return secrets.token_urlsafe(32)


def find_client(session: Session, client_id: str) -> OAuthClient | None:
    return session.exec(select(OAuthClient).where(OAuthClient.client_id == client_id)).first()


def get_client(session: Session, client_id: str) -> OAuthClient:
    client = find_client(session, client_id)
    if client is None:
        raise Problem(404, "Not found", f"No client {client_id!r}.")
    return client


def list_clients(session: Session, paging: PageRequest, read: Callable[[list[OAuthClient]], list[Any]]) -> Page[Any]:
    """A page of clients in client-id order."""
    return keyset(session, select(OAuthClient), paging, OAuthClient.client_id, read=read)


def create_client(session: Session, command: ClientCreate, created_by: str | None) -> tuple[OAuthClient, str]:
    """The new client and its secret, in clear this once."""
    if command.role is Role.ADMIN:
        # Managing users and clients stays with people who sign in themselves.
        raise field_problem("body.role", "a client cannot be an admin")
    if command.role in (Role.SYSTEM, Role.BATCH):
        # The suite's own identities: the gateway mints its relay's system tokens itself (every branch's events),
        # and close of business has its one provisioned client (`loancrm client provision-batch`).
        raise field_problem("body.role", f"{command.role.value} is the suite's own identity, not a client's")
    if command.role is Role.LOAN_OFFICER and not command.branch:
        raise field_problem("body.branch", "is required for a loan officer")
    allowed = ROLE_SCOPES[command.role]
    scopes = command.scopes if command.scopes is not None else sorted(allowed)
    beyond = [s for s in scopes if s not in allowed]
    if beyond or not scopes:
        raise field_problem("body.scopes", f"must be among the {command.role.value} role's scopes: "
                                           f"{' '.join(sorted(allowed))}")
    if session.exec(select(OAuthClient).where(OAuthClient.client_id == command.client_id)).first() is not None:
        raise Problem(409, "Conflict", f"Client {command.client_id!r} already exists.")
    secret = _new_secret()
    client = OAuthClient(client_id=command.client_id, name=command.name, secret_hash=_hasher.hash(secret),
                         role=command.role.value, branch=command.branch, scopes=scopes,
                         rate_limit_per_minute=command.rate_limit_per_minute, created_by=created_by)
    session.add(client)
    try:
        session.flush()
    except IntegrityError:  # the same client id registered meanwhile
        raise Problem(409, "Conflict", f"Client {command.client_id!r} already exists.") from None
    return client, secret


def _revoke_tokens(session: Session, client: OAuthClient, reason: str, token_lifetime_seconds: int) -> None:
    now = datetime.now(UTC)
    session.add(RevokedSession(sid=client.session_id, username=client.subject, reason=reason, revoked_at=now,
                               expires_at=now + timedelta(seconds=token_lifetime_seconds)))
    client.session_id = new_session_id()


def _touch(client: OAuthClient, actor: str) -> None:
    client.updated_at = datetime.now(UTC)
    client.updated_by = actor


def rotate_client_secret(session: Session, client_id: str, *, actor: str,
                         token_lifetime_seconds: int) -> tuple[OAuthClient, str]:
    """A new secret, in clear this once; the old one stops working, and so does every token it got."""
    client = get_client(session, client_id)
    secret = _new_secret()
    client.secret_hash = _hasher.hash(secret)
    client.secret_rotated_at = datetime.now(UTC)
    _revoke_tokens(session, client, "secret_rotated", token_lifetime_seconds)
    _touch(client, actor)
    session.add(client)
    session.flush()
    return client, secret


def disable_client(session: Session, client_id: str, *, actor: str, token_lifetime_seconds: int) -> OAuthClient:
    client = get_client(session, client_id)
    if client.active:
        client.active = False
        _revoke_tokens(session, client, "disabled", token_lifetime_seconds)
        _touch(client, actor)
        session.add(client)
        session.flush()
    return client


def enable_client(session: Session, client_id: str, *, actor: str) -> OAuthClient:
    client = get_client(session, client_id)
    if not client.active:
        client.active = True
        _touch(client, actor)
        session.add(client)
        session.flush()
    return client


def authenticate_client(session: Session, client_id: str, secret: str) -> OAuthClient | None:
    """The active client with this secret, else None (unknown, wrong secret and disabled look the same)."""
    client = find_client(session, client_id)
    try:
        _hasher.verify(client.secret_hash if client else _DUMMY_HASH, secret)
    except (VerificationError, InvalidHashError):
        return None
    return client if client is not None and client.active else None


def ensure_batch_client(session: Session, client_id: str, secret: str) -> bool:
    """The suite's own batch identity (role batch, every scope of it) with `secret`: created on first start, its
    secret set again when the configured one changed (its old tokens revoked with the old session id). Returns
    whether anything changed."""
    client = session.exec(select(OAuthClient).where(OAuthClient.client_id == client_id)).first()
    if client is None:
        session.add(OAuthClient(client_id=client_id, name="LoanCRM close of business", role=Role.BATCH.value,
                                secret_hash=_hasher.hash(secret), scopes=sorted(ROLE_SCOPES[Role.BATCH]),
                                created_by="loancrm up"))
        return True
    try:
        _hasher.verify(client.secret_hash, secret)
        return False
    except (VerificationError, InvalidHashError):
        client.secret_hash, client.secret_rotated_at = _hasher.hash(secret), datetime.now(UTC)
        client.session_id = new_session_id()
        _touch(client, "loancrm up")
        session.add(client)
        return True
