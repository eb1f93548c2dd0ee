"""Post-loan check tasks (贷后检查): the first use-of-funds check soon after disbursement, then periodic checks
at an interval set by class and amount, and a review whenever a loan turns bad."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from sqlalchemy import bindparam, func, select as sa_select, update
from sqlmodel import Session, select

from services.monitoring.checks.models import CheckCompletion, CheckKind, CheckStatus, CheckTask
from services.monitoring.db import insert_ignoring
from services.monitoring.delinquency.models import RiskChange
from services.monitoring.loans.models import ClassName, Loan, LoanStatus, new_id, now
from shared.errors import Problem

USE_OF_FUNDS_DAYS = 15  # the first check follows disbursement within weeks, while the funds can still be traced
REVIEW_DAYS = 7
# Periodic checks: a performing loan twice a year, a large one quarterly; closer once it is special mention
# (monthly) and closer still when non-performing (fortnightly).
LARGE_LOAN = Decimal("1000000.00")
NORMAL_DAYS, LARGE_NORMAL_DAYS, SPECIAL_MENTION_DAYS, NON_PERFORMING_DAYS = 180, 90, 30, 15


def check_interval(loan_class: str, principal: Decimal) -> int:
    """Days between periodic checks of a loan of this class and size."""
    if loan_class == ClassName.NORMAL:
        return LARGE_NORMAL_DAYS if principal >= LARGE_LOAN else NORMAL_DAYS
    return SPECIAL_MENTION_DAYS if loan_class == ClassName.SPECIAL_MENTION else NON_PERFORMING_DAYS


def schedule_use_of_funds(session: Session, loan: Loan) -> None:
    session.add(CheckTask(loan_id=loan.id, branch=loan.branch, officer=loan.officer, kind=CheckKind.USE_OF_FUNDS,
                          due_date=loan.disbursement_date + timedelta(days=USE_OF_FUNDS_DAYS)))


def schedule_risk_reviews(session: Session, day: date) -> int:
    """A review task for each loan whose class worsened from normal on `day` (one per loan and day)."""
    worsened = session.execute(
        sa_select(Loan.id, Loan.branch, Loan.officer).join(RiskChange, RiskChange.loan_id == Loan.id).where(
            RiskChange.field == "loan_class", RiskChange.effective_date == day,
            RiskChange.from_value == ClassName.NORMAL.value)).all()
    if not worsened:
        return 0
    rows = [{"id": new_id(), "loan_id": loan_id, "branch": branch, "officer": officer,
             "kind": CheckKind.RISK_REVIEW.value, "due_date": day + timedelta(days=REVIEW_DAYS),
             "status": CheckStatus.OPEN.value, "created_at": now()} for loan_id, branch, officer in worsened]
    return len(session.execute(insert_ignoring(session, CheckTask.__table__).returning(CheckTask.__table__.c.id),
                               rows).all())


def schedule_periodic_checks(session: Session, day: date) -> int:
    """Keep one open routine check per active loan: once the last one is done, a periodic check due an interval
    after it; an open periodic check is brought forward when the loan's class now calls for a closer one."""
    tasks = CheckTask.__table__
    routine = (CheckKind.USE_OF_FUNDS.value, CheckKind.PERIODIC.value)
    last_done = dict(session.execute(sa_select(tasks.c.loan_id, func.max(tasks.c.completed_on)).where(
        tasks.c.kind.in_(routine), tasks.c.status == CheckStatus.DONE.value).group_by(tasks.c.loan_id)).all())
    pending = {loan_id: (task_id, kind, due) for task_id, loan_id, kind, due in session.execute(
        sa_select(tasks.c.id, tasks.c.loan_id, tasks.c.kind, tasks.c.due_date).where(
            tasks.c.kind.in_(routine), tasks.c.status == CheckStatus.OPEN.value))}
    loans = session.execute(sa_select(Loan.id, Loan.branch, Loan.officer, Loan.classification, Loan.principal,
                                      Loan.disbursement_date).where(Loan.status == LoanStatus.ACTIVE)).all()
    created, moved = [], []
    for loan in loans:
        interval = timedelta(days=check_interval(loan.classification, loan.principal))
        open_task = pending.get(loan.id)
        if open_task is None:
            anchor = last_done.get(loan.id, loan.disbursement_date + timedelta(days=USE_OF_FUNDS_DAYS))
            created.append({"id": new_id(), "loan_id": loan.id, "branch": loan.branch, "officer": loan.officer,
                            "kind": CheckKind.PERIODIC.value, "due_date": max(anchor + interval, day),
                            "status": CheckStatus.OPEN.value, "created_at": now()})
        elif open_task[1] == CheckKind.PERIODIC and open_task[2] > day + interval:
            moved.append({"b_id": open_task[0], "b_due": day + interval})
    if created:
        session.execute(insert_ignoring(session, tasks), created)
    if moved:
        session.execute(update(tasks).where(tasks.c.id == bindparam("b_id")).values(due_date=bindparam("b_due")),
                        moved)
    return len(created) + len(moved)


def list_checks(session: Session, *, branch: str | None, loan_id: str | None = None,
                status: CheckStatus | None = None, due_by: date | None = None, limit: int = 100) -> list[CheckTask]:
    query = select(CheckTask)
    for column, value in ((CheckTask.branch, branch), (CheckTask.loan_id, loan_id), (CheckTask.status, status)):
        if value is not None:
            query = query.where(column == value)
    if due_by is not None:
        query = query.where(CheckTask.due_date <= due_by)
    return list(session.exec(query.order_by(CheckTask.due_date, CheckTask.id).limit(limit)))


def complete_check(session: Session, check_id: str, command: CheckCompletion, *, by: str, branch: str | None,
                   as_of: date) -> CheckTask:
    task = session.get(CheckTask, check_id)
    if task is None or (branch is not None and task.branch != branch):
        raise Problem(404, "Not found", f"No check {check_id!r}.")
    if task.status == CheckStatus.DONE:
        raise Problem(409, "Conflict", "This check is already done.")
    task.status, task.outcome, task.findings = CheckStatus.DONE, command.outcome.value, command.findings
    task.completed_by, task.completed_on = by, as_of
    session.add(task)
    session.flush()
    return task
