"""The customer service's own settings (`LOANCRM_CUSTOMER_*`), beside the kernel's; its personal-data keys are
`LOANCRM_CUSTOMER_PII_KEYS`, `..._ACTIVE_KID` and `..._HASH_KEY` (shared/pii.py)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from shared.pii import PiiKeySettings


class CustomerSettings(PiiKeySettings):
    model_config = SettingsConfigDict(env_prefix="LOANCRM_CUSTOMER_", extra="ignore")

    complaint_response_days: int = Field(15, ge=1, le=90)
    survey_follow_up_days: int = Field(3, ge=1, le=30)
    # Exact lookups (`POST /customers/lookup`) per user per minute: each one can confirm a guessed identity.
    lookup_per_minute: int = Field(20, ge=1, le=10_000)
    # A customer with no product and no relationship contact for this many months has churned.
    churn_months: int = Field(6, ge=1, le=36)
