"""Class overrides (judgement may only make a class worse) and restructuring, as applied once approved."""

from __future__ import annotations

from datetime import date

from sqlalchemy import func
from sqlmodel import Session, select

from services.monitoring.classification.models import OverrideRequest, RestructuringRequest
from services.monitoring.classification.rules import (
    MIN_OBSERVATION_MONTHS,
    ChangeCause,
    apply_override,
    in_observation,
)
from services.monitoring.delinquency import service as delinquency
from services.monitoring.errors import DomainError
from services.monitoring.loans import service as loans
from services.monitoring.loans.models import Loan, LoanStatus
from services.monitoring.repayments.models import Posting, PostingStatus
from shared.errors import Problem


def check_override(loan: Loan, command: OverrideRequest) -> None:
    apply_override(delinquency.to_class(loan.classification), delinquency.to_class(command.requested_class))


def override_classification(session: Session, loan: Loan, command: OverrideRequest, *, as_of: date,
                            reference: str) -> None:
    """Hold the loan at the requested class or worse; re-checked against today's floor. The caller holds the lock."""
    try:
        check_override(loan, command)
    except DomainError as exc:
        raise Problem(409, "Conflict", f"The loan has worsened since the request: {exc.message}.") from None
    loan.override_class = command.requested_class.value
    delinquency.reassess(session, loan, as_of, cause=ChangeCause.OVERRIDE, reference=reference)


def last_value_date(session: Session, loan: Loan) -> date | None:
    return session.exec(select(func.max(Posting.value_date)).where(
        Posting.loan_id == loan.id, Posting.status == PostingStatus.POSTED)).one()


def check_restructuring(session: Session, loan: Loan, command: RestructuringRequest, as_of: date) -> None:
    """What restructure_loan would refuse, without changing anything."""
    if in_observation(loan.restructured_on, as_of, MIN_OBSERVATION_MONTHS):
        raise Problem(409, "Conflict", f"The loan is still in observation after its restructuring on "
                                       f"{loan.restructured_on.isoformat()}.")
    if command.annual_rate is not None or command.term_months is not None:
        if loan.status != LoanStatus.ACTIVE:
            raise Problem(409, "Conflict", "Only an active loan's schedule can be rebooked.")
        loans.check_rebooking(session, loan, loans.instalments(session, loan.id),
                              effective=command.effective_date or as_of,
                              last_value_date=last_value_date(session, loan), as_of=as_of)
    elif command.effective_date is not None:
        raise DomainError("effective_date", "applies only to a rebooking (with annual_rate or term_months)")


def restructure_loan(session: Session, loan: Loan, command: RestructuringRequest, *, by: str, as_of: date,
                     reference: str) -> Loan:
    """Mark the loan restructured today: at least special mention, and no better than now, for the observation
    period (a year). With a new rate and/or term, the schedule after the effective date is rebooked too.
    The caller holds the loan's lock."""
    check_restructuring(session, loan, command, as_of)
    if command.annual_rate is not None or command.term_months is not None:
        loans.rebook_schedule(session, loan, effective=command.effective_date or as_of,
                              annual_rate=command.annual_rate, term_months=command.term_months,
                              reason=command.reason, by=by, last_value_date=last_value_date(session, loan),
                              as_of=as_of)
    loan.restructured_on, loan.restructure_reason = as_of, command.reason
    delinquency.reassess(session, loan, as_of, cause=ChangeCause.RESTRUCTURING, reference=reference)
    session.flush()
    return loan
