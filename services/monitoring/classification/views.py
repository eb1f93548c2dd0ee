from typing import Annotated

from fastapi import APIRouter, Depends, Request

from services.monitoring import api
from services.monitoring.business_day import business_date
from services.monitoring.classification import service
from services.monitoring.classification.models import (
    OverrideDecision,
    OverrideRead,
    OverrideRequest,
    RestructuringRequest,
)
from services.monitoring.loans import service as loans
from services.monitoring.loans.models import LoanSummary
from shared.auth.dependencies import require_roles
from shared.auth.roles import Role
from shared.auth.tokens import Principal
from shared.errors import problem_responses

router = APIRouter(tags=["classification"])
Checker = Annotated[Principal, Depends(require_roles(Role.ADMIN, Role.RISK_ANALYST))]


@router.post("/loans/{loan_id}/class-overrides", status_code=201, response_model=OverrideRead,
             summary="Propose a worse class than the rules give (maker: loan officer, risk analyst, admin)",
             responses=problem_responses(404, 422))
def request_override(request: Request, loan_id: str, command: OverrideRequest, principal: api.Maker) -> OverrideRead:
    with api.database(request).session() as session, api.domain_errors():
        override = service.request_override(session, loan_id, command, maker=principal.sub,
                                            scope=api.scope(principal),
                                            as_of=business_date(session, api.settings(request)))
        session.commit()
        return OverrideRead.model_validate(override)


@router.post("/class-overrides/{override_id}/decision", response_model=OverrideRead,
             summary="Approve or reject an override (checker: risk analyst or admin, not the maker)",
             responses=problem_responses(404, 409, 422))
def decide_override(request: Request, override_id: str, command: OverrideDecision, principal: Checker) -> OverrideRead:
    with api.database(request).session() as session:
        override = service.decide_override(session, override_id, command, checker=principal.sub,
                                           scope=api.scope(principal),
                                           as_of=business_date(session, api.settings(request)))
        session.commit()
        return OverrideRead.model_validate(override)


@router.get("/loans/{loan_id}/class-overrides", response_model=list[OverrideRead],
            summary="Overrides proposed for a loan, with their decisions", responses=problem_responses(404))
def list_overrides(request: Request, loan_id: str, principal: api.Reader) -> list[OverrideRead]:
    with api.database(request).session() as session:
        loans.get_loan(session, loan_id, api.scope(principal))
        return [OverrideRead.model_validate(o) for o in service.overrides(session, loan_id)]


@router.post("/loans/{loan_id}/restructuring", response_model=LoanSummary,
             summary="Record a restructuring: at least special mention, never improving, for a year; with a new "
                     "rate and/or term, rebook the schedule after the effective date (loan officer, admin)",
             responses=problem_responses(404, 409, 422))
def restructure_loan(request: Request, loan_id: str, command: RestructuringRequest,
                     principal: api.Officer) -> LoanSummary:
    with api.database(request).session() as session:
        with api.domain_errors():
            loan = service.restructure_loan(session, loan_id, command, scope=api.scope(principal),
                                            by=principal.sub, as_of=business_date(session, api.settings(request)))
        session.commit()
        return LoanSummary.model_validate(loan)
