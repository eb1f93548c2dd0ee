from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from services.monitoring import api
from services.monitoring.business_day import business_date
from services.monitoring.loans import service as loans
from services.monitoring.loans.models import LoanSummary
from services.monitoring.repayments import posting, service
from services.monitoring.repayments.models import (
    BalanceCheck,
    PostingRead,
    PostingReceipt,
    RepaymentCreate,
    ReversalCreate,
)
from shared.auth.scope import EVERYTHING
from shared.errors import problem_responses
from shared.idempotency import IdempotencyKey, OptionalIdempotencyKey
from shared.pagination import Page, paged

router = APIRouter(tags=["repayments"])


def receipt(posted, loan) -> dict:  # noqa: ANN001 - ORM objects or the posting core's rows
    return PostingReceipt.model_validate(
        {**PostingRead.model_validate(posted).model_dump(), "loan": LoanSummary.model_validate(loan)}
    ).model_dump(mode="json")


@router.post("/loans/{loan_id}/repayments", status_code=201, response_model=PostingReceipt,
             summary="Post a repayment (loan officer of the loan's branch, admin); Idempotency-Key required",
             responses=problem_responses(404, 409, 422, 428))
def post_repayment(request: Request, loan_id: str, command: RepaymentCreate, principal: api.Officer,
                   idempotency_key: IdempotencyKey) -> JSONResponse:
    def run(session):  # noqa: ANN001, ANN202
        posted = posting.post_one(session, posting.Repayment(loan_id, command.amount, command.value_date,
                                                             command.external_id),
                                  scope=api.scope(principal), posted_by=principal.sub,
                                  as_of=business_date(session, api.settings(request)),
                                  tolerance=api.settings(request).overpayment_tolerance)
        return 201, receipt(posted.posting, posted.loan)

    return api.idempotent(request, principal, idempotency_key, required=True, command_name="post_repayment",
                          payload=command.model_dump(mode="json"), command=run)


@router.post("/postings/{posting_id}/reversal", response_model=PostingReceipt,
             summary="Reverse a posting, replaying history from its value date (loan officer, admin)",
             responses=problem_responses(404, 409, 422))
def reverse_posting(request: Request, posting_id: str, command: ReversalCreate, principal: api.Officer,
                    idempotency_key: OptionalIdempotencyKey = None) -> JSONResponse:
    def run(session):  # noqa: ANN001, ANN202
        reversed_, _ = service.reverse_posting(session, posting_id, command.reason, scope=api.scope(principal),
                                               reversed_by=principal.sub,
                                               as_of=business_date(session, api.settings(request)))
        return 200, receipt(reversed_, loans.get_loan(session, reversed_.loan_id, EVERYTHING))

    return api.idempotent(request, principal, idempotency_key, required=False, command_name="reverse_posting",
                          payload=command.model_dump(mode="json"), command=run)


@router.get("/loans/{loan_id}/postings", response_model=Page[PostingRead], summary="A loan's postings, by value date",
            responses=problem_responses(404, 422))
def list_postings(request: Request, loan_id: str, principal: api.Reader,
                  paging: paged(100) = None) -> Page[PostingRead]:
    with api.database(request).session() as session:
        loans.get_loan(session, loan_id, api.scope(principal))
        return service.postings(session, loan_id, paging)


@router.get("/loans/{loan_id}/balance-check", response_model=BalanceCheck,
            summary="Recompute the loan's balances from schedule and postings and compare with what is stored",
            responses=problem_responses(404))
def balance_check(request: Request, loan_id: str, principal: api.Reader) -> BalanceCheck:
    with api.database(request).session() as session:
        return service.balance_check(session, loans.get_loan(session, loan_id, api.scope(principal)))
