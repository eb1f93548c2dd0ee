from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlmodel import Session

from services.customer.consents import service
from services.customer.consents.models import ConsentCheck, ConsentGrant, ConsentRead, ConsentSummary, \
    ConsentWithdrawal, Purpose
from services.customer.customers.service import get_changeable, get_visible
from services.customer.web import BatchReader, Reader, Writer, act_once, create_once, database
from shared.errors import problem_responses
from shared.idempotency import IdempotencyKey, OptionalIdempotencyKey

router = APIRouter(prefix="/customers/{customer_id}/consents", tags=["consents"])


@router.post("", status_code=201, response_model=ConsentRead, summary="Record a consent the customer gave",
             responses=problem_responses(403, 404, 409, 422, 428))
def grant_consent(request: Request, customer_id: str, command: ConsentGrant, principal: Writer,
                  idempotency_key: IdempotencyKey) -> JSONResponse:
    def run(session: Session) -> ConsentRead:
        get_changeable(session, principal, customer_id)
        return service.grant_consent(session, customer_id, command, principal.sub)

    return create_once(request, principal, idempotency_key,
                       ("grant_consent", customer_id, command.model_dump(mode="json")), run)


@router.post("/{purpose}/withdrawal", response_model=ConsentRead, summary="Withdraw the consent for a purpose",
             description="Takes effect at once: the check endpoint answers `allowed: false` from now on.",
             responses=problem_responses(403, 404, 409))
def withdraw_consent(request: Request, customer_id: str, purpose: Purpose, command: ConsentWithdrawal,
                     principal: Writer, idempotency_key: OptionalIdempotencyKey = None) -> JSONResponse:
    def run(session: Session) -> ConsentRead:
        get_changeable(session, principal, customer_id, active=False)
        return service.withdraw_consent(session, customer_id, purpose, command.source.value, principal.sub)

    return act_once(request, principal, idempotency_key,
                    ("withdraw_consent", customer_id, purpose.value, command.model_dump(mode="json")), run)


@router.get("", response_model=ConsentSummary, summary="Consents now in force and their full history",
            responses=problem_responses(404))
def consent_summary(request: Request, customer_id: str, principal: Reader) -> ConsentSummary:
    with database(request).session() as session:
        get_visible(session, principal, customer_id)
        rows = service.history(session, customer_id)
    return ConsentSummary(customer_id=customer_id, current=service.current(rows), history=rows)


@router.get("/check", response_model=ConsentCheck, summary="May purpose P be done for this customer now?",
            description="The contract other services call before a credit-bureau query, marketing or sharing "
                        "data with a partner. `allowed` is false when no consent is in force.",
            responses=problem_responses(404, 422))
def check_consent(request: Request, customer_id: str, purpose: Purpose, principal: BatchReader) -> ConsentCheck:
    with database(request).session() as session:
        get_visible(session, principal, customer_id)
        return service.check(session, customer_id, purpose)
