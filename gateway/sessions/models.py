from datetime import UTC, datetime

from sqlmodel import Field

from gateway.db import GatewayTable


class RefreshToken(GatewayTable, table=True):
    """One refresh token of a sign-in. Every token rotated from the same sign-in is of one family, whose id is the
    `sid` its access tokens carry: revoking the family voids both kinds at once."""

    __tablename__ = "refresh_tokens"

    id: int | None = Field(default=None, primary_key=True)
    # SHA-256 of the opaque value: 256 random bits need no slow hash, and a copy of the table signs nobody in.
    token_hash: str = Field(max_length=64, unique=True, index=True)
    family: str = Field(max_length=32, index=True)
    username: str = Field(max_length=64, index=True)
    # What the sign-in granted; a refresh may ask for less, never more, and the family keeps this.
    scope: str = Field(max_length=1000)
    issued_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    expires_at: datetime
    # Spent by a rotation: presenting it again is a reuse, and revokes the family.
    used_at: datetime | None = None
    revoked_at: datetime | None = None
