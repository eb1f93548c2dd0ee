"""Dated records of what the customer shared and held, and the point-in-time relationship measures built on them."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field as PydanticField
from sqlalchemy import JSON, Column, Index
from sqlmodel import Field

from services.customer.common import TIMESTAMP_SQL, MoneyOut, UtcDateTime, new_id, utcnow
from services.customer.db import CustomerTable
from shared.bounds import BusinessDate, Timestamp


class SharingKind(StrEnum):
    PROFILE_UPDATE = "profile_update"
    DOCUMENT_PROVIDED = "document_provided"
    DISCLOSURE_ACKNOWLEDGED = "disclosure_acknowledged"


class DocumentType(StrEnum):
    INCOME_PROOF = "income_proof"
    BANK_STATEMENT = "bank_statement"
    TAX_RETURN = "tax_return"
    FINANCIAL_STATEMENT = "financial_statement"
    EMPLOYMENT_LETTER = "employment_letter"
    ASSET_PROOF = "asset_proof"
    IDENTITY = "identity"
    OTHER = "other"


class Disclosure(StrEnum):
    """What the bank must tell a borrower: rate, fees, term, penalties, how risk is assessed and its result."""

    RATE_AND_FEES = "rate_and_fees"
    TERM_AND_PENALTIES = "term_and_penalties"
    RISK_ASSESSMENT = "risk_assessment"
    TERMS_CHANGE = "terms_change"
    EVALUATION_RESULT = "evaluation_result"


class SharingEvent(CustomerTable, table=True):
    """One dated act of information sharing. Profile updates keep the money figures they replaced, so the income
    and assets a customer had on any past date can be read back."""

    __tablename__ = "information_sharing_events"
    __table_args__ = (Index("ix_sharing_customer_at", "customer_id", "occurred_at"),)

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    customer_id: str = Field(foreign_key="customers.id", max_length=32)
    kind: str = Field(max_length=32)
    detail: str = Field(max_length=300, description="Document type, disclosure, or the profile fields changed.")
    # {"monthly_income": "18000.00" | None, "assets": ...}: the values before a profile update changed them.
    before: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    occurred_at: datetime = Field(sa_column=Column(TIMESTAMP_SQL, nullable=False))
    recorded_by: str = Field(max_length=64)
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(TIMESTAMP_SQL, nullable=False))


class ProductHolding(CustomerTable, table=True):
    """A product of the bank the customer holds (from `opened_on`, until `closed_on`)."""

    __tablename__ = "product_holdings"
    __table_args__ = (Index("ix_holdings_customer_opened", "customer_id", "opened_on"),
                      Index("ix_holdings_product", "product_code", "opened_on"))

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    customer_id: str = Field(foreign_key="customers.id", max_length=32)
    product_code: str = Field(max_length=32)
    opened_on: date
    closed_on: date | None = None
    recorded_by: str = Field(max_length=64)
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(TIMESTAMP_SQL, nullable=False))


class DocumentProvided(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"document_type": "income_proof", "provided_at": "2026-11-23T09:00:00Z"}]})

    document_type: DocumentType
    provided_at: Timestamp | None = PydanticField(None, description="When the customer handed it in; default now.")


class DisclosureAcknowledged(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"disclosure": "rate_and_fees", "acknowledged_at": "2026-11-23T09:00:00Z"}]})

    disclosure: Disclosure
    acknowledged_at: Timestamp | None = PydanticField(None, description="When the customer signed; default now.")


class SharingEventRead(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "id": "2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e", "customer_id": "3f2b9c0e8d7a4e1f9a6b5c4d3e2f1a0b",
        "kind": "document_provided", "detail": "income_proof", "occurred_at": "2026-11-23T09:00:00Z",
        "recorded_by": "li.wei", "created_at": "2026-11-23T09:01:00Z"}]})

    id: str
    customer_id: str
    kind: SharingKind
    detail: str
    occurred_at: UtcDateTime
    recorded_by: str
    created_at: UtcDateTime


class ProductOpened(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"product_code": "DEP-PLUS", "opened_on": "2026-03-01"}]})

    product_code: str = PydanticField(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_-]+$")
    opened_on: BusinessDate
    closed_on: BusinessDate | None = None


class ProductClosed(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"closed_on": "2026-11-30"}]})

    closed_on: BusinessDate


class HoldingRead(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "id": "4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a", "customer_id": "3f2b9c0e8d7a4e1f9a6b5c4d3e2f1a0b",
        "product_code": "DEP-PLUS", "opened_on": "2026-03-01", "closed_on": None, "recorded_by": "li.wei"}]})

    id: str
    customer_id: str
    product_code: str
    opened_on: date
    closed_on: date | None
    recorded_by: str


class RelationshipFeatures(BaseModel):
    """What the bank's relationship with one customer looked like on `as_of`, from events dated on or before it."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "customer_id": "3f2b9c0e8d7a4e1f9a6b5c4d3e2f1a0b", "as_of": "2026-06-30", "window_months": 12,
        "branch": "BJ001", "segment": "gold", "customer_type": "individual", "since": "2023-04-02",
        "tenure_months": 38, "annual_income": "216000.00", "monthly_debt_payments": None,
        "contacts_service": 4, "contacts_marketing": 2, "contacts_followup": 3, "contacts_collection": 1,
        "contacts_inbound": 3, "contacts_outbound": 6, "contacts_relationship": 9, "csat_mean": 4.2,
        "csat_trend": -0.05, "nps_last": 8, "survey_dimensions": {"service_quality": 4.5}, "surveys_count": 2,
        "complaints": 1, "complaints_resolved": 1, "complaints_resolved_on_time": 1, "profile_updates": 1,
        "documents_provided": 2, "data_sharing_consents": 1, "disclosures_acknowledged": 2,
        "information_sharing": 83.3, "products_held": 2, "loyalty_index": 71.4, "loyalty_band": "high"}]})

    customer_id: str
    as_of: date
    window_months: int
    branch: str
    segment: str = PydanticField(description="Value tier on `as_of` (portrait rules over income and assets then).")
    customer_type: str
    since: date = PydanticField(description="First relationship date: registration, first product or first "
                                            "non-collection contact, whichever is earliest.")
    tenure_months: int
    annual_income: MoneyOut | None = PydanticField(description="12 x the monthly income on record on `as_of`.")
    monthly_debt_payments: MoneyOut | None = PydanticField(
        description="Always null: the customer record keeps no debt figure (monitoring's loans hold it).")
    contacts_service: int
    contacts_marketing: int
    contacts_followup: int
    contacts_collection: int = PydanticField(description="Reported only: never counted as relationship.")
    contacts_inbound: int = PydanticField(description="Relationship contacts the customer started.")
    contacts_outbound: int = PydanticField(description="Relationship contacts the bank started.")
    contacts_relationship: int = PydanticField(description="service + marketing + post-loan follow-up.")
    csat_mean: float | None = PydanticField(description="Mean CSAT (1-5) of the answers in the window.")
    csat_trend: float | None = PydanticField(description="Least-squares slope of CSAT per month in the window.")
    nps_last: int | None
    survey_dimensions: dict[str, float]
    surveys_count: int
    complaints: int = PydanticField(description="Complaints received in the window.")
    complaints_resolved: int = PydanticField(description="Of those, resolved on or before `as_of`.")
    complaints_resolved_on_time: int = PydanticField(description="Of those, answered by their deadline.")
    profile_updates: int
    documents_provided: int
    data_sharing_consents: int = PydanticField(description="Partner data-sharing consents in force on `as_of`.")
    disclosures_acknowledged: int
    information_sharing: float = PydanticField(description="0-100, see README \"Relationship measures\".")
    products_held: int = PydanticField(description="Products recorded here as held on `as_of` (loans live in "
                                                   "monitoring: the study joins them).")
    products_ever: int = PydanticField(description="Products opened on or before `as_of`, closed or not.")
    closed_on: date | None = PydanticField(description="When the customer record was closed, if it was.")
    loyalty_index: float = PydanticField(description="0-100, see README \"Relationship measures\".")
    loyalty_band: str = PydanticField(description="low (< 40), medium (40-70), high (>= 70).")


