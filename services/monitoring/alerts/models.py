from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field as PydanticField
from sqlalchemy import JSON, Column, Index, UniqueConstraint
from sqlmodel import Field

from services.monitoring.db import MonitoringTable
from services.monitoring.loans.models import new_id, now
from services.monitoring.rules.models import Severity


class AlertStatus(StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    IN_PROGRESS = "in_progress"
    RESOLVED = "resolved"
    FALSE_POSITIVE = "false_positive"
    # Closed by the system: a correction (a backdated posting, a reversal, feed rows filling a gap) showed the
    # facts the alert stated never held. `corrected_by` names the posting or feed row.
    RESOLVED_BY_CORRECTION = "resolved_by_correction"


# People work an alert forward only. The system closes one a correction disproves and reopens that same alert
# when a later correction (e.g. reversing the posting) makes its facts true again, instead of raising a twin.
TRANSITIONS: dict[AlertStatus, frozenset[AlertStatus]] = {
    AlertStatus.OPEN: frozenset({AlertStatus.ACKNOWLEDGED, AlertStatus.FALSE_POSITIVE,
                                 AlertStatus.RESOLVED_BY_CORRECTION}),
    AlertStatus.ACKNOWLEDGED: frozenset({AlertStatus.IN_PROGRESS, AlertStatus.RESOLVED, AlertStatus.FALSE_POSITIVE,
                                         AlertStatus.RESOLVED_BY_CORRECTION}),
    AlertStatus.IN_PROGRESS: frozenset({AlertStatus.RESOLVED, AlertStatus.FALSE_POSITIVE,
                                        AlertStatus.RESOLVED_BY_CORRECTION}),
    AlertStatus.RESOLVED: frozenset(),
    AlertStatus.FALSE_POSITIVE: frozenset(),
    AlertStatus.RESOLVED_BY_CORRECTION: frozenset({AlertStatus.OPEN}),
}
OPEN_STATUSES = (AlertStatus.OPEN, AlertStatus.ACKNOWLEDGED, AlertStatus.IN_PROGRESS)


class Alert(MonitoringTable, table=True):
    __tablename__ = "alerts"
    __table_args__ = (UniqueConstraint("loan_id", "rule", "trigger_key", name="uq_alerts_event"),
                      Index("ix_alerts_customer_status", "customer_id", "status"),
                      Index("ix_alerts_status_due", "status", "due_at"))

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    loan_id: str = Field(foreign_key="loans.id", max_length=32)
    customer_id: str = Field(max_length=64)
    branch: str = Field(max_length=32)
    rule: str = Field(max_length=64)
    severity: str = Field(max_length=16)
    status: str = Field(default=AlertStatus.OPEN, max_length=32)
    owner: str | None = Field(default=None, max_length=64)
    due_at: date
    evidence: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    trigger_key: str = Field(max_length=100)
    created_on: date
    created_at: datetime = Field(default_factory=now)
    closed_on: date | None = None
    corrected_by: str | None = Field(default=None, max_length=64)


class AlertEvent(MonitoringTable, table=True):
    """Who moved an alert from which status to which, and why: append-only."""

    __tablename__ = "alert_events"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    alert_id: str = Field(foreign_key="alerts.id", index=True, max_length=32)
    from_status: str = Field(max_length=32)
    to_status: str = Field(max_length=32)
    actor: str = Field(max_length=64)
    note: str | None = Field(default=None, max_length=500)
    at: datetime = Field(default_factory=now)


class AlertRead(BaseModel):
    model_config = ConfigDict(from_attributes=True, json_schema_extra={"examples": [
        {"id": "9f1c", "loan_id": "4ab2", "customer_id": "c0ffee", "rule": "dpd_over_30", "severity": "medium",
         "status": "open", "owner": None, "due_at": "2026-03-21", "evidence": {"dpd": 31, "bucket": "M2"},
         "created_at": "2026-03-18T18:00:00Z"}]})

    id: str
    loan_id: str
    customer_id: str
    rule: str
    severity: Severity
    status: AlertStatus
    owner: str | None
    due_at: date
    evidence: dict[str, Any]
    created_at: datetime
    corrected_by: str | None = PydanticField(
        default=None, description="When resolved_by_correction: the posting or feed row that disproved the alert")


class AlertAction(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"note": "called the borrower, promised to pay"}]})

    note: str | None = PydanticField(default=None, max_length=500)


class AlertEventRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    from_status: AlertStatus
    to_status: AlertStatus
    actor: str
    note: str | None
    at: datetime
