"""Post-loan check tasks (贷后检查): the first use-of-funds check soon after disbursement, then periodic checks
at an interval set by class and amount, tightened by the borrower's grade and segments (CheckCadence), and a
review whenever a loan turns bad; weak grades and risky segments are visited on site."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from datetime import date, timedelta
from decimal import Decimal

from sqlalchemy import case, func, select as sa_select, update
from sqlmodel import Session, select

from services.monitoring.checks.models import (CheckCadence, CheckCompletion, CheckKind, CheckRead, CheckStatus,
                                               CheckTask, VisitType)
from services.monitoring.db import insert_ignoring
from services.monitoring.delinquency.models import RiskChange
from services.monitoring.loans.models import ClassName, Loan, LoanSegment, LoanStatus, new_id, now
from shared.auth.scope import Visibility
from shared.pagination import Page, PageRequest, keyset
from shared.errors import Problem

USE_OF_FUNDS_DAYS = 15  # the first check follows disbursement within weeks, while the funds can still be traced
REVIEW_DAYS = 7
# Periodic checks: a performing loan twice a year, a large one quarterly; closer once it is special mention
# (monthly) and closer still when non-performing (fortnightly).
LARGE_LOAN = Decimal("1000000.00")
NORMAL_DAYS, LARGE_NORMAL_DAYS, SPECIAL_MENTION_DAYS, NON_PERFORMING_DAYS = 180, 90, 30, 15


def check_interval(loan_class: str, principal: Decimal, grade: str | None = None, segments: Collection[str] = (),
                   cadence: CheckCadence | None = None) -> int:
    """Days between periodic checks of a loan of this class and size, for a borrower of this grade and segments:
    the closest interval any of them calls for."""
    if loan_class == ClassName.NORMAL:
        days = LARGE_NORMAL_DAYS if principal >= LARGE_LOAN else NORMAL_DAYS
    else:
        days = SPECIAL_MENTION_DAYS if loan_class == ClassName.SPECIAL_MENTION else NON_PERFORMING_DAYS
    cadence = cadence or CheckCadence()
    closer = [cadence.periodic_days_by_grade.get(grade or "", days)]
    closer += [cadence.periodic_days_by_segment[s] for s in segments if s in cadence.periodic_days_by_segment]
    return min(days, *closer)


def visit_type(kind: CheckKind, grade: str | None, segments: Collection[str] = (),
               cadence: CheckCadence | None = None) -> VisitType:
    """On site for a weak grade or a risky segment; otherwise the use-of-funds check reviews documents and the
    others are phone calls."""
    cadence = cadence or CheckCadence()
    if grade in cadence.on_site_grades or any(s in cadence.on_site_segments for s in segments):
        return VisitType.ON_SITE_VISIT
    return VisitType.DOCUMENT_REVIEW if kind == CheckKind.USE_OF_FUNDS else VisitType.PHONE


def _segments_of(session: Session, loan_ids: Iterable[str]) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    ids = list(loan_ids)
    for start in range(0, len(ids), 500):  # bounded IN lists
        for loan_id, segment in session.execute(sa_select(LoanSegment.loan_id, LoanSegment.segment).where(
                LoanSegment.loan_id.in_(ids[start:start + 500]))):
            found.setdefault(loan_id, set()).add(segment)
    return found


def schedule_use_of_funds(session: Session, loan: Loan, cadence: CheckCadence | None = None) -> None:
    cadence = cadence or CheckCadence()
    days = cadence.use_of_funds_days_by_grade.get(loan.last_grade or "", USE_OF_FUNDS_DAYS)
    session.add(CheckTask(loan_id=loan.id, branch=loan.branch, officer=loan.officer, kind=CheckKind.USE_OF_FUNDS,
                          visit_type=visit_type(CheckKind.USE_OF_FUNDS, loan.last_grade, (), cadence),
                          due_date=loan.disbursement_date + timedelta(days=min(days, USE_OF_FUNDS_DAYS))))


def schedule_risk_reviews(session: Session, day: date, cadence: CheckCadence | None = None) -> int:
    """A review task for each loan whose class worsened from normal on `day` (one per loan and day)."""
    worsened = session.execute(
        sa_select(Loan.id, Loan.branch, Loan.officer, Loan.last_grade).join(
            RiskChange, RiskChange.loan_id == Loan.id).where(
            RiskChange.field == "loan_class", RiskChange.effective_date == day,
            RiskChange.from_value == ClassName.NORMAL.value, RiskChange.superseded_at.is_(None))).all()
    if not worsened:
        return 0
    segments = _segments_of(session, (row.id for row in worsened))
    rows = [{"id": new_id(), "loan_id": loan_id, "branch": branch, "officer": officer,
             "kind": CheckKind.RISK_REVIEW.value, "due_date": day + timedelta(days=REVIEW_DAYS),
             "visit_type": visit_type(CheckKind.RISK_REVIEW, grade, segments.get(loan_id, ()), cadence).value,
             "status": CheckStatus.OPEN.value, "created_at": now()} for loan_id, branch, officer, grade in worsened]
    return len(session.execute(insert_ignoring(session, CheckTask.__table__).returning(CheckTask.__table__.c.id),
                               rows).all())


def schedule_periodic_checks(session: Session, day: date, since: date | None = None,
                             cadence: CheckCadence | None = None) -> int:
    """Keep one open routine check per active loan: once the last one is done, a periodic check due an interval
    after it; an open periodic check is brought forward when the loan's class now calls for a closer one.

    With `since` (the previous close of business) only what can have moved is looked at: loans whose routine
    check was completed, or whose class changed, on or after it. Without it, every active loan.
    """
    tasks, loans, changes = CheckTask.__table__, Loan.__table__, RiskChange.__table__
    routine = (CheckKind.USE_OF_FUNDS.value, CheckKind.PERIODIC.value)
    open_routine = sa_select(tasks.c.id).where(tasks.c.loan_id == loans.c.id, tasks.c.kind.in_(routine),
                                               tasks.c.status == CheckStatus.OPEN.value).exists()
    last_done = sa_select(func.max(tasks.c.completed_on)).where(
        tasks.c.loan_id == loans.c.id, tasks.c.kind.in_(routine),
        tasks.c.status == CheckStatus.DONE.value).scalar_subquery()
    needing = sa_select(loans.c.id, loans.c.branch, loans.c.officer, loans.c.classification, loans.c.principal,
                        loans.c.last_grade, loans.c.disbursement_date, last_done.label("last_done")).where(
        loans.c.status == LoanStatus.ACTIVE.value, ~open_routine)
    if since is not None:
        needing = needing.where(loans.c.id.in_(sa_select(tasks.c.loan_id).where(
            tasks.c.completed_on >= since, tasks.c.kind.in_(routine), tasks.c.status == CheckStatus.DONE.value)))
    created = []
    due = session.execute(needing).all()
    segments = _segments_of(session, (loan.id for loan in due))
    for loan in due:
        held = segments.get(loan.id, ())
        interval = timedelta(days=check_interval(loan.classification, loan.principal, loan.last_grade, held,
                                                 cadence))
        anchor = loan.last_done or loan.disbursement_date + timedelta(days=USE_OF_FUNDS_DAYS)
        created.append({"id": new_id(), "loan_id": loan.id, "branch": loan.branch, "officer": loan.officer,
                        "kind": CheckKind.PERIODIC.value, "due_date": max(anchor + interval, day),
                        "visit_type": visit_type(CheckKind.PERIODIC, loan.last_grade, held, cadence).value,
                        "status": CheckStatus.OPEN.value, "created_at": now()})
    # A periodic check is due at most an interval after it was set, so only a loan whose class worsened since
    # can need a closer one; normal loans never do (their interval depends on the principal alone). One UPDATE.
    closer = case((loans.c.classification == ClassName.SPECIAL_MENTION.value,
                   day + timedelta(days=SPECIAL_MENTION_DAYS)), else_=day + timedelta(days=NON_PERFORMING_DAYS))
    bring_forward = update(tasks).where(
        tasks.c.loan_id == loans.c.id, tasks.c.kind == CheckKind.PERIODIC.value,
        tasks.c.status == CheckStatus.OPEN.value, loans.c.status == LoanStatus.ACTIVE.value,
        loans.c.classification != ClassName.NORMAL.value, tasks.c.due_date > closer).values(due_date=closer)
    if since is not None:
        bring_forward = bring_forward.where(loans.c.id.in_(sa_select(changes.c.loan_id).where(
            changes.c.field == "loan_class", changes.c.recorded_on >= since)))
    if created:
        session.execute(insert_ignoring(session, tasks), created)
    moved = session.execute(bring_forward).rowcount
    return len(created) + moved


def list_checks(session: Session, paging: PageRequest, *, scope: Visibility, loan_id: str | None = None,
                status: CheckStatus | None = None, due_by: date | None = None) -> Page[CheckRead]:
    query = select(CheckTask).where(scope.where(CheckTask.branch))
    for column, value in ((CheckTask.loan_id, loan_id), (CheckTask.status, status)):
        if value is not None:
            query = query.where(column == value)
    if due_by is not None:
        query = query.where(CheckTask.due_date <= due_by)
    return keyset(session, query, paging, CheckTask.due_date, CheckTask.id,
                  read=lambda tasks: [CheckRead.model_validate(t) for t in tasks])


def complete_check(session: Session, check_id: str, command: CheckCompletion, *, by: str, scope: Visibility,
                   as_of: date) -> CheckTask:
    task = session.get(CheckTask, check_id)
    if task is None or not scope.allows(task.branch):
        raise Problem(404, "Not found", f"No check {check_id!r}.")
    if task.status == CheckStatus.DONE:
        raise Problem(409, "Conflict", "This check is already done.")
    task.status, task.outcome, task.findings = CheckStatus.DONE, command.outcome.value, command.findings
    task.completed_by, task.completed_on = by, as_of
    session.add(task)
    session.flush()
    return task
