"""Loan accounts and their schedules: register, preview, look up. No web framework here."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from sqlalchemy import delete, func, select as sa_select, update
from sqlmodel import Session, select

from services.monitoring.alerts import service as alerts
from services.monitoring.checks import service as checks
from services.monitoring.classification.rules import ChangeCause
from services.monitoring.delinquency import service as delinquency
from services.monitoring.errors import DomainError
from services.monitoring.loans.models import (
    Instalment,
    InstalmentRead,
    Loan,
    LoanCreate,
    LoanSegment,
    ScheduleRequest,
    SchedulePreview,
)
from services.monitoring.loans.schedule import generate_schedule
from services.monitoring.loans.money import ZERO
from services.monitoring.rules.engine import Facts
from services.monitoring.rules.models import RuleKind
from shared.clients.scoring import Score
from shared.errors import Problem

PD_PLACES = Decimal("0.000001")  # the stored PD's scale (loans.last_pd)


def preview_schedule(command: ScheduleRequest) -> SchedulePreview:
    instalments = generate_schedule(
        command.principal, command.annual_rate, command.term_months, command.repayment_method,
        command.disbursement_date, command.first_due_date,
    )
    rows = [InstalmentRead(number=i.number, due_date=i.due_date, principal=i.principal, interest=i.interest,
                           total=i.total) for i in instalments]
    total_interest = sum((i.interest for i in instalments), ZERO)
    total_principal = sum((i.principal for i in instalments), ZERO)
    return SchedulePreview(repayment_method=command.repayment_method, total_principal=total_principal,
                           total_interest=total_interest, total_repayment=total_principal + total_interest,
                           instalments=rows)


def find_by_external_id(session: Session, source: str, external_id: str) -> Loan | None:
    return session.exec(select(Loan).where(Loan.external_source == source, Loan.external_id == external_id)).first()


def note_score(loan: Loan, score: Score, day: date) -> None:
    """Keep the borrower's latest score on the loan: the baseline of re-scores, and the PD of expected loss."""
    loan.last_score, loan.last_grade, loan.scored_on = score.points, score.grade, day
    loan.last_pd = Decimal(str(score.pd)).quantize(PD_PLACES)


def note_segments(session: Session, loan: Loan, value_tier: str, segments: list[str]) -> None:
    """Replace the loan's copy of its borrower's value tier and named segments (from the customer portrait)."""
    loan.value_tier = value_tier
    session.execute(delete(LoanSegment).where(LoanSegment.loan_id == loan.id))
    session.add_all(LoanSegment(loan_id=loan.id, segment=s) for s in set(segments))


def register_loan(session: Session, command: LoanCreate, *, registered_by: str, as_of: date,
                  latest_score: Score | None = None, penalty_daily_rate: Decimal = ZERO) -> Loan:
    """Book a disbursed loan with its schedule and its risk state on the business date.

    `latest_score` (the scoring service's latest for the borrower) is the baseline later re-scores compare with.
    """
    if command.disbursement_date > as_of:
        raise DomainError("disbursement_date", f"must not be after the business date {as_of.isoformat()}")
    if command.external_id and find_by_external_id(session, registered_by, command.external_id):
        raise Problem(409, "Conflict", f"A loan with external_id {command.external_id!r} already exists.")
    preview = preview_schedule(command)
    loan = Loan(
        **command.model_dump(exclude={"product", "repayment_method"}),
        product=command.product.value,
        repayment_method=command.repayment_method.value,
        external_source=registered_by if command.external_id else None,
        outstanding_principal=command.principal,
        penalty_daily_rate=penalty_daily_rate,
        oldest_unpaid_due=preview.instalments[0].due_date,
        created_by=registered_by,
    )
    if latest_score is not None:
        note_score(loan, latest_score, as_of)
    session.add(loan)
    session.flush()
    session.add_all(Instalment(loan_id=loan.id, number=i.number, due_date=i.due_date, principal=i.principal,
                               interest=i.interest) for i in preview.instalments)
    checks.schedule_use_of_funds(session, loan)
    delinquency.reassess(session, loan, as_of, cause=ChangeCause.COB_AGEING, reference=None, booking=True)
    # A loan booked already overdue (e.g. migrated from another system) warns like one that just fell behind.
    alerts.warn(session, Facts(loan.id, loan.customer_id, as_of, None, delinquency.stored_state(loan)),
                kinds=[RuleKind.DPD_REACHED, RuleKind.CLASS_WORSENED])
    return loan


