"""Classification overrides under maker-checker: judgement may only make a class worse."""

from __future__ import annotations

from datetime import date

from sqlalchemy import func
from sqlmodel import Session, select

from services.monitoring.classification.models import (
    ClassOverride,
    OverrideDecision,
    OverrideRequest,
    OverrideStatus,
    RestructuringRequest,
)
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
from shared.auth.scope import Visibility
from shared.errors import Problem


def request_override(session: Session, loan_id: str, command: OverrideRequest, *, maker: str, scope: Visibility,
                     as_of: date) -> ClassOverride:
    loan = loans.get_loan(session, loan_id, scope)
    apply_override(delinquency.to_class(loan.classification), delinquency.to_class(command.requested_class))
    override = ClassOverride(loan_id=loan.id, requested_class=command.requested_class.value, reason=command.reason,
                             maker=maker, requested_on=as_of)
    session.add(override)
    session.flush()
    return override


def decide_override(session: Session, override_id: str, command: OverrideDecision, *, checker: str,
                    scope: Visibility, as_of: date) -> ClassOverride:
    """Approve or reject; the checker must not be the maker, and the class is re-checked against today's floor."""
    override = session.get(ClassOverride, override_id)
    loan = None if override is None else session.get(Loan, override.loan_id)
    if override is None or loan is None or not scope.allows(loan.branch):
        raise Problem(404, "Not found", f"No override {override_id!r}.")
    if override.status != OverrideStatus.PENDING:
        raise Problem(409, "Conflict", f"This override is already {override.status}.")
    if override.maker == checker:
        raise Problem(403, "Forbidden", "The checker of an override must be someone other than its maker.")
    override.checker, override.decided_on, override.decision_note = checker, as_of, command.note
    override.status = OverrideStatus.APPROVED if command.approve else OverrideStatus.REJECTED
    session.add(override)
    if command.approve:
        loan = loans.lock_loan(session, override.loan_id, scope)
        try:
            apply_override(delinquency.to_class(loan.classification), delinquency.to_class(override.requested_class))
        except DomainError as exc:
            raise Problem(409, "Conflict", f"The loan has worsened since the request: {exc.message}.") from None
        loan.override_class = override.requested_class
        delinquency.reassess(session, loan, as_of, cause=ChangeCause.OVERRIDE, reference=override.id)
    session.flush()
    return override


def overrides(session: Session, loan_id: str) -> list[ClassOverride]:
    return list(session.exec(select(ClassOverride).where(ClassOverride.loan_id == loan_id)
                             .order_by(ClassOverride.created_at)))


def restructure_loan(session: Session, loan_id: str, command: RestructuringRequest, *, scope: Visibility,
                     by: str, as_of: date) -> Loan:
    """Mark the loan restructured today: at least special mention, and no better than now, for the observation
    period (a year). With a new rate and/or term, the schedule after the effective date is rebooked too."""
    loan = loans.lock_loan(session, loan_id, scope)
    if in_observation(loan.restructured_on, as_of, MIN_OBSERVATION_MONTHS):
        raise Problem(409, "Conflict", f"The loan is still in observation after its restructuring on "
                                       f"{loan.restructured_on.isoformat()}.")
    if command.annual_rate is not None or command.term_months is not None:
        if loan.status != LoanStatus.ACTIVE:
            raise Problem(409, "Conflict", "Only an active loan's schedule can be rebooked.")
        last_value_date = session.exec(select(func.max(Posting.value_date)).where(
            Posting.loan_id == loan.id, Posting.status == PostingStatus.POSTED)).one()
        loans.rebook_schedule(session, loan, effective=command.effective_date or as_of,
                              annual_rate=command.annual_rate, term_months=command.term_months,
                              reason=command.reason, by=by, last_value_date=last_value_date, as_of=as_of)
    elif command.effective_date is not None:
        raise DomainError("effective_date", "applies only to a rebooking (with annual_rate or term_months)")
    loan.restructured_on, loan.restructure_reason = as_of, command.reason
    delinquency.reassess(session, loan, as_of, cause=ChangeCause.RESTRUCTURING, reference=None)
    session.flush()
    return loan
