from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field as PydanticField
from sqlalchemy import Column, Index
from sqlmodel import Field

from services.customer.common import TIMESTAMP_SQL, UtcDateTime, new_id, utcnow
from services.customer.db import CustomerTable
from shared.clients.customer import Channel, DeliveryStatus  # the contact log's channels are its contract
from shared.bounds import Timestamp


class Direction(StrEnum):
    INBOUND = "inbound"
    OUTBOUND = "outbound"


class ContactPurpose(StrEnum):
    SERVICE = "service"
    MARKETING = "marketing"
    POST_LOAN_FOLLOW_UP = "post_loan_follow_up"
    COLLECTION = "collection"


# Contacts made because a loan is delinquent are not relationship: no relationship measure (portrait, features,
# loyalty) ever counts a collection contact, or the delinquent would look the best communicated with.
RELATIONSHIP_PURPOSES = (ContactPurpose.SERVICE.value, ContactPurpose.MARKETING.value,
                         ContactPurpose.POST_LOAN_FOLLOW_UP.value)
# Roles that may log only some purposes, whatever a body says: a collector only ever contacts a customer because a
# loan is overdue; COB's batch delivers the collectors' queued calls and sends the service reminders before a due
# date.
LIMITED_PURPOSES = {"collector": frozenset({ContactPurpose.COLLECTION}),
                    "batch": frozenset({ContactPurpose.COLLECTION, ContactPurpose.SERVICE})}
# Who may log a contact at all.
# "batch": COB delivering the contacts monitoring queued when the customer service was down.
LOGGING_ROLES = ("admin", "loan_officer", "collector", "partner", "batch")


class Interaction(CustomerTable, table=True):
    __tablename__ = "interactions"
    __table_args__ = (
        Index("ix_interactions_customer_at", "customer_id", "occurred_at"),
        Index("ix_interactions_branch_at", "branch", "occurred_at"),
        Index("ix_interactions_officer_at", "officer", "occurred_at"),
    )

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    customer_id: str = Field(foreign_key="customers.id", max_length=32)
    # The customer's branch when the contact happened, so branch reports need no join.
    branch: str = Field(max_length=32)
    channel: str = Field(max_length=16)
    direction: str = Field(max_length=16)
    purpose: str = Field(max_length=32)
    outcome: str = Field(max_length=64)
    officer: str = Field(max_length=64)
    occurred_at: datetime = Field(sa_column=Column(TIMESTAMP_SQL, nullable=False))
    notes: str | None = Field(default=None, max_length=2000)
    campaign_id: str | None = Field(default=None, max_length=32, index=True)
    # How far an automated message (a reminder) got; None for a contact a person made.
    delivery_status: str | None = Field(default=None, max_length=16)
    recorded_by: str = Field(max_length=64)
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(TIMESTAMP_SQL, nullable=False))


class InteractionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "channel": "phone", "direction": "outbound", "purpose": "collection", "outcome": "promise_to_pay",
        "occurred_at": "2026-11-23T10:15:00Z", "notes": "Will pay 1,200.00 on Friday."}]})
    # No `officer`: who made the contact is whoever logs it, from the token (a body naming someone is refused).

    channel: Channel
    direction: Direction
    purpose: ContactPurpose
    outcome: str = PydanticField(min_length=1, max_length=64, pattern=r"^[a-z0-9_]+$",
                                 description="Short snake_case code, e.g. `reached`, `no_answer`, `promise_to_pay`.")
    occurred_at: Timestamp
    notes: str | None = PydanticField(default=None, max_length=2000)
    campaign_id: str | None = PydanticField(default=None, max_length=32,
                                            description="Set when this contact answers a campaign.")
    delivery_status: DeliveryStatus | None = PydanticField(
        default=None, description="An automated message's delivery: queued, sent, delivered or failed.")


class DeliveryUpdate(BaseModel):
    """What the message provider reports back about an automated message."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"delivery_status": "delivered"}]})

    delivery_status: DeliveryStatus


class InteractionRead(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "id": "0c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f", "customer_id": "3f2b9c0e8d7a4e1f9a6b5c4d3e2f1a0b",
        "branch": "BJ001", "channel": "phone", "direction": "outbound", "purpose": "collection",
        "outcome": "promise_to_pay", "officer": "zhao.lei", "occurred_at": "2026-11-23T10:15:00Z",
        "notes": "Will pay 1,200.00 on Friday.", "campaign_id": None, "recorded_by": "monitoring",
        "created_at": "2026-11-23T10:16:00Z"}]})

    id: str
    customer_id: str
    branch: str
    channel: Channel
    direction: Direction
    purpose: ContactPurpose
    outcome: str
    officer: str
    occurred_at: UtcDateTime
    notes: str | None
    campaign_id: str | None
    delivery_status: DeliveryStatus | None = None
    recorded_by: str
    created_at: UtcDateTime
