"""Typed client of the customer service, for the scoring and monitoring services (and the gateway's tests)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any, Literal

import httpx
from pydantic import BaseModel, ConfigDict

from shared.clients.base import PeerUnavailable, ServiceClient
from shared.errors import Problem


# The fields a collector may have revealed for a borrower of a queue item they own: the contact channels.
CONTACT_REVEAL_FIELDS = ("phone", "email", "address")


class ConsentPurpose(StrEnum):
    CREDIT_BUREAU_QUERY = "credit_bureau_query"
    MARKETING = "marketing"
    PARTNER_DATA_SHARING = "partner_data_sharing"
    # Service reminders (a repayment falling due), one consent per channel; withdrawing them all is opting out.
    REMINDERS_APP = "reminders_app"
    REMINDERS_SMS = "reminders_sms"
    REMINDERS_EMAIL = "reminders_email"


class Channel(StrEnum):
    """Where a contact with the customer happened; the contact log accepts exactly these."""

    BRANCH = "branch"
    PHONE = "phone"
    SMS = "sms"
    APP = "app"
    WECHAT = "wechat"
    EMAIL = "email"
    VISIT = "visit"


# The channel each reminder consent lets a reminder go by, least intrusive first: a reminder takes the first.
REMINDER_CHANNELS = {ConsentPurpose.REMINDERS_APP: Channel.APP, ConsentPurpose.REMINDERS_SMS: Channel.SMS,
                     ConsentPurpose.REMINDERS_EMAIL: Channel.EMAIL}


class DeliveryStatus(StrEnum):
    """How far an automated message got; the contact log keeps it beside the contact."""

    QUEUED = "queued"
    SENT = "sent"
    DELIVERED = "delivered"
    FAILED = "failed"


class ContactPlan(BaseModel):
    """`GET /customers/{id}/contact-plan`: by which channels the customer may be reminded, whether they opted out,
    and how often they were contacted (any purpose, collection included) in the last seven days."""

    customer_id: str
    reminder_channels: list[Channel]
    opted_out: bool
    contacts_last_7_days: int


class CustomerStatus(StrEnum):
    """Where a customer is in their life with the bank; only an active one is lent to (`lending_refusal`)."""

    ACTIVE = "active"
    CLOSED = "closed"
    ERASED = "erased"


class KycStatus(StrEnum):
    """Where the customer's due diligence stands; a rejected one is never lent to (`lending_refusal`)."""

    PENDING = "pending"
    VERIFIED = "verified"
    REJECTED = "rejected"


def lending_refusal(status: str, kyc_status: str | None) -> str | None:
    """Why the bank may extend no new credit to this customer whatever their risk, or None: the one rule behind
    the customer service's credit hold, scoring's decisions and monitoring's booking. A closed customer has left the
    bank and an erased one is a pseudonym; one whose KYC was rejected failed due diligence (anti-money-laundering
    rules forbid lending to them). A pending one does not refuse: onboarding may still be completing it."""
    if status != CustomerStatus.ACTIVE:
        return f"the customer is {status}"
    if kyc_status == KycStatus.REJECTED:
        return "the customer's KYC was rejected"
    return None


class Customer(BaseModel):
    """The fields peers rely on; personal data arrives masked unless the caller's role allows full view."""

    model_config = ConfigDict(extra="allow")

    id: str
    kind: str
    status: str
    name: str | None
    national_id: str | None
    phone: str | None
    pii_view: Literal["full", "masked"]
    date_of_birth: date | None  # null when masked; birth_year is always there
    birth_year: int | None = None
    monthly_income: Decimal | None
    assets: Decimal | None
    branch: str
    kyc_status: str
    referred_by: str | None
    external_id: str | None
    version: int
    created_at: datetime


class ConsentCheck(BaseModel):
    customer_id: str
    purpose: ConsentPurpose
    allowed: bool
    granted_at: datetime | None


class Portrait(BaseModel):
    model_config = ConfigDict(extra="allow")

    customer_id: str
    branch: str
    status: CustomerStatus
    kyc_status: KycStatus | None = None  # None from a customer service older than the field
    referred_by: str | None
    tenure_months: int
    products_held: int | None  # null for a caller without monitoring:read
    contacts_90d: int
    days_since_last_contact: int | None
    csat_avg: float | None
    csat_trend: float | None
    nps_latest: int | None
    complaints_12m: int
    monthly_income: Decimal | None
    latest_score: int | None
    latest_grade: str | None
    value_tier: str
    lifecycle_stage: str
    retention_risk: bool
    segments: list[str]
    cluster: int | None


