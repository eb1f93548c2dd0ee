from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlmodel import Session

from services.monitoring import api
from services.monitoring.approvals import service
from services.monitoring.approvals.models import (
    CHECKER_ROLES,
    ChangeKind,
    ChangeRequest,
    ChangeRequestRead,
    Decision,
    RequestStatus,
    WaiverRequest,
    WriteOffRequest,
)
from services.monitoring.business_day import business_date
from services.monitoring.classification.models import RestructuringRequest
from services.monitoring.delinquency.models import PauseCreate
from services.monitoring.hardship.models import DeferralRequest, RecallRequest, RepaymentPlanRequest
from shared.auth.dependencies import require_roles
from shared.auth.tokens import Principal
from shared.errors import problem_responses
from shared.idempotency import OptionalIdempotencyKey
from shared.pagination import Page, paged

router = APIRouter(tags=["maker-checker"])
Checker = Annotated[Principal, Depends(require_roles(*CHECKER_ROLES))]
REQUEST_PROBLEMS = problem_responses(404, 409, 422)


def _requested(request: Request, principal: Principal, key: str | None, name: str, command: BaseModel,
               make: Callable[[Session], ChangeRequest]) -> JSONResponse:
    def run(session: Session) -> tuple[int, dict]:
        made = make(session)
        return 201, service.reads(session, [made])[0].model_dump(mode="json")

    return api.idempotent(request, principal, key, required=False, command_name=name,
                          payload=command.model_dump(mode="json"), command=run)


@router.post("/loans/{loan_id}/delinquency-pauses", status_code=201, response_model=ChangeRequestRead,
             summary="Ask to pause the DPD clock over a date range (maker: loan officer, risk analyst, admin); "
                     "it applies once a checker approves", responses=REQUEST_PROBLEMS)
def request_pause(request: Request, loan_id: str, command: PauseCreate, principal: api.Maker,
                  idempotency_key: OptionalIdempotencyKey = None) -> JSONResponse:
    return _requested(request, principal, idempotency_key, "request_pause", command, lambda session: (
        service.request_pause(session, loan_id, command, maker=principal.sub, scope=api.scope(principal),
                              as_of=business_date(session, api.settings(request)), settings=api.settings(request))))


@router.post("/loans/{loan_id}/waivers", status_code=201, response_model=ChangeRequestRead,
             summary="Ask to waive penalty or interest due, never principal (maker: loan officer, risk analyst, "
                     "admin); it applies once a checker approves", responses=REQUEST_PROBLEMS)
def request_waiver(request: Request, loan_id: str, command: WaiverRequest, principal: api.Maker,
                   idempotency_key: OptionalIdempotencyKey = None) -> JSONResponse:
    return _requested(request, principal, idempotency_key, "request_waiver", command, lambda session: (
        service.request_waiver(session, loan_id, command, maker=principal.sub, scope=api.scope(principal),
                               as_of=business_date(session, api.settings(request)))))


@router.post("/loans/{loan_id}/write-off", status_code=201, response_model=ChangeRequestRead,
             summary="Ask to write the loan off (maker: loan officer, risk analyst, admin); it applies once a "
                     "checker approves", responses=REQUEST_PROBLEMS)
def request_write_off(request: Request, loan_id: str, command: WriteOffRequest, principal: api.Maker,
                      idempotency_key: OptionalIdempotencyKey = None) -> JSONResponse:
    return _requested(request, principal, idempotency_key, "request_write_off", command, lambda session: (
        service.request_write_off(session, loan_id, command, maker=principal.sub, scope=api.scope(principal),
                                  as_of=business_date(session, api.settings(request)),
                                  settings=api.settings(request))))


@router.post("/loans/{loan_id}/restructuring", status_code=201, response_model=ChangeRequestRead,
             summary="Ask to record a restructuring: at least special mention, never improving, for a year; with a "
                     "new rate and/or term, the schedule after the effective date is rebooked (maker: loan officer, "
                     "risk analyst, admin); it applies once a checker approves", responses=REQUEST_PROBLEMS)
def request_restructuring(request: Request, loan_id: str, command: RestructuringRequest, principal: api.Maker,
                          idempotency_key: OptionalIdempotencyKey = None) -> JSONResponse:
    return _requested(request, principal, idempotency_key, "request_restructuring", command, lambda session: (
        service.request_restructuring(session, loan_id, command, maker=principal.sub,
                                      scope=api.scope(principal),
                                      as_of=business_date(session, api.settings(request)))))


