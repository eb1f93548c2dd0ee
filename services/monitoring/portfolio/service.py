"""Portfolio figures: NPL ratio, PAR30/90, buckets, expected loss, roll rates, vintage curves. Set-based reads."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import Select, Subquery, func, select
from sqlmodel import Session

from services.monitoring.classification.rules import expected_loss
from services.monitoring.delinquency.models import RiskChange
from services.monitoring.delinquency.rules import DEFAULT_BUCKETS
from services.monitoring.loans.models import ClassName, Instalment, Loan, LoanSegment, LoanStatus
from services.monitoring.loans.money import CENT, ZERO
from services.monitoring.loans.schedule import add_months
from services.monitoring.portfolio.models import (
    BucketFigures,
    GroupBy,
    GroupFigures,
    PortfolioFigures,
    RollRates,
    Vintage,
)

# Probability of default by class: expected loss's fallback for a loan the scoring service has not scored.
PD_BY_CLASS = {ClassName.NORMAL: Decimal("0.01"), ClassName.SPECIAL_MENTION: Decimal("0.05"),
               ClassName.SUBSTANDARD: Decimal("0.30"), ClassName.DOUBTFUL: Decimal("0.60"),
               ClassName.LOSS: Decimal("1")}
NON_PERFORMING = {ClassName.SUBSTANDARD.value, ClassName.DOUBTFUL.value, ClassName.LOSS.value}
BUCKET_ORDER = [b.name for b in DEFAULT_BUCKETS.buckets]
BAD_BUCKETS = {b.name for b in DEFAULT_BUCKETS.buckets if b.min_days > 30}


def _ratio(part: Decimal, whole: Decimal) -> float | None:
    return float(part / whole) if whole else None


def _cents(amount: object) -> Decimal:
    return Decimal(str(amount or 0)).quantize(CENT)


def _active(group_by: GroupBy | None, branch: str | None) -> tuple[Select, list]:
    """Active loans (of `branch`) and the grouping's key columns; a loan in several segments is a row in each."""
    query = select().select_from(Loan).where(Loan.status == LoanStatus.ACTIVE)
    if branch is not None:
        query = query.where(Loan.branch == branch)
    if group_by is None:
        return query, []
    if group_by is GroupBy.SEGMENT:
        return query.outerjoin(LoanSegment, LoanSegment.loan_id == Loan.id), [LoanSegment.segment]
    return query, [getattr(Loan, group_by.value)]


def _expected_losses(session: Session, as_of: date, group_by: GroupBy | None, branch: str | None,
                     lgd: Callable[[str], Decimal]) -> dict[str | None, dict[str, Any]]:
    """Per group: PD × LGD × EAD, PD the latest score's (the class table's without one), LGD the product's, EAD
    outstanding principal plus interest due and unpaid on the business date."""
    unpaid = (select(Instalment.loan_id, func.sum(Instalment.interest - Instalment.interest_paid).label("interest"))
              .where(Instalment.due_date <= as_of).group_by(Instalment.loan_id).subquery())
    ead = func.sum(Loan.outstanding_principal + func.coalesce(unpaid.c.interest, 0))
    shape = [Loan.last_pd, Loan.classification, Loan.product]
    query, keys = _active(group_by, branch)
    query = query.outerjoin(unpaid, unpaid.c.loan_id == Loan.id).add_columns(*keys, *shape, func.count(), ead)
    losses: dict[str | None, dict[str, Any]] = defaultdict(lambda: {"el": ZERO, "scored": 0, "by_class": 0})
    for row in session.execute(query.group_by(*keys, *shape)).all():
        pd, loan_class, product, count, exposure = row[-5:]
        entry = losses[row[0] if keys else None]
        # Rounded per PD, class and product: loans sharing all three make one term.
        entry["el"] += expected_loss(PD_BY_CLASS[ClassName(loan_class)] if pd is None else pd, lgd(product),
                                     _cents(exposure))
        entry["by_class" if pd is None else "scored"] += count
    return losses


