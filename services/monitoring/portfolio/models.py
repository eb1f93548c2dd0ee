from __future__ import annotations

from datetime import date
from decimal import Decimal
from enum import StrEnum

from pydantic import BaseModel, Field


class GroupBy(StrEnum):
    BRANCH = "branch"
    PRODUCT = "product"
    OFFICER = "officer"
    # From the customer portrait, copied onto loans by COB's contact check. A loan in several segments counts in
    # each segment's group (so groups may add up to more than the portfolio); one in none is in the null group.
    SEGMENT = "segment"
    VALUE_TIER = "value_tier"


class Chart(StrEnum):
    BUCKETS = "buckets"
    VINTAGES = "vintages"
    ROLL_RATES = "roll_rates"


class SpecialTreatment(StrEnum):
    RESTRUCTURED = "restructured"  # restructured within the last 12 months: its observation
    REPAYMENT_PLAN = "repayment_plan"  # in a repayment plan's observation
    DEFERRAL = "deferral"  # in a deferral's observation (the holiday and the months after it)
    EARLY_RECALL = "early_recall"  # recalled: all of it due
    ASSET_PRESERVATION = "asset_preservation"  # an asset-preservation action has been opened


class TreatmentFigures(BaseModel):
    treatment: SpecialTreatment
    loans: int
    outstanding: Decimal


class BucketFigures(BaseModel):
    bucket: str
    loans: int
    outstanding: Decimal


class GroupFigures(BaseModel):
    group: str | None = Field(description="The branch, product, officer, segment or value tier; null for the whole "
                                          "portfolio, or for loans with no segment (tier) known yet.")
    loans: int
    outstanding: Decimal
    npl_ratio: float | None = Field(description="Substandard + doubtful + loss over all outstanding principal.")
    par30: float | None = Field(description="Outstanding of loans more than 30 days past due, over all outstanding.")
    par90: float | None
    expected_loss: Decimal = Field(description=(
        "Sum of PD × LGD × EAD: PD from the borrower's latest score (by class when never scored, and at least by "
        "class during a hardship observation), LGD by product, EAD the outstanding principal plus interest due, "
        "accrued and penalty, less what collateral (after haircuts) and guarantees cover."))
    pd_from_score: int = Field(description="Loans whose expected loss used the scoring service's PD.")
    pd_from_class: int = Field(description="Loans without a score, whose expected loss used the PD by class.")
    written_off_loans: int = Field(description="Loans written off (not in the figures above: out of the book).")
    written_off: Decimal = Field(description="What those loans owed when they were written off.")
    treatments: list[TreatmentFigures] = Field(description=(
        "Active loans under special treatment (a loan may be under several) and their outstanding principal."))
    buckets: list[BucketFigures]


class PortfolioFigures(BaseModel):
    as_of: date
    group_by: GroupBy | None
    groups: list[GroupFigures]


class RollRates(BaseModel):
    """Of the loans in bucket X on `start`, the share in bucket Y on `end` (active loans with history)."""

    start: date
    end: date
    counts: dict[str, int] = Field(description="Loans in each bucket on the start date.")
    rates: dict[str, dict[str, float]]


class Vintage(BaseModel):
    cohort: str = Field(description="Disbursement month, YYYY-MM.", examples=["2026-01"])
    loans: int
    principal: Decimal
    curve: list[float] = Field(
        description="Share of the cohort that has been more than 30 days past due, by month on book.")
