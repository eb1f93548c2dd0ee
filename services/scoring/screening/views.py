from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from sqlmodel import Session

from services.scoring import api
from services.scoring.applications import service as applications
from services.scoring.applications.models import ApplicationDetail
from services.scoring.applications.views import detail
from services.scoring.db import idempotency
from services.scoring.screening import service
from services.scoring.screening.models import Resolution
from shared.auth.dependencies import require_roles
from shared.auth.roles import Role
from shared.auth.scope import visibility
from shared.auth.tokens import Principal
from shared.errors import problem_responses
from shared.idempotency import OptionalIdempotencyKey, answer_once

router = APIRouter(prefix="/applications", tags=["applications"])
REVIEWERS = (Role.ADMIN, Role.RISK_ANALYST, Role.CREDIT_COMMITTEE)
Reviewer = Annotated[Principal, Depends(require_roles(*REVIEWERS))]


def _resolve(request: Request, application_id: str, command: Resolution, principal: Principal, key: str | None,
             name: str, act: Any) -> JSONResponse:
    state = api.state(request)

    def run(session: Session) -> tuple[int, Any]:
        application = applications.get_application(session, application_id, visibility(principal, among=REVIEWERS))
        act(session, application, principal.sub, command.reason)
        session.flush()
        return 200, detail(session, application).model_dump(mode="json")

    return answer_once(idempotency, state.database, owner=principal.sub, key=key, required=False,
                       payload=(name, application_id, command.model_dump(mode="json")), command=run)


@router.post("/{application_id}/screening/clearance", response_model=ApplicationDetail,
             summary="Clear the application's open screening hits with a reason: it may proceed (risk analyst, "
                     "credit committee, admin; not its submitter)",
             responses=problem_responses(403, 404, 409, 422))
def clear_screening(request: Request, application_id: str, command: Resolution, principal: Reviewer,
                    idempotency_key: OptionalIdempotencyKey = None) -> JSONResponse:
    return _resolve(request, application_id, command, principal, idempotency_key, "clear_screening",
                    service.clear_hits)


@router.post("/{application_id}/screening/confirmation", response_model=ApplicationDetail,
             summary="Confirm the application's open screening hits with a reason: it is declined (risk analyst, "
                     "credit committee, admin; not its submitter)",
             responses=problem_responses(403, 404, 409, 422))
def confirm_screening(request: Request, application_id: str, command: Resolution, principal: Reviewer,
                      idempotency_key: OptionalIdempotencyKey = None) -> JSONResponse:
    return _resolve(request, application_id, command, principal, idempotency_key, "confirm_screening",
                    service.confirm_hits)
