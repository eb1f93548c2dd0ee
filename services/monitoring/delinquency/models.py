from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field as PydanticField
from sqlalchemy import Index
from sqlmodel import Field

from services.monitoring.classification.rules import ChangeCause
from services.monitoring.db import MonitoringTable
from services.monitoring.loans.models import new_id, now
from shared.bounds import BusinessDate


class RiskChange(MonitoringTable, table=True):
    """Append-only: one row per change of bucket, class or IFRS 9 stage, with its cause. Never deleted; a replay
    (backdated posting, reversal) only marks the rows its corrected path supersedes and appends that path.

    The effective timeline is the rows not superseded: per field they chain, each row's from_value the previous
    row's to_value. The as-recorded trail is every row, by recorded_at.
    """

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
    recorded_at: datetime = Field(default_factory=now)  # when it became known
    dpd: int | None = None  # days past due on effective_date (None on rows from before it was kept)
    superseded_at: datetime | None = None  # when a replay replaced it; None while it is effective
    superseded_by: str | None = Field(default=None, max_length=64)  # that replay's reference (the posting)


class HistoryView(StrEnum):
    EFFECTIVE = "effective"
    RECORDED = "recorded"


class RiskChangeRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    field: str
    from_value: str | None
    to_value: str
    cause: ChangeCause
    effective_date: date
    recorded_on: date
    reference: str | None
    dpd: int | None
    recorded_at: datetime
    superseded_at: datetime | None
    superseded_by: str | None


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


class PauseReason(StrEnum):
    """Why the DPD clock may stop: a closed list, so a pause cannot be justified by free text alone."""

    DISPUTE = "dispute"  # the borrower disputes what is due
    NATURAL_DISASTER = "natural_disaster"
    BEREAVEMENT = "bereavement"
    MILITARY_SERVICE = "military_service"
    PAYMENT_HOLIDAY = "payment_holiday"  # a relief scheme ordered by the regulator
    BANK_ERROR = "bank_error"  # the bank failed to collect or to credit a payment


class PauseCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"start": "2026-03-01", "end": "2026-03-31", "reason": "dispute",
         "note": "borrower disputes the February instalment"}]})

    start: BusinessDate = PydanticField(description=(
        "Not before disbursement, nor more than the configured number of days before the business date "
        "(LOANCRM_MONITORING_PAUSE_MAX_BACKDATE_DAYS)"))
    end: BusinessDate = PydanticField(description=(
        "Inclusive; at most LOANCRM_MONITORING_PAUSE_MAX_DAYS days after start"))
    reason: PauseReason
    note: str | None = PydanticField(default=None, max_length=150)


class PauseRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    loan_id: str
    start: date
    end: date | None
    reason: str
    created_by: str
