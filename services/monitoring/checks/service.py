"""Post-loan check tasks (贷后检查): the first use-of-funds check, and a review whenever a loan turns bad."""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import select as sa_select
from sqlmodel import Session, select

from services.monitoring.checks.models import CheckCompletion, CheckKind, CheckStatus, CheckTask
from services.monitoring.db import insert_ignoring
from services.monitoring.delinquency.models import RiskChange
from services.monitoring.loans.models import ClassName, Loan, new_id, now
from shared.errors import Problem

USE_OF_FUNDS_DAYS = 15  # the first check follows disbursement within weeks, while the funds can still be traced
REVIEW_DAYS = 7


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
