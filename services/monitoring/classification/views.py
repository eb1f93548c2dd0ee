from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from sqlmodel import Session

from services.monitoring import api
from services.monitoring.approvals import service as approvals
from services.monitoring.approvals.models import APPROVERS, ChangeKind, ChangeRequest, Decision
from services.monitoring.business_day import business_date
from services.monitoring.classification.models import OverrideRead, OverrideRequest
from services.monitoring.loans import service as loans
from shared.auth.dependencies import require_roles
from shared.auth.tokens import Principal
from shared.errors import Problem, problem_responses
from shared.idempotency import OptionalIdempotencyKey
from shared.pagination import Page, paged

router = APIRouter(tags=["classification"])
# Only those who may approve an override (the change-request route's checkers include the credit committee).
Checker = Annotated[Principal, Depends(require_roles(*sorted(APPROVERS[ChangeKind.CLASS_OVERRIDE])))]


def override_read(request: ChangeRequest) -> dict:
    return OverrideRead(id=request.id, loan_id=request.loan_id, requested_class=request.payload["requested_class"],
                        reason=request.reason, status=request.status, maker=request.maker, checker=request.checker,
                        requested_on=request.requested_on, decided_on=request.decided_on,
                        decision_note=request.decision_note).model_dump(mode="json")


@router.post("/loans/{loan_id}/class-overrides", status_code=201, response_model=OverrideRead,
             summary="Propose a worse class than the rules give (maker: loan officer, risk analyst, admin); a "
                     "change request of kind class_override", responses=problem_responses(404, 409, 422))
def request_override(request: Request, loan_id: str, command: OverrideRequest, principal: api.Maker,
                     idempotency_key: OptionalIdempotencyKey = None) -> JSONResponse:
    def run(session: Session) -> tuple[int, dict]:
        made = approvals.request_override(session, loan_id, command, maker=principal.sub,
                                          scope=api.scope(principal),
                                          as_of=business_date(session, api.settings(request)))
        return 201, override_read(made)

    return api.idempotent(request, principal, idempotency_key, required=False, command_name="request_override",
                          payload=command.model_dump(mode="json"), command=run)


@router.post("/class-overrides/{override_id}/decision", response_model=OverrideRead,
             summary="Approve or reject an override (checker: risk analyst or admin, not the maker); the same as "
                     "POST /change-requests/{id}/decision", responses=problem_responses(403, 404, 409, 422))
def decide_override(request: Request, override_id: str, command: Decision, principal: Checker,
                    idempotency_key: OptionalIdempotencyKey = None) -> JSONResponse:
    def run(session: Session) -> tuple[int, dict]:
        scope = api.scope(principal)
        if approvals.get_request(session, override_id, scope).kind != ChangeKind.CLASS_OVERRIDE:
            raise Problem(404, "Not found", f"No override {override_id!r}.")
        decided = approvals.decide_request(session, override_id, command, checker=principal.sub,
                                           roles=principal.roles, scope=scope,
                                           as_of=business_date(session, api.settings(request)),
                                           settings=api.settings(request))
        return 200, override_read(decided)

    return api.idempotent(request, principal, idempotency_key, required=False, command_name="decide_override",
                          payload=command.model_dump(mode="json"), command=run)


@router.get("/loans/{loan_id}/class-overrides", response_model=Page[OverrideRead],
            summary="Overrides proposed for a loan, with their decisions", responses=problem_responses(404, 422))
def list_overrides(request: Request, loan_id: str, principal: api.Reader, paging: paged() = None) -> Page[OverrideRead]:
    with api.database(request).session() as session:
        loans.get_loan(session, loan_id, api.scope(principal))
        return approvals.requests_of(session, loan_id, ChangeKind.CLASS_OVERRIDE, paging,
                                     read=lambda rows: [override_read(o) for o in rows])
