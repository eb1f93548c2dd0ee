from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field as PydanticField
from sqlmodel import Field

from services.monitoring.db import MonitoringTable
from services.monitoring.loans.models import ClassName, Rate, new_id, now
from services.monitoring.loans.schedule import MAX_TERM_MONTHS
from shared.bounds import BusinessDate


class OverrideStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"


class ClassOverride(MonitoringTable, table=True):
    """A judgement that a loan is worse than its floor: proposed by a maker, applied only once a checker approves."""

    __tablename__ = "class_overrides"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    loan_id: str = Field(foreign_key="loans.id", index=True, max_length=32)
    requested_class: str = Field(max_length=16)
    reason: str = Field(max_length=500)
    status: str = Field(default=OverrideStatus.PENDING, max_length=16)
    maker: str = Field(max_length=64)
    checker: str | None = Field(default=None, max_length=64)
    requested_on: date
    decided_on: date | None = None
    decision_note: str | None = Field(default=None, max_length=500)
    created_at: datetime = Field(default_factory=now)


class OverrideRequest(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"requested_class": "substandard", "reason": "borrower's main customer went bankrupt"}]})

    requested_class: ClassName
    reason: str = PydanticField(min_length=5, max_length=500)


class OverrideDecision(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"approve": True, "note": "agreed at credit committee"}]})

    approve: bool
    note: str | None = PydanticField(default=None, max_length=500)


class OverrideRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    loan_id: str
    requested_class: ClassName
    reason: str
    status: OverrideStatus
    maker: str
    checker: str | None
    requested_on: date
    decided_on: date | None
    decision_note: str | None


class RestructuringRequest(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"reason": "term extended by 12 months after the borrower's shop closed for renovation"},
        {"reason": "rate cut and term extended", "annual_rate": "0.0350", "term_months": 24,
         "effective_date": "2026-03-31"}]})

    reason: str = PydanticField(min_length=5, max_length=200)
    annual_rate: Rate | None = PydanticField(
        default=None, description="The new rate from effective_date; with term_months or alone, the schedule after "
                                  "that date is rebooked (without either, only the classification changes)")
    term_months: int | None = PydanticField(
        default=None, ge=1, le=MAX_TERM_MONTHS,
        description="Instalments of the new schedule (default: as many as were still to fall due)")
    effective_date: BusinessDate | None = PydanticField(
        default=None, description="Rebook from this date (default the business date): not after it, nor before "
                                  "the last posting's value date")
