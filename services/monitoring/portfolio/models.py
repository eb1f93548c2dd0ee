from __future__ import annotations

from datetime import date
from decimal import Decimal
from enum import StrEnum

from pydantic import BaseModel, Field


class GroupBy(StrEnum):
    BRANCH = "branch"
    PRODUCT = "product"
    OFFICER = "officer"


class Chart(StrEnum):
    BUCKETS = "buckets"
    VINTAGES = "vintages"
    ROLL_RATES = "roll_rates"


class BucketFigures(BaseModel):
    bucket: str
    loans: int
    outstanding: Decimal


class GroupFigures(BaseModel):
    group: str | None = Field(description="The branch, product or officer; null for the whole portfolio.")
    loans: int
    outstanding: Decimal
    npl_ratio: float | None = Field(description="Substandard + doubtful + loss over all outstanding principal.")
    par30: float | None = Field(description="Outstanding of loans more than 30 days past due, over all outstanding.")
    par90: float | None
    expected_loss: Decimal = Field(description="Sum of PD × LGD × EAD, PD by class, EAD the outstanding principal.")
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
