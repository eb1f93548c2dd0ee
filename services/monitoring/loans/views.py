from typing import Annotated

from fastapi import APIRouter, Header, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from services.monitoring import api
from services.monitoring.business_day import business_date
from services.monitoring.loans import service
from services.monitoring.loans.models import (
    LoanCreate,
    LoanDetail,
    LoanRead,
    LoanSummary,
    SchedulePreview,
    ScheduleRequest,
)
from shared.auth.dependencies import needs
from shared.auth.scope import visibility
from shared.clients.customer import CustomerNotFound
from shared.errors import Problem, field_problem, problem_responses
from shared.pagination import Page, paged

router = APIRouter(tags=["loans"])


def loan_detail(session, loan) -> LoanDetail:  # noqa: ANN001
    rows = [service.instalment_read(r) for r in service.instalments(session, loan.id)]
    read = LoanRead.model_validate(loan, from_attributes=True)
    return LoanDetail.model_validate({**read.model_dump(), "schedule": rows,
                                      "rebookings": service.rebookings(session, loan.id)})


@router.post("/loans/schedule-preview", response_model=SchedulePreview,
             summary="Preview a repayment schedule without creating a loan",
             responses=problem_responses(422), openapi_extra=needs("monitoring:read"))
def preview(request: Request, command: ScheduleRequest, _: api.Reader) -> SchedulePreview:
    product, conventions = command.product, api.settings(request)
    with api.domain_errors():
        return service.preview_schedule(command, conventions.rounding_for(product), conventions.day_count_for(product),
                                        conventions.penalty_rate(product or ""))


@router.post("/loans", status_code=201, response_model=LoanDetail,
             summary="Register a disbursed loan (loan officer of its branch, admin)",
             responses=problem_responses(403, 409, 422, 428, 503))
async def register_loan(
    request: Request,
    command: LoanCreate,
    principal: api.Officer,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> JSONResponse:
    if not visibility(principal, among=api.OFFICERS).allows(command.branch):
        raise Problem(403, "Forbidden", "A loan officer registers loans for their own branch only.")
    peers = request.app.state.peers
    try:
        customer = await peers.customer.get_customer(command.customer_id, token=api.bearer(request))
    except CustomerNotFound:
        raise field_problem("body.customer_id", "no such customer in the customer service") from None
    with api.domain_errors():
        service.check_borrower(command.branch, customer)
    try:
        latest = await peers.scoring.latest_score(command.customer_id, token=api.bearer(request))
    except Problem:
        latest = None  # booking must not wait; without a baseline COB does not re-score the borrower

    def run(session):  # noqa: ANN001, ANN202
        loan = service.register_loan(session, command, registered_by=principal.sub,
                                     as_of=business_date(session, api.settings(request)), latest_score=latest,
                                     penalty_daily_rate=api.settings(request).penalty_rate(command.product),
                                     rounding=api.settings(request).rounding_for(command.product),
                                     day_count=api.settings(request).day_count_for(command.product),
                                     cadence=api.settings(request).check_cadence)
        session.flush()
        return 201, loan_detail(session, loan).model_dump(mode="json")

    return await run_in_threadpool(api.idempotent, request, principal, idempotency_key, required=False,
                                   command_name="register_loan", payload=command.model_dump(mode="json"), command=run)


@router.get("/loans", response_model=Page[LoanSummary],
            summary="Loans, by customer or external id (branch-scoped for loan officers)",
            responses=problem_responses(422))
def list_loans(
    request: Request,
    principal: api.BatchReader,
    customer_id: str | None = None,
    external_id: str | None = None,
    paging: paged(100) = None,
) -> Page[LoanSummary]:
    with api.database(request).session() as session:
        return service.list_loans(session, paging, scope=api.scope(principal), customer_id=customer_id,
                                  external_id=external_id)


@router.get("/loans/{loan_id}", response_model=LoanDetail, summary="A loan with its schedule and what is paid",
            responses=problem_responses(404))
def get_loan(request: Request, loan_id: str, principal: api.Reader) -> LoanDetail:
    with api.database(request).session() as session:
        return loan_detail(session, service.get_loan(session, loan_id, api.scope(principal)))
