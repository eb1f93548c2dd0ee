from fastapi import APIRouter, Request

from services.monitoring import api
from services.monitoring.delinquency import service
from services.monitoring.delinquency.models import PauseRead, RiskChangeRead
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


@router.get("/loans/{loan_id}/delinquency-pauses", response_model=list[PauseRead],
            summary="The loan's delinquency pauses", responses=problem_responses(404))
def list_pauses(request: Request, loan_id: str, principal: api.Reader) -> list[PauseRead]:
    with api.database(request).session() as session:
        loans.get_loan(session, loan_id, api.branch_scope(principal))
        return [PauseRead.model_validate(p) for p in service.pauses(session, loan_id)]
