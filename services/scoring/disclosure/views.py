from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool

from services.scoring import api
from services.scoring.applications import service as applications
from services.scoring.disclosure import flows, service
from services.scoring.disclosure.models import AcknowledgementCommand, DisclosureCommand, DisclosureRead, \
    EvaluationRead
from services.scoring.scores.models import Score
from shared.auth.dependencies import bearer_token, require_roles
from shared.auth.roles import Role
from shared.auth.scope import visibility
from shared.auth.tokens import Principal
from shared.errors import problem_responses

router = APIRouter(tags=["disclosure"])
# Who shows the terms and records the acknowledgement: those who disburse.
SHOWERS = (Role.ADMIN, Role.LOAN_OFFICER)
Shower = Annotated[Principal, Depends(require_roles(*SHOWERS))]
Reader = Annotated[Principal, Depends(require_roles(
    Role.ADMIN, Role.LOAN_OFFICER, Role.RISK_ANALYST, Role.AUDITOR, Role.PARTNER, Role.CREDIT_COMMITTEE))]


@router.put("/applications/{application_id}/disclosure", response_model=DisclosureRead,
            summary="Record the terms shown to the customer of an approved application: rate, fees, term, "
                    "penalty, total cost, how it was decided and why (loan officer of its branch, admin)",
            description="Shown again before the customer acknowledges, it replaces what was shown; a retry is "
                        "harmless. The cost is worked out on the product's own schedule by the monitoring service.",
            responses=problem_responses(404, 409, 422, 503))
async def disclose_terms(request: Request, application_id: str, command: DisclosureCommand,
                         principal: Shower) -> DisclosureRead:
    state = api.state(request)
    settings = state.context.settings

    def load():  # noqa: ANN202
        with state.database.session() as session:
            return applications.get_application(session, application_id, visibility(principal, among=SHOWERS))

    application = await run_in_threadpool(load)
    applications.require_disbursable(application)
    rate = applications.disbursement_rate(settings, application, command.annual_rate)
    on = command.expected_disbursement_date or datetime.now(UTC).date()
    quoted = await flows.quote(state.monitoring, application, rate, on, token=bearer_token(request))

    def record() -> DisclosureRead:
        with state.database.session() as session:
            current = applications.get_application(session, application_id, visibility(principal, among=SHOWERS))
            shown = service.record_disclosure(session, current, session.get(Score, current.score_id), quoted,
                                              annual_rate=rate, by=principal.sub,
                                              fees=settings.fees_by_product.get(current.product, Decimal("0.00")))
            session.commit()
            return DisclosureRead.model_validate(shown)

    return await run_in_threadpool(record)


@router.get("/applications/{application_id}/disclosure", response_model=DisclosureRead,
            summary="What the customer was shown and their acknowledgement", responses=problem_responses(404))
def get_disclosure(request: Request, application_id: str, principal: Reader) -> DisclosureRead:
    with api.state(request).database.session() as session:
        application = applications.get_application(session, application_id, visibility(principal))
        return DisclosureRead.model_validate(service.get_disclosure(session, application))


@router.post("/applications/{application_id}/disclosure/acknowledgement", response_model=DisclosureRead,
             summary="Record that the customer acknowledged the terms shown, when and by which channel (loan "
                     "officer of its branch, admin); disbursement requires it",
             description="Acknowledging again answers the first acknowledgement.",
             responses=problem_responses(404, 422))
def acknowledge_disclosure(request: Request, application_id: str, command: AcknowledgementCommand,
                           principal: Shower) -> DisclosureRead:
    with api.state(request).database.session() as session:
        application = applications.get_application(session, application_id, visibility(principal, among=SHOWERS))
        acknowledged = service.acknowledge_disclosure(session, application, command, principal.sub)
        session.commit()
        return DisclosureRead.model_validate(acknowledged)


@router.get("/customers/{customer_id}/evaluation", response_model=EvaluationRead,
            summary="The customer's latest evaluation and its main reasons in plain words, as it may be told to "
                    "them", responses=problem_responses(404, 422))
def customer_evaluation(request: Request, customer_id: str, principal: api.ScoreReader) -> EvaluationRead:
    with api.state(request).database.session() as session:
        return service.customer_evaluation(session, customer_id, visibility(principal))
