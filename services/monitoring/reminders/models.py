"""Reminders before a repayment falls due (service contacts, not collection): when, by product and grade, and
each reminder's fate (sent, or skipped with the reason)."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field as PydanticField, field_validator
from sqlalchemy import JSON, Column, Index, UniqueConstraint
from sqlmodel import Field

from services.monitoring.db import MonitoringTable
from services.monitoring.loans.models import new_id, now

ANY = "*"  # a schedule row for every product, or every grade
MAX_OFFSET_DAYS = 60


class ReminderSchedule(MonitoringTable, table=True):
    """Days before the due date a reminder goes out, for a product and grade (either may be `*`)."""

    __tablename__ = "reminder_schedules"

    product: str = Field(primary_key=True, max_length=32)
    grade: str = Field(primary_key=True, max_length=8)
    offsets_days: list[int] = Field(sa_column=Column(JSON, nullable=False))
    updated_by: str = Field(max_length=64)
    updated_at: datetime = Field(default_factory=now)


class ReminderStatus(StrEnum):
    QUEUED = "queued"  # due to go out; the close of business sends it
    SENT = "sent"  # logged in the contact log, whose delivery status the message provider then moves on
    SKIPPED = "skipped"  # not sent, for `reason`


class Reminder(MonitoringTable, table=True):
    __tablename__ = "reminders"
    # One reminder per loan, instalment and offset: re-running a day sends nothing twice.
    __table_args__ = (UniqueConstraint("loan_id", "instalment_number", "offset_days", name="uq_reminders_once"),
                      Index("ix_reminders_status_on", "status", "remind_on"))

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    loan_id: str = Field(foreign_key="loans.id", max_length=32, index=True)
    instalment_number: int
    offset_days: int
    due_date: date
    remind_on: date
    customer_id: str = Field(max_length=64)
    branch: str = Field(max_length=32)
    status: str = Field(default=ReminderStatus.QUEUED, max_length=16)
    channel: str | None = Field(default=None, max_length=16)
    reason: str | None = Field(default=None, max_length=200)
    interaction_id: str | None = Field(default=None, max_length=32)
    created_at: datetime = Field(default_factory=now)
    updated_at: datetime = Field(default_factory=now)


class ScheduleChange(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"offsets_days": [10, 5, 1]}]})

    offsets_days: list[int] = PydanticField(min_length=1, max_length=5, description=(
        f"Days before the due date, 1 to {MAX_OFFSET_DAYS}, each once."))

    @field_validator("offsets_days")
    @classmethod
    def _distinct(cls, offsets: list[int]) -> list[int]:
        if any(not 1 <= d <= MAX_OFFSET_DAYS for d in offsets) or len(set(offsets)) != len(offsets):
            raise ValueError(f"each offset is a distinct number of days from 1 to {MAX_OFFSET_DAYS}")
        return sorted(offsets, reverse=True)


class ScheduleRead(BaseModel):
    model_config = ConfigDict(from_attributes=True, json_schema_extra={"examples": [{
        "product": "*", "grade": "E", "offsets_days": [10, 5, 1], "updated_by": "risk.analyst",
        "updated_at": "2026-11-30T09:00:00Z"}]})

    product: str
    grade: str
    offsets_days: list[int]
    updated_by: str
    updated_at: datetime


class ReminderRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    loan_id: str
    instalment_number: int
    offset_days: int
    due_date: date
    remind_on: date
    customer_id: str
    status: ReminderStatus
    channel: str | None
    reason: str | None
    interaction_id: str | None
