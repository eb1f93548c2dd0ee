"""Satisfaction surveys: sent by a channel, answered later; a low answer opens a follow-up for the officer."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from enum import StrEnum
from statistics import fmean

from sqlmodel import Session, select

from services.customer import scoping
from services.customer.common import as_utc, utcnow
from services.customer.customers.models import Customer
from services.customer.surveys.models import CSAT_DIMENSIONS, LOW_CSAT, LOW_NPS, FollowUpTask, Survey, SurveyAnswer, \
    SurveyRead, SurveySend, TaskOpen, TaskRead, TaskStatus, TrendPoint
from shared.auth.tokens import Principal
from shared.errors import Problem, field_problem
from shared.pagination import Page, PageRequest, keyset


class TrendBy(StrEnum):
    CUSTOMER = "customer"
    BRANCH = "branch"
    OFFICER = "officer"


def csat_of(survey: Survey) -> float | None:
    scores = [getattr(survey, name) for name in CSAT_DIMENSIONS]
    return None if None in scores else fmean(scores)


def _read(survey: Survey, task_id: str | None = None) -> SurveyRead:
    return SurveyRead.model_validate({**survey.model_dump(), "csat_avg": csat_of(survey),
                                      "follow_up_task_id": task_id})


def send_survey(session: Session, customer: Customer, command: SurveySend, by: str) -> SurveyRead:
    survey = Survey(customer_id=customer.id, branch=customer.branch, officer=command.officer,
                    channel=command.channel.value, sent_by=by)
    session.add(survey)
    session.flush()
    return _read(survey)


def _visible_survey(session: Session, principal: Principal, survey_id: str) -> Survey:
    survey = session.get(Survey, survey_id)
    customer = session.get(Customer, survey.customer_id) if survey else None
    if survey is None or customer is None or not scoping.can_see(principal, customer.branch, customer.referred_by):
        raise Problem(404, "Not found", f"No survey {survey_id!r}.")
    return survey


def _low_marks(answer: SurveyAnswer) -> list[str]:
    marks = [f"{name} {getattr(answer, name)}" for name in CSAT_DIMENSIONS if getattr(answer, name) <= LOW_CSAT]
    if answer.nps <= LOW_NPS:
        marks.append(f"NPS {answer.nps}")
    return marks


def record_answer(session: Session, principal: Principal, survey_id: str, answer: SurveyAnswer,
                  follow_up_days: int) -> SurveyRead:
    survey = _visible_survey(session, principal, survey_id)
    if survey.answered_at is not None:
        raise Problem(409, "Already answered", f"Survey {survey_id} was answered at {survey.answered_at}.")
    answered_at = answer.answered_at or utcnow()
    if answered_at < as_utc(survey.sent_at) or answered_at > utcnow():
        raise field_problem("body.answered_at", "must lie between the time the survey was sent and now")
    for name, value in answer.model_dump(exclude={"answered_at"}).items():
        setattr(survey, name, value)
    survey.answered_at = answered_at
    session.add(survey)
    task_id = None
    marks = _low_marks(answer)
    if marks:
        task = FollowUpTask(customer_id=survey.customer_id, branch=survey.branch, officer=survey.officer,
                            reason="low survey answer: " + ", ".join(marks), survey_id=survey.id,
                            due_at=utcnow() + timedelta(days=follow_up_days))
        session.add(task)
        task_id = task.id
    session.flush()
    return _read(survey, task_id)


def customer_surveys(session: Session, customer_id: str, paging: PageRequest) -> Page[SurveyRead]:
    return keyset(session, select(Survey).where(Survey.customer_id == customer_id), paging, Survey.sent_at, Survey.id,
                  descending=True, read=lambda rows: [_read(row) for row in rows])


def list_tasks(session: Session, principal: Principal, officer: str | None, status: TaskStatus | None,
               paging: PageRequest) -> Page[TaskRead]:
    query = select(FollowUpTask).join(Customer, Customer.id == FollowUpTask.customer_id)
    scope = scoping.scope_filter(principal, Customer.branch, Customer.referred_by)
    if scope is not None:
        query = query.where(scope)
    if officer:
        query = query.where(FollowUpTask.officer == officer)
    if status:
        query = query.where(FollowUpTask.status == status.value)
    return keyset(session, query, paging, FollowUpTask.due_at, FollowUpTask.id,
                  read=lambda rows: [TaskRead.model_validate(row.model_dump()) for row in rows])


def open_task(session: Session, customer: Customer, command: TaskOpen) -> TaskRead:
    """A follow-up task for the customer's officer; while one for the same reason is open, that one is the answer
    (asked for again, by anyone, the customer does not get it twice)."""
    task = session.exec(select(FollowUpTask).where(
        FollowUpTask.customer_id == customer.id, FollowUpTask.reason == command.reason,
        FollowUpTask.status == TaskStatus.OPEN.value)).first()
    if task is None:
        task = FollowUpTask(customer_id=customer.id, branch=customer.branch, officer=command.officer,
                            reason=command.reason, due_at=command.due_at)
        session.add(task)
        session.flush()
    return TaskRead.model_validate(task.model_dump())


def complete_task(session: Session, principal: Principal, task_id: str) -> TaskRead:
    task = session.get(FollowUpTask, task_id)
    customer = session.get(Customer, task.customer_id) if task else None
    if task is None or customer is None or not scoping.can_change(principal, customer.branch, customer.referred_by):
        raise Problem(404, "Not found", f"No task {task_id!r}.")
    if task.status == TaskStatus.DONE:
        raise Problem(409, "Already done", f"Task {task_id} was completed at {task.done_at}.")
    task.status = TaskStatus.DONE.value
    task.done_at = utcnow()
    session.add(task)
    session.flush()
    return TaskRead.model_validate(task.model_dump())


def answered_since(session: Session, customer_id: str, since: datetime) -> list[Survey]:
    return list(session.exec(select(Survey).where(Survey.customer_id == customer_id, Survey.answered_at >= since)
                             .order_by(Survey.answered_at)).all())


def satisfaction_trend(session: Session, principal: Principal, by: TrendBy, key: str | None,
                       since: datetime | None) -> list[TrendPoint]:
    """Monthly CSAT and NPS averages per customer, branch or officer (grouped here so both databases agree)."""
    column = {TrendBy.CUSTOMER: Survey.customer_id, TrendBy.BRANCH: Survey.branch, TrendBy.OFFICER: Survey.officer}[by]
    query = (select(Survey).join(Customer, Customer.id == Survey.customer_id)
             .where(Survey.answered_at.is_not(None)))
    scope = scoping.scope_filter(principal, Customer.branch, Customer.referred_by)
    if scope is not None:
        query = query.where(scope)
    if key:
        query = query.where(column == key)
    if since:
        query = query.where(Survey.answered_at >= since)
    groups: dict[tuple[str, str], list[Survey]] = defaultdict(list)
    for survey in session.exec(query).all():
        groups[(getattr(survey, column.key), f"{as_utc(survey.answered_at):%Y-%m}")].append(survey)
    return [TrendPoint(key=k, period=p, responses=len(rows), csat_avg=round(fmean(csat_of(s) for s in rows), 2),
                       nps_avg=round(fmean(s.nps for s in rows), 2))
            for (k, p), rows in sorted(groups.items())]
