from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field as PydanticField
from sqlalchemy import Column, Index, Numeric, UniqueConstraint, false
from sqlmodel import Field

from services.monitoring.db import MonitoringTable
from services.monitoring.loans.products import Product
from services.monitoring.loans.schedule import MAX_TERM_MONTHS, DayCount, RepaymentMethod, Rounding
from shared.bounds import BusinessDate, PositiveAmount, plain_decimal
from shared.db import money_column
from shared.ids import new_id, now  # noqa: F401 - the monitoring features import them from here

__all__ = ["money_column"]  # the kernel's, re-exported for the monitoring models that import it from here

_METHODS = ("equal_instalment (等额本息): the same total every month; equal_principal (等额本金): the same principal "
            "every month, interest falling; interest_only_bullet (先息后本): interest every month, all the "
            "principal with the last instalment.")
_ROUNDING = ("How every amount of the schedule rounds to the cent: half_up (0.005 → 0.01, the default) or half_even "
             "(banker's rounding), by product (LOANCRM_MONITORING_ROUNDING, …_ROUNDING_BY_PRODUCT).")
_DAY_COUNT = ("How a broken first period (an explicit first_due_date) counts: actual/360 (the default), actual/365 "
              "or 30/360, by product (LOANCRM_MONITORING_DAY_COUNT, …_DAY_COUNT_BY_PRODUCT).")


class LoanStatus(StrEnum):
    ACTIVE = "active"
    CLOSED = "closed"
    WRITTEN_OFF = "written_off"  # out of the book after an approved write-off: COB no longer ages it


class ClassName(StrEnum):
    """Five-category classification in the API (五级分类), best to worst."""

    NORMAL = "normal"
    SPECIAL_MENTION = "special_mention"
    SUBSTANDARD = "substandard"
    DOUBTFUL = "doubtful"
    LOSS = "loss"


class Loan(MonitoringTable, table=True):
    __tablename__ = "loans"
    __table_args__ = (
        UniqueConstraint("external_source", "external_id", name="uq_loans_external"),
        Index("ix_loans_external_id", "external_id"),  # repayment files name loans by external id alone
        Index("ix_loans_customer", "customer_id"),
        Index("ix_loans_branch", "branch"),
        Index("ix_loans_oldest_unpaid_due", "oldest_unpaid_due"),
        Index("ix_loans_restructured_on", "restructured_on"),
        Index("ix_loans_hardship_until", "hardship_until"),
    )

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    external_id: str | None = Field(default=None, max_length=64)
    # The client system (token subject) that named the external id; external ids are unique per system.
    external_source: str | None = Field(default=None, max_length=64)
    customer_id: str = Field(max_length=64)
    product: str = Field(max_length=32)
    principal: Decimal = Field(sa_column=money_column())
    annual_rate: Decimal = Field(sa_column=Column(Numeric(9, 6), nullable=False))
    term_months: int
    repayment_method: str = Field(max_length=32)
    disbursement_date: date
    first_due_date: date | None = None
    purpose: str = Field(max_length=200)
    collateral: str | None = Field(default=None, max_length=200)
    guarantor: str | None = Field(default=None, max_length=200)
    officer: str = Field(max_length=64)
    branch: str = Field(max_length=32)
    status: str = Field(default=LoanStatus.ACTIVE, max_length=16)
    outstanding_principal: Decimal = Field(sa_column=money_column())
    credit_balance: Decimal = Field(default=Decimal("0.00"), sa_column=money_column())
    # Due date of the oldest instalment with principal or interest unpaid: what COB ages from, set-based.
    oldest_unpaid_due: date | None = None
    dpd: int = 0
    bucket: str = Field(default="M0", max_length=16)
    classification: str = Field(default=ClassName.NORMAL, max_length=16)
    ifrs9_stage: int = 1
    override_class: str | None = Field(default=None, max_length=16)
    restructured_on: date | None = None
    restructure_reason: str | None = Field(default=None, max_length=200)
    # The latest approved repayment plan or deferral (hardship/): at least special mention from hardship_on until
    # the day before hardship_until (the observation period, LOANCRM_MONITORING_HARDSHIP_OBSERVATION_MONTHS).
    hardship_kind: str | None = Field(default=None, max_length=16)
    hardship_on: date | None = None
    hardship_until: date | None = None
    # Contract term: may the bank accelerate the loan (提前收回)? Set at booking; recalled_on once it did.
    early_recall_allowed: bool = Field(default=False, sa_column_kwargs={"server_default": false()})
    recalled_on: date | None = None
    last_score: int | None = None
    last_grade: str | None = Field(default=None, max_length=8)
    scored_on: date | None = None
    # The scoring service's PD behind last_score: expected loss uses it, falling back to a PD by class without.
    last_pd: Decimal | None = Field(default=None, sa_column=Column(Numeric(9, 6), nullable=True))
    # The grade and PD scoring gave the borrower when the loan was booked; re-scores change only last_*.
    origination_grade: str | None = Field(default=None, max_length=8)
    origination_pd: Decimal | None = Field(default=None, sa_column=Column(Numeric(9, 6), nullable=True))
    # The borrower's value tier from the customer portrait, refreshed with the contact check (portfolio figures).
    value_tier: str | None = Field(default=None, max_length=16)
    # When COB last read the borrower's contact log and complaints (the complaint-silence rule).
    contacts_checked_on: date | None = None
    # Penalty interest per day on overdue principal and interest, fixed at booking from the product's setting.
    penalty_daily_rate: Decimal = Field(default=Decimal("0"), sa_column=Column(Numeric(9, 6), nullable=False))
    # Principal, interest and penalty owed when an approved write-off took the loan out of the book.
    written_off_on: date | None = None
    written_off_amount: Decimal | None = Field(default=None, sa_column=money_column(nullable=True))
    # The product's conventions at booking, kept so a rebooked schedule rounds and counts days as the first did.
    rounding: str = Field(default=Rounding.HALF_UP, max_length=16)
    day_count: str = Field(default=DayCount.ACTUAL_360, max_length=16)
    created_by: str = Field(max_length=64)
    created_at: datetime = Field(default_factory=now)


