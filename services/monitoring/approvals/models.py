"""Maker-checker: an act that lowers a loan's recognised risk or what it owes is a request another person approves."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field as PydanticField
from sqlalchemy import JSON, Column, Index
from sqlmodel import Field

from services.monitoring.db import MonitoringTable
from shared.bounds import PositiveAmount, said
from services.monitoring.loans.models import new_id, now
from shared.auth.roles import Role


class ChangeKind(StrEnum):
    PAUSE = "pause"
    WAIVER = "waiver"
    WRITE_OFF = "write_off"
    RESTRUCTURING = "restructuring"
    CLASS_OVERRIDE = "class_override"
    REPAYMENT_PLAN = "repayment_plan"
    DEFERRAL = "deferral"
    EARLY_RECALL = "early_recall"


# Hardship concessions and recalls are the credit committee's or risk's to approve.
_CREDIT_DECIDERS = frozenset({Role.CREDIT_COMMITTEE, Role.RISK_ANALYST, Role.ADMIN})
# Who may approve each kind (never the person who asked); the README lists them.
APPROVERS: dict[ChangeKind, frozenset[str]] = {
    ChangeKind.PAUSE: frozenset({Role.RISK_ANALYST, Role.ADMIN}),
    ChangeKind.WAIVER: frozenset({Role.RISK_ANALYST, Role.ADMIN}),
    ChangeKind.WRITE_OFF: frozenset({Role.RISK_ANALYST, Role.ADMIN}),
    ChangeKind.RESTRUCTURING: frozenset({Role.RISK_ANALYST, Role.ADMIN}),
    ChangeKind.CLASS_OVERRIDE: frozenset({Role.RISK_ANALYST, Role.ADMIN}),
    ChangeKind.REPAYMENT_PLAN: _CREDIT_DECIDERS,
    ChangeKind.DEFERRAL: _CREDIT_DECIDERS,
    ChangeKind.EARLY_RECALL: _CREDIT_DECIDERS,
}
CHECKER_ROLES = tuple(sorted(set().union(*APPROVERS.values())))


class RequestStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"  # and applied, in the same transaction
    REJECTED = "rejected"


class Step(StrEnum):
    REQUESTED = "requested"
    APPROVED = "approved"
    REJECTED = "rejected"
    APPLIED = "applied"


class ChangeRequest(MonitoringTable, table=True):
    """One request of any kind; `payload` is the kind's command as the maker sent it."""

    __tablename__ = "change_requests"
    __table_args__ = (Index("ix_change_requests_queue", "status", "created_at", "id"),)

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    loan_id: str = Field(foreign_key="loans.id", index=True, max_length=32)
    kind: str = Field(max_length=16)
    payload: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    reason: str = Field(max_length=500)
    status: str = Field(default=RequestStatus.PENDING, max_length=16)
    maker: str = Field(max_length=64)
    checker: str | None = Field(default=None, max_length=64)
    requested_on: date
    decided_on: date | None = None
    decision_note: str | None = Field(default=None, max_length=500)
    created_at: datetime = Field(default_factory=now)
    decided_at: datetime | None = None


class ChangeRequestEvent(MonitoringTable, table=True):
    """Append-only: each step of a request (requested, approved or rejected, applied) with who and what."""

    __tablename__ = "change_request_events"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    request_id: str = Field(foreign_key="change_requests.id", index=True, max_length=32)
    loan_id: str = Field(foreign_key="loans.id", max_length=32)
    step: str = Field(max_length=16)
    actor: str = Field(max_length=64)
    business_date: date
    note: str | None = Field(default=None, max_length=500)
    detail: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    at: datetime = Field(default_factory=now)


# --- API schemas -----------------------------------------------------------------------------------------------

class WaivedComponent(StrEnum):
    """What may be waived; principal never is."""

    PENALTY = "penalty"
    INTEREST = "interest"


class WaiverRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"component": "penalty", "amount": "120.50", "reason": "late fees waived after the borrower's hospital stay"}]})

    component: WaivedComponent
    amount: PositiveAmount = PydanticField(description="At most what is due of the component on the business date")
    reason: said(5, 500)


class WriteOffRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"reason": "borrower insolvent, collateral realised, nothing more recoverable"}]})

    reason: said(5, 500)


class Decision(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"approve": True, "note": "agreed at credit committee"}]})

    approve: bool
    note: str | None = PydanticField(default=None, max_length=500)


class EventRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    step: Step
    actor: str
    business_date: date
    note: str | None
    detail: dict[str, Any]
    at: datetime


class ChangeRequestRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    loan_id: str
    kind: ChangeKind
    payload: dict[str, Any]
    reason: str
    status: RequestStatus
    maker: str
    checker: str | None
    requested_on: date
    decided_on: date | None
    decision_note: str | None
    created_at: datetime
    decided_at: datetime | None
    approvers: list[str] = PydanticField(description="The roles that may approve this kind (never its maker)")
    events: list[EventRead]
