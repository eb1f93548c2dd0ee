"""What a customer was shown before borrowing (terms, total cost, how the decision was made and why) and their
acknowledgement; and the customer-facing evaluation of their score, in plain words."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field as PydanticField
from sqlalchemy import JSON, Column, Numeric
from sqlmodel import Field

from services.scoring.db import ScoringTable
from shared.ids import now
from shared.bounds import BusinessDate, Timestamp
from shared.clients.customer import Channel
from shared.db import money_column


class Disclosure(ScoringTable, table=True):
    """One per application: what was last shown, and when and how the customer acknowledged it."""

    __tablename__ = "application_disclosures"

    application_id: str = Field(foreign_key="applications.id", primary_key=True, max_length=32)
    amount: Decimal = Field(sa_column=money_column())
    annual_rate: Decimal = Field(sa_column=Column(Numeric(9, 6), nullable=False))
    term_months: int
    repayment_method: str = Field(max_length=32)
    fees: Decimal = Field(sa_column=money_column())
    penalty_daily_rate: Decimal = Field(sa_column=Column(Numeric(9, 6), nullable=False))
    first_instalment: Decimal = Field(sa_column=money_column())
    total_interest: Decimal = Field(sa_column=money_column())
    total_cost: Decimal = Field(sa_column=money_column())  # interest and fees: what borrowing costs
    decision: str = Field(max_length=500)
    reasons: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    shown_at: datetime = Field(default_factory=now)
    shown_by: str = Field(max_length=64)
    acknowledged_at: datetime | None = None
    acknowledged_channel: str | None = Field(default=None, max_length=16)
    acknowledgement_recorded_by: str | None = Field(default=None, max_length=64)


class DisclosureCommand(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"annual_rate": "0.0485", "expected_disbursement_date": "2026-01-15"}]})

    annual_rate: Decimal | None = PydanticField(
        default=None, ge=0, le=1, max_digits=9, decimal_places=6,
        description="The rate offered; defaults to the base rate plus the grade's adjustment. The loan is booked at "
                    "the rate disclosed.")
    expected_disbursement_date: BusinessDate | None = PydanticField(
        default=None, description="Dates the schedule the cost is worked out on; defaults to today.")


class AcknowledgementCommand(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"channel": "branch", "acknowledged_at": "2026-01-14T10:00:00Z"}]})

    channel: Channel = PydanticField(description="Where the customer acknowledged (signed at the branch, in the "
                                                 "app, ...).")
    acknowledged_at: Timestamp | None = PydanticField(default=None, description="Defaults to now.")


class DisclosureRead(BaseModel):
    model_config = ConfigDict(from_attributes=True, json_schema_extra={"examples": [{
        "application_id": "9a8b7c6d5e4f40318293a4b5c6d7e8f9", "amount": "8000.00", "annual_rate": "0.043500",
        "term_months": 12, "repayment_method": "equal_instalment", "fees": "0.00", "penalty_daily_rate": "0.000500",
        "first_instalment": "681.55", "total_interest": "178.60", "total_cost": "178.60",
        "decision": "Approved automatically by the bank's credit policy, from your credit score (grade B).",
        "reasons": ["the length of the loan you asked for"], "shown_at": "2026-01-14T09:50:00Z",
        "shown_by": "li.wei", "acknowledged_at": "2026-01-14T10:00:00Z", "acknowledged_channel": "branch",
        "acknowledgement_recorded_by": "li.wei"}]})

    application_id: str
    amount: Decimal
    annual_rate: Decimal
    term_months: int
    repayment_method: str
    fees: Decimal
    penalty_daily_rate: Decimal = PydanticField(description="Penalty interest a day on what is overdue.")
    first_instalment: Decimal
    total_interest: Decimal
    total_cost: Decimal = PydanticField(description="Interest and fees over the whole term.")
    decision: str = PydanticField(description="How the decision was made, in plain words.")
    reasons: list[str] = PydanticField(description="What weighed most on the score, in plain words.")
    shown_at: datetime
    shown_by: str
    acknowledged_at: datetime | None
    acknowledged_channel: Channel | None
    acknowledgement_recorded_by: str | None


class EvaluationRead(BaseModel):
    """A customer's latest evaluation as it may be told to them: no points, probabilities or model names."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "customer_id": "3f2b9c0e8d7a4e1f9a6b5c4d3e2f1a0b", "evaluated_on": "2026-01-14", "grade": "C",
        "outcome": "Your application needs a closer look by a credit officer.",
        "explanation": "Your score was lowered mainly by: a short credit history; no savings we know of.",
        "reasons": ["a short credit history", "no savings we know of"]}]})

    customer_id: str
    evaluated_on: date
    grade: str
    outcome: str
    explanation: str
    reasons: list[str]
