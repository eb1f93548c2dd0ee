from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field as PydanticField
from sqlalchemy import Column, Index
from sqlmodel import Field

from services.customer.common import TIMESTAMP_SQL, UtcDateTime, new_id, utcnow
from services.customer.db import CustomerTable
# Peers ask about exactly these purposes, so the client's contract is the one definition.
from shared.clients.customer import ConsentPurpose as Purpose
from shared.bounds import Timestamp


class ConsentSource(StrEnum):
    BRANCH_FORM = "branch_form"
    APP = "app"
    WEB = "web"
    PHONE_RECORDING = "phone_recording"
    PARTNER = "partner"


class Consent(CustomerTable, table=True):
    """One grant; withdrawing stamps `withdrawn_at`, so the rows are the history."""

    __tablename__ = "consents"
    __table_args__ = (Index("ix_consents_customer_purpose", "customer_id", "purpose", "granted_at"),)

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    customer_id: str = Field(foreign_key="customers.id", max_length=32)
    purpose: str = Field(max_length=32)
    source: str = Field(max_length=32)
    granted_at: datetime = Field(sa_column=Column(TIMESTAMP_SQL, nullable=False))
    granted_by: str = Field(max_length=64)
    withdrawn_at: datetime | None = Field(default=None, sa_column=Column(TIMESTAMP_SQL))
    withdrawn_by: str | None = Field(default=None, max_length=64)
    withdrawal_source: str | None = Field(default=None, max_length=32)
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(TIMESTAMP_SQL, nullable=False))


class ConsentGrant(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"purpose": "marketing", "source": "app", "granted_at": "2026-11-23T09:00:00Z"}]})

    purpose: Purpose
    source: ConsentSource
    granted_at: Timestamp | None = PydanticField(None, description="When the customer signed; defaults to now.")


class ConsentWithdrawal(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"source": "phone_recording"}]})

    source: ConsentSource


class ConsentRead(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "id": "9a1c0e8d7a4e4f1f9a6b5c4d3e2f1a0b", "customer_id": "3f2b9c0e8d7a4e1f9a6b5c4d3e2f1a0b",
        "purpose": "marketing", "source": "app", "granted_at": "2026-11-23T09:00:00Z", "granted_by": "li.wei",
        "withdrawn_at": None, "withdrawn_by": None, "withdrawal_source": None, "active": True}]})

    id: str
    customer_id: str
    purpose: Purpose
    source: ConsentSource
    granted_at: UtcDateTime
    granted_by: str
    withdrawn_at: UtcDateTime | None
    withdrawn_by: str | None
    withdrawal_source: str | None
    active: bool


class ConsentStatus(BaseModel):
    purpose: Purpose
    allowed: bool
    granted_at: UtcDateTime | None


class ConsentSummary(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "customer_id": "3f2b9c0e8d7a4e1f9a6b5c4d3e2f1a0b",
        "current": [{"purpose": "marketing", "allowed": True, "granted_at": "2026-11-23T09:00:00Z"},
                    {"purpose": "credit_bureau_query", "allowed": False, "granted_at": None},
                    {"purpose": "partner_data_sharing", "allowed": False, "granted_at": None}],
        "history": []}]})

    customer_id: str
    current: list[ConsentStatus]
    history: list[ConsentRead] = PydanticField(description="Every grant, newest first.")


class ConsentCheck(BaseModel):
    """The answer other services rely on before doing purpose P for customer C."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "customer_id": "3f2b9c0e8d7a4e1f9a6b5c4d3e2f1a0b", "purpose": "credit_bureau_query", "allowed": True,
        "granted_at": "2026-11-20T10:00:00Z"}]})

    customer_id: str
    purpose: Purpose
    allowed: bool
    granted_at: UtcDateTime | None
