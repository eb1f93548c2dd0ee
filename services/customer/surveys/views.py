from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlmodel import Session

from services.customer.customers.service import get_changeable, get_visible
from services.customer.surveys import service
from services.customer.surveys.models import SurveyAnswer, SurveyRead, SurveySend, TaskOpen, TaskRead, TaskStatus, \
    TrendPoint
from services.customer.surveys.service import TrendBy
from services.customer.web import Reader, Writer, act_once, create_once, database
from shared.bounds import Timestamp
from shared.errors import problem_responses
from shared.idempotency import IdempotencyKey, OptionalIdempotencyKey
from shared.pagination import Page, paged

router = APIRouter(tags=["surveys"])


@router.post("/customers/{customer_id}/surveys", status_code=201, response_model=SurveyRead,
             summary="Send a satisfaction survey (CSAT per dimension, NPS)",
             responses=problem_responses(403, 404, 409, 422, 428))
def send_survey(request: Request, customer_id: str, command: SurveySend, principal: Writer,
                idempotency_key: IdempotencyKey) -> JSONResponse:
    def run(session: Session) -> SurveyRead:
        return service.send_survey(session, get_changeable(session, principal, customer_id), command, principal.sub)

    return create_once(request, principal, idempotency_key,
                       ("send_survey", customer_id, command.model_dump(mode="json")), run)


@router.post("/surveys/{survey_id}/answer", response_model=SurveyRead, summary="Record the customer's answer",
             description="Any CSAT of 2 or less, or an NPS of 6 or less, opens a follow-up task for the officer.",
             responses=problem_responses(404, 409, 422))
def record_answer(request: Request, survey_id: str, command: SurveyAnswer, principal: Writer,
                  idempotency_key: OptionalIdempotencyKey = None) -> JSONResponse:
    days = request.app.state.settings.survey_follow_up_days
    return act_once(request, principal, idempotency_key,
                    ("record_answer", survey_id, command.model_dump(mode="json")),
                    lambda session: service.record_answer(session, principal, survey_id, command, days))


@router.get("/customers/{customer_id}/surveys", response_model=Page[SurveyRead],
            summary="A customer's surveys, newest first", responses=problem_responses(404, 422))
def customer_surveys(request: Request, customer_id: str, principal: Reader,
                     paging: paged() = None) -> Page[SurveyRead]:
    with database(request).session() as session:
        get_visible(session, principal, customer_id)
        return service.customer_surveys(session, customer_id, paging)


@router.get("/satisfaction/trend", response_model=list[TrendPoint],
            summary="Monthly satisfaction per customer, branch or officer", responses=problem_responses(422))
def satisfaction_trend(request: Request, principal: Reader, by: TrendBy = TrendBy.BRANCH, key: str | None = None,
                       since: Timestamp | None = None) -> list[TrendPoint]:
    with database(request).session() as session:
        return service.satisfaction_trend(session, principal, by, key, since)


@router.get("/tasks", response_model=Page[TaskRead], summary="Follow-up tasks, soonest due first",
            responses=problem_responses(422))
def list_tasks(request: Request, principal: Reader, officer: str | None = None, status: TaskStatus | None = None,
               paging: paged(200, 1000) = None) -> Page[TaskRead]:
    with database(request).session() as session:
        return service.list_tasks(session, principal, officer, status, paging)


@router.post("/customers/{customer_id}/tasks", status_code=201, response_model=TaskRead,
             summary="Open a follow-up task for the customer's officer (e.g. credit education)",
             description="Needs an Idempotency-Key; while a task for the same reason is open it is returned "
                         "instead of a second.",
             responses=problem_responses(403, 404, 409, 422, 428))
def open_task(request: Request, customer_id: str, command: TaskOpen, principal: Writer,
              idempotency_key: IdempotencyKey) -> JSONResponse:
    def run(session: Session) -> TaskRead:
        return service.open_task(session, get_changeable(session, principal, customer_id, active=False), command)

    return create_once(request, principal, idempotency_key,
                       ("open_task", customer_id, command.model_dump(mode="json")), run)


@router.post("/tasks/{task_id}/completion", response_model=TaskRead, summary="Mark a follow-up task done",
             responses=problem_responses(404, 409))
def complete_task(request: Request, task_id: str, principal: Writer,
                  idempotency_key: OptionalIdempotencyKey = None) -> JSONResponse:
    return act_once(request, principal, idempotency_key, ("complete_task", task_id),
                    lambda session: service.complete_task(session, principal, task_id))
