"""Webhook subscriptions, the relay's cursor per event feed, and the deliveries (the delivery log)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, field_validator
from pydantic import Field as PydanticField
from sqlalchemy import JSON, BigInteger, Column, Index, Integer, Text, UniqueConstraint
from sqlmodel import Field

from gateway.db import GatewayTable
from shared.ids import new_id, now
from shared.outbox import EventType


class WebhookSubscription(GatewayTable, table=True):
    __tablename__ = "webhook_subscriptions"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    # The token `sub` that subscribed (a user, or `client:<id>` for a partner system): it sees its own.
    owner: str = Field(max_length=200, index=True)
    # What the subscriber's token said when it subscribed; a gateway user's current roles and branch win at
    # fan-out (gateway/webhooks/service.py `subscriber`).
    roles: list[str] = Field(sa_column=Column(JSON, nullable=False))
    branch: str | None = Field(default=None, max_length=32)
    url: str = Field(max_length=2000)
    event_types: list[str] = Field(sa_column=Column(JSON, nullable=False))
    # Fernet token of the signing secret, under a key derived from the gateway's key passphrase.
    secret_encrypted: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime = Field(default_factory=now)
    deleted_at: datetime | None = None


class FeedCursor(GatewayTable, table=True):
    """How far the relay has read a service's event feed: every event up to `seq` has been fanned out."""

    __tablename__ = "webhook_feed_cursors"

    source: str = Field(primary_key=True, max_length=32)
    seq: int = Field(default=0, sa_column=Column(BigInteger().with_variant(Integer, "sqlite"), nullable=False))
    updated_at: datetime = Field(default_factory=now)


class DeliveryStatus(StrEnum):
    PENDING = "pending"  # waiting for its next attempt
    DELIVERED = "delivered"  # the receiver answered 2xx
    FAILED = "failed"  # every attempt failed, or the subscription was deleted; redeliver to try again


class WebhookDelivery(GatewayTable, table=True):
    __tablename__ = "webhook_deliveries"
    __table_args__ = (UniqueConstraint("subscription_id", "event_id", name="uq_webhook_deliveries_event"),
                      Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
                      Index("ix_webhook_deliveries_owner", "owner", "created_at"))

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    subscription_id: str = Field(foreign_key="webhook_subscriptions.id", max_length=32)
    owner: str = Field(max_length=200)
    source: str = Field(max_length=32)
    event_id: str = Field(max_length=32)
    event_type: str = Field(max_length=64)
    # The exact bytes POSTed (UTF-8 JSON), so a redelivery sends what the first attempt did.
    body: str = Field(sa_column=Column(Text, nullable=False))
    status: str = Field(default=DeliveryStatus.PENDING, max_length=16)
    attempts: int = 0
    next_attempt_at: datetime | None = Field(default_factory=now)
    last_attempt_at: datetime | None = None
    last_status_code: int | None = None
    last_error: str | None = Field(default=None, max_length=500)
    delivered_at: datetime | None = None
    redeliveries: int = 0
    created_at: datetime = Field(default_factory=now)


class SubscriptionCreate(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"url": "https://partner.example.com/loancrm/events",
         "event_types": ["application.decided", "loan.disbursed"]}]})

    url: str = PydanticField(min_length=8, max_length=2000,
                             description="https://…, or http://127.0.0.1… / http://[::1]… for a receiver on this host")
    event_types: list[str] = PydanticField(min_length=1, max_length=len(EventType.ALL),
                                           description=f"Any of: {', '.join(EventType.ALL)}")

    @field_validator("event_types")
    @classmethod
    def _known(cls, types: list[str]) -> list[str]:
        unknown = sorted(set(types) - set(EventType.ALL))
        if unknown:
            raise ValueError(f"unknown event types {unknown}; known: {list(EventType.ALL)}")
        return sorted(set(types))


class SubscriptionRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    owner: str
    url: str
    event_types: list[str]
    created_at: datetime


class SubscriptionCreated(SubscriptionRead):
    secret: str | None = PydanticField(
        description="The signing secret, shown this once (null when the answer is replayed for the same "
                    "Idempotency-Key: delete the subscription and subscribe again if it was lost).")


class DeliveryRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    subscription_id: str
    event_id: str
    event_type: str
    status: DeliveryStatus
    attempts: int
    next_attempt_at: datetime | None
    last_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    delivered_at: datetime | None
    redeliveries: int
    created_at: datetime
