"""Collections: actions on delinquent loans, promises to pay, the work queue, and the contact-log outbox."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date
from typing import Any

from sqlalchemy import case, func
from sqlmodel import Session, select

from services.monitoring.alerts import service as alerts
from services.monitoring.alerts.models import OPEN_STATUSES, Alert
from services.monitoring.collections.models import (
    ActionCreate,
    ActionKind,
    CollectionAction,
    ContactLog,
    OutboxMessage,
    PreservationStep,
    PreservationStepCreate,
    PreservationStepRead,
    PromiseStatus,
    QueueItem,
)
from services.monitoring.errors import DomainError
from services.monitoring.loans import service as loans
from services.monitoring.loans.models import Loan, now
from services.monitoring.loans.money import ZERO
from services.monitoring.repayments.models import Posting, PostingStatus
from services.monitoring.rules.engine import Facts
from services.monitoring.rules.models import RuleKind
from shared.auth.scope import Visibility
from shared.errors import Problem
from shared.pagination import Page, PageRequest, keyset

def record_action(session: Session, loan_id: str, command: ActionCreate, *, collector: str, scope: Visibility,
                  as_of: date) -> CollectionAction:
    """Record what a collector did; the contact-log entry for the customer service is queued in the same commit."""
    loan = loans.get_loan(session, loan_id, scope)
    is_promise = command.kind is ActionKind.PROMISE_TO_PAY
    if is_promise and command.promised_amount is None:
        raise DomainError("promised_amount", "a promise to pay needs the amount promised")
    if is_promise and (command.promised_date is None or command.promised_date < as_of):
        raise DomainError("promised_date", "a promise to pay needs a date, on or after the business date")
    if not is_promise and (command.promised_amount is not None or command.promised_date is not None):
        raise DomainError("kind", "only a promise to pay carries promised_amount and promised_date")
    if command.alert_id is not None:
        alerts.get_alert(session, command.alert_id, scope)
    action = CollectionAction(loan_id=loan.id, collector=collector, occurred_on=as_of,
                              promise_status=PromiseStatus.PENDING if is_promise else None,
                              **command.model_dump())
    session.add(action)
    session.flush()
    session.add(OutboxMessage(action_id=action.id, customer_id=loan.customer_id, payload={
        "channel": command.channel.value, "direction": "outbound", "purpose": "collection",
        "outcome": outcome_code(command.outcome), "occurred_at": action.occurred_at.isoformat(),
        "notes": f"[{command.kind.value}] {command.notes or ''}".strip()}))
    session.flush()
    return action


def record_preservation_step(session: Session, action_id: str, command: PreservationStepCreate, *, by: str,
                             scope: Visibility, as_of: date) -> PreservationStep:
    """One step of an asset-preservation action (a freeze request, the court's order, enforcement, release)."""
    action = session.get(CollectionAction, action_id)
    if action is None:
        raise Problem(404, "Not found", f"No collection action {action_id!r}.")
    loans.get_loan(session, action.loan_id, scope, asked_for=f"collection action {action_id!r}")
    if action.kind != ActionKind.ASSET_PRESERVATION:
        raise Problem(409, "Conflict", f"Steps belong to an asset-preservation action; this one is {action.kind}.")
    if not action.occurred_on <= command.occurred_on <= as_of:
        raise DomainError("occurred_on", f"must lie between the action's day {action.occurred_on.isoformat()} and "
                                         f"the business date {as_of.isoformat()}")
    step = PreservationStep(action_id=action.id, loan_id=action.loan_id, recorded_by=by, **command.model_dump())
    session.add(step)
    session.flush()
    return step


def preservation_steps(session: Session, action_id: str, scope: Visibility,
                       paging: PageRequest) -> Page[PreservationStepRead]:
    action = session.get(CollectionAction, action_id)
    if action is None:
        raise Problem(404, "Not found", f"No collection action {action_id!r}.")
    loans.get_loan(session, action.loan_id, scope, asked_for=f"collection action {action_id!r}")
    return keyset(session, select(PreservationStep).where(PreservationStep.action_id == action_id), paging,
                  PreservationStep.occurred_on, PreservationStep.recorded_at, PreservationStep.id,
                  read=lambda rows: [PreservationStepRead.model_validate(r) for r in rows])


def outcome_code(outcome: str) -> str:
    """The contact log files outcomes as snake_case codes ("no answer" -> "no_answer")."""
    return re.sub(r"[^a-z0-9]+", "_", outcome.lower()).strip("_")[:64] or "unknown"


def contact_log(session: Session, action_id: str) -> ContactLog:
    delivered = session.exec(select(OutboxMessage.delivered).where(OutboxMessage.action_id == action_id)).first()
    return ContactLog.WRITTEN if delivered else ContactLog.QUEUED


def actions(session: Session, loan_id: str, paging: PageRequest,
            read: Callable[[list[CollectionAction]], list[Any]]) -> Page[Any]:
    return keyset(session, select(CollectionAction).where(CollectionAction.loan_id == loan_id), paging,
                  CollectionAction.occurred_at, CollectionAction.id, read=read)


def pending_messages(session: Session, action_id: str | None = None) -> list[OutboxMessage]:
    query = select(OutboxMessage).where(OutboxMessage.delivered.is_(False))
    if action_id is not None:
        query = query.where(OutboxMessage.action_id == action_id)
    return list(session.exec(query.order_by(OutboxMessage.created_at)))


def mark_attempt(session: Session, message_id: str, error: str | None) -> None:
    message = session.get(OutboxMessage, message_id)
    message.attempts += 1
    message.last_error = error[:500] if error else None
    if error is None:
        message.delivered, message.delivered_at = True, now()
    session.add(message)


def settle_promises(session: Session, as_of: date) -> tuple[int, int, int]:
    """Promises whose date has passed: kept if the loan received the amount since the promise, else broken.
    Returns how many were kept, broken, and the alerts the broken ones raised."""
    due = session.exec(select(CollectionAction).where(
        CollectionAction.promise_status == PromiseStatus.PENDING, CollectionAction.promised_date < as_of)).all()
    kept = broken = raised = 0
    for promise in due:
        paid = session.exec(select(func.coalesce(func.sum(Posting.amount), 0)).where(
            Posting.loan_id == promise.loan_id, Posting.status == PostingStatus.POSTED,
            Posting.value_date >= promise.occurred_on, Posting.value_date <= promise.promised_date)).one()
        if paid >= promise.promised_amount:
            promise.promise_status, kept = PromiseStatus.KEPT, kept + 1
        else:
            promise.promise_status, broken = PromiseStatus.BROKEN, broken + 1
            loan = session.get(Loan, promise.loan_id)
            raised += alerts.warn(session, Facts(loan.id, loan.customer_id, as_of, promise={
                "promise_id": promise.id, "amount": promise.promised_amount,
                "promised_date": promise.promised_date, "paid": paid or ZERO}), kinds=[RuleKind.PROMISE_BROKEN])
        session.add(promise)
    return kept, broken, raised


_RANKS = {"high": 3, "medium": 2, "low": 1}
_SEVERITY_RANK = case(_RANKS, value=Alert.severity, else_=0)


def work_queue(session: Session, paging: PageRequest, *, scope: Visibility,
               owner: str | None = None) -> Page[QueueItem]:
    """Open alerts worst first: severity, then days past due, then the earliest due."""
    query = select(Alert, Loan).join(Loan, Loan.id == Alert.loan_id).where(
        Alert.status.in_(OPEN_STATUSES), scope.where(Alert.branch))
    if owner is not None:
        query = query.where(Alert.owner == owner)
    return keyset(session, query, paging, -_SEVERITY_RANK, -Loan.dpd, Alert.due_at, Alert.id,
                  key=lambda row: (-_RANKS.get(row[0].severity, 0), -row[1].dpd, row[0].due_at, row[0].id),
                  read=lambda rows: [QueueItem.of(alert, loan) for alert, loan in rows])