def figures(session: Session, as_of: date, *, group_by: GroupBy | None, branch: str | None,
            lgd: Callable[[str], Decimal]) -> PortfolioFigures:
    columns = [Loan.bucket, Loan.classification, (Loan.dpd > 30).label("par30"), (Loan.dpd > 90).label("par90")]
    query, keys = _active(group_by, branch)
    query = query.add_columns(*keys, *columns, func.count(), func.sum(Loan.outstanding_principal))
    totals: dict[str | None, dict] = defaultdict(lambda: {
        "loans": 0, "outstanding": ZERO, "npl": ZERO, "par30": ZERO, "par90": ZERO,
        "buckets": defaultdict(lambda: [0, ZERO])})
    for row in session.execute(query.group_by(*keys, *columns)).all():
        bucket, loan_class, par30, par90, count, amount = row[-6:]
        amount = _cents(amount)
        entry = totals[row[0] if keys else None]
        entry["loans"] += count
        entry["outstanding"] += amount
        entry["npl"] += amount if loan_class in NON_PERFORMING else ZERO
        entry["par30"] += amount if par30 else ZERO
        entry["par90"] += amount if par90 else ZERO
        entry["buckets"][bucket][0] += count
        entry["buckets"][bucket][1] += amount
    losses = _expected_losses(session, as_of, group_by, branch, lgd)
    groups = [GroupFigures(
        group=key, loans=e["loans"], outstanding=e["outstanding"], npl_ratio=_ratio(e["npl"], e["outstanding"]),
        par30=_ratio(e["par30"], e["outstanding"]), par90=_ratio(e["par90"], e["outstanding"]),
        expected_loss=losses[key]["el"], pd_from_score=losses[key]["scored"], pd_from_class=losses[key]["by_class"],
        buckets=[BucketFigures(bucket=b, loans=e["buckets"][b][0], outstanding=e["buckets"][b][1])
                 for b in BUCKET_ORDER]) for key, e in sorted(totals.items(), key=lambda kv: str(kv[0]))]
    return PortfolioFigures(as_of=as_of, group_by=group_by, groups=groups)


def _buckets_on(day: date) -> Subquery:
    """Each loan's bucket on `day`: its latest bucket change taking effect by then, corrections included."""
    latest = func.row_number().over(partition_by=RiskChange.loan_id,
                                    order_by=(RiskChange.effective_date.desc(), RiskChange.recorded_at.desc()))
    return (select(RiskChange.loan_id, RiskChange.to_value.label("bucket"), latest.label("latest"))
            .where(RiskChange.field == "bucket", RiskChange.effective_date <= day).subquery())


def roll_rates(session: Session, start: date, end: date, *, branch: str | None) -> RollRates:
    before, after = _buckets_on(start), _buckets_on(end)
    query = (select(before.c.bucket, after.c.bucket, func.count())
             .join(after, after.c.loan_id == before.c.loan_id).join(Loan, Loan.id == before.c.loan_id)
             .where(before.c.latest == 1, after.c.latest == 1).group_by(before.c.bucket, after.c.bucket))
    if branch is not None:
        query = query.where(Loan.branch == branch)
    moves: dict[str, dict[str, int]] = {b: dict.fromkeys(BUCKET_ORDER, 0) for b in BUCKET_ORDER}
    for was, now, count in session.execute(query).all():
        moves[was][now] = count
    counts = {b: sum(row.values()) for b, row in moves.items()}
    rates = {b: {to: n / counts[b] for to, n in row.items()} for b, row in moves.items() if counts[b]}
    return RollRates(start=start, end=end, counts=counts, rates=rates)


def vintages(session: Session, as_of: date, *, months: int, branch: str | None) -> list[Vintage]:
    """Per disbursement month: the share of loans that have been more than 30 days past due, by month on book."""
    first_bad = (select(RiskChange.loan_id, func.min(RiskChange.effective_date).label("on"))
                 .where(RiskChange.field == "bucket", RiskChange.to_value.in_(BAD_BUCKETS),
                        RiskChange.effective_date <= as_of)
                 .group_by(RiskChange.loan_id).subquery())
    query = (select(Loan.disbursement_date, Loan.principal, first_bad.c.on)
             .outerjoin(first_bad, first_bad.c.loan_id == Loan.id))
    if branch is not None:
        query = query.where(Loan.branch == branch)
    cohorts: dict[str, list[tuple[date, Decimal, date | None]]] = defaultdict(list)
    for disbursed, principal, bad_on in session.execute(query).all():
        cohorts[disbursed.strftime("%Y-%m")].append((disbursed, principal, bad_on))
    result = []
    for cohort, members in sorted(cohorts.items()):
        curve = []
        for month in range(1, months + 1):
            observed = [m for m in members if add_months(m[0], month) <= as_of]
            if not observed:
                break
            bad = sum(1 for disbursed, _, bad_on in observed
                      if bad_on is not None and bad_on <= add_months(disbursed, month))
            curve.append(bad / len(observed))
        result.append(Vintage(cohort=cohort, loans=len(members), principal=sum((m[1] for m in members), ZERO),
                              curve=curve))
    return result
