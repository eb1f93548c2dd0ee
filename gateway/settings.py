import re
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

_ORIGIN = r"https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?"


# How the gateway forwards to the services; `bench gateway` compares them (its own client, `wire`, costs least;
# aiohttp several times less than httpx).
UpstreamClient = Literal["wire", "aiohttp", "httpx_aiohttp", "httpx"]


class GatewaySettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LOANCRM_GATEWAY_", extra="ignore")

    token_ttl_seconds: int = Field(900, ge=60, le=86400)
    # Encrypts the stored signing keys; when unset, a passphrase is generated into LOANCRM_VAR_DIR (mode 0600).
    key_passphrase: SecretStr | None = None
    upstream_timeout_seconds: float = Field(30.0, gt=0)
    upstream_connect_timeout_seconds: float = Field(2.0, gt=0)
    upstream_client: UpstreamClient = "wire"
    rate_limit_per_minute: int = Field(1200, ge=1)
    # Failed sign-ins, per username from one client address and per address whatever the username.
    sign_in_attempts_per_minute: int = Field(10, ge=1)
    sign_in_attempts_per_hour: int = Field(30, ge=1)
    sign_in_address_attempts_per_minute: int = Field(30, ge=1)
    sign_in_address_attempts_per_hour: int = Field(200, ge=1)
    # A refresh token is spent by its first use; one left unused this long expires (its user signs in again).
    refresh_token_ttl_seconds: int = Field(14 * 86400, ge=300, le=366 * 86400)
    # The address clients reach the gateway at, for discovery (e.g. https://api.bank.example); by default the
    # address the discovery request came to.
    public_url: str | None = Field(None, pattern=r"^https?://[^\s/]+(/[^\s]*)?$")
    # Browser origins (scheme://host[:port]) whose front ends may call the API, comma-separated; empty: no CORS.
    cors_origins: Annotated[list[str], NoDecode] = []

    @field_validator("public_url")
    @classmethod
    def _no_trailing_slash(cls, value: str | None) -> str | None:
        return value.rstrip("/") if value else value

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _origins(cls, value: object) -> object:
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        if isinstance(value, list):
            for origin in value:
                if not isinstance(origin, str) or origin == "*" or not re.fullmatch(_ORIGIN, origin):
                    raise ValueError(f"{origin!r} is not an origin like https://app.bank.example (no path, no *)")
        return value


class WebhookSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LOANCRM_WEBHOOKS_", extra="ignore")

    # How often the gateway relays new events and sends due deliveries; 0 turns the background task off (a
    # pass then runs only when called, as the tests do).
    poll_seconds: float = Field(5.0, ge=0)
    max_attempts: int = Field(10, ge=1, le=50)
    # Attempt n waits backoff_base * 2^(n-1) seconds (at most backoff_max), less a random jitter of up to half.
    backoff_base_seconds: float = Field(30.0, gt=0)
    backoff_max_seconds: float = Field(3600.0, gt=0)
    timeout_seconds: float = Field(5.0, gt=0, le=60)
    # Events younger than this are read again on the next pass: on PostgreSQL a transaction may commit an event
    # after a later-numbered one, and must not be skipped (deliveries are deduplicated by event id).
    settle_seconds: float = Field(30.0, ge=0)
    batch_size: int = Field(100, ge=1, le=500)
