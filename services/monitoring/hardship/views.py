from fastapi import APIRouter, Request

from services.monitoring import api
from services.monitoring.hardship import service
from services.monitoring.hardship.models import HardshipRead
from services.monitoring.loans import service as loans
from shared.errors import problem_responses
from shared.pagination import Page, paged

router = APIRouter(tags=["hardship"])


@router.get("/loans/{loan_id}/hardship", response_model=Page[HardshipRead],
            summary="The loan's approved repayment plans, deferrals and early recall, oldest first: terms, who "
                    "proposed and approved, the schedule before and after", responses=problem_responses(404, 422))
def hardship_history(request: Request, loan_id: str, principal: api.CommitteeReader,
                     paging: paged() = None) -> Page[HardshipRead]:
    with api.database(request).session() as session:
        loans.get_loan(session, loan_id, api.scope(principal))
        return service.history(session, loan_id, paging)
