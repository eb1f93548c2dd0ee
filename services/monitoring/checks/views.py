from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlmodel import Session

from services.monitoring import api
from services.monitoring.business_day import business_date
from services.monitoring.checks import service
from services.monitoring.checks.models import CheckCompletion, CheckRead, CheckStatus
from shared.bounds import BusinessDate
from shared.errors import problem_responses
from shared.idempotency import OptionalIdempotencyKey
from shared.pagination import Page, paged

router = APIRouter(tags=["post-loan checks"])


@router.get("/checks", response_model=Page[CheckRead],
            summary="Post-loan check tasks (branch-scoped for loan officers)",
            responses=problem_responses(422))
def list_checks(request: Request, principal: api.Reader, loan_id: str | None = None,
                status: CheckStatus | None = None, due_by: BusinessDate | None = None,
                paging: paged(100) = None) -> Page[CheckRead]:
    with api.database(request).session() as session:
        return service.list_checks(session, paging, scope=api.scope(principal), loan_id=loan_id, status=status,
                                   due_by=due_by)


@router.post("/checks/{check_id}/complete", response_model=CheckRead,
             summary="Record a check's findings (loan officer of the branch, admin)",
             responses=problem_responses(404, 409))
def complete_check(request: Request, check_id: str, command: CheckCompletion, principal: api.Officer,
                   idempotency_key: OptionalIdempotencyKey = None) -> JSONResponse:
    def run(session: Session) -> tuple[int, Any]:
        task = service.complete_check(session, check_id, command, by=principal.sub, scope=api.scope(principal),
                                      as_of=business_date(session, api.settings(request)))
        session.flush()
        return 200, CheckRead.model_validate(task).model_dump(mode="json")

    return api.idempotent(request, principal, idempotency_key, required=False, command_name="complete_check",
                          payload=command.model_dump(mode="json"), command=run)