@router.post("/loans/{loan_id}/repayment-plans", status_code=201, response_model=ChangeRequestRead,
             summary="Propose a temporary repayment plan: reduced instalments for some months, the shortfall "
                     "re-spread or added at the end (maker: loan officer, collector, admin); it applies from the "
                     "day a checker (credit committee, risk analyst, admin) approves", responses=REQUEST_PROBLEMS)
def request_repayment_plan(request: Request, loan_id: str, command: RepaymentPlanRequest, principal: api.Collector,
                           idempotency_key: OptionalIdempotencyKey = None) -> JSONResponse:
    return _requested(request, principal, idempotency_key, "request_repayment_plan", command, lambda session: (
        service.request_repayment_plan(session, loan_id, command, maker=principal.sub, scope=api.scope(principal),
                                       as_of=business_date(session, api.settings(request)))))


@router.post("/loans/{loan_id}/deferrals", status_code=201, response_model=ChangeRequestRead,
             summary="Propose a deferral (payment holiday): every instalment not yet due moves out by some months, "
                     "the holiday's interest waived or charged (maker: loan officer, collector, admin); it applies "
                     "from the day a checker (credit committee, risk analyst, admin) approves",
             responses=REQUEST_PROBLEMS)
def request_deferral(request: Request, loan_id: str, command: DeferralRequest, principal: api.Collector,
                     idempotency_key: OptionalIdempotencyKey = None) -> JSONResponse:
    return _requested(request, principal, idempotency_key, "request_deferral", command, lambda session: (
        service.request_deferral(session, loan_id, command, maker=principal.sub, scope=api.scope(principal),
                                 as_of=business_date(session, api.settings(request)))))


@router.post("/loans/{loan_id}/early-recall", status_code=201, response_model=ChangeRequestRead,
             summary="Propose to recall the loan early, where its contract allows: everything outstanding falls due "
                     "on the day a checker (credit committee, risk analyst, admin) approves (maker: loan officer, "
                     "collector, admin)", responses=REQUEST_PROBLEMS)
def request_early_recall(request: Request, loan_id: str, command: RecallRequest, principal: api.Collector,
                         idempotency_key: OptionalIdempotencyKey = None) -> JSONResponse:
    return _requested(request, principal, idempotency_key, "request_early_recall", command, lambda session: (
        service.request_early_recall(session, loan_id, command, maker=principal.sub, scope=api.scope(principal),
                                     as_of=business_date(session, api.settings(request)))))


@router.post("/change-requests/{request_id}/decision", response_model=ChangeRequestRead,
             summary="Approve (and apply) or reject a request (checker: a role allowed for its kind, never its "
                     "maker)", responses=problem_responses(403, 404, 409, 422))
def decide_request(request: Request, request_id: str, command: Decision, principal: Checker,
                   idempotency_key: OptionalIdempotencyKey = None) -> JSONResponse:
    def run(session: Session) -> tuple[int, dict]:
        decided = service.decide_request(session, request_id, command, checker=principal.sub, roles=principal.roles,
                                         scope=api.scope(principal),
                                         as_of=business_date(session, api.settings(request)),
                                         settings=api.settings(request))
        return 200, service.reads(session, [decided])[0].model_dump(mode="json")

    return api.idempotent(request, principal, idempotency_key, required=False, command_name="decide_request",
                          payload=command.model_dump(mode="json"), command=run)


@router.get("/change-requests", response_model=Page[ChangeRequestRead],
            summary="Change requests, oldest first; status=pending is the checkers' queue (branch-scoped for loan "
                    "officers)", responses=problem_responses(422))
def list_requests(
    request: Request,
    principal: api.CommitteeReader,
    status: RequestStatus | None = None,
    kind: ChangeKind | None = None,
    loan_id: str | None = None,
    paging: paged(50, 200) = None,
) -> Page[ChangeRequestRead]:
    with api.database(request).session() as session:
        return service.list_requests(session, paging, scope=api.scope(principal), status=status, kind=kind,
                                     loan_id=loan_id)


@router.get("/change-requests/{request_id}", response_model=ChangeRequestRead,
            summary="A change request with every step it went through", responses=problem_responses(404))
def get_request(request: Request, request_id: str, principal: api.CommitteeReader) -> ChangeRequestRead:
    with api.database(request).session() as session:
        return service.reads(session, [service.get_request(session, request_id, api.scope(principal))])[0]
