from datetime import UTC, datetime

from pydantic import BaseModel
from pydantic import Field as PydanticField
from sqlalchemy import Column, Text
from sqlmodel import Field

from gateway.db import GatewayTable


class SigningKey(GatewayTable, table=True):
    __tablename__ = "signing_keys"

    kid: str = Field(primary_key=True, max_length=64)
    algorithm: str = Field(default="RS256", max_length=16)
    private_pem: str = Field(sa_column=Column(Text, nullable=False))
    public_pem: str = Field(sa_column=Column(Text, nullable=False))
    encrypted: bool = False
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    # Published from creation, signs from here on: services learn a new key before any token needs it.
    use_after: datetime | None = None
    # When a newer key took over signing; published until the last token this one signed has expired.
    retired_at: datetime | None = None


class KeyRead(BaseModel):
    kid: str
    state: str  # upcoming, signing, retired (still published), withdrawn
    created_at: datetime
    use_after: datetime | None
    retired_at: datetime | None


class Revocation(BaseModel):
    sid: str
    until: int


class RevocationList(BaseModel):
    revoked: list[Revocation]
    generated_at: int


class TokenResponse(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int
    scope: str
    refresh_token: str | None = PydanticField(
        default=None, description="With the password and refresh_token grants only: spend it once, at /auth/token "
        "with grant_type=refresh_token.")


class TokenError(BaseModel):
    """An RFC 6749 §5.2 error, in a problem+json body."""

    error: str = PydanticField(description="invalid_request, invalid_client, invalid_grant, invalid_scope, "
                       "unauthorized_client or unsupported_grant_type")
    error_description: str | None = None
    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    request_id: str | None = None


class ServerMetadata(BaseModel):
    """OpenID Connect Discovery / RFC 8414 metadata of the gateway as authorization server."""

    issuer: str
    token_endpoint: str
    jwks_uri: str
    revocation_endpoint: str
    grant_types_supported: list[str]
    token_endpoint_auth_methods_supported: list[str]
    scopes_supported: list[str]
    response_types_supported: list[str]
    subject_types_supported: list[str]
    id_token_signing_alg_values_supported: list[str]
    claims_supported: list[str]


class Jwk(BaseModel):
    kty: str
    kid: str
    alg: str
    use: str
    n: str
    e: str


class JwkSet(BaseModel):
    keys: list[Jwk]
