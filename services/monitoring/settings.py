"""Settings of the monitoring service (`LOANCRM_MONITORING_*`)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.monitoring.classification.rules import (
    DEFAULT_STAGING,
    HARDSHIP_OBSERVATION_MONTHS,
    STAGE2_DPD,
    STAGE3_DPD,
    Ifrs9Stage,
    LoanClass,
    StagingRule,
)
from services.monitoring.checks.models import CheckCadence
from services.monitoring.collateral.models import DEFAULT_HAIRCUTS, DEFAULT_REVALUATION_MONTHS, CollateralKind
from services.monitoring.collateral.service import CollateralPolicy
from services.monitoring.loans.models import ClassName
from services.monitoring.loans.schedule import DayCount, Rounding
from shared.pii import PiiKeySettings


class MonitoringSettings(PiiKeySettings):
    """Also the keys that seal the feed's account numbers (`LOANCRM_MONITORING_PII_KEYS`, `..._ACTIVE_KID`,
    `..._HASH_KEY`; shared/pii.py)."""

    model_config = SettingsConfigDict(env_prefix="LOANCRM_MONITORING_", extra="ignore")

    # Overrides the stored business date (e.g. to replay a past day in a sandbox); empty means the stored one.
    business_date: date | None = None
    # Loans per COB chunk: the unit of progress a crashed run resumes from.
    cob_chunk_size: int = Field(5000, ge=1, le=1_000_000)
    # A repayment may exceed what settles its loan in full on its value date (principal, interest, penalty:
    # repayments.service.payoff) by at most this much, in the book's currency; the excess is the loan's credit
    # balance. 100.00 lets a borrower settle with a round sum (the payoff rounded up to the next hundred, about
    # US$14 in CNY) and keeps the credit balance reachable, while a misplaced digit or a probe (50,000,000 on a
    # loan owing 3,190) is refused; 0 takes nothing beyond the payoff.
    overpayment_tolerance: Decimal = Field(Decimal("100.00"), ge=0, le=Decimal("1000000"), decimal_places=2)
    # Rows of a repayment file posted per transaction: the unit of progress a stopped job resumes from.
    repayment_file_chunk_size: int = Field(1000, ge=1, le=100_000)
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
    # Collateral (collateral/): the book's currency, rates into it (units of base currency per unit, e.g.
    # {"USD": "7.10"}; a record in a currency without one is left out of LTV and cover), haircuts by kind
    # ({"property": "0.25"} overrides that kind's default) and months between revaluations by kind.
    base_currency: str = Field("CNY", pattern=r"^[A-Z]{3}$")
    fx_rates: dict[str, Annotated[Decimal, Field(gt=0)]] = Field(default_factory=dict)
    collateral_haircuts: dict[CollateralKind, Annotated[Decimal, Field(ge=0, le=1)]] = Field(default_factory=dict)
    revaluation_months: dict[CollateralKind, Annotated[int, Field(ge=1, le=120)]] = Field(default_factory=dict)
    # A delinquency pause may start at most this many days before the business date (never before disbursement),
    # and lasts at most pause_max_days days: a pause cannot erase months of arrears at once.
    pause_max_backdate_days: int = Field(30, ge=0, le=3650)
    pause_max_days: int = Field(90, ge=1, le=3650)
    # A repayment plan keeps the loan at least special mention for this many months from its approval, a deferral
    # for this many months after its holiday ends (classification.rules.HARDSHIP_OBSERVATION_MONTHS by default).
    hardship_observation_months: int = Field(HARDSHIP_OBSERVATION_MONTHS, ge=1, le=60)
    # The best class a loan may be in to be written off.
    write_off_min_class: Literal["special_mention", "substandard", "doubtful", "loss"] = "loss"
    # Conventions a loan is booked with (kept on the loan, so a later change applies to new loans only):
    # how amounts round to the cent, and how a broken first period (set by first_due_date) counts its days.
    rounding: Rounding = Rounding.HALF_UP
    rounding_by_product: dict[str, Rounding] = Field(default_factory=dict)
    day_count: DayCount = DayCount.ACTUAL_360
    day_count_by_product: dict[str, DayCount] = Field(default_factory=dict)
    # IFRS 9 staging: stage 3 past ifrs9_stage3_dpd days, stage 2 past ifrs9_stage2_dpd, and at least the stage
    # a class maps to (special mention is stage 2 by default, substandard and worse stage 3).
    ifrs9_stage2_dpd: int = Field(STAGE2_DPD, ge=1)
    ifrs9_stage3_dpd: int = Field(STAGE3_DPD, ge=2)
    ifrs9_stage_by_class: dict[ClassName, Annotated[int, Field(ge=1, le=3)]] = Field(default_factory=dict)
    # Post-loan checks by the borrower's grade and segments (see CheckCadence), e.g.
    # LOANCRM_MONITORING_CHECK_CADENCE='{"periodic_days_by_grade": {"E": 30}, "on_site_grades": ["E"]}'.
    check_cadence: CheckCadence = Field(default_factory=CheckCadence)
    # At most this many contacts with a customer in seven days, every purpose counted (collection too): a repayment
    # reminder past it is skipped, so closer follow-up never becomes pressure.
    reminder_weekly_contact_cap: int = Field(3, ge=0, le=100)

    def penalty_rate(self, product: str) -> Decimal:
        return self.penalty_daily_rates.get(product, Decimal("0"))

    def lgd(self, product: str) -> Decimal:
        return self.lgd_by_product.get(product, self.default_lgd)

    def collateral_policy(self) -> CollateralPolicy:
        return CollateralPolicy(
            base_currency=self.base_currency, fx_rates=self.fx_rates,
            haircuts={**{k.value: v for k, v in DEFAULT_HAIRCUTS.items()},
                      **{k.value: v for k, v in self.collateral_haircuts.items()}},
            revaluation_months={**{k.value: v for k, v in DEFAULT_REVALUATION_MONTHS.items()},
                                **{k.value: v for k, v in self.revaluation_months.items()}})

    def rounding_for(self, product: str | None) -> Rounding:
        return self.rounding_by_product.get(product or "", self.rounding)

    def day_count_for(self, product: str | None) -> DayCount:
        return self.day_count_by_product.get(product or "", self.day_count)

    def staging_rule(self) -> StagingRule:
        classes = {LoanClass[name.name]: Ifrs9Stage(stage) for name, stage in self.ifrs9_stage_by_class.items()}
        return StagingRule(self.ifrs9_stage2_dpd, self.ifrs9_stage3_dpd, {**DEFAULT_STAGING.class_stages, **classes})

    @model_validator(mode="after")
    def _stages_ordered(self) -> MonitoringSettings:
        if self.ifrs9_stage2_dpd >= self.ifrs9_stage3_dpd:
            raise ValueError("ifrs9_stage2_dpd must be below ifrs9_stage3_dpd")
        return self


class CobQueueSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LOANCRM_COB_", extra="ignore")

    # amqp://guest:guest@127.0.0.1:5672/ (RabbitMQ) or redis://127.0.0.1:6379/0; unset: COB runs in-process.
    broker_url: str | None = None
    queue: str = Field("loancrm-cob", pattern=r"^[a-zA-Z_][a-zA-Z0-9._-]*$")
    # How often the run looks at its chunk records while the workers age them.
    poll_seconds: float = Field(0.5, gt=0, le=60)
    # No chunk finished for this long: the run stops, stalled, and a resume sends the pending chunks again.
    stall_seconds: float = Field(600.0, gt=0, le=86_400)
    # A chunk taking longer than this is failed by the worker (and retried): far above a chunk's real time.
    chunk_time_limit_seconds: int = Field(3600, ge=1)
    # Retries of a chunk that failed (a database briefly gone); a worker killed mid-chunk is a redelivery, not one.
    chunk_retries: int = Field(5, ge=0, le=100)
