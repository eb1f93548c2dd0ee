"""Credit applications: scored at submission, decided by policy or by a second person, then disbursed."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field as PydanticField
from sqlalchemy import JSON, Column
from sqlmodel import Field

from services.scoring.db import ScoringTable
from shared.ids import new_id, now
from shared.db import money_column
from services.scoring.scores.models import Decision, ScoreRead
from services.scoring.screening.models import HitRead
from shared.bounds import BusinessDate, PositiveAmount, said



class ApplicationStatus(StrEnum):
    IN_REVIEW = "in_review"
    # Approved by an officer above what they may approve alone; `approved_amount` is their proposal until a member
    # of the credit committee approves (or declines) it.
    IN_COMMITTEE = "in_committee"
    APPROVED = "approved"
    DECLINED = "declined"
    DISBURSED = "disbursed"


class Product(StrEnum):
    PERSONAL_LOAN = "personal_loan"
    MORTGAGE = "mortgage"
    BUSINESS_LOAN = "business_loan"
    CREDIT_CARD = "credit_card"


class RepaymentMethod(StrEnum):
    EQUAL_INSTALMENT = "equal_instalment"
    EQUAL_PRINCIPAL = "equal_principal"
    INTEREST_ONLY_BULLET = "interest_only_bullet"


class Application(ScoringTable, table=True):
    __tablename__ = "applications"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    customer_id: str = Field(max_length=64, index=True)
    product: str = Field(max_length=32)
    amount: Decimal = Field(sa_column=money_column())
    term_months: int
    purpose: str = Field(max_length=200)
    repayment_method: str = Field(max_length=32)
    # The security offered (what the decision policy asks of weak grades); passed on to the booked loan.
    collateral: str | None = Field(default=None, max_length=200)
    guarantor: str | None = Field(default=None, max_length=200)
    branch: str = Field(max_length=32, index=True)
    # Keyed hashes (services/scoring/hashing.py) of the device and payout account given: screening matches them
    # against other customers' applications without keeping the values.
    device_hash: str | None = Field(default=None, max_length=80, index=True)
    payout_account_hash: str | None = Field(default=None, max_length=80, index=True)
    # What the policy approved before a screening hit held the application in review: approved when cleared.
    held_approved_amount: Decimal | None = Field(default=None, sa_column=money_column(nullable=True))
    status: str = Field(max_length=16, index=True)
    score_id: str = Field(foreign_key="scores.id", max_length=32)
    policy_decision: str = Field(max_length=16)
    approved_amount: Decimal | None = Field(default=None, sa_column=money_column(nullable=True))
    rate_adjustment_bps: int
    submitted_by: str = Field(max_length=64)
    decided_by: str | None = Field(default=None, max_length=64)
    decision_reason: str | None = Field(default=None, max_length=500)
    loan_id: str | None = Field(default=None, max_length=64, index=True)
    created_at: datetime = Field(default_factory=now, index=True)
    updated_at: datetime = Field(default_factory=now)


class ApplicationEvent(ScoringTable, table=True):
    """Status history, append-only."""

    __tablename__ = "application_events"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    application_id: str = Field(foreign_key="applications.id", index=True, max_length=32)
    from_status: str | None = Field(default=None, max_length=16)
    to_status: str = Field(max_length=16)
    actor: str = Field(max_length=64)
    reason: str = Field(max_length=500)
    details: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    at: datetime = Field(default_factory=now)


class ApplicationCreate(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "customer_id": "3f2b9c0e8d7a4e1f9a6b5c4d3e2f1a0b", "product": "personal_loan", "amount": "20000.00",
        "term_months": 24, "purpose": "home renovation", "repayment_method": "equal_instalment", "branch": "BJ001",
        "features": {"duration_in_month": 24, "credit_amount": 20000, "purpose": "furniture/equipment"}}]})

    customer_id: str = PydanticField(min_length=1, max_length=64)
    product: Product
    amount: PositiveAmount
    term_months: int = PydanticField(ge=1, le=480)
    purpose: str = PydanticField(min_length=1, max_length=200)
    repayment_method: RepaymentMethod = RepaymentMethod.EQUAL_INSTALMENT
    collateral: str | None = PydanticField(default=None, min_length=1, max_length=200,
                                           description="The collateral offered, e.g. `apartment, Chaoyang`.")
    guarantor: str | None = PydanticField(default=None, min_length=1, max_length=200,
                                          description="Who guarantees the loan.")
    branch: str | None = PydanticField(default=None, max_length=32, pattern=r"^[A-Za-z0-9_-]+$",
                                       description="Defaults to the submitting officer's branch.")
    device_id: str | None = PydanticField(default=None, min_length=1, max_length=128,
                                          description="The device the application came from; kept only as a "
                                                      "keyed hash, for screening.")
    payout_account: str | None = PydanticField(default=None, min_length=1, max_length=64,
                                               description="The account the loan is to be paid into; kept only as "
                                                           "a keyed hash, for screening.")
    features: dict[str, Any] = PydanticField(default_factory=dict,
                                             description="Application inputs by the champion's feature names.")


class ReviewDecision(StrEnum):
    APPROVE = "approve"
    DECLINE = "decline"


class DecisionCommand(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"decision": "approve", "reason": "Salary slips verified; stable employer", "approved_amount": "15000.00"}]})

    decision: ReviewDecision
    reason: said(3, 500)
    approved_amount: PositiveAmount | None = PydanticField(default=None, description=(
        "Defaults to the lower of amount and suggested limit."))


class DisbursementCommand(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"disbursement_date": "2026-01-15", "annual_rate": "0.0485"}]})

    disbursement_date: BusinessDate
    annual_rate: Decimal | None = PydanticField(
        default=None, ge=0, le=1, max_digits=9, decimal_places=6,
        description="Defaults to the rate disclosed to (and acknowledged by) the customer; another is refused.")


class EventRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    from_status: ApplicationStatus | None
    to_status: ApplicationStatus
    actor: str
    reason: str
    at: datetime


class ApplicationRead(BaseModel):
    model_config = ConfigDict(from_attributes=True, json_schema_extra={"examples": [{
        "id": "9a8b7c6d5e4f40318293a4b5c6d7e8f9", "customer_id": "3f2b9c0e8d7a4e1f9a6b5c4d3e2f1a0b",
        "product": "personal_loan", "amount": "20000.00", "term_months": 24, "purpose": "home renovation",
        "repayment_method": "equal_instalment", "branch": "BJ001", "status": "in_review",
        "score_id": "8d1c0f6a9b2e4f7d8c3a1b5e6f7a8b9c", "policy_decision": "review", "approved_amount": None,
        "rate_adjustment_bps": 100, "submitted_by": "li.wei", "decided_by": None, "decision_reason": None,
        "loan_id": None, "created_at": "2026-01-15T08:00:00Z", "updated_at": "2026-01-15T08:00:00Z"}]})

    id: str
    customer_id: str
    product: Product
    amount: Decimal
    term_months: int
    purpose: str
    repayment_method: RepaymentMethod
    collateral: str | None = None
    guarantor: str | None = None
    branch: str
    status: ApplicationStatus
    score_id: str
    policy_decision: Decision
    approved_amount: Decimal | None
    rate_adjustment_bps: int
    submitted_by: str
    decided_by: str | None
    decision_reason: str | None
    loan_id: str | None
    created_at: datetime
    updated_at: datetime


class ApplicationDetail(ApplicationRead):
    score: ScoreRead
    history: list[EventRead]
    # What screening found at submission and before disbursement, with its evidence and resolution.
    screening_hits: list[HitRead] = []
