import secrets
from datetime import UTC, datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, field_validator
from pydantic import Field as PydanticField
from sqlalchemy import JSON, Column
from sqlmodel import Field

from gateway.db import GatewayTable
from shared.audit import RESERVED_ACTORS
from shared.auth.roles import Role

_BRANCH = r"^[A-Za-z0-9_-]+$"


def new_session_id() -> str:
    return secrets.token_hex(16)


class User(GatewayTable, table=True):
    __tablename__ = "users"

    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(max_length=64, unique=True, index=True)
    password_hash: str = Field(max_length=255)
    roles: list[str] = Field(sa_column=Column(JSON, nullable=False))
    branch: str | None = Field(default=None, max_length=32)
    active: bool = True
    # Set by a password reset: the one-time password then only serves to choose a new one.
    must_change_password: bool = False
    # Carried as `sid` in every token; replaced (and the old one published as revoked) whenever what the
    # user's tokens say stops being true: disabled, roles or branch changed, password reset or changed.
    session_id: str = Field(default_factory=new_session_id, max_length=32)
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    created_by: str | None = Field(default=None, max_length=64)
    updated_at: datetime | None = None
    updated_by: str | None = Field(default=None, max_length=64)

    @property
    def status(self) -> "UserStatus":
        if not self.active:
            return UserStatus.DISABLED
        return UserStatus.PASSWORD_CHANGE_REQUIRED if self.must_change_password else UserStatus.ACTIVE


class RevokedSession(GatewayTable, table=True):
    """A `sid` no token may carry any more; kept until the last token that could carry it has expired."""

    __tablename__ = "revoked_sessions"

    sid: str = Field(primary_key=True, max_length=32)
    username: str = Field(max_length=64)
    reason: str = Field(max_length=32)
    revoked_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    expires_at: datetime = Field(index=True)


class UserStatus(StrEnum):
    ACTIVE = "active"
    DISABLED = "disabled"
    PASSWORD_CHANGE_REQUIRED = "password_change_required"


class UserCreate(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"username": "li.wei", "password": "a long passphrase", "roles": ["loan_officer"], "branch": "BJ001"}]})

    username: str = PydanticField(min_length=3, max_length=64, pattern=r"^[a-z0-9][a-z0-9._-]*$")
    password: str = PydanticField(min_length=12, max_length=256)
    roles: list[Role] = PydanticField(min_length=1)
    branch: str | None = PydanticField(default=None, max_length=32, pattern=_BRANCH,
                                       description="Required for a loan officer.")

    @field_validator("username")
    @classmethod
    def _not_the_suites_own(cls, username: str) -> str:
        if username in RESERVED_ACTORS:
            raise ValueError(f"{username!r} is the name the suite's own jobs act under in the audit trail")
        return username

    @field_validator("roles")
    @classmethod
    def _distinct(cls, roles: list[Role]) -> list[Role]:
        return sorted(set(roles))


class AccessChange(BaseModel):
    """New roles and/or branch; a field left out keeps its value, `branch: null` removes the branch."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"roles": ["loan_officer"], "branch": "SH002"}]})

    roles: list[Role] | None = PydanticField(default=None, min_length=1)
    branch: str | None = PydanticField(default=None, max_length=32, pattern=_BRANCH)

    @field_validator("roles")
    @classmethod
    def _distinct(cls, roles: list[Role] | None) -> list[Role] | None:
        return sorted(set(roles)) if roles is not None else None


class PasswordChange(BaseModel):
    """A user choosing a new password, proving the current (or one-time) one."""

    username: str = PydanticField(min_length=1, max_length=64)
    current_password: str = PydanticField(min_length=1, max_length=256)
    new_password: str = PydanticField(min_length=12, max_length=256)


class PasswordReset(BaseModel):
    username: str
    one_time_password: str = PydanticField(description="Shown once; the user must replace it at next sign-in.")


class UserRead(BaseModel):
    id: int
    username: str
    roles: list[Role]
    branch: str | None
    active: bool
    status: UserStatus
    created_at: datetime
    updated_at: datetime | None
    updated_by: str | None