class Interaction(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: str
    customer_id: str
    channel: str
    direction: str
    purpose: str
    outcome: str
    officer: str
    occurred_at: datetime
    notes: str | None


class FollowUpTask(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: str
    customer_id: str
    officer: str
    reason: str
    status: str
    due_at: datetime


class RelationshipFeatures(BaseModel):
    """`GET /relationship/features`: a customer's relationship measured from events dated on or before as_of.
    Collection contacts are counted apart (`contacts_collection`) and never in `contacts_relationship`."""

    model_config = ConfigDict(extra="ignore")  # the customer service may add measures

    customer_id: str
    as_of: date
    branch: str | None = None
    segment: str | None = None
    customer_type: str | None = None
    since: date | None = None
    tenure_months: int | None = None
    annual_income: Decimal | None = None
    monthly_debt_payments: Decimal | None = None
    contacts_service: int = 0
    contacts_marketing: int = 0
    contacts_followup: int = 0
    contacts_collection: int = 0
    contacts_inbound: int = 0
    contacts_outbound: int = 0
    contacts_relationship: int = 0
    csat_mean: float | None = None
    csat_trend: float | None = None
    nps_last: int | None = None
    survey_dimensions: dict[str, Any] = {}
    surveys_count: int = 0
    complaints: int = 0
    complaints_resolved: int = 0
    complaints_resolved_on_time: int = 0
    profile_updates: int = 0
    documents_provided: int = 0
    data_sharing_consents: int = 0
    disclosures_acknowledged: int = 0
    information_sharing: float = 0.0
    products_held: int | None = None
    loyalty_index: float = 0.0


class RelationshipPage(BaseModel):
    items: list[RelationshipFeatures]
    next_cursor: str | None


class SharedIdentifier(BaseModel):
    kind: str  # national_id, phone, address
    count: int
    customer_ids: list[str]


class SharedIdentifiers(BaseModel):
    """`GET /customers/{id}/shared-identifiers`: other customers holding the same identifier (never its value)."""

    customer_id: str
    shared: list[SharedIdentifier]


class CustomerNotFound(Problem):
    def __init__(self, customer_id: str) -> None:
        super().__init__(404, "Not found", f"The customer service has no customer {customer_id!r} for this caller.",
                         extra={"service": "customer", "customer_id": customer_id})
        self.customer_id = customer_id


class CustomerClient(ServiceClient):
    def __init__(self, base_url: str | Sequence[str], *, timeout: float = 2.0, retries: int = 2,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        super().__init__("customer", base_url, timeout=timeout, retries=retries, transport=transport)

    async def _json(self, method: str, path: str, customer_id: str, *, token: str, ok: int = 200,
                    **kwargs: Any) -> Any:
        response = await self.request(method, path, token=token, **kwargs)
        if response.status_code == 404:
            raise CustomerNotFound(customer_id)
        if response.status_code != ok:
            body = response.json() if response.headers.get("content-type", "").endswith("json") else {}
            raise Problem(response.status_code, body.get("title", "Customer service error"),
                          body.get("detail") or f"The customer service answered {response.status_code}.",
                          extra={"service": "customer"})
        return response.json()

    async def get_customer(self, customer_id: str, *, token: str) -> Customer:
        return Customer.model_validate(await self._json("GET", f"/customers/{customer_id}", customer_id, token=token))

    async def shared_identifiers(self, customer_id: str, *, token: str) -> SharedIdentifiers:
        return SharedIdentifiers.model_validate(await self._json(
            "GET", f"/customers/{customer_id}/shared-identifiers", customer_id, token=token))

    async def check_consent(self, customer_id: str, purpose: ConsentPurpose | str, *, token: str) -> ConsentCheck:
        """May `purpose` be done for this customer now? Processing that needs a consent must refuse when not."""
        body = await self._json("GET", f"/customers/{customer_id}/consents/check", customer_id, token=token,
                                params={"purpose": str(purpose)})
        return ConsentCheck.model_validate(body)

    async def get_portrait(self, customer_id: str, *, token: str) -> Portrait:
        return Portrait.model_validate(await self._json("GET", f"/customers/{customer_id}/portrait", customer_id,
                                                        token=token))

    async def log_interaction(self, customer_id: str, *, token: str, idempotency_key: str, channel: str,
                              direction: str, purpose: str, outcome: str, occurred_at: datetime,
                              notes: str | None = None, delivery_status: DeliveryStatus | None = None) -> Interaction:
        """Post a contact (e.g. a collection call) as made by the token's user; the same idempotency_key on a
        retry never logs it twice. An automated message says how far it got (`delivery_status`)."""
        body = {"channel": channel, "direction": direction, "purpose": purpose, "outcome": outcome,
                "occurred_at": occurred_at.isoformat(), "notes": notes}
        if delivery_status is not None:
            body["delivery_status"] = str(delivery_status)
        return Interaction.model_validate(await self._json(
            "POST", f"/customers/{customer_id}/interactions", customer_id, token=token, ok=201, json=body,
            idempotency_key=idempotency_key))

    async def contact_plan(self, customer_id: str, *, token: str) -> ContactPlan:
        return ContactPlan.model_validate(await self._json("GET", f"/customers/{customer_id}/contact-plan",
                                                           customer_id, token=token))

    async def open_task(self, customer_id: str, *, token: str, idempotency_key: str, reason: str, officer: str,
                        due_at: datetime) -> FollowUpTask:
        """A follow-up task for the customer's officer; the customer service answers the open one for the same
        reason rather than open a second, so asking again is safe."""
        body = {"reason": reason, "officer": officer, "due_at": due_at.isoformat()}
        return FollowUpTask.model_validate(await self._json(
            "POST", f"/customers/{customer_id}/tasks", customer_id, token=token, ok=201, json=body,
            idempotency_key=idempotency_key))

    async def relationship_features(self, as_of: date, *, window_months: int, token: str,
                                    cursor: str | None = None, limit: int = 1000) -> RelationshipPage:
        """One page of point-in-time relationship features of every customer in the caller's scope."""
        params: dict[str, Any] = {"as_of": as_of.isoformat(), "window_months": window_months, "limit": limit}
        if cursor:
            params["cursor"] = cursor
        response = await self.request("GET", "/relationship/features", token=token, params=params)
        if response.status_code == 404:  # a customer service without the point-in-time features
            raise PeerUnavailable("customer", "it has no relationship features (GET /relationship/features)")
        if response.status_code != 200:
            body = response.json() if response.headers.get("content-type", "").endswith("json") else {}
            raise Problem(503 if response.status_code >= 500 else response.status_code,
                          body.get("title", "Customer service error"),
                          body.get("detail") or f"The customer service answered {response.status_code}.",
                          extra={"service": "customer"})
        return RelationshipPage.model_validate(response.json())
