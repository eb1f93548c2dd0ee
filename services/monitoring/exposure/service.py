"""Per-customer risk summary from the loans, their bucket history and open alerts, in the caller's scope."""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import func
from sqlmodel import Session, select

from services.monitoring.alerts.models import OPEN_STATUSES, Alert
from services.monitoring.delinquency.models import RiskChange
from services.monitoring.delinquency.service import to_class
from services.monitoring.exposure.models import ActiveLoan, CustomerRisk
from services.monitoring.loans.models import Loan, LoanStatus
from services.monitoring.loans.money import ZERO
from services.monitoring.loans.products import policy
from shared.auth.scope import Visibility

WINDOW = timedelta(days=365)


def customer_risk(session: Session, customer_id: str, *, scope: Visibility, as_of: date) -> CustomerRisk:
    loans_query = select(Loan).where(Loan.customer_id == customer_id, scope.where(Loan.branch))
    alerts_query = select(func.count()).select_from(Alert).where(Alert.customer_id == customer_id,
                                                                 Alert.status.in_(OPEN_STATUSES),
                                                                 scope.where(Alert.branch))
    loans = list(session.exec(loans_query.order_by(Loan.disbursement_date, Loan.id)))
    # A written-off loan is out of the book but still owed: it counts as outstanding for erasure and closure.
    active = [loan for loan in loans if loan.status in (LoanStatus.ACTIVE, LoanStatus.WRITTEN_OFF)
              or loan.outstanding_principal > 0]
    worst_dpd, worst_bucket = _worst_bucket_in_window(session, loans, as_of)
    current = max((loan.dpd for loan in active), default=0)
    worst_class = max((to_class(loan.classification) for loan in active), default=None)
    return CustomerRisk(
        customer_id=customer_id, as_of=as_of,
        active_loans=[ActiveLoan.model_validate(loan, from_attributes=True) for loan in active],
        outstanding_principal=sum((loan.outstanding_principal for loan in active), ZERO),
        current_max_dpd=current, max_dpd_12m=max(current, worst_dpd), worst_bucket_12m=worst_bucket,
        worst_class=None if worst_class is None else worst_class.name.lower(),
        open_alerts=session.exec(alerts_query).one())


def _worst_bucket_in_window(session: Session, loans: list[Loan], as_of: date) -> tuple[int, str | None]:
    """(lowest DPD of the worst bucket, its name) over every bucket a loan held in (as_of - 12 months, as_of]:
    the buckets changed into in the window, the ones changed out of (held the day before), and today's."""
    if not loans:
        return 0, None
    start = as_of - WINDOW
    held: list[tuple[Loan, str]] = [(loan, loan.bucket) for loan in loans]
    by_id = {loan.id: loan for loan in loans}
    changes = session.exec(select(RiskChange.loan_id, RiskChange.from_value, RiskChange.to_value).where(
        RiskChange.loan_id.in_(list(by_id)), RiskChange.field == "bucket", RiskChange.effective_date > start,
        RiskChange.effective_date <= as_of, RiskChange.superseded_at.is_(None))).all()  # the effective timeline
    for loan_id, before, after in changes:
        held.append((by_id[loan_id], after))
        if before is not None:
            held.append((by_id[loan_id], before))
    worst = (0, None)
    for loan, name in held:
        floor = _bucket_floor(loan.product, name)
        if floor > worst[0]:
            worst = (floor, name)
    return worst


def _bucket_floor(product: str, name: str) -> int:
    for bucket in policy(product).buckets.buckets:
        if bucket.name == name:
            return bucket.min_days
    return 0
