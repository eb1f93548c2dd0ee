from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class GatewaySettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LOANCRM_GATEWAY_", extra="ignore")

    token_ttl_seconds: int = Field(900, ge=60, le=86400)
    # When set, signing keys are stored encrypted with it; otherwise the database's own protection applies.
    key_passphrase: SecretStr | None = None
    upstream_timeout_seconds: float = Field(30.0, gt=0)
    upstream_connect_timeout_seconds: float = Field(2.0, gt=0)
    rate_limit_per_minute: int = Field(1200, ge=1)
    sign_in_attempts_per_minute: int = Field(10, ge=1)
