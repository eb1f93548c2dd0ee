"""The customer service's own settings (`LOANCRM_CUSTOMER_*`), beside the kernel's."""

from __future__ import annotations

import base64
import binascii

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PII_KEY_BYTES = 32  # AES-256-GCM


def decode_key(value: str) -> bytes:
    try:
        key = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError):
        raise ValueError("keys must be base64") from None
    if len(key) != PII_KEY_BYTES:
        raise ValueError(f"each key must decode to {PII_KEY_BYTES} bytes")
    return key


class CustomerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LOANCRM_CUSTOMER_", extra="ignore")

    # "kid:base64key,kid2:base64key"; empty means a key file generated under the var dir on first start.
    pii_keys: str = ""
    # The key new writes use; older kids stay listed so existing rows still decrypt until re-encrypted.
    pii_active_kid: str = ""
    # Key of the HMAC that makes national ID, phone and email searchable without decrypting.
    pii_hash_key: str = ""
    complaint_response_days: int = Field(15, ge=1, le=90)
    survey_follow_up_days: int = Field(3, ge=1, le=30)
    # Exact lookups (`POST /customers/lookup`) per user per minute: each one can confirm a guessed identity.
    lookup_per_minute: int = Field(20, ge=1, le=10_000)
    # A customer with no product and no relationship contact for this many months has churned.
    churn_months: int = Field(6, ge=1, le=36)

    @field_validator("pii_keys")
    @classmethod
    def _keys(cls, value: str) -> str:
        for item in filter(None, (part.strip() for part in value.split(","))):
            kid, sep, key = item.partition(":")
            if not sep or not kid:
                raise ValueError('must be "kid:base64key,..."')
            decode_key(key)
        return value

    @field_validator("pii_hash_key")
    @classmethod
    def _hash_key(cls, value: str) -> str:
        if value:
            decode_key(value)
        return value

    def parsed_keys(self) -> dict[str, bytes]:
        pairs = (item.strip().partition(":") for item in self.pii_keys.split(",") if item.strip())
        return {kid: decode_key(key) for kid, _, key in pairs}
