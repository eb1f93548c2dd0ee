"""Maker-checker for every act that lowers a loan's recognised risk or what it owes.

One person requests (`request_pause`, `request_waiver`, `request_write_off`, `request_restructuring`,
`request_override`); another, with a role APPROVERS allows for that kind, approves or rejects. Nothing changes on
the loan until approval, when the request is checked again against the loan as it then stands and applied by the
act's own function. Every step is an event of the request; what the act changes in the loan's risk state is in
its history with the request id as reference.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from datetime import date
from decimal import Decimal
from typing import Any

from pydantic import BaseModel
from sqlmodel import Session, select

from services.monitoring.approvals.models import (
    APPROVERS,
    ChangeKind,
    ChangeRequest,
    ChangeRequestEvent,
    ChangeRequestRead,
    Decision,
    EventRead,
    RequestStatus,
    Step,
    WaivedComponent,
    WaiverRequest,
    WriteOffRequest,
)
from services.monitoring.cob import service as cob
from services.monitoring.classification import service as classification
from services.monitoring.classification.models import OverrideRequest, RestructuringRequest
from services.monitoring.delinquency import service as delinquency
from services.monitoring.delinquency.models import PauseCreate
from services.monitoring.errors import DomainError
from services.monitoring.hardship import service as hardship
from services.monitoring.hardship.models import DeferralRequest, RecallRequest, RepaymentPlanRequest
from services.monitoring.loans import service as loans
from services.monitoring.loans.models import Loan, LoanStatus, now
from services.monitoring.loans.money import ZERO
from services.monitoring.repayments import service as repayments
from services.monitoring.settings import MonitoringSettings
from shared.auth.scope import Visibility
from shared.errors import Problem
from shared.pagination import Page, PageRequest, keyset


def _event(session: Session, request: ChangeRequest, step: Step, actor: str, as_of: date, *,
           note: str | None = None, detail: dict[str, Any] | None = None) -> None:
    session.add(ChangeRequestEvent(request_id=request.id, loan_id=request.loan_id, step=step.value, actor=actor,
                                   business_date=as_of, note=note, detail=detail or {}))


def _open_loan(session: Session, loan_id: str, scope: Visibility, *, active: bool = True) -> Loan:
    loan = loans.lock_loan(session, loan_id, scope)
    if loan.status == LoanStatus.WRITTEN_OFF or (active and loan.status != LoanStatus.ACTIVE):
        raise Problem(409, "Conflict", f"The loan is {loan.status}; only an active loan takes this request.")
    return loan


def _request(session: Session, loan: Loan, kind: ChangeKind, command: BaseModel, reason: str, *, maker: str,
             as_of: date) -> ChangeRequest:
    pending = session.exec(select(ChangeRequest.id).where(
        ChangeRequest.loan_id == loan.id, ChangeRequest.kind == kind.value,
        ChangeRequest.status == RequestStatus.PENDING.value)).first()
    if pending is not None:
        raise Problem(409, "Conflict", f"A {kind.value} request for this loan is already pending ({pending}); "
                                       "it must be decided first.")
    request = ChangeRequest(loan_id=loan.id, kind=kind.value, payload=command.model_dump(mode="json"),
                            reason=reason, maker=maker, requested_on=as_of)
    session.add(request)
    session.flush()
    _event(session, request, Step.REQUESTED, maker, as_of)
    session.flush()
    return request


def request_pause(session: Session, loan_id: str, command: PauseCreate, *, maker: str, scope: Visibility,
                  as_of: date, settings: MonitoringSettings) -> ChangeRequest:
    loan = _open_loan(session, loan_id, scope)
    delinquency.check_pause(loan, command, as_of, max_backdate_days=settings.pause_max_backdate_days,
                            max_days=settings.pause_max_days)
    reason = command.reason.value + (f": {command.note}" if command.note else "")
    return _request(session, loan, ChangeKind.PAUSE, command, reason, maker=maker, as_of=as_of)


def _due(session: Session, loan: Loan, component: WaivedComponent, as_of: date) -> Decimal:
    dues = (repayments.penalty_due if component is WaivedComponent.PENALTY else repayments.interest_due)(
        session, loan, as_of)
    return sum((due for _, due in dues), ZERO)


def request_waiver(session: Session, loan_id: str, command: WaiverRequest, *, maker: str, scope: Visibility,
                   as_of: date) -> ChangeRequest:
    loan = _open_loan(session, loan_id, scope)
    due = _due(session, loan, command.component, as_of)
    if command.amount > due:
        raise DomainError("amount", f"exceeds the {command.component.value} due on {as_of.isoformat()} ({due})")
    return _request(session, loan, ChangeKind.WAIVER, command, command.reason, maker=maker, as_of=as_of)


def _check_write_off(loan: Loan, settings: MonitoringSettings) -> None:
    least = delinquency.to_class(settings.write_off_min_class)
    if delinquency.to_class(loan.classification) < least:
        raise Problem(409, "Conflict", f"Only a loan classed {settings.write_off_min_class} or worse can be written "
                                       f"off; this one is {loan.classification}.")


def request_write_off(session: Session, loan_id: str, command: WriteOffRequest, *, maker: str, scope: Visibility,
                      as_of: date, settings: MonitoringSettings) -> ChangeRequest:
    loan = _open_loan(session, loan_id, scope)
    _check_write_off(loan, settings)
    return _request(session, loan, ChangeKind.WRITE_OFF, command, command.reason, maker=maker, as_of=as_of)


def request_restructuring(session: Session, loan_id: str, command: RestructuringRequest, *, maker: str,
                          scope: Visibility, as_of: date) -> ChangeRequest:
    # A classification-only restructuring of a repaid loan was allowed before maker-checker; it still is.
    loan = _open_loan(session, loan_id, scope, active=False)
    classification.check_restructuring(session, loan, command, as_of)
    return _request(session, loan, ChangeKind.RESTRUCTURING, command, command.reason, maker=maker, as_of=as_of)


def request_override(session: Session, loan_id: str, command: OverrideRequest, *, maker: str, scope: Visibility,
                     as_of: date) -> ChangeRequest:
    loan = _open_loan(session, loan_id, scope, active=False)
    classification.check_override(loan, command)
    return _request(session, loan, ChangeKind.CLASS_OVERRIDE, command, command.reason, maker=maker, as_of=as_of)


def request_repayment_plan(session: Session, loan_id: str, command: RepaymentPlanRequest, *, maker: str,
                           scope: Visibility, as_of: date) -> ChangeRequest:
    loan = _open_loan(session, loan_id, scope)
    hardship.check_repayment_plan(session, loan, command, as_of)
    return _request(session, loan, ChangeKind.REPAYMENT_PLAN, command, command.reason, maker=maker, as_of=as_of)


def request_deferral(session: Session, loan_id: str, command: DeferralRequest, *, maker: str, scope: Visibility,
                     as_of: date) -> ChangeRequest:
    loan = _open_loan(session, loan_id, scope)
    hardship.check_deferral(session, loan, command, as_of)
    return _request(session, loan, ChangeKind.DEFERRAL, command, command.reason, maker=maker, as_of=as_of)


def request_early_recall(session: Session, loan_id: str, command: RecallRequest, *, maker: str, scope: Visibility,
                         as_of: date) -> ChangeRequest:
    loan = _open_loan(session, loan_id, scope)
    hardship.check_early_recall(session, loan, as_of)
    return _request(session, loan, ChangeKind.EARLY_RECALL, command, command.reason, maker=maker, as_of=as_of)


# --- approval: each act's own function, on the loan as it stands on the day of approval -----------------------

Applied = dict[str, Any]


def approve_pause(session: Session, loan: Loan, request: ChangeRequest, *, as_of: date,
                  settings: MonitoringSettings) -> Applied:
    command = PauseCreate.model_validate(request.payload)
    delinquency.check_pause(loan, command, as_of, max_backdate_days=settings.pause_max_backdate_days,
                            max_days=settings.pause_max_days)
    pause = delinquency.pause_delinquency(session, loan, command, by=request.maker, as_of=as_of,
                                          reference=request.id)
    return {"pause_id": pause.id, "dpd": loan.dpd, "classification": loan.classification}


def approve_waiver(session: Session, loan: Loan, request: ChangeRequest, *, as_of: date,
                   settings: MonitoringSettings) -> Applied:
    command = WaiverRequest.model_validate(request.payload)
    if command.component is WaivedComponent.PENALTY:
        return repayments.waive_penalty(session, loan, command.amount, as_of=as_of)
    return repayments.waive_interest(session, loan, command.amount, as_of=as_of, reference=request.id)


def approve_write_off(session: Session, loan: Loan, request: ChangeRequest, *, as_of: date,
                      settings: MonitoringSettings) -> Applied:
    _check_write_off(loan, settings)
    return repayments.write_off_loan(session, loan, as_of=as_of)


def approve_restructuring(session: Session, loan: Loan, request: ChangeRequest, *, as_of: date,
                          settings: MonitoringSettings) -> Applied:
    command = RestructuringRequest.model_validate(request.payload)
    classification.restructure_loan(session, loan, command, by=request.maker, as_of=as_of, reference=request.id)
    return {"restructured_on": as_of.isoformat(), "classification": loan.classification}


def approve_override(session: Session, loan: Loan, request: ChangeRequest, *, as_of: date,
                     settings: MonitoringSettings) -> Applied:
    command = OverrideRequest.model_validate(request.payload)
    classification.override_classification(session, loan, command, as_of=as_of, reference=request.id)
    return {"classification": loan.classification}


def _granted(record: hardship.HardshipRecord, loan: Loan) -> Applied:
    return {"hardship_record_id": record.id, "observation_until": record.observation_until and
            record.observation_until.isoformat(), "dpd": loan.dpd, "classification": loan.classification}


def approve_repayment_plan(session: Session, loan: Loan, request: ChangeRequest, *, as_of: date,
                           settings: MonitoringSettings) -> Applied:
    record = hardship.grant_repayment_plan(
        session, loan, RepaymentPlanRequest.model_validate(request.payload), as_of=as_of,
        observation_months=settings.hardship_observation_months, request_id=request.id, maker=request.maker,
        checker=request.checker)
    return _granted(record, loan)


def approve_deferral(session: Session, loan: Loan, request: ChangeRequest, *, as_of: date,
                     settings: MonitoringSettings) -> Applied:
    record = hardship.grant_deferral(
        session, loan, DeferralRequest.model_validate(request.payload), as_of=as_of,
        observation_months=settings.hardship_observation_months, request_id=request.id, maker=request.maker,
        checker=request.checker)
    return _granted(record, loan)


def approve_early_recall(session: Session, loan: Loan, request: ChangeRequest, *, as_of: date,
                         settings: MonitoringSettings) -> Applied:
    command = RecallRequest.model_validate(request.payload)
    record = hardship.recall_loan(session, loan, command.reason, as_of=as_of, request_id=request.id,
                                  maker=request.maker, checker=request.checker)
    return _granted(record, loan)


APPLY: dict[ChangeKind, Callable[..., Applied]] = {
    ChangeKind.PAUSE: approve_pause,
    ChangeKind.WAIVER: approve_waiver,
    ChangeKind.WRITE_OFF: approve_write_off,
    ChangeKind.RESTRUCTURING: approve_restructuring,
    ChangeKind.CLASS_OVERRIDE: approve_override,
    ChangeKind.REPAYMENT_PLAN: approve_repayment_plan,
    ChangeKind.DEFERRAL: approve_deferral,
    ChangeKind.EARLY_RECALL: approve_early_recall,
}


def decide_request(session: Session, request_id: str, command: Decision, *, checker: str, roles: Collection[str],
                   scope: Visibility, as_of: date, settings: MonitoringSettings) -> ChangeRequest:
    """Approve (and apply) or reject a pending request: the checker is not its maker and holds a role allowed to
    approve its kind. A request that no longer holds on the loan as it now stands cannot be approved (409)."""
    request = get_request(session, request_id, scope)
    kind = ChangeKind(request.kind)
    if request.maker == checker:
        raise Problem(403, "Forbidden", "The checker of a request must be someone other than its maker.")
    if not APPROVERS[kind] & set(roles):
        raise Problem(403, "Forbidden", f"A {kind.value} request is approved by: {', '.join(sorted(APPROVERS[kind]))}.")
    loan = loans.lock_loan(session, request.loan_id, scope)
    if command.approve:
        cob.catch_up(session, loan, as_of)  # the change applies to the loan as COB would have it today
    session.refresh(request)  # decided by someone else while we waited for the lock?
    if request.status != RequestStatus.PENDING:
        raise Problem(409, "Conflict", f"This request is already {request.status}.")
    request.checker, request.decided_on, request.decided_at = checker, as_of, now()
    request.decision_note = command.note
    if not command.approve:
        request.status = RequestStatus.REJECTED.value
        _event(session, request, Step.REJECTED, checker, as_of, note=command.note)
        session.add(request)
        session.flush()
        return request
    if loan.status == LoanStatus.WRITTEN_OFF:
        raise Problem(409, "Conflict", "The loan was written off since the request.")
    request.status = RequestStatus.APPROVED.value
    _event(session, request, Step.APPROVED, checker, as_of, note=command.note)
    try:
        detail = APPLY[kind](session, loan, request, as_of=as_of, settings=settings)
    except DomainError as exc:
        raise Problem(409, "Conflict", f"The request no longer holds ({exc.field}: {exc.message}); reject it or "
                                       "ask again.") from None
    _event(session, request, Step.APPLIED, checker, as_of, detail=detail)
    session.add_all([request, loan])
    session.flush()
    return request


# --- reads ----------------------------------------------------------------------------------------------------

def get_request(session: Session, request_id: str, scope: Visibility) -> ChangeRequest:
    """The request, or 404 when it does not exist or its loan lies outside the caller's scope."""
    request = session.get(ChangeRequest, request_id)
    if request is None:
        raise Problem(404, "Not found", f"No change request {request_id!r}.")
    loan = session.get(Loan, request.loan_id)
    if not scope.allows(loan.branch):
        raise Problem(404, "Not found", f"No change request {request_id!r}.")
    return request


