"""Settings of the monitoring service (`LOANCRM_MONITORING_*`)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class MonitoringSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LOANCRM_MONITORING_", extra="ignore")

    # Overrides the stored business date (e.g. to replay a past day in a sandbox); empty means the stored one.
    business_date: date | None = None
    # Loans per COB chunk: the unit of progress a crashed run resumes from.
    cob_chunk_size: int = Field(5000, ge=1, le=1_000_000)
    # COB refuses a business date more than this many days after the real clock's date (UTC): a typo such as
    # 9999-12-31 would otherwise close the calendar for good.
    cob_days_ahead: int = Field(1, ge=0, le=36_500)
    # A running COB renews its lease this often; one not renewed for cob_lease_seconds is shown as stalled and
    # may be resumed by another request or process.
    cob_heartbeat_seconds: float = Field(5.0, gt=0, le=600)
    cob_lease_seconds: float = Field(60.0, gt=0, le=86_400)
    # A borrower is re-scored by COB when its last score is at least this old.
    rescore_every_days: int = Field(30, ge=1)
    # A borrower's contact log and complaints are read by COB when last read at least this long ago.
    contact_check_every_days: int = Field(30, ge=1)
    # Penalty interest per day on overdue principal and interest, by product, e.g. {"personal_loan": "0.0005"}
    # (0.05% a day, 1.5 times a 12% annual rate, a common contract term). Off for a product not named here.
    penalty_daily_rates: dict[str, Decimal] = Field(default_factory=dict)
    # Loss given default assumed for expected loss (a fraction), by product, e.g. {"mortgage": "0.25"};
    # default_lgd for a product not named here.
    default_lgd: Decimal = Field(Decimal("0.45"), ge=0, le=1)
    lgd_by_product: dict[str, Annotated[Decimal, Field(ge=0, le=1)]] = Field(default_factory=dict)
    # A delinquency pause may start at most this many days before the business date (never before disbursement),
    # and lasts at most pause_max_days days: a pause cannot erase months of arrears at once.
    pause_max_backdate_days: int = Field(30, ge=0, le=3650)
    pause_max_days: int = Field(90, ge=1, le=3650)
    # The best class a loan may be in to be written off.
    write_off_min_class: Literal["special_mention", "substandard", "doubtful", "loss"] = "loss"

    def penalty_rate(self, product: str) -> Decimal:
        return self.penalty_daily_rates.get(product, Decimal("0"))

    def lgd(self, product: str) -> Decimal:
        return self.lgd_by_product.get(product, self.default_lgd)


class BatchSettings(BaseSettings):
    """The token a batch run without a signed-in user presents to peers (`LOANCRM_API_TOKEN`)."""

    model_config = SettingsConfigDict(env_prefix="LOANCRM_", extra="ignore")

    api_token: str | None = None