class LoanSegment(MonitoringTable, table=True):
    """The borrower's named segments from the customer portrait, copied per loan so figures group set-based."""

    __tablename__ = "loan_segments"

    loan_id: str = Field(foreign_key="loans.id", primary_key=True, max_length=32)
    segment: str = Field(primary_key=True, max_length=32)


class Instalment(MonitoringTable, table=True):
    __tablename__ = "instalments"
    # The reminders step reads the instalments falling due on a few given days.
    __table_args__ = (Index("ix_instalments_due_date", "due_date"),)

    loan_id: str = Field(foreign_key="loans.id", primary_key=True, max_length=32)
    number: int = Field(primary_key=True)
    due_date: date
    principal: Decimal = Field(sa_column=money_column())
    interest: Decimal = Field(sa_column=money_column())
    principal_paid: Decimal = Field(default=Decimal("0.00"), sa_column=money_column())
    interest_paid: Decimal = Field(default=Decimal("0.00"), sa_column=money_column())
    penalty_paid: Decimal = Field(default=Decimal("0.00"), sa_column=money_column())
    # Approved waivers: interest_waived was taken off `interest` (what is owed); penalty_waived off the penalty
    # the instalment accrues.
    interest_waived: Decimal = Field(default=Decimal("0.00"), sa_column=money_column(server_default="0"))
    penalty_waived: Decimal = Field(default=Decimal("0.00"), sa_column=money_column(server_default="0"))


class ScheduleRebooking(MonitoringTable, table=True):
    """A restructuring that rebooked the schedule from `effective_date`: what fell due by then stays as it was;
    the instalments after it were superseded (kept in `superseded_instalments`) by a new schedule of the
    principal not yet due, on the new rate and term."""

    __tablename__ = "schedule_rebookings"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    loan_id: str = Field(foreign_key="loans.id", index=True, max_length=32)
    effective_date: date
    principal_rescheduled: Decimal = Field(sa_column=money_column())
    annual_rate_before: Decimal = Field(sa_column=Column(Numeric(9, 6), nullable=False))
    annual_rate_after: Decimal = Field(sa_column=Column(Numeric(9, 6), nullable=False))
    term_months: int  # instalments of the new schedule
    reason: str = Field(max_length=200)
    created_by: str = Field(max_length=64)
    created_at: datetime = Field(default_factory=now)


class SupersededInstalment(MonitoringTable, table=True):
    """An instalment as it stood when a rebooking replaced it (a part-paid one stays, cut to what was paid)."""

    __tablename__ = "superseded_instalments"

    rebooking_id: str = Field(foreign_key="schedule_rebookings.id", primary_key=True, max_length=32)
    number: int = Field(primary_key=True)
    due_date: date
    principal: Decimal = Field(sa_column=money_column())
    interest: Decimal = Field(sa_column=money_column())
    principal_paid: Decimal = Field(sa_column=money_column())
    interest_paid: Decimal = Field(sa_column=money_column())
    penalty_paid: Decimal = Field(sa_column=money_column())


# --- API schemas -----------------------------------------------------------------------------------------------

Rate = Annotated[Decimal, plain_decimal, PydanticField(ge=0, le=1, max_digits=9, decimal_places=6,
                                                      description="Annual rate as a fraction: 0.0435 is 4.35%.")]


class ScheduleRequest(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"principal": "120000.00", "annual_rate": "0.0435", "term_months": 12,
         "repayment_method": "equal_instalment", "disbursement_date": "2026-01-15"}]})

    principal: PositiveAmount
    annual_rate: Rate = PydanticField(description="Annual rate as a fraction (0.0435 for 4.35%); each regular "
                                                  "month accrues annual_rate / 12 on the opening balance.")
    term_months: int = PydanticField(ge=1, le=MAX_TERM_MONTHS)
    repayment_method: RepaymentMethod = PydanticField(description=_METHODS)
    disbursement_date: BusinessDate
    first_due_date: BusinessDate | None = PydanticField(
        default=None, description="Default: one month after disbursement. Any other date makes the first period "
                                  "broken: its interest is annual_rate × its year fraction by the product's day "
                                  "count (actual/360 unless configured).")
    product: Product | None = PydanticField(
        default=None, description="Whose conventions to preview with (rounding, day count); default the "
                                  "service's defaults.")


