from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlmodel import Session

from services.customer.complaints import service
from services.customer.complaints.models import ComplaintCreate, ComplaintRead, ComplaintResponse
from services.customer.customers.service import get_changeable, get_visible
from services.customer.web import Manager, Reader, Writer, act_once, create_once, database
from shared.errors import problem_responses
from shared.idempotency import IdempotencyKey, OptionalIdempotencyKey
from shared.pagination import Page, paged

router = APIRouter(tags=["complaints"])


@router.post("/customers/{customer_id}/complaints", status_code=201, response_model=ComplaintRead,
             summary="File feedback or a complaint",
             description="Due LOANCRM_CUSTOMER_COMPLAINT_RESPONSE_DAYS (default 15) calendar days after "
                         "`received_at` (default: now), weekends and holidays included; overdue is judged on the "
                         "current time.", responses=problem_responses(403, 404, 409, 422, 428))
def file_complaint(request: Request, customer_id: str, command: ComplaintCreate, principal: Writer,
                   idempotency_key: IdempotencyKey) -> JSONResponse:
    days = request.app.state.settings.complaint_response_days

    def run(session: Session) -> ComplaintRead:
        customer = get_changeable(session, principal, customer_id, active=False)
        return service.file_complaint(session, customer, command, principal.sub, days)

    return create_once(request, principal, idempotency_key,
                       ("file_complaint", customer_id, command.model_dump(mode="json")), run)


@router.get("/customers/{customer_id}/complaints", response_model=Page[ComplaintRead],
            summary="A customer's feedback and complaints, newest first", responses=problem_responses(404, 422))
def customer_complaints(request: Request, customer_id: str, principal: Reader,
                        paging: paged() = None) -> Page[ComplaintRead]:
    with database(request).session() as session:
        get_visible(session, principal, customer_id)
        return service.customer_complaints(session, customer_id, paging)


@router.get("/complaints/overdue", response_model=Page[ComplaintRead],
            summary="Complaints past their response deadline (managers)",
            description="Loan officers see their branch's; admins all, or one branch.",
            responses=problem_responses(403, 422))
def overdue_complaints(request: Request, principal: Manager, branch: str | None = None,
                       paging: paged(200, 1000) = None) -> Page[ComplaintRead]:
    with database(request).session() as session:
        return service.overdue_complaints(session, principal, branch, paging)


@router.post("/complaints/{complaint_id}/response", response_model=ComplaintRead,
             summary="Move a complaint on: in progress, resolved or rejected with the answer given",
             responses=problem_responses(404, 409, 422))
def respond_to_complaint(request: Request, complaint_id: str, command: ComplaintResponse, principal: Writer,
                         idempotency_key: OptionalIdempotencyKey = None) -> JSONResponse:
    return act_once(request, principal, idempotency_key,
                    ("respond_to_complaint", complaint_id, command.model_dump(mode="json")),
                    lambda session: service.respond_to_complaint(session, principal, complaint_id, command))
