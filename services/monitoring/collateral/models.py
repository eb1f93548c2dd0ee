"""Collateral and guarantees as records: what secures a loan, what it is worth, and when it is valued again."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field as PydanticField
from sqlalchemy import Index
from sqlmodel import Field

from services.monitoring.db import MonitoringTable
from services.monitoring.loans.models import money_column, new_id, now
from shared.bounds import BusinessDate, PositiveAmount, said


class CollateralKind(StrEnum):
    PROPERTY = "property"
    VEHICLE = "vehicle"
    DEPOSIT = "deposit"
    EQUIPMENT = "equipment"
    PERSONAL_GUARANTEE = "personal_guarantee"  # a person answers for the loan
    CORPORATE_GUARANTEE = "corporate_guarantee"  # a company answers for the loan

    @property
    def is_guarantee(self) -> bool:
        return self in (CollateralKind.PERSONAL_GUARANTEE, CollateralKind.CORPORATE_GUARANTEE)


# What expected loss takes off each kind's value before it counts as cover (LOANCRM_MONITORING_COLLATERAL_HAIRCUTS
# overrides any): a deposit is cash; equipment sells for half its book value; a guarantor may not pay in full.
DEFAULT_HAIRCUTS: dict[CollateralKind, Decimal] = {
    CollateralKind.PROPERTY: Decimal("0.30"), CollateralKind.VEHICLE: Decimal("0.40"),
    CollateralKind.DEPOSIT: Decimal("0.00"), CollateralKind.EQUIPMENT: Decimal("0.50"),
    CollateralKind.PERSONAL_GUARANTEE: Decimal("0.50"), CollateralKind.CORPORATE_GUARANTEE: Decimal("0.30"),
}
# Months between valuations by kind, when a record names none (LOANCRM_MONITORING_REVALUATION_MONTHS); a deposit
# is not revalued.
DEFAULT_REVALUATION_MONTHS: dict[CollateralKind, int] = {
    CollateralKind.PROPERTY: 12, CollateralKind.VEHICLE: 6, CollateralKind.EQUIPMENT: 12,
    CollateralKind.PERSONAL_GUARANTEE: 12, CollateralKind.CORPORATE_GUARANTEE: 12,
}

Currency = PydanticField(pattern=r"^[A-Z]{3}$", description="ISO 4217 code, e.g. CNY")


class Collateral(MonitoringTable, table=True):
    __tablename__ = "collaterals"
    __table_args__ = (Index("ix_collaterals_next_revaluation", "next_revaluation_on"),)

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    loan_id: str = Field(foreign_key="loans.id", index=True, max_length=32)
    kind: str = Field(max_length=24)
    description: str = Field(max_length=200)
    # A guarantor known to the customer service, by its id (no names here: personal data lives there).
    guarantor_customer_id: str | None = Field(default=None, max_length=64)
    value: Decimal = Field(sa_column=money_column())  # a guarantee's: the most the guarantor answers for
    currency: str = Field(max_length=3)
    valuation_date: date
    revalue_every_months: int | None = None
    next_revaluation_on: date | None = None
    # Set by COB once the next revaluation's date has passed without one; cleared by the revaluation.
    revaluation_overdue_since: date | None = None
    created_by: str = Field(max_length=64)
    created_at: datetime = Field(default_factory=now)


class CollateralValuation(MonitoringTable, table=True):
    """Append-only: every valuation of a record, the first one included."""

    __tablename__ = "collateral_valuations"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    collateral_id: str = Field(foreign_key="collaterals.id", index=True, max_length=32)
    value: Decimal = Field(sa_column=money_column())
    currency: str = Field(max_length=3)
    valuation_date: date
    note: str | None = Field(default=None, max_length=200)
    recorded_by: str = Field(max_length=64)
    recorded_on: date
    recorded_at: datetime = Field(default_factory=now)


# --- API schemas -----------------------------------------------------------------------------------------------

class CollateralCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"kind": "property", "description": "flat, 3rd floor, mortgage registration no. 2026-0042",
         "value": "800000.00", "currency": "CNY", "valuation_date": "2026-01-10"},
        {"kind": "personal_guarantee", "description": "guarantee contract G-2026-17", "value": "50000.00",
         "currency": "CNY", "valuation_date": "2026-01-10", "guarantor_customer_id": "c0ffee"}]})

    kind: CollateralKind
    description: said(3, 200) = PydanticField(description="What it is and its registration or "
                                                                               "contract number; no personal data")
    value: PositiveAmount = PydanticField(description="Market value; for a guarantee, the most it answers for")
    currency: str = Currency
    valuation_date: BusinessDate = PydanticField(description="Not after the business date")
    revalue_every_months: int | None = PydanticField(
        default=None, ge=1, le=120, description="Default by kind (LOANCRM_MONITORING_REVALUATION_MONTHS)")
    guarantor_customer_id: str | None = PydanticField(default=None, min_length=1, max_length=64,
                                                      description="Only for a guarantee")


class RevaluationCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"value": "640000.00", "valuation_date": "2026-07-10", "note": "appraiser's report 2026-07"}]})

    value: PositiveAmount
    valuation_date: BusinessDate = PydanticField(description="Not after the business date nor before the last one")
    note: str | None = PydanticField(default=None, max_length=200)


class CollateralRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    loan_id: str
    kind: CollateralKind
    description: str
    guarantor_customer_id: str | None
    value: Decimal
    currency: str
    valuation_date: date
    revalue_every_months: int | None
    next_revaluation_on: date | None
    revaluation_overdue_since: date | None = PydanticField(
        description="Set by close of business when the next revaluation's date passed without one")
    created_by: str
    created_at: datetime


class ValuationRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    value: Decimal
    currency: str
    valuation_date: date
    note: str | None
    recorded_by: str
    recorded_on: date


class LoanLoss(BaseModel):
    """A loan's loan-to-value and expected loss with what secures it, by the portfolio figures' own arithmetic."""

    loan_id: str
    as_of: date
    base_currency: str
    outstanding_principal: Decimal
    collateral_value: Decimal = PydanticField(description="Collateral other than guarantees, in the base currency, "
                                                          "before haircuts")
    ltv: Decimal | None = PydanticField(description="Outstanding principal / collateral value (4 places); null "
                                                    "without collateral")
    not_counted: list[str] = PydanticField(description="Records in a currency without a rate "
                                                       "(LOANCRM_MONITORING_FX_RATES): left out")
    ead: Decimal = PydanticField(description="As in the portfolio figures: principal, interest due and accrued, "
                                             "penalty")
    pd: Decimal
    product_lgd: Decimal = PydanticField(description="The product's LGD for an unsecured exposure")
    collateral_cover: Decimal = PydanticField(description="Σ value × (1 − haircut of its kind), guarantees apart")
    secured: Decimal = PydanticField(description="min(collateral_cover, ead): loses nothing")
    guarantee_cover: Decimal = PydanticField(description="min(Σ guaranteed × (1 − haircut), ead − secured)")
    lgd: Decimal = PydanticField(description="product_lgd × (ead − secured − guarantee_cover) / ead, 6 places")
    expected_loss: Decimal = PydanticField(description="pd × product_lgd × (ead − secured − guarantee_cover), in "
                                                       "cents (half up)")
