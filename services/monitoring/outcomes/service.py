"""Point-in-time loan facts and their outcome window, from the effective risk history. No web framework here.

What a loan was on `as_of` comes only from history rows effective on or before it; the outcome only from rows
effective in (as_of, as_of + window]. A posting made after as_of (even one backdated into the window) can change the
outcome, never the facts of as_of, unless it is backdated to before as_of: then it corrects what was true on as_of,
as the effective history does everywhere else.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date

from sqlmodel import Session, select

from services.monitoring.delinquency.models import RiskChange
from services.monitoring.delinquency.rules import Bucket
from services.monitoring.errors import DomainError
from services.monitoring.loans.models import Loan
from services.monitoring.loans.products import policy
from services.monitoring.loans.schedule import add_months
from services.monitoring.outcomes.models import DEFAULT_DPD, LoanOutcome, OutcomePage
from shared.auth.scope import Visibility
from shared.pagination import PageRequest


def window_end(as_of: date, window_months: int) -> date:
    return add_months(as_of, window_months)


def check_window(as_of: date, window_months: int, business_date: date) -> date:
    """The window's last day; it must have closed by the business date, or every outcome would be unknown."""
    end = window_end(as_of, window_months)
    if end > business_date:
        latest = add_months(business_date, -window_months)
        raise DomainError("as_of", f"the outcome window ends {end.isoformat()}, after the business date "
                                   f"{business_date.isoformat()}: take as_of on or before {latest.isoformat()} "
                                   "or a shorter window")
    return end


def _bucket(loan: Loan, name: str | None, dpd: int | None) -> Bucket:
    scheme = policy(loan.product).buckets
    for bucket in scheme.buckets:
        if bucket.name == name:
            return bucket
    return scheme.bucket_for(dpd or 0)


def _defaulted(loan: Loan, row: RiskChange) -> bool:
    if row.dpd is not None:
        return row.dpd > DEFAULT_DPD
    return row.field == "bucket" and _bucket(loan, row.to_value, None).min_days > DEFAULT_DPD


def outcome(loan: Loan, rows: list[RiskChange], as_of: date, window_months: int, end: date) -> LoanOutcome | str:
    """The loan's facts on as_of and its outcome, or why it is left out (`defaulted`, `unknown`).

    `rows`: its effective history, by effective date then recorded time."""
    known = [r for r in rows if r.effective_date <= as_of]
    if not known:
        return "unknown"
    last_bucket = next((r for r in reversed(known) if r.field == "bucket"), None)
    last = known[-1]
    bucket = _bucket(loan, last_bucket.to_value if last_bucket else None, last.dpd)
    dpd = 0
    if bucket.min_days > 0:
        # Aged from the last change while overdue, within the bucket the history says it was in.
        dpd = max(last.dpd or bucket.min_days, bucket.min_days) + (as_of - last.effective_date).days
        dpd = min(dpd, bucket.max_days) if bucket.max_days is not None else dpd
    if dpd > DEFAULT_DPD or bucket.min_days > DEFAULT_DPD or (
            loan.written_off_on is not None and loan.written_off_on <= as_of):
        return "defaulted"
    first_default = next((r.effective_date for r in rows
                          if as_of < r.effective_date <= end and _defaulted(loan, r)), None)
    return LoanOutcome(
        loan_id=loan.id, customer_id=loan.customer_id, product=loan.product,
        grade_at_origination=loan.origination_grade, pd_at_origination=loan.origination_pd,
        vintage=loan.disbursement_date.strftime("%Y-%m"), principal=loan.principal,
        disbursement_date=loan.disbursement_date, as_of=as_of, window_months=window_months, dpd_at_as_of=dpd,
        bucket_at_as_of=bucket.name, default_in_window=first_default is not None, default_on=first_default)


def loan_outcomes(session: Session, *, scope: Visibility, as_of: date, window_months: int, business_date: date,
                  paging: PageRequest) -> OutcomePage:
    """Every loan in scope disbursed on or before as_of, by id, with its outcome; loans already defaulted on as_of
    or unknown then are counted, not listed. Reads in batches until the page is full."""
    end = check_window(as_of, window_months, business_date)
    limit = paging.limit
    start = paging.after(str)
    after = start[0] if start else ""
    items: list[LoanOutcome] = []
    excluded = {"defaulted": 0, "unknown": 0}
    last_id: str | None = None
    exhausted = False
    while len(items) < limit and not exhausted:
        batch = list(session.exec(
            select(Loan).where(scope.where(Loan.branch), Loan.disbursement_date <= as_of, Loan.id > after)
            .order_by(Loan.id).limit(limit - len(items))))
        exhausted = len(batch) < limit - len(items)
        if not batch:
            break
        history: dict[str, list[RiskChange]] = defaultdict(list)
        for row in session.exec(select(RiskChange).where(
                RiskChange.loan_id.in_([loan.id for loan in batch]), RiskChange.superseded_at.is_(None),
                RiskChange.effective_date <= end).order_by(RiskChange.effective_date, RiskChange.recorded_at)):
            history[row.loan_id].append(row)
        for loan in batch:
            found = outcome(loan, history[loan.id], as_of, window_months, end)
            if isinstance(found, LoanOutcome):
                items.append(found)
            else:
                excluded[found] += 1
        after = last_id = batch[-1].id
    more = not exhausted and last_id is not None and session.exec(
        select(Loan.id).where(scope.where(Loan.branch), Loan.disbursement_date <= as_of, Loan.id > last_id)
        .limit(1)).first() is not None
    cursor = paging.encode([last_id]) if more and last_id is not None else None
    return OutcomePage(items=items, next_cursor=cursor, next=paging.link(cursor) if cursor else None,
                       excluded_already_defaulted=excluded["defaulted"], excluded_unknown_at_as_of=excluded["unknown"])


def first_defaults(session: Session, *, scope: Visibility, until: date, branch: str | None = None,
                   loan_ids: set[str] | None = None) -> dict[str, date]:
    """Loan id -> the first day it was more than DEFAULT_DPD days past due on the effective history, up to `until`
    (loans in scope, of `branch` and among `loan_ids` when given)."""
    query = select(Loan, RiskChange).join(RiskChange, RiskChange.loan_id == Loan.id).where(
        scope.where(Loan.branch), RiskChange.superseded_at.is_(None), RiskChange.effective_date <= until,
        (RiskChange.dpd > DEFAULT_DPD) | (RiskChange.field == "bucket"))
    if branch is not None:
        query = query.where(Loan.branch == branch)
    if loan_ids is not None:
        query = query.where(Loan.id.in_(loan_ids))
    found: dict[str, date] = {}
    for loan, row in session.exec(query.order_by(RiskChange.effective_date, RiskChange.recorded_at)):
        if loan.id not in found and _defaulted(loan, row):
            found[loan.id] = row.effective_date
    return found
