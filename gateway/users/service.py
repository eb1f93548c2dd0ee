"""Users of the gateway: who may sign in, with which roles and branch, and the life of their access."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlmodel import Session, select

from gateway.sessions.service import revoke_user_sessions
from gateway.users.models import (
    AccessChange,
    PasswordChange,
    RevokedSession,
    User,
    UserCreate,
    UserStatus,
    new_session_id,
)
from gateway.users.passwords import password_problem
from shared.auth.roles import Role
from shared.errors import Problem, field_problem
from shared.pagination import Page, PageRequest, keyset
from shared.settings import SettingsError

_hasher = PasswordHasher()
# Verifying against a dummy hash when the user is unknown keeps the answer time the same either way,
# so a caller cannot learn which usernames exist.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))
_INVALID_GRANT = Problem(400, "Invalid credentials", "Username or password is wrong, or the user is disabled.",
                         extra={"error": "invalid_grant"})


def get_by_username(session: Session, username: str) -> User | None:
    return session.exec(select(User).where(User.username == username)).first()


def get_user(session: Session, username: str) -> User:
    user = get_by_username(session, username)
    if user is None:
        raise Problem(404, "Not found", f"No user {username!r}.")
    return user


def list_users(session: Session, paging: PageRequest, read: Callable[[list[User]], list[Any]],
               status: UserStatus | None = None) -> Page[Any]:
    """A page of users in username order (keyset: stable while users are added)."""
    query = select(User)
    if status is UserStatus.DISABLED:
        query = query.where(User.active.is_(False))  # type: ignore[attr-defined]
    elif status is not None:
        changing = status is UserStatus.PASSWORD_CHANGE_REQUIRED
        query = query.where(User.active.is_(True),  # type: ignore[attr-defined]
                            User.must_change_password.is_(changing))  # type: ignore[attr-defined]
    return keyset(session, query, paging, User.username, read=read)


def _check_access(roles: list[str], branch: str | None) -> None:
    # A loan officer's data is its branch's: without one, services would have to guess what it may see.
    if Role.LOAN_OFFICER in roles and not branch:
        raise field_problem("body.branch", "is required for a loan officer")


def _check_password(password: str, username: str, field: str) -> None:
    problem = password_problem(password, username)
    if problem:
        raise field_problem(field, problem)


def create_user(session: Session, command: UserCreate, created_by: str | None) -> User:
    roles = [role.value for role in command.roles]
    _check_access(roles, command.branch)
    _check_password(command.password, command.username, "body.password")
    if get_by_username(session, command.username) is not None:
        raise Problem(409, "Conflict", f"User {command.username!r} already exists.")
    user = User(
        username=command.username,
        password_hash=_hasher.hash(command.password),
        roles=roles,
        branch=command.branch,
        created_by=created_by,
    )
    session.add(user)
    session.flush()
    return user


def _revoke_tokens(session: Session, user: User, reason: str, token_lifetime_seconds: int) -> None:
    """Publish the user's current `sid` and those of its sign-ins (refresh token families) as revoked, and give the
    user a new one: every token issued so far dies, and no refresh token gets another."""
    now = datetime.now(UTC)
    session.add(RevokedSession(sid=user.session_id, username=user.username, reason=reason, revoked_at=now,
                               expires_at=now + timedelta(seconds=token_lifetime_seconds)))
    user.session_id = new_session_id()
    revoke_user_sessions(session, user.username, reason, token_lifetime_seconds)


def _touch(user: User, actor: str) -> None:
    user.updated_at = datetime.now(UTC)
    user.updated_by = actor


def disable_user(session: Session, username: str, *, actor: str, token_lifetime_seconds: int) -> User:
    user = get_user(session, username)
    if user.username == actor:
        raise Problem(409, "Conflict", "An admin cannot disable itself; ask another admin.")
    if user.active:
        user.active = False
        _revoke_tokens(session, user, "disabled", token_lifetime_seconds)
        _touch(user, actor)
        session.add(user)
        session.flush()
    return user


def enable_user(session: Session, username: str, *, actor: str) -> User:
    user = get_user(session, username)
    if not user.active:
        user.active = True
        _touch(user, actor)
        session.add(user)
        session.flush()
    return user


def change_access(session: Session, username: str, change: AccessChange, *, actor: str,
                  token_lifetime_seconds: int) -> User:
    user = get_user(session, username)
    roles = [role.value for role in change.roles] if change.roles is not None else list(user.roles)
    branch = change.branch if "branch" in change.model_fields_set else user.branch
    _check_access(roles, branch)
    if roles != sorted(user.roles) or branch != user.branch:
        user.roles, user.branch = roles, branch
        _revoke_tokens(session, user, "access_changed", token_lifetime_seconds)
        _touch(user, actor)
        session.add(user)
        session.flush()
    return user


def reset_password(session: Session, username: str, *, actor: str, token_lifetime_seconds: int) -> tuple[User, str]:
    """A generated one-time password, good only for choosing a new one; the user's tokens stop working."""
    user = get_user(session, username)
    one_time = secrets.token_urlsafe(18)
    user.password_hash = _hasher.hash(one_time)
    user.must_change_password = True
    _revoke_tokens(session, user, "password_reset", token_lifetime_seconds)
    _touch(user, actor)
    session.add(user)
    session.flush()
    return user, one_time


def _verified(session: Session, username: str, password: str) -> User | None:
    user = get_by_username(session, username)
    try:
        _hasher.verify(user.password_hash if user else _DUMMY_HASH, password)
    except (VerificationError, InvalidHashError):
        return None
    if user is None or not user.active:
        return None
    return user


def sign_in(session: Session, username: str, password: str) -> User:
    """The user a password flow may issue a token for; refuses a one-time password (it only changes itself)."""
    user = _verified(session, username, password)
    if user is None:
        raise _INVALID_GRANT
    if user.must_change_password:
        raise Problem(400, "Password change required",
                      "This password was reset; choose a new one at POST /auth/password before signing in.",
                      extra={"error": "invalid_grant", "password_change_required": True})
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
        session.add(user)
        session.commit()
    return user


def change_password(session: Session, command: PasswordChange, *, token_lifetime_seconds: int) -> User:
    user = _verified(session, command.username, command.current_password)
    if user is None:
        raise _INVALID_GRANT
    _check_password(command.new_password, user.username, "body.new_password")
    if command.new_password == command.current_password:
        raise field_problem("body.new_password", "must differ from the current password")
    user.password_hash = _hasher.hash(command.new_password)
    user.must_change_password = False
    _revoke_tokens(session, user, "password_changed", token_lifetime_seconds)
    _touch(user, user.username)
    session.add(user)
    session.flush()
    return user


def revoked_sessions(session: Session) -> list[RevokedSession]:
    """Revocations that still matter: a revoked `sid` whose tokens may not all have expired yet."""
    now = datetime.now(UTC)
    return list(session.exec(select(RevokedSession).where(RevokedSession.expires_at > now)
                             .order_by(RevokedSession.revoked_at)).all())


def ensure_admin(session: Session, username: str, password: str | None) -> str | None:
    """Create the first admin if missing; returns a generated one-time password when none was given."""
    if get_by_username(session, username) is not None:
        return None
    generated = None
    if password:
        problem = password_problem(password, username)
        if problem:
            raise SettingsError(f"LOANCRM_ADMIN_PASSWORD: {problem}")
    else:
        generated = password = secrets.token_urlsafe(18)
    session.add(User(username=username, password_hash=_hasher.hash(password), roles=["admin"], created_by="bootstrap"))
    session.commit()
    return generated
