from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field as PydanticField
from sqlalchemy import JSON, Column
from sqlmodel import Field

from services.monitoring.db import MonitoringTable
from services.monitoring.loans.models import new_id, now
from shared.bounds import BusinessDate


class RunStatus(StrEnum):
    RUNNING = "running"
    COMPLETED = "completed"
    # Shown, never stored: a running run whose lease lapsed (its worker died or gave up); POST resumes it.
    STALLED = "stalled"
    # Shown, never stored: a later day of a catch-up range, waiting for the days before it.
    QUEUED = "queued"


class CobRun(MonitoringTable, table=True):
    """One close of business per business date; a second request for the date answers this record."""

    __tablename__ = "cob_runs"

    business_date: date = Field(primary_key=True)
    status: str = Field(default=RunStatus.RUNNING, max_length=16)
    chunk_size: int
    chunks_total: int = 0
    chunks_done: int = 0
    # Loans ageing could change when the run was planned: the others are current.
    loans_total: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    loans_processed: int = 0
    loans_changed: int = 0
    history_appended: int = 0
    alerts_raised: int = 0
    failures: int = 0
    attempts: int = 1
    steps: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    triggered_by: str = Field(max_length=64)
    started_at: datetime = Field(default_factory=now)
    finished_at: datetime | None = None
    # The last day of the catch-up range this day belongs to; finishing the day plans the next one.
    through: date | None = None
    # The worker holding the run, and when it last said it is alive.
    lease_owner: str | None = Field(default=None, max_length=32)
    heartbeat_at: datetime | None = None


class CobChunk(MonitoringTable, table=True):
    """A range of loan ids; committed with its loans' writes, so a crash loses at most the chunk in hand."""

    __tablename__ = "cob_chunks"

    business_date: date = Field(primary_key=True)
    number: int = Field(primary_key=True)
    first_id: str = Field(max_length=32)
    next_first_id: str | None = Field(default=None, max_length=32)  # None: up to the last loan
    done: bool = False
    processed: int = 0
    changed: int = 0
    finished_at: datetime | None = None


class CobFailure(MonitoringTable, table=True):
    """A loan whose step failed: skipped by the run, listed in its report."""

    __tablename__ = "cob_failures"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    business_date: date = Field(index=True)
    loan_id: str = Field(max_length=32)
    step: str = Field(max_length=32)
    error: str = Field(max_length=500)
    recorded_at: datetime = Field(default_factory=now)


class CobRequest(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"business_date": "2026-03-31"}, {"business_date": "2026-03-28", "through": "2026-03-31"}]})

    business_date: BusinessDate = PydanticField(description="The day to close: the day after the last closed one "
                                                            "(or a running or stalled day, to resume it).")
    through: BusinessDate | None = PydanticField(None, description="Catch-up: close every day from business_date "
                                                                   "through this one, each in order.")


class FailureRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    loan_id: str
    step: str
    error: str


class CobReport(BaseModel):
    model_config = ConfigDict(from_attributes=True, json_schema_extra={"examples": [
        {"business_date": "2026-03-31", "status": "completed", "chunk_size": 5000, "chunks_total": 200,
         "chunks_done": 200, "loans_total": 100000, "loans_processed": 100000, "loans_changed": 100000,
         "history_appended": 5210,
         "alerts_raised": 812, "attempts": 1,
         "steps": {"rescore": {"status": "skipped", "reason": "no token to call peers with"}},
         "failures": [], "started_at": "2026-03-31T18:00:00Z", "finished_at": "2026-03-31T18:00:41Z"}]})

    business_date: date
    status: RunStatus
    chunk_size: int
    chunks_total: int
    chunks_done: int
    loans_total: int = PydanticField(description="Loans to age, counted when the run was planned (overdue, still "
                                                 "carrying days past due, or restructured); current loans need nothing")
    loans_processed: int = PydanticField(description="Loans aged so far: progress is loans_processed / loans_total")
    loans_changed: int
    history_appended: int
    alerts_raised: int
    attempts: int = PydanticField(description="How many times this date was started; above 1 means it resumed.")
    steps: dict[str, Any] = PydanticField(description="Each step after ageing: done, or skipped with the reason.")
    failures: list[FailureRead]
    started_at: datetime | None = PydanticField(description="None while queued")
    finished_at: datetime | None
    through: date | None = PydanticField(None, description="The last day of the catch-up range this day is in")
    heartbeat_at: datetime | None = PydanticField(None, description="When the worker last renewed its lease; a "
                                                                    "running run not renewed in time is stalled")


class BusinessDateRead(BaseModel):
    business_date: date
    last_cob: date | None
