from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field as PydanticField
from sqlalchemy import JSON, Column
from sqlmodel import Field

from services.monitoring.alerts.models import AlertRead
from services.monitoring.db import MonitoringTable
from services.monitoring.loans.models import LoanSummary, money_column, new_id, now
from shared.bounds import BusinessDate, PositiveAmount
from shared.clients.customer import CONTACT_REVEAL_FIELDS, Channel  # the customer service's contract


class ActionKind(StrEnum):
    REMINDER = "reminder"
    CALL = "call"
    VISIT = "visit"
    PROMISE_TO_PAY = "promise_to_pay"
    RESTRUCTURING = "restructuring"
    LEGAL = "legal"
    WRITE_OFF = "write_off"
    ASSET_PRESERVATION = "asset_preservation"  # 资产保全: a case worked through its steps (PreservationStep)


class PreservationStepKind(StrEnum):
    FREEZE_REQUEST = "freeze_request"  # asking the court to freeze the borrower's assets or accounts
    PRESERVATION_ORDER = "preservation_order"  # the court's ruling on it
    ENFORCEMENT = "enforcement"  # seizure, auction, transfer of what was preserved
    RELEASE = "release"  # the preservation lifted (paid, settled, or refused)


class PromiseStatus(StrEnum):
    PENDING = "pending"
    KEPT = "kept"
    BROKEN = "broken"


class ContactLog(StrEnum):
    WRITTEN = "written"  # in the customer's contact log
    QUEUED = "queued"  # the customer service was unreachable; COB retries


class CollectionAction(MonitoringTable, table=True):
    __tablename__ = "collection_actions"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    loan_id: str = Field(foreign_key="loans.id", index=True, max_length=32)
    alert_id: str | None = Field(default=None, foreign_key="alerts.id", max_length=32)
    kind: str = Field(max_length=32)
    channel: str = Field(max_length=16)
    outcome: str = Field(max_length=200)
    notes: str | None = Field(default=None, max_length=1000)
    collector: str = Field(max_length=64)
    occurred_on: date
    occurred_at: datetime = Field(default_factory=now)
    promised_amount: Decimal | None = Field(default=None, sa_column=money_column(nullable=True))
    promised_date: date | None = None
    promise_status: str | None = Field(default=None, max_length=16)


class PreservationStep(MonitoringTable, table=True):
    """Append-only: one step of an asset-preservation action, with its date, outcome and documents."""

    __tablename__ = "preservation_steps"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    action_id: str = Field(foreign_key="collection_actions.id", index=True, max_length=32)
    loan_id: str = Field(foreign_key="loans.id", max_length=32)
    step: str = Field(max_length=32)
    occurred_on: date
    outcome: str = Field(max_length=200)
    document_ref: str | None = Field(default=None, max_length=100)
    notes: str | None = Field(default=None, max_length=1000)
    recorded_by: str = Field(max_length=64)
    recorded_at: datetime = Field(default_factory=now)


class OutboxMessage(MonitoringTable, table=True):
    """A write to a peer that must happen exactly once eventually: committed with the action, sent after."""

    __tablename__ = "outbox"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    action_id: str = Field(foreign_key="collection_actions.id", index=True, max_length=32)
    customer_id: str = Field(max_length=64)
    payload: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    delivered: bool = Field(default=False, index=True)
    attempts: int = 0
    last_error: str | None = Field(default=None, max_length=500)
    created_at: datetime = Field(default_factory=now)
    delivered_at: datetime | None = None


class ActionCreate(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"kind": "promise_to_pay", "channel": "phone", "outcome": "borrower promised to pay", "alert_id": None,
         "promised_amount": "2000.00", "promised_date": "2026-04-10", "notes": "salary due on the 9th"}]})

    kind: ActionKind
    channel: Channel
    outcome: str = PydanticField(min_length=1, max_length=200)
    notes: str | None = PydanticField(default=None, max_length=1000)
    alert_id: str | None = None
    promised_amount: PositiveAmount | None = None
    promised_date: BusinessDate | None = None


class ActionRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    loan_id: str
    alert_id: str | None
    kind: ActionKind
    channel: Channel
    outcome: str
    notes: str | None
    collector: str
    occurred_on: date
    promised_amount: Decimal | None
    promised_date: date | None
    promise_status: PromiseStatus | None
    contact_log: ContactLog = ContactLog.QUEUED


class PreservationStepCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"step": "preservation_order", "occurred_on": "2026-05-12", "outcome": "granted: flat and car frozen",
         "document_ref": "(2026) court ruling no. 1234", "notes": None}]})

    step: PreservationStepKind
    occurred_on: BusinessDate = PydanticField(description="Not before the action, nor after the business date")
    outcome: str = PydanticField(min_length=1, max_length=200)
    document_ref: str | None = PydanticField(default=None, max_length=100,
                                             description="The filing's, ruling's or notice's reference")
    notes: str | None = PydanticField(default=None, max_length=1000)


class PreservationStepRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    action_id: str
    loan_id: str
    step: PreservationStepKind
    occurred_on: date
    outcome: str
    document_ref: str | None
    notes: str | None
    recorded_by: str
    recorded_at: datetime


class ContactReveal(BaseModel):
    """How the collector who owns the item gets the borrower's contact details: the customer service reveals one
    field per call (through the gateway: `/api/customer` + href), checks the item with monitoring and logs the
    read with the item as its reason."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "method": "POST", "href": "/customers/c0ffee/reveal", "fields": ["phone", "email", "address"],
        "body": {"field": "phone", "queue_item_id": "9f1c"}}]})

    method: Literal["POST"] = "POST"
    href: str
    fields: list[str]
    body: dict[str, str]


class QueueItem(BaseModel):
    """One item of the collections queue; its id is the alert's."""

    alert: AlertRead
    loan: LoanSummary
    contact: ContactReveal

    @classmethod
    def of(cls, alert: Any, loan: Any) -> QueueItem:
        return cls(alert=AlertRead.model_validate(alert), loan=LoanSummary.model_validate(loan),
                   contact=ContactReveal(href=f"/customers/{alert.customer_id}/reveal",
                                         fields=list(CONTACT_REVEAL_FIELDS),
                                         body={"field": CONTACT_REVEAL_FIELDS[0], "queue_item_id": alert.id}))
