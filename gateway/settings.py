from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


# How the gateway forwards to the services; `bench gateway` compares them (aiohttp is several times faster).
UpstreamClient = Literal["aiohttp", "httpx_aiohttp", "httpx"]


class GatewaySettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LOANCRM_GATEWAY_", extra="ignore")

    token_ttl_seconds: int = Field(900, ge=60, le=86400)
    # Encrypts the stored signing keys; when unset, a passphrase is generated into LOANCRM_VAR_DIR (mode 0600).
    key_passphrase: SecretStr | None = None
    upstream_timeout_seconds: float = Field(30.0, gt=0)
    upstream_connect_timeout_seconds: float = Field(2.0, gt=0)
    upstream_client: UpstreamClient = "aiohttp"
    rate_limit_per_minute: int = Field(1200, ge=1)
    # Failed sign-ins, per username from one client address and per address whatever the username.
    sign_in_attempts_per_minute: int = Field(10, ge=1)
    sign_in_attempts_per_hour: int = Field(30, ge=1)
    sign_in_address_attempts_per_minute: int = Field(30, ge=1)
    sign_in_address_attempts_per_hour: int = Field(200, ge=1)
