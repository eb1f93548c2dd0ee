from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlmodel import Session

from services.monitoring import api
from services.monitoring.rules import service
from services.monitoring.rules.models import EarlyWarningRule, RuleRead, RuleReview, RuleWrite
from shared.bounds import BusinessDate
from shared.errors import problem_responses
from shared.idempotency import OptionalIdempotencyKey
from shared.pagination import Page, page_of, paged

router = APIRouter(tags=["early-warning rules"])


@router.get("/rules", response_model=Page[RuleRead], summary="Early-warning rules, shipped and added, by code",
            responses=problem_responses(401, 422))
def list_rules(request: Request, _: api.Reader, paging: paged(100) = None) -> Page[RuleRead]:
    with api.database(request).session() as session:
        page = service.rules_page(session, paging)
        session.commit()
        return page


@router.post("/rules", status_code=201, response_model=RuleRead, summary="Add a rule of a known kind (risk analyst)",
             responses=problem_responses(422))
def create_rule(request: Request, command: RuleWrite, principal: api.Analyst,
                idempotency_key: OptionalIdempotencyKey = None) -> JSONResponse:
    return api.idempotent(request, principal, idempotency_key, required=False, command_name="create_rule",
                          payload=command.model_dump(mode="json"), command=lambda session: (
                              201, _read(session, service.create_rule(session, command, by=principal.sub))))


@router.put("/rules/{code}", response_model=RuleRead,
            summary="Change a rule's thresholds, severity or switch (risk analyst)",
            responses=problem_responses(404, 422))
def update_rule(request: Request, code: str, command: RuleWrite, principal: api.Analyst,
                idempotency_key: OptionalIdempotencyKey = None) -> JSONResponse:
    return api.idempotent(request, principal, idempotency_key, required=False, command_name="update_rule",
                          payload=command.model_dump(mode="json"), command=lambda session: (
                              200, _read(session, service.update_rule(session, code, command, by=principal.sub))))


def _read(session: Session, rule: EarlyWarningRule) -> dict[str, Any]:
    session.flush()
    return RuleRead.model_validate(rule).model_dump(mode="json")


@router.get("/rules/{code}/review", response_model=RuleReview,
            summary="How a rule performed over a period: precision and recall (risk analyst, auditor, admin)",
            responses=problem_responses(404, 422))
def review_rule(request: Request, code: str, since: BusinessDate, until: BusinessDate, principal: api.Reviewer,
                branch: str | None = None) -> RuleReview:
    with api.database(request).session() as session, api.domain_errors("query"):
        return service.review_rule(session, code, since, until, api.scope(principal), branch)


@router.get("/rules/review", response_model=Page[RuleReview],
            summary="Every rule's precision, recall and lead time over a period (risk analyst, auditor, admin)",
            description="Per rule: how collectors closed its alerts, and per loan against defaults (the first day "
                        "more than 90 days past due): precision, recall and the days from the first alert to the "
                        "default. `loancrm rules review --truth FILE` reviews against a ground-truth file instead.",
            responses=problem_responses(422))
def review_rules(request: Request, since: BusinessDate, until: BusinessDate, principal: api.Reviewer,
                 branch: str | None = None, paging: paged(100) = None) -> Page[RuleReview]:
    with api.database(request).session() as session, api.domain_errors("query"):
        reviews = service.review_rules(session, since, until, api.scope(principal), branch)
        session.commit()  # the shipped rules, installed on first use
    return page_of(reviews, paging, lambda review: (review.code,), str)
