from fastapi import APIRouter, Request

from services.monitoring import api
from services.monitoring.delinquency import service
from services.monitoring.delinquency.models import HistoryView, PauseRead, RiskChangeRead
from services.monitoring.loans import service as loans
from shared.errors import problem_responses
from shared.pagination import Page, paged

router = APIRouter(tags=["delinquency"])


@router.get("/loans/{loan_id}/history", response_model=Page[RiskChangeRead],
            summary="The loan's history of bucket, class and stage changes, with causes: the effective timeline, or "
                    "the as-recorded trail",
            description="`view=effective` (default): what was true, by effective date; rows a backdated posting or a "
                        "reversal corrected are left out, and each field's rows chain (`from_value` is the previous "
                        "row's `to_value`). `view=recorded`: every row in the order it became known (`recorded_at`), "
                        "the superseded ones marked with `superseded_at` and the correction that superseded them.",
            responses=problem_responses(404, 422))
def history(request: Request, loan_id: str, principal: api.Reader,
            view: HistoryView = HistoryView.EFFECTIVE, paging: paged(100) = None) -> Page[RiskChangeRead]:
    with api.database(request).session() as session:
        loans.get_loan(session, loan_id, api.scope(principal))
        return service.history(session, loan_id, paging, view)


@router.get("/loans/{loan_id}/delinquency-pauses", response_model=Page[PauseRead],
            summary="The loan's delinquency pauses", responses=problem_responses(404, 422))
def list_pauses(request: Request, loan_id: str, principal: api.Reader, paging: paged() = None) -> Page[PauseRead]:
    with api.database(request).session() as session:
        loans.get_loan(session, loan_id, api.scope(principal))
        return service.pauses(session, loan_id, paging)