class LoanCreate(ScheduleRequest):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"customer_id": "c0ffee", "external_id": "CORE-2026-000123", "product": "personal_loan",
         "principal": "120000.00", "annual_rate": "0.0435", "term_months": 12,
         "repayment_method": "equal_instalment", "disbursement_date": "2026-01-15", "purpose": "home renovation",
         "collateral": None, "guarantor": None, "branch": "BJ001"}]})

    customer_id: str = PydanticField(min_length=1, max_length=64)
    external_id: str | None = PydanticField(default=None, min_length=1, max_length=64)
    product: Product
    purpose: str = PydanticField(min_length=1, max_length=200)
    collateral: str | None = PydanticField(default=None, max_length=200)
    guarantor: str | None = PydanticField(default=None, max_length=200)
    early_recall_allowed: bool = PydanticField(
        default=False, description="The contract lets the bank recall the loan early (accelerate it: everything "
                                   "outstanding falls due at once), subject to approval")
    # No `officer`: the loan's officer is whoever books it, from the token (a body field is ignored).
    branch: str = PydanticField(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_-]+$")


class InstalmentRead(BaseModel):
    number: int
    due_date: date
    principal: Decimal
    interest: Decimal
    total: Decimal
    principal_paid: Decimal = Decimal("0.00")
    interest_paid: Decimal = Decimal("0.00")
    penalty_paid: Decimal = Decimal("0.00")
    interest_waived: Decimal = Decimal("0.00")
    penalty_waived: Decimal = Decimal("0.00")


class SchedulePreview(BaseModel):
    repayment_method: RepaymentMethod
    rounding: Rounding = PydanticField(description=_ROUNDING)
    day_count: DayCount = PydanticField(description=_DAY_COUNT)
    total_principal: Decimal
    total_interest: Decimal
    total_repayment: Decimal
    instalments: list[InstalmentRead]
    penalty_daily_rate: Decimal = PydanticField(
        default=Decimal("0"), description="Penalty interest a day on overdue amounts a loan of the product is booked "
                                          "with (what a customer is told before borrowing).")


class LoanSummary(BaseModel):
    """The shape other services read (`GET /loans?customer_id=`)."""

    model_config = ConfigDict(from_attributes=True, json_schema_extra={"examples": [
        {"id": "4ab2c9d0e1f24a5b8c7d6e5f4a3b2c1d", "external_id": "CORE-2026-000123", "customer_id": "c0ffee",
         "product": "personal_loan", "principal": "120000.00", "outstanding_principal": "80412.55", "dpd": 35,
         "bucket": "M2", "classification": "special_mention", "ifrs9_stage": 2, "status": "active",
         "disbursement_date": "2026-01-15"}]})

    id: str
    external_id: str | None
    customer_id: str
    product: Product
    principal: Decimal
    outstanding_principal: Decimal
    dpd: int
    bucket: str
    classification: ClassName
    ifrs9_stage: int = PydanticField(ge=1, le=3, description=(
        "IFRS 9 stage: 3 past 90 days past due, 2 past 30, and at least the stage of the class (special mention "
        "2, substandard and worse 3); thresholds and class stages are settings (LOANCRM_MONITORING_IFRS9_*)."))
    status: LoanStatus
    disbursement_date: date


class LoanRead(LoanSummary):
    model_config = ConfigDict(json_schema_extra=None)

    annual_rate: Decimal
    term_months: int
    repayment_method: RepaymentMethod
    first_due_date: date | None
    purpose: str
    collateral: str | None
    guarantor: str | None
    officer: str
    branch: str
    credit_balance: Decimal
    penalty_daily_rate: Decimal
    rounding: Rounding = PydanticField(description=_ROUNDING)
    day_count: DayCount = PydanticField(description=_DAY_COUNT)
    override_class: ClassName | None
    restructured_on: date | None
    hardship_kind: str | None = PydanticField(description="repayment_plan or deferral: the latest approved one")
    hardship_on: date | None
    hardship_until: date | None = PydanticField(description="The hardship observation ends on this day (at least "
                                                            "special mention before it)")
    early_recall_allowed: bool
    recalled_on: date | None
    written_off_on: date | None
    written_off_amount: Decimal | None
    created_at: datetime


class RebookingRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    effective_date: date
    principal_rescheduled: Decimal
    annual_rate_before: Decimal
    annual_rate_after: Decimal
    term_months: int
    reason: str
    created_by: str
    created_at: datetime
    superseded: list[InstalmentRead] = PydanticField(description="The instalments this rebooking replaced, as "
                                                                 "they stood then")


class LoanDetail(LoanRead):
    schedule: list[InstalmentRead]
    rebookings: list[RebookingRead] = PydanticField(
        default_factory=list, description="Restructurings that rebooked the schedule, oldest first, each with the "
                                          "instalments it superseded")
