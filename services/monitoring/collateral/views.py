
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from services.monitoring import api
from services.monitoring.business_day import business_date
from services.monitoring.collateral import service
from services.monitoring.collateral.models import (
    CollateralCreate,
    CollateralRead,
    LoanLoss,
    RevaluationCreate,
    ValuationRead,
)
from services.monitoring.loans import service as loans
from services.monitoring.portfolio.service import loan_loss
from shared.errors import problem_responses
from shared.idempotency import OptionalIdempotencyKey
from shared.pagination import Page, paged

router = APIRouter(tags=["collateral"])


@router.post("/loans/{loan_id}/collateral", status_code=201, response_model=CollateralRead,
             summary="Record collateral or a guarantee securing the loan, with its first valuation (loan officer of "
                     "its branch, risk analyst, admin)", responses=problem_responses(404, 409, 422))
def register_collateral(request: Request, loan_id: str, command: CollateralCreate, principal: api.Maker,
                        idempotency_key: OptionalIdempotencyKey = None) -> JSONResponse:
    def run(session):  # noqa: ANN001, ANN202
        item = service.register_collateral(session, loan_id, command, by=principal.sub, scope=api.scope(principal),
                                           as_of=business_date(session, api.settings(request)),
                                           policy=api.settings(request).collateral_policy())
        return 201, CollateralRead.model_validate(item).model_dump(mode="json")

    return api.idempotent(request, principal, idempotency_key, required=False, command_name="register_collateral",
                          payload=command.model_dump(mode="json"), command=run)


@router.get("/loans/{loan_id}/collateral", response_model=Page[CollateralRead],
            summary="What secures the loan: collateral and guarantees", responses=problem_responses(404, 422))
def loan_collateral(request: Request, loan_id: str, principal: api.Reader,
                    paging: paged() = None) -> Page[CollateralRead]:
    with api.database(request).session() as session:
        loans.get_loan(session, loan_id, api.scope(principal))
        return service.loan_collateral(session, loan_id, paging)


@router.get("/loans/{loan_id}/expected-loss", response_model=LoanLoss,
            summary="The loan's loan-to-value and expected loss with its collateral and guarantees: PD × LGD × "
                    "(EAD − secured − guaranteed)", responses=problem_responses(404))
def expected_loss(request: Request, loan_id: str, principal: api.Reader) -> LoanLoss:
    settings = api.settings(request)
    with api.database(request).session() as session:
        loan = loans.get_loan(session, loan_id, api.scope(principal))
        return loan_loss(session, loan, business_date(session, settings), lgd=settings.lgd,
                         policy=settings.collateral_policy())


@router.post("/collateral/{collateral_id}/valuations", status_code=201, response_model=CollateralRead,
             summary="Record a revaluation; one that takes the loan-to-value over a rule's threshold raises an "
                     "early warning (loan officer of its branch, risk analyst, admin)",
             responses=problem_responses(404, 422))
def revalue_collateral(request: Request, collateral_id: str, command: RevaluationCreate, principal: api.Maker,
                       idempotency_key: OptionalIdempotencyKey = None) -> JSONResponse:
    def run(session):  # noqa: ANN001, ANN202
        item = service.revalue_collateral(session, collateral_id, command, by=principal.sub,
                                          scope=api.scope(principal),
                                          as_of=business_date(session, api.settings(request)),
                                          policy=api.settings(request).collateral_policy())
        return 201, CollateralRead.model_validate(item).model_dump(mode="json")

    return api.idempotent(request, principal, idempotency_key, required=False, command_name="revalue_collateral",
                          payload=command.model_dump(mode="json"), command=run)


@router.get("/collateral/{collateral_id}/valuations", response_model=Page[ValuationRead],
            summary="Every valuation of a record, the first one included", responses=problem_responses(404, 422))
def valuations(request: Request, collateral_id: str, principal: api.Reader,
               paging: paged() = None) -> Page[ValuationRead]:
    with api.database(request).session() as session:
        service.get_collateral(session, collateral_id, api.scope(principal))
        return service.valuations(session, collateral_id, paging)


@router.get("/collateral/overdue-revaluations", response_model=Page[CollateralRead],
            summary="The revaluation worklist: records close of business flagged overdue, longest overdue first",
            responses=problem_responses(422))
def overdue_revaluations(request: Request, principal: api.Reader, paging: paged() = None) -> Page[CollateralRead]:
    with api.database(request).session() as session:
        return service.overdue_revaluations(session, paging, scope=api.scope(principal))
