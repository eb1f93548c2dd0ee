"""The contact log: every call, visit and message, with its purpose and outcome."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func
from sqlmodel import Session, select

from services.customer import scoping
from services.customer.common import plain, utcnow
from services.customer.customers.models import Customer
from services.customer.campaigns.service import record_reply
from services.customer.consents.models import Consent, Purpose
from services.customer.consents.service import active_consent
from services.customer.interactions.models import LIMITED_PURPOSES, LOGGING_ROLES, Channel, ContactPurpose, \
    DeliveryStatus, DeliveryUpdate, Direction, Interaction, InteractionCreate, InteractionRead
from shared.clients.customer import REMINDER_CHANNELS, ContactPlan
from shared.auth.tokens import Principal
from shared.errors import Problem, field_problem
from shared.pagination import Page, PageRequest, keyset

# A contact may be logged a little ahead of the server clock (device clocks drift), never days ahead.
_CLOCK_SKEW_SECONDS = 300
# What a message provider may still report about a message at each status (a final one stays as it is).
_DELIVERY_NEXT = {DeliveryStatus.QUEUED: {DeliveryStatus.SENT, DeliveryStatus.DELIVERED, DeliveryStatus.FAILED},
                  DeliveryStatus.SENT: {DeliveryStatus.DELIVERED, DeliveryStatus.FAILED}}


def _purposes_allowed(principal: Principal) -> frozenset[ContactPurpose] | None:
    """The purposes the caller may log, or None for any: a role without limits lifts them."""
    if principal.has_role(*(role for role in LOGGING_ROLES if role not in LIMITED_PURPOSES)):
        return None
    return frozenset().union(*(purposes for role, purposes in LIMITED_PURPOSES.items() if principal.has_role(role)))


def log_interaction(session: Session, customer: Customer, command: InteractionCreate,
                    principal: Principal) -> InteractionRead:
    by = principal.sub
    allowed = _purposes_allowed(principal)
    if allowed is not None and command.purpose not in allowed:
        raise field_problem("body.purpose", "this caller logs only " + " and ".join(
            sorted(purpose.value for purpose in allowed)) + " contacts")
    if (command.occurred_at - utcnow()).total_seconds() > _CLOCK_SKEW_SECONDS:
        raise field_problem("body.occurred_at", "cannot be in the future")
    if (command.purpose == ContactPurpose.MARKETING and command.direction == Direction.OUTBOUND
            and active_consent(session, customer.id, Purpose.MARKETING) is None):
        raise Problem(409, "Consent required", "The customer has no marketing consent in force; outbound "
                      "marketing contact is refused.", type_="urn:loancrm:customer:consent-required")
    if command.campaign_id is not None:
        record_reply(session, command.campaign_id, customer.id, command.outcome)
    interaction = Interaction(customer_id=customer.id, branch=customer.branch, officer=by, recorded_by=by,
                              **plain(command.model_dump()))
    session.add(interaction)
    session.flush()
    return InteractionRead.model_validate(interaction.model_dump())


def list_interactions(
    session: Session,
    principal: Principal,
    *,
    customer_id: str | None,
    channel: Channel | None,
    officer: str | None,
    since: datetime | None,
    until: datetime | None,
    paging: PageRequest,
) -> Page[InteractionRead]:
    """Newest first by (occurred_at, id)."""
    query = select(Interaction).join(Customer, Customer.id == Interaction.customer_id)
    scope = scoping.scope_filter(principal, Customer.branch, Customer.referred_by)
    if scope is not None:
        query = query.where(scope)
    for column, value in ((Interaction.customer_id, customer_id), (Interaction.officer, officer),
                          (Interaction.channel, channel.value if channel else None)):
        if value is not None:
            query = query.where(column == value)
    if since:
        query = query.where(Interaction.occurred_at >= since)
    if until:
        query = query.where(Interaction.occurred_at < until)
    return keyset(session, query, paging, Interaction.occurred_at, Interaction.id, descending=True,
                  read=lambda rows: [InteractionRead.model_validate(row.model_dump()) for row in rows])


def contact_plan(session: Session, customer: Customer) -> ContactPlan:
    """The channels the customer consents to be reminded by (least intrusive first); opted out when every reminder
    consent they gave is withdrawn; and their contacts of any purpose in the last seven days (the weekly cap)."""
    channels = [channel for purpose, channel in REMINDER_CHANNELS.items()
                if active_consent(session, customer.id, purpose) is not None]
    ever = session.exec(select(func.count()).select_from(Consent).where(
        Consent.customer_id == customer.id, Consent.purpose.in_([p.value for p in REMINDER_CHANNELS]))).one()
    recent = session.exec(select(func.count()).select_from(Interaction).where(
        Interaction.customer_id == customer.id, Interaction.occurred_at >= utcnow() - timedelta(days=7))).one()
    return ContactPlan(customer_id=customer.id, reminder_channels=channels, opted_out=not channels and ever > 0,
                       contacts_last_7_days=recent)


def record_delivery(session: Session, principal: Principal, interaction_id: str,
                    command: DeliveryUpdate) -> InteractionRead:
    """The provider's report on an automated message; reporting the status it already has answers it again."""
    interaction = session.get(Interaction, interaction_id)
    customer = session.get(Customer, interaction.customer_id) if interaction else None
    if interaction is None or customer is None or not scoping.can_see(principal, customer.branch,
                                                                      customer.referred_by):
        raise Problem(404, "Not found", f"No contact {interaction_id!r}.")
    if interaction.delivery_status is None:
        raise Problem(409, "Not a message", "This contact was made by a person; it has no delivery to report.")
    current = DeliveryStatus(interaction.delivery_status)
    if command.delivery_status != current:
        if command.delivery_status not in _DELIVERY_NEXT.get(current, set()):
            raise Problem(409, "Conflict", f"The message is already {current.value}.")
        interaction.delivery_status = command.delivery_status.value
        session.add(interaction)
        session.flush()
    return InteractionRead.model_validate(interaction.model_dump())
