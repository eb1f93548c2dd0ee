"""Portfolio figures: NPL ratio, PAR30/90, buckets, expected loss, roll rates, vintage curves. Set-based reads."""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from decimal import Decimal

from sqlalchemy import func, select
from sqlmodel import Session

from services.monitoring.classification.rules import expected_loss
from services.monitoring.delinquency.models import RiskChange
from services.monitoring.delinquency.rules import DEFAULT_BUCKETS
from services.monitoring.loans.models import ClassName, Loan, LoanStatus
from services.monitoring.loans.money import ZERO
from services.monitoring.loans.schedule import add_months
from services.monitoring.portfolio.models import (
    BucketFigures,
    GroupBy,
    GroupFigures,
    PortfolioFigures,
    RollRates,
    Vintage,
)

# Probability of default by class for expected loss: a house assumption until the scoring service supplies PDs.
PD_BY_CLASS = {ClassName.NORMAL: Decimal("0.01"), ClassName.SPECIAL_MENTION: Decimal("0.05"),
               ClassName.SUBSTANDARD: Decimal("0.30"), ClassName.DOUBTFUL: Decimal("0.60"),
               ClassName.LOSS: Decimal("1")}
NON_PERFORMING = {ClassName.SUBSTANDARD.value, ClassName.DOUBTFUL.value, ClassName.LOSS.value}
BUCKET_ORDER = [b.name for b in DEFAULT_BUCKETS.buckets]
BAD_BUCKETS = {b.name for b in DEFAULT_BUCKETS.buckets if b.min_days > 30}


def _ratio(part: Decimal, whole: Decimal) -> float | None:
    return float(part / whole) if whole else None


def figures(session: Session, as_of: date, *, group_by: GroupBy | None, branch: str | None,
            lgd: Decimal) -> PortfolioFigures:
    group = getattr(Loan, group_by.value) if group_by else None
    columns = [Loan.bucket, Loan.classification, (Loan.dpd > 30).label("par30"), (Loan.dpd > 90).label("par90")]
    keys = [group] if group is not None else []
    query = select(*keys, *columns, func.count(), func.sum(Loan.outstanding_principal))
    query = query.where(Loan.status == LoanStatus.ACTIVE).group_by(*keys, *columns)
    if branch is not None:
        query = query.where(Loan.branch == branch)
    totals: dict[str | None, dict] = defaultdict(lambda: {
        "loans": 0, "outstanding": ZERO, "npl": ZERO, "par30": ZERO, "par90": ZERO, "el": ZERO,
        "buckets": defaultdict(lambda: [0, ZERO])})
    for row in session.execute(query).all():
        key = row[0] if group is not None else None
        bucket, loan_class, par30, par90, count, amount = row[-6:]
        amount = Decimal(amount or 0).quantize(Decimal("0.01"))
        entry = totals[key]
        entry["loans"] += count
        entry["outstanding"] += amount
        entry["npl"] += amount if loan_class in NON_PERFORMING else ZERO
        entry["par30"] += amount if par30 else ZERO
        entry["par90"] += amount if par90 else ZERO
        entry["el"] += expected_loss(PD_BY_CLASS[ClassName(loan_class)], lgd, amount)
        entry["buckets"][bucket][0] += count
        entry["buckets"][bucket][1] += amount
    groups = [GroupFigures(
        group=key, loans=e["loans"], outstanding=e["outstanding"], npl_ratio=_ratio(e["npl"], e["outstanding"]),
        par30=_ratio(e["par30"], e["outstanding"]), par90=_ratio(e["par90"], e["outstanding"]), expected_loss=e["el"],
        buckets=[BucketFigures(bucket=b, loans=e["buckets"][b][0], outstanding=e["buckets"][b][1])
                 for b in BUCKET_ORDER]) for key, e in sorted(totals.items(), key=lambda kv: str(kv[0]))]
    return PortfolioFigures(as_of=as_of, group_by=group_by, groups=groups)


def _bucket_history(session: Session, end: date, branch: str | None) -> dict[str, list[tuple[date, str]]]:
    """Each loan's bucket changes up to `end`, corrections included, in the order they took effect."""
    query = (select(RiskChange.loan_id, RiskChange.effective_date, RiskChange.to_value)
             .join(Loan, Loan.id == RiskChange.loan_id)
             .where(RiskChange.field == "bucket", RiskChange.effective_date <= end)
             .order_by(RiskChange.loan_id, RiskChange.effective_date, RiskChange.recorded_at))
    if branch is not None:
        query = query.where(Loan.branch == branch)
    history: dict[str, list[tuple[date, str]]] = defaultdict(list)
    for loan_id, effective, bucket in session.execute(query).all():
        history[loan_id].append((effective, bucket))
    return history


def _bucket_on(changes: list[tuple[date, str]], day: date) -> str | None:
    current = None
    for effective, bucket in changes:
        if effective > day:
            break
        current = bucket
    return current


def roll_rates(session: Session, start: date, end: date, *, branch: str | None) -> RollRates:
    moves: dict[str, dict[str, int]] = {b: dict.fromkeys(BUCKET_ORDER, 0) for b in BUCKET_ORDER}
    for changes in _bucket_history(session, end, branch).values():
        before, after = _bucket_on(changes, start), _bucket_on(changes, end)
        if before is not None and after is not None:
            moves[before][after] += 1
    counts = {b: sum(row.values()) for b, row in moves.items()}
    rates = {b: {to: n / counts[b] for to, n in row.items()} for b, row in moves.items() if counts[b]}
    return RollRates(start=start, end=end, counts=counts, rates=rates)


def vintages(session: Session, as_of: date, *, months: int, branch: str | None) -> list[Vintage]:
    """Per disbursement month: the share of loans that have been more than 30 days past due, by month on book."""
    query = select(Loan.id, Loan.disbursement_date, Loan.principal)
    if branch is not None:
        query = query.where(Loan.branch == branch)
    loans = session.execute(query).all()
    first_bad: dict[str, date] = {}
    for loan_id, changes in _bucket_history(session, as_of, branch).items():
        bad = [effective for effective, bucket in changes if bucket in BAD_BUCKETS]
        if bad:
            first_bad[loan_id] = min(bad)
    cohorts: dict[str, list[tuple[str, date, Decimal]]] = defaultdict(list)
    for loan_id, disbursed, principal in loans:
        cohorts[disbursed.strftime("%Y-%m")].append((loan_id, disbursed, principal))
    result = []
    for cohort, members in sorted(cohorts.items()):
        curve = []
        for month in range(1, months + 1):
            observed = [m for m in members if add_months(m[1], month) <= as_of]
            if not observed:
                break
            bad = sum(1 for loan_id, disbursed, _ in observed
                      if loan_id in first_bad and first_bad[loan_id] <= add_months(disbursed, month))
            curve.append(bad / len(observed))
        result.append(Vintage(cohort=cohort, loans=len(members), principal=sum((m[2] for m in members), ZERO),
                              curve=curve))
    return result