def reads(session: Session, requests: list[ChangeRequest]) -> list[ChangeRequestRead]:
    events: dict[str, list[EventRead]] = {}
    if requests:
        for event in session.exec(select(ChangeRequestEvent).where(
                ChangeRequestEvent.request_id.in_([r.id for r in requests]))
                .order_by(ChangeRequestEvent.at, ChangeRequestEvent.id)):
            events.setdefault(event.request_id, []).append(EventRead.model_validate(event))
    fields = set(ChangeRequestRead.model_fields) - {"approvers", "events"}
    return [ChangeRequestRead.model_validate({
        **{f: getattr(r, f) for f in fields}, "approvers": sorted(APPROVERS[ChangeKind(r.kind)]),
        "events": sorted(events.get(r.id, []), key=lambda e: (e.at, list(Step).index(e.step)))}) for r in requests]


def list_requests(session: Session, paging: PageRequest, *, scope: Visibility, status: RequestStatus | None = None,
                  kind: ChangeKind | None = None, loan_id: str | None = None) -> Page[ChangeRequestRead]:
    """Oldest first (a queue); keyset on (created_at, id), so a page never skips or repeats a request."""
    query = select(ChangeRequest).join(Loan, Loan.id == ChangeRequest.loan_id).where(scope.where(Loan.branch))
    for column, value in ((ChangeRequest.status, status), (ChangeRequest.kind, kind),
                          (ChangeRequest.loan_id, loan_id)):
        if value is not None:
            query = query.where(column == value)
    return keyset(session, query, paging, ChangeRequest.created_at, ChangeRequest.id,
                  read=lambda page: reads(session, page))


def requests_of(session: Session, loan_id: str, kind: ChangeKind, paging: PageRequest,
                read: Callable[[list[ChangeRequest]], list[Any]]) -> Page[Any]:
    return keyset(session, select(ChangeRequest).where(ChangeRequest.loan_id == loan_id,
                                                       ChangeRequest.kind == kind.value),
                  paging, ChangeRequest.created_at, ChangeRequest.id, read=read)
