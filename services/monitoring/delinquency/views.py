from fastapi import APIRouter, Request

from services.monitoring import api
from services.monitoring.business_day import business_date
from services.monitoring.delinquency import service
from services.monitoring.delinquency.models import PauseCreate, PauseRead, RiskChangeRead
from services.monitoring.loans import service as loans
from shared.errors import problem_responses

router = APIRouter(tags=["delinquency"])


@router.get("/loans/{loan_id}/history", response_model=list[RiskChangeRead],
            summary="The loan's append-only history of bucket, class and stage changes, with causes",
            responses=problem_responses(404))
def history(request: Request, loan_id: str, principal: api.Reader) -> list[RiskChangeRead]:
    with api.database(request).session() as session:
        loans.get_loan(session, loan_id, api.branch_scope(principal))
        return [RiskChangeRead.model_validate(r) for r in service.history(session, loan_id)]


@router.post("/loans/{loan_id}/delinquency-pauses", status_code=201, response_model=PauseRead,
             summary="Pause the DPD clock over a date range, e.g. during a dispute (loan officer, admin)",
             responses=problem_responses(404, 422))
def pause_delinquency(request: Request, loan_id: str, command: PauseCreate, principal: api.Officer) -> PauseRead:
    with api.database(request).session() as session, api.domain_errors():
        loan = loans.lock_loan(session, loan_id, api.branch_scope(principal))
        pause = service.pause_delinquency(session, loan, command, by=principal.sub,
                                          as_of=business_date(session, api.settings(request)))
        session.commit()
        return PauseRead.model_validate(pause)


@router.get("/loans/{loan_id}/delinquency-pauses", response_model=list[PauseRead],
            summary="The loan's delinquency pauses", responses=problem_responses(404))
def list_pauses(request: Request, loan_id: str, principal: api.Reader) -> list[PauseRead]:
    with api.database(request).session() as session:
        loans.get_loan(session, loan_id, api.branch_scope(principal))
        return [PauseRead.model_validate(p) for p in service.pauses(session, loan_id)]
