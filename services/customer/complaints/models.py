from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field as PydanticField
from sqlalchemy import Column, Index
from sqlmodel import Field

from services.customer.common import TIMESTAMP_SQL, UtcDateTime, new_id, utcnow
from services.customer.db import CustomerTable
from services.customer.interactions.models import Channel
from shared.bounds import Timestamp


class ComplaintKind(StrEnum):
    FEEDBACK = "feedback"
    COMPLAINT = "complaint"


class ComplaintStatus(StrEnum):
    OPEN = "open"
    IN_PROGRESS = "in_progress"
    RESOLVED = "resolved"
    REJECTED = "rejected"


OPEN_STATUSES = (ComplaintStatus.OPEN.value, ComplaintStatus.IN_PROGRESS.value)


class Complaint(CustomerTable, table=True):
    __tablename__ = "complaints"
    __table_args__ = (Index("ix_complaints_status_due", "status", "due_at"),
                      Index("ix_complaints_customer_opened", "customer_id", "opened_at"))

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    customer_id: str = Field(foreign_key="customers.id", max_length=32)
    branch: str = Field(max_length=32, index=True)
    kind: str = Field(max_length=16)
    channel: str = Field(max_length=16)
    category: str = Field(max_length=64)
    description: str | None = Field(default=None, max_length=4000)
    status: str = Field(default=ComplaintStatus.OPEN, max_length=16)
    assigned_to: str | None = Field(default=None, max_length=64)
    opened_at: datetime = Field(default_factory=utcnow, sa_column=Column(TIMESTAMP_SQL, nullable=False))
    due_at: datetime = Field(sa_column=Column(TIMESTAMP_SQL, nullable=False))
    responded_at: datetime | None = Field(default=None, sa_column=Column(TIMESTAMP_SQL))
    response: str | None = Field(default=None, max_length=4000)
    recorded_by: str = Field(max_length=64)


class ComplaintCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "kind": "complaint", "channel": "phone", "category": "fees",
        "description": "Charged a late fee although paid on time.", "assigned_to": "li.wei"}]})

    kind: ComplaintKind
    channel: Channel
    category: str = PydanticField(min_length=1, max_length=64, pattern=r"^[a-z0-9_]+$", examples=["fees"])
    description: str | None = PydanticField(default=None, max_length=4000)
    assigned_to: str | None = PydanticField(default=None, max_length=64)
    received_at: Timestamp | None = PydanticField(
        None, description="When the bank received it (a letter logged days later); the deadline runs from here.")


class ComplaintResponse(BaseModel):
    """Move a complaint on: start work, or close it with the answer given to the customer."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"status": "resolved", "response": "Fee refunded on 2026-11-24."}]})

    status: ComplaintStatus
    response: str | None = PydanticField(default=None, max_length=4000)
    assigned_to: str | None = PydanticField(default=None, max_length=64)


class ComplaintRead(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "id": "5e4d3c2b1a0f9e8d7c6b5a4f3e2d1c0b", "customer_id": "3f2b9c0e8d7a4e1f9a6b5c4d3e2f1a0b",
        "branch": "BJ001", "kind": "complaint", "channel": "phone", "category": "fees",
        "description": "Charged a late fee although paid on time.", "status": "open", "assigned_to": "li.wei",
        "opened_at": "2026-11-23T09:00:00Z", "due_at": "2026-12-08T09:00:00Z", "responded_at": None,
        "response": None, "recorded_by": "li.wei", "overdue": False}]})

    id: str
    customer_id: str
    branch: str
    kind: ComplaintKind
    channel: Channel
    category: str
    description: str | None
    status: ComplaintStatus
    assigned_to: str | None
    opened_at: UtcDateTime
    due_at: UtcDateTime
    responded_at: UtcDateTime | None
    response: str | None
    recorded_by: str
    overdue: bool = PydanticField(description="Still open after its response deadline.")
