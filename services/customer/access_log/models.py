from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict
from sqlalchemy import Column, Index
from sqlmodel import Field

from services.customer.common import TIMESTAMP_SQL, UtcDateTime, utcnow
from services.customer.db import CustomerTable


class AccessAction(StrEnum):
    FULL_VIEW = "full_view"
    ERASURE = "erasure"
    LOOKUP = "lookup"  # found by an exact national ID, phone or email lookup (masked or not)
    REVEAL = "reveal"  # one field shown in full on request, with its reason


class PiiAccess(CustomerTable, table=True):
    """One row per time someone saw a customer's unmasked personal data, found them by an exact lookup, had one
    field revealed, or erased them."""

    __tablename__ = "pii_access_log"
    __table_args__ = (Index("ix_pii_access_at", "at", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    customer_id: str = Field(max_length=32, index=True)
    actor: str = Field(max_length=64, index=True)
    roles: str = Field(max_length=200)
    action: str = Field(max_length=16)
    via: str = Field(max_length=64, description="Which read exposed the data, e.g. `get_customer`.")
    request_id: str | None = Field(default=None, max_length=64)
    reason: str | None = Field(default=None, max_length=200, description="Why a reveal was asked for.")
    at: datetime = Field(default_factory=utcnow, sa_column=Column(TIMESTAMP_SQL, nullable=False))


class PiiAccessRead(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "id": 41, "customer_id": "3f2b9c0e8d7a4e1f9a6b5c4d3e2f1a0b", "actor": "li.wei", "roles": ["loan_officer"],
        "action": "full_view", "via": "get_customer", "request_id": "b3c1...", "reason": None,
        "at": "2026-11-23T09:30:00Z"}]})

    id: int
    customer_id: str
    actor: str
    roles: list[str]
    action: AccessAction
    via: str
    request_id: str | None
    reason: str | None
    at: UtcDateTime
