from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from sqlmodel import Session

from services.scoring import api
from services.scoring.applications import service
from services.scoring.applications.flows import register_loan_once
from services.scoring.applications.models import (Application, ApplicationCreate, ApplicationDetail,
                                                  ApplicationRead, ApplicationStatus, DecisionCommand,
                                                  DisbursementCommand, EventRead)
from services.scoring.db import idempotency
from services.scoring.disclosure import service as disclosure
from services.scoring.disclosure.flows import offer_education
from services.scoring.policy import service as policy
from shared.ids import new_id
from services.scoring.scores import service as scores
from services.scoring.scores.models import Score, ScoreInput
from services.scoring.scores.views import features_for, score_read
from services.scoring.screening import service as screening
from services.scoring.screening.flows import gather_facts, screen_before_payout
from services.scoring.screening.models import HitRead, Stage
from shared.auth.dependencies import bearer_token, require_roles
from shared.auth.roles import Role
from shared.auth.scope import EVERYTHING, visibility
from shared.auth.tokens import Principal
from shared.errors import field_problem, problem_responses
from shared.idempotency import OptionalIdempotencyKey, answer_once, check_key, fingerprint
from shared.pagination import Page, paged

router = APIRouter(prefix="/applications", tags=["applications"])
SUBMITTERS = (Role.ADMIN, Role.LOAN_OFFICER, Role.PARTNER)
DISBURSERS = (Role.ADMIN, Role.LOAN_OFFICER)
DECIDERS = (Role.ADMIN, Role.LOAN_OFFICER, Role.RISK_ANALYST, Role.CREDIT_COMMITTEE)
Submitter = Annotated[Principal, Depends(require_roles(*SUBMITTERS))]
Disburser = Annotated[Principal, Depends(require_roles(*DISBURSERS))]
Decider = Annotated[Principal, Depends(require_roles(*DECIDERS))]
Reader = Annotated[Principal, Depends(require_roles(
    Role.ADMIN, Role.LOAN_OFFICER, Role.RISK_ANALYST, Role.AUDITOR, Role.PARTNER, Role.CREDIT_COMMITTEE))]


def detail(session: Session, application: Application) -> ApplicationDetail:
    return ApplicationDetail.model_validate({
        **ApplicationRead.model_validate(application).model_dump(),
        "score": score_read(session.get(Score, application.score_id)),
        "history": [EventRead.model_validate(e) for e in service.history(session, application.id)],
        "screening_hits": [HitRead.model_validate(h) for h in screening.hits(session, application.id)],
    })


@router.post("", status_code=201, response_model=ApplicationDetail,
             summary="Submit a credit application: scored, then approved, declined or queued for review "
                     "(loan officer, partner, admin; a partner then sees only its own applications)",
             responses=problem_responses(403, 409, 422, 428, 503))
