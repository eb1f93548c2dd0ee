from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field as PydanticField
from sqlalchemy import Index, UniqueConstraint
from sqlmodel import Field

from services.monitoring.db import MonitoringTable
from services.monitoring.loans.models import new_id, now


class CheckKind(StrEnum):
    USE_OF_FUNDS = "use_of_funds"  # 首次跟踪检查: were the funds used for the stated purpose
    RISK_REVIEW = "risk_review"  # the loan fell to special mention or worse: look at it
    PERIODIC = "periodic"  # 定期检查: the routine check, at an interval set by class and amount


class CheckStatus(StrEnum):
    OPEN = "open"
    DONE = "done"


class CheckOutcome(StrEnum):
    SATISFACTORY = "satisfactory"
    CONCERN = "concern"


class CheckTask(MonitoringTable, table=True):
    __tablename__ = "check_tasks"
    __table_args__ = (UniqueConstraint("loan_id", "kind", "due_date", name="uq_check_tasks_due"),
                      Index("ix_check_tasks_open", "status", "due_date"),
                      Index("ix_check_tasks_completed", "completed_on"))

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    loan_id: str = Field(foreign_key="loans.id", max_length=32)
    branch: str = Field(max_length=32)
    officer: str = Field(max_length=64)
    kind: str = Field(max_length=32)
    due_date: date
    status: str = Field(default=CheckStatus.OPEN, max_length=16)
    outcome: str | None = Field(default=None, max_length=16)
    findings: str | None = Field(default=None, max_length=2000)
    completed_by: str | None = Field(default=None, max_length=64)
    completed_on: date | None = None
    created_at: datetime = Field(default_factory=now)


class CheckCompletion(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"outcome": "satisfactory", "findings": "invoices for the renovation seen at the site visit"}]})

    outcome: CheckOutcome
    findings: str = PydanticField(min_length=5, max_length=2000)


class CheckRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    loan_id: str
    officer: str
    kind: CheckKind
    due_date: date
    status: CheckStatus
    outcome: CheckOutcome | None
    findings: str | None
    completed_by: str | None
    completed_on: date | None
