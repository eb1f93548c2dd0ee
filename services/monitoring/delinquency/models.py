from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, ConfigDict, Field as PydanticField
from sqlalchemy import Index
from sqlmodel import Field

from services.monitoring.classification.rules import ChangeCause
from services.monitoring.db import MonitoringTable
from services.monitoring.loans.models import new_id, now
from shared.bounds import BusinessDate


class RiskChange(MonitoringTable, table=True):
    """Append-only: one row per change of bucket, class or IFRS 9 stage, with its cause. Never updated."""

    __tablename__ = "risk_changes"
    __table_args__ = (Index("ix_risk_changes_loan", "loan_id", "effective_date"),
                      Index("ix_risk_changes_field_date", "field", "effective_date"),
                      Index("ix_risk_changes_field_recorded", "field", "recorded_on"))

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    loan_id: str = Field(foreign_key="loans.id", max_length=32)
    field: str = Field(max_length=16)
    from_value: str | None = Field(default=None, max_length=32)
    to_value: str = Field(max_length=32)
    cause: str = Field(max_length=32)
    effective_date: date
    recorded_on: date  # the business date it was recorded on; differs from effective_date when backdated
    reference: str | None = Field(default=None, max_length=64)
    recorded_at: datetime = Field(default_factory=now)


class RiskChangeRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    field: str
    from_value: str | None
    to_value: str
    cause: ChangeCause
    effective_date: date
    recorded_on: date
    reference: str | None


class DelinquencyPause(MonitoringTable, table=True):
    """Days inside a pause (e.g. a dispute) do not count towards days past due."""

    __tablename__ = "delinquency_pauses"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    loan_id: str = Field(foreign_key="loans.id", index=True, max_length=32)
    start: date
    end: date | None = None  # inclusive; open while None
    reason: str = Field(max_length=200)
    created_by: str = Field(max_length=64)
    created_at: datetime = Field(default_factory=now)


class PauseCreate(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"start": "2026-03-01", "end": "2026-03-31", "reason": "borrower disputes the February instalment"}]})

    start: BusinessDate
    end: BusinessDate | None = None
    reason: str = PydanticField(min_length=3, max_length=200)


class PauseRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    loan_id: str
    start: date
    end: date | None
    reason: str
    created_by: str
