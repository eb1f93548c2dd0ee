from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from sqlmodel import Session

from services.customer.customers.service import get_changeable, get_visible
from services.customer.interactions import service
from services.customer.interactions.models import LOGGING_ROLES, Channel, DeliveryUpdate, InteractionCreate, \
    InteractionRead
from shared.clients.customer import ContactPlan
from services.customer.web import BatchReader, Reader, create_once, database
from shared.pagination import Page, paged
from shared.auth.dependencies import require_roles
from shared.auth.roles import Role
from shared.auth.tokens import Principal
from shared.bounds import Timestamp
from shared.errors import problem_responses
from shared.idempotency import IdempotencyKey

router = APIRouter(tags=["interactions"])
# Collectors log their calls too (the monitoring service posts them on their behalf).
ContactLogger = Annotated[Principal, Depends(require_roles(*LOGGING_ROLES))]


@router.post("/customers/{customer_id}/interactions", status_code=201, response_model=InteractionRead,
             summary="Log a contact with the customer",
             description="The contact log contract the monitoring service posts collection calls to. "
                         "Needs an Idempotency-Key; a retry returns the first answer.",
             responses=problem_responses(403, 404, 409, 422, 428))
def log_interaction(request: Request, customer_id: str, command: InteractionCreate, principal: ContactLogger,
                    idempotency_key: IdempotencyKey) -> JSONResponse:
    def run(session: Session) -> InteractionRead:
        # Collectors and COB's batch (delivering collectors' queued contacts) work on any borrower's loan.
        if principal.has_role(Role.COLLECTOR, Role.ADMIN, Role.BATCH):
            customer = get_visible(session, principal, customer_id)
        else:
            customer = get_changeable(session, principal, customer_id, active=False)
        return service.log_interaction(session, customer, command, principal)

    return create_once(request, principal, idempotency_key,
                       ("log_interaction", customer_id, command.model_dump(mode="json")), run)


@router.get("/customers/{customer_id}/interactions", response_model=Page[InteractionRead],
            summary="A customer's contact history, newest first", responses=problem_responses(404))
def customer_interactions(request: Request, customer_id: str, principal: Reader, channel: Channel | None = None,
                          paging: paged() = None) -> Page[InteractionRead]:
    with database(request).session() as session:
        get_visible(session, principal, customer_id)
        return service.list_interactions(session, principal, customer_id=customer_id, channel=channel,
                                         officer=None, since=None, until=None, paging=paging)


@router.get("/interactions", response_model=Page[InteractionRead],
            summary="Search the contact log by customer, channel, officer and time",
            description="Limited to the caller's branch (loan officers) or referrals (partners).",
            responses=problem_responses(422))
def search_interactions(request: Request, principal: Reader, customer_id: str | None = None,
                        channel: Channel | None = None, officer: str | None = None, since: Timestamp | None = None,
                        until: Timestamp | None = None, paging: paged() = None) -> Page[InteractionRead]:
    with database(request).session() as session:
        return service.list_interactions(session, principal, customer_id=customer_id, channel=channel,
                                         officer=officer, since=since, until=until, paging=paging)


@router.post("/interactions/{interaction_id}/delivery", response_model=InteractionRead,
             summary="Record what the message provider reports about an automated message (sent, delivered, failed)",
             description="Reporting the status it already has answers it again; a delivered or failed message "
                         "stays so (409).", responses=problem_responses(403, 404, 409, 422))
def record_delivery(request: Request, interaction_id: str, command: DeliveryUpdate,
                    principal: ContactLogger) -> InteractionRead:
    with database(request).session() as session:
        read = service.record_delivery(session, principal, interaction_id, command)
        session.commit()
    return read


@router.get("/customers/{customer_id}/contact-plan", response_model=ContactPlan,
            summary="By which channels the customer may be reminded, whether they opted out, and their contacts "
                    "of the last seven days", responses=problem_responses(404))
def contact_plan(request: Request, customer_id: str, principal: BatchReader) -> ContactPlan:
    with database(request).session() as session:
        return service.contact_plan(session, get_visible(session, principal, customer_id))
