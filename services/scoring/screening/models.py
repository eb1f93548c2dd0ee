"""Screening hits: a known fraud pattern found at submission or before disbursement, with its evidence, until a
reviewer confirms (the application is declined) or clears it (it may proceed)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict
from sqlalchemy import JSON, Column
from sqlmodel import Field

from services.scoring.db import ScoringTable
from shared.ids import new_id, now
from shared.bounds import said


class Check(StrEnum):
    SHARED_IDENTIFIERS = "shared_identifiers"
    SHARED_PAYER = "shared_payer"
    CARD_CASH_OUT = "card_cash_out"
    ILLEGAL_FUNDRAISING = "illegal_fundraising"
    # A peer was down: the checks that need it could not run, so the application is not passed silently.
    NOT_DONE = "not_done"


class Stage(StrEnum):
    SUBMISSION = "submission"
    DISBURSEMENT = "disbursement"


class HitStatus(StrEnum):
    OPEN = "open"
    CONFIRMED = "confirmed"
    CLEARED = "cleared"


class ScreeningHit(ScoringTable, table=True):
    __tablename__ = "screening_hits"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    application_id: str = Field(foreign_key="applications.id", index=True, max_length=32)
    stage: str = Field(max_length=16)
    check: str = Field(max_length=32)
    facts: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    thresholds: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    status: str = Field(default=HitStatus.OPEN, max_length=16, index=True)
    resolved_by: str | None = Field(default=None, max_length=64)
    resolution_reason: str | None = Field(default=None, max_length=500)
    created_at: datetime = Field(default_factory=now)
    resolved_at: datetime | None = None


class Finding(BaseModel):
    """What a pure check found: stored as a hit."""

    check: Check
    facts: dict[str, Any]
    thresholds: dict[str, Any]


class HitRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    stage: Stage
    check: Check
    facts: dict[str, Any]
    thresholds: dict[str, Any]
    status: HitStatus
    resolved_by: str | None
    resolution_reason: str | None
    created_at: datetime
    resolved_at: datetime | None


class Resolution(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"reason": "Payer is the borrowers' employer paying salary advances; verified with HR"}]})

    reason: said(3, 500)
