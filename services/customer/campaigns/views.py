from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from sqlmodel import Session

from services.customer.campaigns import service
from services.customer.campaigns.models import CampaignCreate, CampaignRead, CampaignReport
from services.customer.web import Manager, act_once, create_once, database
from shared.auth.dependencies import require_roles
from shared.auth.roles import Role
from shared.auth.tokens import Principal
from shared.errors import problem_responses
from shared.idempotency import IdempotencyKey, OptionalIdempotencyKey
from shared.pagination import Page, paged

router = APIRouter(prefix="/campaigns", tags=["campaigns"])
CampaignReader = Annotated[Principal, Depends(require_roles(Role.ADMIN, Role.LOAN_OFFICER, Role.AUDITOR))]


@router.post("", status_code=201, response_model=CampaignRead, summary="Create a campaign for a segment and grades",
             responses=problem_responses(403, 409, 422, 428))
def create_campaign(request: Request, command: CampaignCreate, principal: Manager,
                    idempotency_key: IdempotencyKey) -> JSONResponse:
    def run(session: Session) -> CampaignRead:
        return service.create_campaign(session, principal, command)

    return create_once(request, principal, idempotency_key, ("create_campaign", command.model_dump(mode="json")), run)


@router.post("/{campaign_id}/audience", response_model=CampaignRead, summary="Build (or rebuild) the audience",
             description="Customers matching the segment and grades whose marketing consent is in force now; the "
                         "rest are counted in `excluded_without_consent`. Refused once replies are recorded.",
             responses=problem_responses(404, 409))
def build_audience(request: Request, campaign_id: str, principal: Manager,
                   idempotency_key: OptionalIdempotencyKey = None) -> JSONResponse:
    return act_once(request, principal, idempotency_key, ("build_audience", campaign_id),
                    lambda session: service.build_audience(session, principal, campaign_id))


@router.get("/{campaign_id}/audience", response_model=Page[str], summary="The audience's customer ids",
            responses=problem_responses(404, 422))
def audience(request: Request, campaign_id: str, principal: CampaignReader,
             paging: paged(500, 5000) = None) -> Page[str]:
    with database(request).session() as session:
        return service.audience(session, principal, campaign_id, paging)


@router.get("/{campaign_id}/report", response_model=CampaignReport,
            summary="Response and conversion rates, overall, by grade and by segment",
            description="Replies come from the contact log: log an interaction with `campaign_id` and an outcome "
                        "(`converted`/`accepted`/`signed` convert, `declined`/`not_interested` decline, "
                        "anything else is a response).", responses=problem_responses(404))
def campaign_report(request: Request, campaign_id: str, principal: CampaignReader) -> CampaignReport:
    with database(request).session() as session:
        return service.report(session, principal, campaign_id)
