"""Bulk repayment files (direct debit, payment processors): one job per file, its progress and its row errors."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field as PydanticField
from sqlalchemy import Column, Index, LargeBinary
from sqlmodel import Field

from services.monitoring.db import MonitoringTable
from services.monitoring.loans.models import new_id, now

# The columns of a repayment file (README "Bulk repayment files"); one of loan_id / loan_external_id per row.
COLUMNS = ("reference", "loan_id", "loan_external_id", "amount", "value_date", "payer_account")
REQUIRED = ("reference", "amount")


class FileStatus(StrEnum):
    QUEUED = "queued"  # accepted, not started (or interrupted before its first chunk)
    RUNNING = "running"
    COMPLETED = "completed"


class RepaymentFile(MonitoringTable, table=True):
    """One uploaded file and how far its posting got. `rows_done` moves in the transaction that posts its chunk,
    so a run that stopped (crash, restart) resumes after the last chunk it committed."""

    __tablename__ = "repayment_files"
    __table_args__ = (Index("ix_repayment_files_created", "created_at"),)

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    source: str = Field(max_length=20)
    filename: str = Field(max_length=200)
    sha256: str = Field(max_length=64)
    status: str = Field(default=FileStatus.QUEUED, max_length=16)
    rows_total: int = 0
    rows_done: int = 0
    posted: int = 0
    duplicates: int = 0
    failed: int = 0
    # An upload's bytes; a file posted from the command line is read from `path` instead.
    content: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    path: str | None = Field(default=None, max_length=1000)
    # Whose scope the rows are posted in: the uploader's (every branch, or one loan officer's branch).
    scope_everything: bool = False
    scope_branch: str | None = Field(default=None, max_length=32)
    created_by: str = Field(max_length=64)
    created_at: datetime = Field(default_factory=now)
    finished_at: datetime | None = None


class RepaymentFileError(MonitoringTable, table=True):
    """A row of a file that was not posted, and why (a row already posted by an earlier run is not an error)."""

    __tablename__ = "repayment_file_errors"

    file_id: str = Field(foreign_key="repayment_files.id", primary_key=True, max_length=32)
    line: int = Field(primary_key=True)
    field: str | None = Field(default=None, max_length=32)
    reference: str | None = Field(default=None, max_length=64)
    message: str = Field(max_length=500)


class RepaymentFileRead(BaseModel):
    model_config = ConfigDict(from_attributes=True, json_schema_extra={"examples": [{
        "id": "6f1d0c2b9a8e4f7d8c6b5a4e3d2c1b0a", "source": "dd-bank", "filename": "2026-06-30.csv",
        "sha256": "9f2c...", "status": "completed", "rows_total": 3, "rows_done": 3, "posted": 1, "duplicates": 1,
        "failed": 1, "created_by": "officer1", "created_at": "2026-06-30T18:00:00Z",
        "finished_at": "2026-06-30T18:00:01Z"}]})

    id: str
    source: str
    filename: str
    sha256: str
    status: FileStatus
    rows_total: int = PydanticField(description="Data rows in the file (the header not counted).")
    rows_done: int = PydanticField(description="Rows processed so far; a resumed run continues after them.")
    posted: int
    duplicates: int = PydanticField(description="Rows whose reference was already posted (by an earlier run or "
                                                "upload of the file): skipped, nothing posted twice.")
    failed: int = PydanticField(description="Rows refused; each has an entry in the file's errors.")
    created_by: str
    created_at: datetime
    finished_at: datetime | None


class RepaymentFileErrorRead(BaseModel):
    model_config = ConfigDict(from_attributes=True, json_schema_extra={"examples": [{
        "line": 4, "field": "amount", "reference": "DD-000003",
        "message": "Decimal input should have no more than 2 decimal places"}]})

    line: int = PydanticField(description="Line in the file; the header is line 1.")
    field: str | None = PydanticField(description="The column at fault, when one is.")
    reference: str | None
    message: str
