from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field as PydanticField
from sqlalchemy import JSON, Column, or_
from sqlmodel import Field, select

from services.customer.common import MONEY_SQL, TIMESTAMP_SQL, MoneyOut, UtcDateTime, utcnow
from services.customer.db import CustomerTable
from shared.clients.customer import CustomerStatus, KycStatus


class ValueTier(StrEnum):
    PLATINUM = "platinum"
    GOLD = "gold"
    SILVER = "silver"
    STANDARD = "standard"


class Lifecycle(StrEnum):
    PROSPECT = "prospect"
    NEW = "new"
    GROWING = "growing"
    MATURE = "mature"
    DECLINING = "declining"
    DORMANT = "dormant"
    LOST = "lost"


class Segment(StrEnum):
    HIGH_RISK = "high_risk"
    HIGH_VALUE = "high_value"
    POTENTIAL = "potential"
    RETENTION_RISK = "retention_risk"


class CustomerPortrait(CustomerTable, table=True):
    """The last computed portrait of each customer: what segment queries, listings and campaigns read."""

    __tablename__ = "customer_portraits"

    customer_id: str = Field(foreign_key="customers.id", primary_key=True, max_length=32)
    tenure_months: int
    products_held: int
    contacts_90d: int
    contacts_prior_90d: int
    days_since_last_contact: int | None = None
    csat_avg: float | None = None
    csat_trend: float | None = None
    nps_latest: int | None = None
    complaints_12m: int
    monthly_income: Decimal | None = Field(default=None, sa_column=Column(MONEY_SQL))
    assets: Decimal | None = Field(default=None, sa_column=Column(MONEY_SQL))
    latest_score: int | None = None
    latest_grade: str | None = Field(default=None, max_length=8, index=True)
    value_tier: str = Field(max_length=16)
    lifecycle_stage: str = Field(max_length=16, index=True)
    retention_risk: bool
    # Monitoring's risk summary as last received (null: never answered).
    current_max_dpd: int | None = None
    max_dpd_12m: int | None = None
    worst_class: str | None = Field(default=None, max_length=16)
    cluster: int | None = None
    refreshed_at: datetime = Field(default_factory=utcnow, sa_column=Column(TIMESTAMP_SQL, nullable=False))


class SegmentMember(CustomerTable, table=True):
    __tablename__ = "segment_members"

    segment: str = Field(primary_key=True, max_length=32)
    customer_id: str = Field(foreign_key="customers.id", primary_key=True, max_length=32, index=True)
    since: datetime = Field(default_factory=utcnow, sa_column=Column(TIMESTAMP_SQL, nullable=False))


class ClusterProfile(CustomerTable, table=True):
    __tablename__ = "cluster_profiles"

    cluster: int = Field(primary_key=True)
    label: str = Field(max_length=200)
    size: int
    centre: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    refreshed_at: datetime = Field(default_factory=utcnow, sa_column=Column(TIMESTAMP_SQL, nullable=False))


def listing_filters(customer_id_column: Any, *, segment: str | None, lifecycle: str | None,
                    grade: str | None) -> list[Any]:
    """Customer-list filters answered from the stored portraits and segment memberships."""
    filters = []
    if segment is not None:
        filters.append(customer_id_column.in_(select(SegmentMember.customer_id)
                                              .where(SegmentMember.segment == segment)))
    portrait = [column == value for column, value in ((CustomerPortrait.lifecycle_stage, lifecycle),
                                                      (CustomerPortrait.latest_grade, grade)) if value is not None]
    if portrait:
        filters.append(customer_id_column.in_(select(CustomerPortrait.customer_id).where(*portrait)))
    return filters


SERIOUS_DPD = 30  # days past due that make a customer high risk for a year


def credit_clean(portrait: Any) -> list[Any]:
    """SQL for "no credit hold" over the stored portrait (rules.credit_hold: known, not past due now, at most 30
    days past due in 12 months, every class normal)."""
    return [portrait.current_max_dpd == 0, portrait.max_dpd_12m <= SERIOUS_DPD,
            or_(portrait.worst_class.is_(None), portrait.worst_class == "normal")]


class PortraitRead(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "customer_id": "3f2b9c0e8d7a4e1f9a6b5c4d3e2f1a0b", "branch": "BJ001", "status": "active",
        "kyc_status": "verified", "referred_by": None, "tenure_months": 26, "products_held": 2,
        "contacts_90d": 4, "contacts_prior_90d": 6, "days_since_last_contact": 12, "csat_avg": 4.2,
        "csat_trend": -0.4, "nps_latest": 8, "complaints_12m": 1, "monthly_income": "18000.00",
        "assets": "350000.00", "latest_score": 642, "latest_grade": "B", "value_tier": "gold",
        "lifecycle_stage": "mature", "retention_risk": False, "current_max_dpd": 0, "max_dpd_12m": 0,
        "worst_class": "normal", "credit_hold": None, "segments": ["high_value"], "cluster": 2,
        "cluster_label": "established earners, frequent contact", "score_status": "available",
        "refreshed_at": "2026-11-23T09:00:00Z"}]})

    customer_id: str
    branch: str = PydanticField(description="The customer's branch: peers that keep figures about the customer "
                                            "(scores) scope them by it.")
    status: CustomerStatus = PydanticField(description="Only an active customer gets new credit decisions "
                                                       "(scoring by id, applications, loans).")
    kyc_status: KycStatus = PydanticField(description="A customer whose KYC was rejected gets no new credit "
                                                      "decisions either.")
    referred_by: str | None = PydanticField(description="The partner that referred the customer, if any.")
    tenure_months: int
    products_held: int | None = PydanticField(
        description="Active loans (from monitoring); null for a caller without monitoring:read.")
    contacts_90d: int
    contacts_prior_90d: int
    days_since_last_contact: int | None
    csat_avg: float | None = PydanticField(description="Mean CSAT (1-5) over the last 12 months of answers.")
    csat_trend: float | None = PydanticField(description="Latest answer's CSAT minus the earlier mean; < 0 falling.")
    nps_latest: int | None
    complaints_12m: int
    monthly_income: MoneyOut | None
    assets: MoneyOut | None
    latest_score: int | None
    latest_grade: str | None
    value_tier: ValueTier
    lifecycle_stage: Lifecycle
    retention_risk: bool
    current_max_dpd: int | None = PydanticField(None, description="Worst days past due now (monitoring); null "
                                                                  "when monitoring never answered.")
    max_dpd_12m: int | None = PydanticField(None, description="Worst days past due in the last 12 months.")
    worst_class: str | None = PydanticField(None, description="Worst five-category class of an active loan.")
    credit_hold: str | None = PydanticField(None, description="Why no new credit is offered; null when it may be.")
    segments: list[Segment]
    cluster: int | None
    cluster_label: str | None
    score_status: str = PydanticField(description="`available`, `none` or `unavailable` (scoring did not answer).")
    refreshed_at: UtcDateTime
