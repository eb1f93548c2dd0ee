"""Settings of the monitoring service (`LOANCRM_MONITORING_*`)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class MonitoringSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LOANCRM_MONITORING_", extra="ignore")

    # Overrides the stored business date (e.g. to replay a past day in a sandbox); empty means the stored one.
    business_date: date | None = None
    # Loans per COB chunk: the unit of progress a crashed run resumes from.
    cob_chunk_size: int = Field(5000, ge=1, le=1_000_000)
    # A borrower is re-scored by COB when its last score is at least this old.
    rescore_every_days: int = Field(30, ge=1)
    # Loss given default assumed for expected loss (a fraction).
    default_lgd: Decimal = Field(Decimal("0.45"), ge=0, le=1)


class BatchSettings(BaseSettings):
    """The token a batch run without a signed-in user presents to peers (`LOANCRM_API_TOKEN`)."""

    model_config = SettingsConfigDict(env_prefix="LOANCRM_", extra="ignore")

    api_token: str | None = None
