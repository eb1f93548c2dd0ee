from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field as PydanticField
from sqlalchemy import Column, Index
from sqlmodel import Field

from services.customer.common import TIMESTAMP_SQL, UtcDateTime, new_id, utcnow
from services.customer.db import CustomerTable
from services.customer.interactions.models import Channel
from shared.bounds import Timestamp, said

CSAT_DIMENSIONS = ("service_efficiency", "service_quality", "product_range", "staff_attitude", "resolution_speed")
LOW_CSAT = 2  # a 1 or 2 on any dimension
LOW_NPS = 6  # detractors, 0-6


class Survey(CustomerTable, table=True):
    __tablename__ = "surveys"
    __table_args__ = (Index("ix_surveys_customer_answered", "customer_id", "answered_at"),
                      Index("ix_surveys_branch_answered", "branch", "answered_at"))

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    customer_id: str = Field(foreign_key="customers.id", max_length=32)
    branch: str = Field(max_length=32)
    officer: str = Field(max_length=64, index=True)
    channel: str = Field(max_length=16)
    sent_at: datetime = Field(default_factory=utcnow, sa_column=Column(TIMESTAMP_SQL, nullable=False))
    answered_at: datetime | None = Field(default=None, sa_column=Column(TIMESTAMP_SQL))
    service_efficiency: int | None = None
    service_quality: int | None = None
    product_range: int | None = None
    staff_attitude: int | None = None
    resolution_speed: int | None = None
    nps: int | None = None
    comment: str | None = Field(default=None, max_length=2000)
    sent_by: str = Field(max_length=64)


class TaskStatus(StrEnum):
    OPEN = "open"
    DONE = "done"


class FollowUpTask(CustomerTable, table=True):
    """Work for the customer's officer, opened by a low survey answer."""

    __tablename__ = "follow_up_tasks"
    __table_args__ = (Index("ix_tasks_officer_status", "officer", "status"),)

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    customer_id: str = Field(foreign_key="customers.id", max_length=32)
    branch: str = Field(max_length=32)
    officer: str = Field(max_length=64)
    reason: str = Field(max_length=200)
    survey_id: str | None = Field(default=None, foreign_key="surveys.id", max_length=32)
    status: str = Field(default=TaskStatus.OPEN, max_length=16)
    due_at: datetime = Field(sa_column=Column(TIMESTAMP_SQL, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(TIMESTAMP_SQL, nullable=False))
    done_at: datetime | None = Field(default=None, sa_column=Column(TIMESTAMP_SQL))


class SurveySend(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"channel": "sms", "officer": "li.wei"}]})

    channel: Channel
    officer: str = PydanticField(min_length=1, max_length=64, description="The officer who owns the follow-up.")



class TaskOpen(BaseModel):
    """A follow-up another service asks for (e.g. credit education for a high-risk applicant)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "reason": "credit education or counselling: high-risk applicant (grade D)", "officer": "li.wei",
        "due_at": "2026-11-28T18:00:00Z"}]})

    reason: said(3, 200)
    officer: str = PydanticField(min_length=1, max_length=64, description="Whose work it is.")
    due_at: Timestamp


class SurveyAnswer(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "service_efficiency": 4, "service_quality": 5, "product_range": 3, "staff_attitude": 5,
        "resolution_speed": 2, "nps": 7, "comment": "Slow to fix a statement error."}]})

    service_efficiency: int = PydanticField(ge=1, le=5)
    service_quality: int = PydanticField(ge=1, le=5)
    product_range: int = PydanticField(ge=1, le=5)
    staff_attitude: int = PydanticField(ge=1, le=5)
    resolution_speed: int = PydanticField(ge=1, le=5)
    nps: int = PydanticField(ge=0, le=10)
    comment: str | None = PydanticField(default=None, max_length=2000)
    answered_at: Timestamp | None = PydanticField(None, description="Defaults to now.")


class SurveyRead(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "id": "7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d", "customer_id": "3f2b9c0e8d7a4e1f9a6b5c4d3e2f1a0b",
        "branch": "BJ001", "officer": "li.wei", "channel": "sms", "sent_at": "2026-11-20T09:00:00Z",
        "answered_at": "2026-11-21T18:00:00Z", "service_efficiency": 4, "service_quality": 5, "product_range": 3,
        "staff_attitude": 5, "resolution_speed": 2, "nps": 7, "comment": None, "sent_by": "li.wei",
        "csat_avg": 3.8, "follow_up_task_id": None}]})

    id: str
    customer_id: str
    branch: str
    officer: str
    channel: Channel
    sent_at: UtcDateTime
    answered_at: UtcDateTime | None
    service_efficiency: int | None
    service_quality: int | None
    product_range: int | None
    staff_attitude: int | None
    resolution_speed: int | None
    nps: int | None
    comment: str | None
    sent_by: str
    csat_avg: float | None
    follow_up_task_id: str | None = None


class TaskRead(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "id": "1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e", "customer_id": "3f2b9c0e8d7a4e1f9a6b5c4d3e2f1a0b",
        "branch": "BJ001", "officer": "li.wei", "reason": "low survey answer: resolution_speed 2",
        "survey_id": "7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d", "status": "open", "due_at": "2026-11-24T18:00:00Z",
        "created_at": "2026-11-21T18:00:00Z", "done_at": None}]})

    id: str
    customer_id: str
    branch: str
    officer: str
    reason: str
    survey_id: str | None
    status: TaskStatus
    due_at: UtcDateTime
    created_at: UtcDateTime
    done_at: UtcDateTime | None


class TrendPoint(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "key": "BJ001", "period": "2026-11", "responses": 12, "csat_avg": 4.1, "nps_avg": 7.5}]})

    key: str = PydanticField(description="The customer id, branch or officer the point is for.")
    period: str = PydanticField(description="Calendar month of the answers, YYYY-MM.")
    responses: int
    csat_avg: float
    nps_avg: float
