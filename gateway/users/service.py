"""Users of the gateway: who may sign in, with which roles and branch."""

from __future__ import annotations

import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlmodel import Session, select

from gateway.users.models import User, UserCreate
from shared.errors import Problem

_hasher = PasswordHasher()
# Verifying against a dummy hash when the user is unknown keeps the answer time the same either way,
# so a caller cannot learn which usernames exist.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


def get_by_username(session: Session, username: str) -> User | None:
    return session.exec(select(User).where(User.username == username)).first()


def list_users(session: Session) -> list[User]:
    return list(session.exec(select(User).order_by(User.username)).all())


def create_user(session: Session, command: UserCreate, created_by: str | None) -> User:
    if get_by_username(session, command.username) is not None:
        raise Problem(409, "Conflict", f"User {command.username!r} already exists.")
    user = User(
        username=command.username,
        password_hash=_hasher.hash(command.password),
        roles=[role.value for role in command.roles],
        branch=command.branch,
        created_by=created_by,
    )
    session.add(user)
    session.flush()
    return user


def authenticate(session: Session, username: str, password: str) -> User | None:
    user = get_by_username(session, username)
    try:
        _hasher.verify(user.password_hash if user else _DUMMY_HASH, password)
    except (VerificationError, InvalidHashError):
        return None
    if user is None or not user.active:
        return None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
        session.add(user)
        session.commit()
    return user


def ensure_admin(session: Session, username: str, password: str | None) -> str | None:
    """Create the first admin if missing; returns a generated one-time password when none was given."""
    if get_by_username(session, username) is not None:
        return None
    generated = None
    if not password:
        generated = password = secrets.token_urlsafe(18)
    session.add(User(username=username, password_hash=_hasher.hash(password), roles=["admin"], created_by="bootstrap"))
    session.commit()
    return generated