class LoyaltyPoint(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"as_of": "2026-06-30", "loyalty_index": 64.2,
                                                               "loyalty_band": "medium"}]})
    as_of: date
    loyalty_index: float
    loyalty_band: str


class LoyaltyTrend(BaseModel):
    customer_id: str
    points: list[LoyaltyPoint]
    slope_per_month: float | None = PydanticField(description="Least-squares slope of the index per month.")


class LoyaltySegment(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"loyalty_band": "high", "risk": "clean",
                                                               "customers": 412}]})
    loyalty_band: str
    risk: str = PydanticField(description="From the stored portrait: `high_risk`, `watch` (credit hold), `clean`, "
                                          "or `unknown` (monitoring never answered).")
    customers: int


class LookAlike(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "customer_id": "3f2b9c0e8d7a4e1f9a6b5c4d3e2f1a0b", "branch": "BJ001", "distance": 0.42,
        "nearest_holder": "9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d", "loyalty_index": 66.0}]})
    customer_id: str
    branch: str
    distance: float = PydanticField(description="Euclidean, on standardised relationship features.")
    nearest_holder: str
    loyalty_index: float


class FigureRow(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "period": "2026-06", "group": "all", "value": "all", "customers": 1200, "churned": 30, "churn_rate": 0.025,
        "repeat_customers": 200, "repeat_rate": 0.17}]})
    period: str = PydanticField(description="Month, YYYY-MM; figures as of its last day.")
    group: str = PydanticField(description="`all`, `segment` or `loyalty_band`.")
    value: str
    customers: int = PydanticField(description="Customers with a relationship (since on or before the month end) "
                                               "not churned at its start.")
    churned: int = PydanticField(description="Of those, churned by the month end (see README).")
    churn_rate: float | None
    repeat_customers: int = PydanticField(description="Customers who opened a second product by the month end.")
    repeat_rate: float | None


class ChurnModelReport(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "as_of": "2026-11-30", "churn_months": 6, "snapshots": ["2025-05-31"], "rows": 800, "churned": 90,
        "auc": 0.74, "coefficients": {"loyalty_index": -0.8}, "flagged": 35, "threshold": 0.5}]})
    as_of: date
    churn_months: int
    snapshots: list[date]
    rows: int
    churned: int
    auc: float | None = PydanticField(description="On a held-out quarter of the rows; null with one class only.")
    coefficients: dict[str, float] = PydanticField(description="On standardised features.")
    flagged: int = PydanticField(description="Customers whose churn risk now reaches the threshold: set "
                                             "`retention_risk` on their portrait (campaigns target it).")
    threshold: float


def decimal_or_none(value: Any) -> Decimal | None:
    return None if value is None else Decimal(str(value))


class ChurnScore(CustomerTable, table=True):
    """The churn-risk model's last probability for a customer; the portrait's retention flag reads it."""

    __tablename__ = "churn_scores"

    customer_id: str = Field(foreign_key="customers.id", primary_key=True, max_length=32)
    probability: float
    model_as_of: date
    scored_at: datetime = Field(default_factory=utcnow, sa_column=Column(TIMESTAMP_SQL, nullable=False))