def get_loan(session: Session, loan_id: str, branch: str | None) -> Loan:
    """The loan, or 404 when it does not exist or lies outside the caller's branch (existence is not leaked)."""
    loan = session.get(Loan, loan_id)
    if loan is None or (branch is not None and loan.branch != branch):
        raise Problem(404, "Not found", f"No loan {loan_id!r}.")
    return loan


def lock_loan(session: Session, loan_id: str, branch: str | None) -> Loan:
    """Take the loan's write lock for the rest of the transaction, then read it fresh.

    PostgreSQL: a row lock (SELECT … FOR UPDATE). SQLite has no row locks; a no-op UPDATE starts the write
    transaction first, so concurrent writers queue on the busy timeout instead of failing on lock upgrade.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(sa_select(Loan.id).where(Loan.id == loan_id).with_for_update())
    else:
        session.execute(update(Loan).where(Loan.id == loan_id).values(id=Loan.id))
    loan = session.get(Loan, loan_id, populate_existing=True)
    if loan is None or (branch is not None and loan.branch != branch):
        raise Problem(404, "Not found", f"No loan {loan_id!r}.")
    return loan


def list_loans(session: Session, *, branch: str | None, customer_id: str | None = None,
               external_id: str | None = None, limit: int = 100, offset: int = 0) -> list[Loan]:
    query = select(Loan)
    if branch is not None:
        query = query.where(Loan.branch == branch)
    if customer_id is not None:
        query = query.where(Loan.customer_id == customer_id)
    if external_id is not None:
        query = query.where(Loan.external_id == external_id)
    return list(session.exec(query.order_by(Loan.created_at, Loan.id).offset(offset).limit(limit)).all())


def instalments(session: Session, loan_id: str) -> list[Instalment]:
    return list(session.exec(select(Instalment).where(Instalment.loan_id == loan_id).order_by(Instalment.number)))


def instalment_read(row: Instalment) -> InstalmentRead:
    return InstalmentRead(number=row.number, due_date=row.due_date, principal=row.principal, interest=row.interest,
                          total=row.principal + row.interest, principal_paid=row.principal_paid,
                          interest_paid=row.interest_paid, penalty_paid=row.penalty_paid)


def oldest_unpaid_due(rows: list[Instalment]) -> date | None:
    return min((r.due_date for r in rows if r.principal_paid < r.principal or r.interest_paid < r.interest),
               default=None)


def outstanding(rows: list[Instalment]) -> Decimal:
    return sum((r.principal - r.principal_paid for r in rows), ZERO)


_UNPAID = (Instalment.principal_paid < Instalment.principal) | (Instalment.interest_paid < Instalment.interest)


def unpaid_instalments(session: Session, loan_id: str, due_by: date | None = None) -> list[Instalment]:
    query = select(Instalment).where(Instalment.loan_id == loan_id, _UNPAID)
    if due_by is not None:
        query = query.where(Instalment.due_date <= due_by)
    return list(session.exec(query.order_by(Instalment.number)))


def next_unpaid_due(session: Session, loan_id: str) -> date | None:
    return session.exec(select(func.min(Instalment.due_date)).where(Instalment.loan_id == loan_id, _UNPAID)).one()


def overdue_amount(session: Session, loan_id: str, as_of: date) -> Decimal:
    """Principal and interest fallen due before `as_of` and still unpaid."""
    owed = session.exec(select(func.sum(Instalment.principal - Instalment.principal_paid + Instalment.interest
                                        - Instalment.interest_paid))
                        .where(Instalment.loan_id == loan_id, Instalment.due_date < as_of)).one()
    return Decimal(owed or 0)
