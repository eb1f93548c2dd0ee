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


class VisitType(StrEnum):
    """How a check is carried out."""

    PHONE = "phone"
    ON_SITE_VISIT = "on_site_visit"
    DOCUMENT_REVIEW = "document_review"


class CheckCadence(BaseModel):
    """How the grade and segments of a loan's borrower tighten its checks (LOANCRM_MONITORING_CHECK_CADENCE, JSON).

    A periodic check is due after the shorter of the class-and-amount interval and the grade's (or a segment's)
    interval; the first use-of-funds check comes sooner for the grades named; the grades and segments named in
    `on_site_grades` / `on_site_segments` are visited on site instead of phoned (the use-of-funds check otherwise
    reviews the documents)."""

    periodic_days_by_grade: dict[str, int] = PydanticField(default_factory=lambda: {"C": 120, "D": 60, "E": 30})
    periodic_days_by_segment: dict[str, int] = PydanticField(default_factory=lambda: {"high_risk": 60})
    use_of_funds_days_by_grade: dict[str, int] = PydanticField(default_factory=lambda: {"D": 10, "E": 7})
    on_site_grades: list[str] = PydanticField(default_factory=lambda: ["D", "E"])
    on_site_segments: list[str] = PydanticField(default_factory=lambda: ["high_risk"])


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
    visit_type: str = Field(default=VisitType.PHONE, max_length=16, sa_column_kwargs={"server_default": "phone"})
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
    visit_type: VisitType
    due_date: date
    status: CheckStatus
    outcome: CheckOutcome | None
    findings: str | None
    completed_by: str | None
    completed_on: date | None
