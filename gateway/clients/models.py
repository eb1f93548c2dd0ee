from datetime import UTC, datetime

from pydantic import BaseModel, ConfigDict, field_validator
from pydantic import Field as PydanticField
from sqlalchemy import JSON, Column
from sqlmodel import Field

from gateway.db import GatewayTable
from gateway.users.models import new_session_id
from shared.auth.roles import Role
from shared.bounds import said

# Its tokens' `sub` is "client:<client_id>", and records a partner owns carry the `sub` in 64 characters.
CLIENT_ID_PATTERN = r"^[a-z0-9][a-z0-9._-]{2,47}$"
SUBJECT_PREFIX = "client:"


class OAuthClient(GatewayTable, table=True):
    """A partner system (or a back end) that gets tokens of its own with the client-credentials grant."""

    __tablename__ = "oauth_clients"

    id: int | None = Field(default=None, primary_key=True)
    client_id: str = Field(max_length=48, unique=True, index=True)
    name: str = Field(max_length=120)
    secret_hash: str = Field(max_length=255)
    role: str = Field(max_length=32)
    branch: str | None = Field(default=None, max_length=32)
    # What the client may ask for: a subset of its role's scopes; a token asked for without `scope` gets them all.
    scopes: list[str] = Field(sa_column=Column(JSON, nullable=False))
    # Requests per minute through the gateway; None: the gateway's per-caller default.
    rate_limit_per_minute: int | None = None
    active: bool = True
    # Carried as `sid` by the client's tokens; replaced (the old one revoked) on disable and secret rotation.
    session_id: str = Field(default_factory=new_session_id, max_length=32)
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    created_by: str | None = Field(default=None, max_length=64)
    secret_rotated_at: datetime | None = None
    updated_at: datetime | None = None
    updated_by: str | None = Field(default=None, max_length=64)

    @property
    def subject(self) -> str:
        return SUBJECT_PREFIX + self.client_id


class ClientCreate(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"client_id": "acme-broker", "name": "ACME Brokers Ltd", "scopes": ["customer:write", "scoring:write"],
         "rate_limit_per_minute": 600}]})

    client_id: str = PydanticField(pattern=CLIENT_ID_PATTERN, description="Chosen by the admin; not a secret.")
    name: said(1, 120)
    role: Role = PydanticField(default=Role.PARTNER, description="What the client's tokens act as; not admin.")
    branch: str | None = PydanticField(default=None, max_length=32, pattern=r"^[A-Za-z0-9_-]+$",
                                       description="Required for a loan officer.")
    scopes: list[str] | None = PydanticField(default=None, max_length=20,
                                             description="Allowed scopes; default: every scope of the role.")
    rate_limit_per_minute: int | None = PydanticField(default=None, ge=1, le=1_000_000)

    @field_validator("scopes")
    @classmethod
    def _distinct(cls, scopes: list[str] | None) -> list[str] | None:
        return sorted(set(scopes)) if scopes is not None else None


class ClientRead(BaseModel):
    client_id: str
    name: str
    role: Role
    branch: str | None
    scopes: list[str]
    rate_limit_per_minute: int | None
    active: bool
    created_at: datetime
    created_by: str | None
    secret_rotated_at: datetime | None
    updated_at: datetime | None
    updated_by: str | None


class ClientSecret(ClientRead):
    """The client with its secret: shown this once, stored only as a hash."""

    client_secret: str