async def submit_application(
    request: Request,
    command: ApplicationCreate,
    principal: Submitter,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> JSONResponse:
    key = check_key(idempotency_key, required=False)
    branch = command.branch or principal.branch
    if branch is None:
        raise field_problem("body.branch", "required when the submitter has no branch")
    # What a caller submits, it must be able to see afterwards: a loan officer its own branch only (and, without
    # a branch, nothing), a partner what it submits itself.
    if not visibility(principal, among=SUBMITTERS).allows(branch, principal.sub):
        raise field_problem("body.branch", "a loan officer submits for their own branch only", status=403,
                            title="Forbidden")
    state = api.state(request)
    service.check_request(state.context.settings, command)
    score_input = ScoreInput(customer_id=command.customer_id, features=command.features,
                             requested_amount=command.amount)
    assembled = await features_for(request, [score_input])
    service.check_branch(branch, assembled.branches[0])
    served, [row] = await run_in_threadpool(assembled.check, state, ["body.features"])
    facts = await gather_facts(state.customer, state.monitoring, state.context.settings, command.customer_id,
                               token=bearer_token(request)) if screening.screens_at_submission(principal) \
        else screening.Facts(identifiers=None, feed=None)

    scored: list[tuple[scores.Applicant, dict]] = []

    def run(session):  # noqa: ANN001, ANN202
        application_id = new_id()
        applicant = scores.Applicant(row, command.customer_id, command.amount, application_id,
                                     branch=assembled.branches[0] or branch)
        score = scores.score_applicant(session, state.context, served, applicant, principal.sub)
        scored.append((applicant, score))
        hashes, found = screening.screen_submission(session, command, facts, state.context.hash_key,
                                                    state.context.settings)
        application = service.submit_application(session, command, branch, score, principal.sub, application_id,
                                                 state.context.settings, hashes=hashes,
                                                 screening_hold=screening.summary(found) or None)
        screening.record_hits(session, application, Stage.SUBMISSION, found)
        return 201, detail(session, application).model_dump(mode="json")

    outcome = await run_in_threadpool(
        idempotency.run_once, state.database, owner=principal.sub, key=key,
        request_fingerprint=fingerprint("submit_application", command.model_dump(mode="json")), command=run)
    if not outcome.replayed:  # a replayed answer was shadowed the first time
        state.shadow.put(served.challenger, [scored[0][0]], [scored[0][1]])
    if outcome.status_code == 201 and policy.high_risk(state.context.settings, outcome.body["score"]["grade"]):
        await offer_education(state.customer, outcome.body, token=bearer_token(request))
    return JSONResponse(outcome.body, status_code=outcome.status_code)


@router.get("", response_model=Page[ApplicationRead],
            summary="Applications, oldest first; `status=in_review` is the review queue",
            responses=problem_responses(422))
def list_applications(
    request: Request,
    principal: Reader,
    status: ApplicationStatus | None = None,
    paging: paged(100) = None,
) -> Page[ApplicationRead]:
    with api.state(request).database.session() as session:
        return service.list_applications(session, status, visibility(principal), paging)


@router.get("/{application_id}", response_model=ApplicationDetail,
            summary="An application with its score and status history", responses=problem_responses(404))
def get_application(request: Request, application_id: str, principal: Reader) -> ApplicationDetail:
    with api.state(request).database.session() as session:
        return detail(session, service.get_application(session, application_id, visibility(principal)))


@router.post("/{application_id}/decision", response_model=ApplicationDetail,
             summary="Decide an application in review (or in committee, credit committee only), with a reason; not "
                     "by its submitter (maker-checker)",
             responses=problem_responses(403, 404, 409, 422))
def decide_application(request: Request, application_id: str, command: DecisionCommand, principal: Decider,
                       idempotency_key: OptionalIdempotencyKey = None) -> JSONResponse:
    state = api.state(request)

    def run(session: Session) -> tuple[int, Any]:
        application = service.get_application(session, application_id, visibility(principal, among=DECIDERS))
        service.decide_application(session, application, command, session.get(Score, application.score_id),
                                   principal.sub, state.context.settings,
                                   by_committee=principal.has_role(Role.CREDIT_COMMITTEE))
        session.flush()
        return 200, detail(session, application).model_dump(mode="json")

    return answer_once(idempotency, state.database, owner=principal.sub, key=idempotency_key, required=False,
                       payload=("decide_application", application_id, command.model_dump(mode="json")),
                       command=run)


@router.post("/{application_id}/disbursement", response_model=ApplicationDetail,
             summary="Mark an approved application disbursed: registers the loan with monitoring, once "
                     "(loan officer of its branch, admin)",
             responses=problem_responses(403, 404, 409, 422, 503))
async def mark_disbursed(request: Request, application_id: str, command: DisbursementCommand,
                         principal: Disburser) -> ApplicationDetail:
    state = api.state(request)

    def load() -> tuple[Application, Decimal | None]:
        with state.database.session() as session:
            found = service.get_application(session, application_id, visibility(principal, among=DISBURSERS))
            if found.status == ApplicationStatus.DISBURSED:
                return found, None
            service.require_disbursable(found)
            service.require_screened(session, found)
            return found, disclosure.disclosed_rate(session, found, command.annual_rate)

    application, acknowledged_rate = await run_in_threadpool(load)
    if application.status != ApplicationStatus.DISBURSED:
        await screen_before_payout(state, application, principal.sub, token=bearer_token(request))
        rate = service.disbursement_rate(state.context.settings, application, acknowledged_rate)
        # The application id is the Idempotency-Key: a retry after a lost answer registers the same loan.
        loan = await register_loan_once(
            state.monitoring, service.loan_body(application, command.disbursement_date, rate),
            key=application.id, token=bearer_token(request))

    def link() -> ApplicationDetail:
        with state.database.session() as session:
            current = service.get_application(session, application_id, EVERYTHING)  # checked by `load`
            if current.status != ApplicationStatus.DISBURSED:
                service.mark_disbursed(session, current, loan.id, principal.sub)
                session.commit()
            return detail(session, current)

    return await run_in_threadpool(link)
