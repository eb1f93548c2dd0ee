from datetime import UTC, datetime

from pydantic import BaseModel
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
    retired_at: datetime | None = None


class TokenResponse(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int
    scope: str


class Jwk(BaseModel):
    kty: str
    kid: str
    alg: str
    use: str
    n: str
    e: str


class JwkSet(BaseModel):
    keys: list[Jwk]
