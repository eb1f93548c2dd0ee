"""Scores: every answer given, with the model version, hashed inputs and the shadow challenger's twin."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field as PydanticField
from sqlalchemy import JSON, Column, Index
from sqlmodel import Field

from services.scoring.db import ScoringTable
from shared.ids import new_id, now
from shared.bounds import PositiveAmount
from shared.db import money_column

MAX_BATCH_ROWS = 10_000


class Decision(StrEnum):
    APPROVE = "approve"
    REVIEW = "review"
    DECLINE = "decline"


class Score(ScoringTable, table=True):
    __tablename__ = "scores"
    # A model's recent scores (the stability report) read newest first along (model_id, created_at).
    __table_args__ = (Index("ix_scores_customer_created", "customer_id", "created_at"),
                      Index("ix_scores_model_created", "model_id", "created_at"))

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    customer_id: str | None = Field(default=None, max_length=64)
    application_id: str | None = Field(default=None, max_length=32, index=True)
    # The customer's branch when scored (else the asking officer's): a loan officer reads its branch's scores only.
    branch: str | None = Field(default=None, max_length=32)
    model_id: str = Field(foreign_key="model_versions.id", max_length=32)
    model_version: str = Field(max_length=80)
    # A shadow row is the challenger's answer to the same request; it is never returned to the caller.
    shadow: bool = Field(default=False)
    champion_score_id: str | None = Field(default=None, max_length=32, index=True)
    pd: float
    score: float
    grade: str = Field(max_length=8)
    decision: str = Field(max_length=16)
    suggested_limit: Decimal = Field(sa_column=money_column())
    rate_adjustment_bps: int
    reasons: list[dict[str, Any]] = Field(sa_column=Column(JSON, nullable=False))
    warnings: list[dict[str, Any]] = Field(sa_column=Column(JSON, nullable=False))
    inputs: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    points_per_feature: dict[str, float] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    created_at: datetime = Field(default_factory=now)
    created_by: str = Field(max_length=64)


# One applicant of the German credit data, every feature the default champion reads.
_APPLICANT: dict[str, Any] = {
    "status_of_existing_checking_account": "no checking account", "duration_in_month": 12,
    "credit_history": "critical account/ other credits existing (not at this bank)", "purpose": "education",
    "credit_amount": 2096, "savings_account_and_bonds": "... < 100 DM",
    "present_employment_since": "4 <= ... < 7 years",
    "installment_rate_in_percentage_of_disposable_income": 2, "personal_status_and_sex": "male : divorced/separated",
    "other_debtors_or_guarantors": "none", "present_residence_since": 3, "property": "real estate",
    "age_in_years": 49, "other_installment_plans": "none", "housing": "own",
    "number_of_existing_credits_at_this_bank": 1, "job": "unskilled - resident",
    "number_of_people_being_liable_to_provide_maintenance_for": 2, "telephone": "none", "foreign_worker": "yes"}


class ScoreInput(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "customer_id": None, "requested_amount": "20000.00", "features": _APPLICANT}]})

    customer_id: str | None = PydanticField(
        default=None, min_length=1, max_length=64,
        description="Fetch relationship features (portrait) from the customer service; needs the customer's "
                    "credit_bureau_query consent.")
    features: dict[str, Any] = PydanticField(
        default_factory=dict, description="Application inputs by the model's feature names; null = missing.")
    requested_amount: PositiveAmount | None = PydanticField(default=None, description="Caps the suggested limit.")


class BatchRequest(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"rows": [
        {"features": _APPLICANT}, {"features": {**_APPLICANT, "duration_in_month": 24, "credit_amount": 5951}}]}]})

    rows: list[ScoreInput] = PydanticField(min_length=1, max_length=MAX_BATCH_ROWS)


class Reason(BaseModel):
    feature: str
    impact: float = PydanticField(description="How much this feature lowered the score, in `unit`.")
    unit: str = PydanticField(description="points (scorecard shortfall from the feature's best bin), pd (occlusion), "
                                          "or input_contract (the input was held for review, see `code`)")
    points: float | None = PydanticField(default=None, description="Points the feature earned (scorecard only).")
    code: str | None = PydanticField(default=None, description="unit input_contract only: the warning "
                                     "(unseen_category, missing_value) that sent an approval to review")


class InputWarning(BaseModel):
    field: str
    code: str = PydanticField(description="unseen_category, missing_value, or previous_inputs (a re-scoring by "
                                          "customer id reused the application inputs of the last score)")
    message: str


class ScoreRead(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "id": "8d1c0f6a9b2e4f7d8c3a1b5e6f7a8b9c", "customer_id": "c0ffee", "application_id": None,
        "model_version": "german-credit-v1", "pd": 0.12, "score": 548.3, "points": 548, "grade": "B",
        "decision": "approve", "suggested_limit": "20000.00", "rate_adjustment_bps": 0,
        "reasons": [{"feature": "duration_in_month", "impact": 14.2, "unit": "points", "points": 31.0}],
        "warnings": [], "created_at": "2026-01-15T08:00:00Z"}]})

    id: str
    customer_id: str | None
    application_id: str | None
    model_version: str
    pd: float = PydanticField(description="Probability of default (bad = 1).")
    score: float = PydanticField(description="Points on the model's scale (600 at 50:1 odds, PDO 20 by default).")
    points: int = PydanticField(description="`score` rounded.")
    grade: str
    decision: Decision
    suggested_limit: Decimal
    rate_adjustment_bps: int
    reasons: list[Reason]
    warnings: list[InputWarning]
    created_at: datetime


class BatchRead(BaseModel):
    model_version: str
    count: int
    scores: list[ScoreRead]
