"""Portfolio figures: NPL ratio, PAR30/90, buckets, expected loss, roll rates, vintage curves. Set-based reads."""

from __future__ import annotations

import calendar
from collections import defaultdict
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Integer,
    Select,
    Subquery,
    and_,
    case,
    cast,
    extract,
    func,
    literal,
    or_,
    select,
    type_coerce,
)
from sqlalchemy.orm import aliased
from sqlmodel import Session

from services.monitoring.classification.rules import MIN_OBSERVATION_MONTHS, expected_loss
from services.monitoring.collateral.models import Collateral, LoanLoss
from services.monitoring.collateral.service import LGD_PLACES, CollateralPolicy, cover, items_of, ltv
from services.monitoring.collections.models import ActionKind, CollectionAction
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
    SpecialTreatment,
    TreatmentFigures,
    Vintage,
)
from shared.auth.scope import Visibility
from shared.db import round_money

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


def _active(group_by: GroupBy | None, scope: Visibility,
            status: LoanStatus = LoanStatus.ACTIVE) -> tuple[Select, list]:
    """Loans of `status` (active by default) the caller may see and the grouping's key columns; a loan in several
    segments is a row in each."""
    query = select().select_from(Loan).where(Loan.status == status, scope.where(Loan.branch))
    if group_by is None:
        return query, []
    if group_by is GroupBy.SEGMENT:
        return query.outerjoin(LoanSegment, LoanSegment.loan_id == Loan.id), [LoanSegment.segment]
    return query, [getattr(Loan, group_by.value)]


def _days(session: Session, later: Any, earlier: Any) -> ColumnElement[int]:
    """Whole days from `earlier` to `later` (dates), in SQL on either backend."""
    if session.get_bind().dialect.name == "postgresql":
        return type_coerce(later - earlier, Integer)
    return cast(func.julianday(later) - func.julianday(earlier), Integer)


def _positive(amount: ColumnElement[Decimal]) -> ColumnElement[Decimal]:
    return case((amount > 0, amount), else_=0)


def _exposures(session: Session, as_of: date) -> tuple[Subquery, Subquery, Subquery]:
    """Per loan, what it owes on `as_of` beyond its outstanding principal: interest due and unpaid; interest of the
    running period accrued to `as_of` (pro rata by days, not yet due, less any paid early); penalty interest
    charged on overdue instalments and not paid (as a repayment that day would charge it)."""
    unpaid = (select(Instalment.loan_id, func.sum(Instalment.interest - Instalment.interest_paid).label("interest"))
              .where(Instalment.due_date <= as_of).group_by(Instalment.loan_id).subquery())
    current, previous = aliased(Instalment), aliased(Instalment)
    start = func.coalesce(previous.due_date, Loan.disbursement_date)
    accrued_to_date = round_money(current.interest * _days(session, literal(as_of), start)
                                  / _days(session, current.due_date, start))
    accrued = (select(current.loan_id, func.sum(_positive(accrued_to_date - current.interest_paid)).label("accrued"))
               .join(Loan, Loan.id == current.loan_id)
               .outerjoin(previous, and_(previous.loan_id == current.loan_id, previous.number == current.number - 1))
               .where(current.due_date > as_of, start < as_of).group_by(current.loan_id).subquery())
    owed = (Instalment.principal - Instalment.principal_paid + Instalment.interest - Instalment.interest_paid)
    charged = round_money(owed * Loan.penalty_daily_rate * _days(session, literal(as_of), Instalment.due_date))
    unpaid_penalty = charged - Instalment.penalty_paid - Instalment.penalty_waived
    penalties = (select(Instalment.loan_id, func.sum(_positive(unpaid_penalty)).label("penalty"))
                 .join(Loan, Loan.id == Instalment.loan_id)
                 .where(Instalment.due_date < as_of, Loan.penalty_daily_rate > 0).group_by(Instalment.loan_id)
                 .subquery())
    return unpaid, accrued, penalties


def _pd(pd: Decimal | None, loan_class: str, in_hardship: object) -> Decimal:
    """The latest score's PD (the class table's without one); during a hardship observation never below the
    class table's: a plan or deferral is the borrower saying they cannot pay as agreed."""
    by_class = PD_BY_CLASS[ClassName(loan_class)]
    if pd is None:
        return by_class
    return max(pd, by_class) if in_hardship else pd


def _ead(unpaid: Subquery, accrued: Subquery, penalties: Subquery) -> ColumnElement[Decimal]:
    return (Loan.outstanding_principal + func.coalesce(unpaid.c.interest, 0) + func.coalesce(accrued.c.accrued, 0)
            + func.coalesce(penalties.c.penalty, 0))


def _expected_losses(session: Session, as_of: date, group_by: GroupBy | None, scope: Visibility,
                     lgd: Callable[[str], Decimal], policy: CollateralPolicy) -> dict[str | None, dict[str, Any]]:
    """Per group: PD × LGD × EAD, PD the latest score's (the class table's without one, and at least it during a
    hardship observation), LGD the product's, EAD outstanding principal plus interest due and unpaid, interest
    accrued but not yet due, and unpaid penalties, all on the business date. A loan with collateral or a
    guarantee is a term of its own, its EAD less what they cover (collateral.service.cover)."""
    unpaid, accrued, penalties = _exposures(session, as_of)
    secured = select(Collateral.loan_id).distinct().subquery()
    shape = [Loan.last_pd, Loan.classification, Loan.product, (Loan.hardship_until > as_of).label("hardship"),
             secured.c.loan_id]
    query, keys = _active(group_by, scope)
    query = (query.outerjoin(unpaid, unpaid.c.loan_id == Loan.id).outerjoin(accrued, accrued.c.loan_id == Loan.id)
             .outerjoin(penalties, penalties.c.loan_id == Loan.id).outerjoin(secured, secured.c.loan_id == Loan.id)
             .add_columns(*keys, *shape, func.count(), func.sum(_ead(unpaid, accrued, penalties))))
    rows = session.execute(query.group_by(*keys, *shape)).all()
    items = items_of(session, {row[-3] for row in rows if row[-3] is not None})
    losses: dict[str | None, dict[str, Any]] = defaultdict(lambda: {"el": ZERO, "scored": 0, "by_class": 0})
    for row in rows:
        pd, loan_class, product, in_hardship, secured_loan, count, exposure = row[-7:]
        entry = losses[row[0] if keys else None]
        exposure = _cents(exposure)
        if secured_loan is not None:
            exposure = cover(exposure, items[secured_loan], policy).unsecured
        # Rounded per PD, class and product (and per secured loan): loans sharing all of them make one term.
        entry["el"] += expected_loss(_pd(pd, loan_class, in_hardship), lgd(product), exposure)
        entry["by_class" if pd is None else "scored"] += count
    return losses


def loan_loss(session: Session, loan: Loan, as_of: date, *, lgd: Callable[[str], Decimal],
              policy: CollateralPolicy) -> LoanLoss:
    """One loan's LTV and expected loss, by the same arithmetic as the portfolio figures."""
    unpaid, accrued, penalties = _exposures(session, as_of)
    ead = _cents(session.execute(
        select(_ead(unpaid, accrued, penalties)).select_from(Loan)
        .outerjoin(unpaid, unpaid.c.loan_id == Loan.id).outerjoin(accrued, accrued.c.loan_id == Loan.id)
        .outerjoin(penalties, penalties.c.loan_id == Loan.id).where(Loan.id == loan.id)).scalar_one())
    covered = cover(ead, items_of(session, [loan.id]).get(loan.id, []), policy)
    pd = _pd(loan.last_pd, loan.classification, loan.hardship_until is not None and loan.hardship_until > as_of)
    product_lgd = lgd(loan.product)
    effective = (product_lgd * covered.unsecured / ead).quantize(LGD_PLACES) if ead else product_lgd
    return LoanLoss(loan_id=loan.id, as_of=as_of, base_currency=policy.base_currency,
                    outstanding_principal=loan.outstanding_principal, collateral_value=covered.collateral_value,
                    ltv=ltv(loan.outstanding_principal, covered.collateral_value),
                    not_counted=list(covered.not_counted), ead=ead, pd=pd, product_lgd=product_lgd,
                    collateral_cover=covered.collateral_cover, secured=covered.secured,
                    guarantee_cover=covered.guarantee_cover, lgd=effective,
                    expected_loss=expected_loss(pd, product_lgd, covered.unsecured))


def _treated(session: Session, as_of: date, group_by: GroupBy | None,
             scope: Visibility) -> dict[str | None, list[TreatmentFigures]]:
    """Per group, the loans under each special treatment on `as_of` and what they owe: restructured within the last
    year (their observation), in a repayment plan's or deferral's observation, recalled, under asset
    preservation."""
    preserved = select(CollectionAction.loan_id).where(CollectionAction.kind == ActionKind.ASSET_PRESERVATION.value)
    kinds = SpecialTreatment
    conditions = {
        kinds.RESTRUCTURED: Loan.restructured_on > add_months(as_of, -MIN_OBSERVATION_MONTHS),
        kinds.REPAYMENT_PLAN: and_(Loan.hardship_kind == kinds.REPAYMENT_PLAN.value, Loan.hardship_until > as_of),
        kinds.DEFERRAL: and_(Loan.hardship_kind == kinds.DEFERRAL.value, Loan.hardship_until > as_of),
        kinds.EARLY_RECALL: Loan.recalled_on.is_not(None),
        kinds.ASSET_PRESERVATION: Loan.id.in_(preserved),
    }
    found: dict[str | None, dict[SpecialTreatment, tuple[int, Decimal]]] = defaultdict(dict)
    for treatment, condition in conditions.items():
        query, keys = _active(group_by, scope)
        for row in session.execute(query.where(condition).add_columns(
                *keys, func.count(), func.sum(Loan.outstanding_principal)).group_by(*keys)).all():
            if row[-2]:
                found[row[0] if keys else None][treatment] = (row[-2], _cents(row[-1]))
    return {key: [TreatmentFigures(treatment=t, loans=by.get(t, (0, ZERO))[0], outstanding=by.get(t, (0, ZERO))[1])
                  for t in kinds] for key, by in found.items()}


def figures(session: Session, as_of: date, *, group_by: GroupBy | None, scope: Visibility,
            lgd: Callable[[str], Decimal], policy: CollateralPolicy) -> PortfolioFigures:
    columns = [Loan.bucket, Loan.classification, (Loan.dpd > 30).label("par30"), (Loan.dpd > 90).label("par90")]
    query, keys = _active(group_by, scope)
    query = query.add_columns(*keys, *columns, func.count(), func.sum(Loan.outstanding_principal))
    totals: dict[str | None, dict] = defaultdict(lambda: {
        "loans": 0, "outstanding": ZERO, "npl": ZERO, "par30": ZERO, "par90": ZERO,
        "written_off_loans": 0, "written_off": ZERO,
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
    written_off, keys = _active(group_by, scope, LoanStatus.WRITTEN_OFF)
    for row in session.execute(written_off.add_columns(*keys, func.count(), func.sum(Loan.written_off_amount))
                               .group_by(*keys)).all():
        if not row[-2]:
            continue  # an aggregate without groups answers one row, of none
        entry = totals[row[0] if keys else None]
        entry["written_off_loans"] += row[-2]
        entry["written_off"] += _cents(row[-1])
    losses = _expected_losses(session, as_of, group_by, scope, lgd, policy)
    treated = _treated(session, as_of, group_by, scope)
    untreated = [TreatmentFigures(treatment=t, loans=0, outstanding=ZERO) for t in SpecialTreatment]
    groups = [GroupFigures(
        group=key, loans=e["loans"], outstanding=e["outstanding"], npl_ratio=_ratio(e["npl"], e["outstanding"]),
        par30=_ratio(e["par30"], e["outstanding"]), par90=_ratio(e["par90"], e["outstanding"]),
        expected_loss=losses[key]["el"], pd_from_score=losses[key]["scored"], pd_from_class=losses[key]["by_class"],
        written_off_loans=e["written_off_loans"], written_off=e["written_off"],
        treatments=treated.get(key, untreated),
        buckets=[BucketFigures(bucket=b, loans=e["buckets"][b][0], outstanding=e["buckets"][b][1])
                 for b in BUCKET_ORDER]) for key, e in sorted(totals.items(), key=lambda kv: str(kv[0]))]
    return PortfolioFigures(as_of=as_of, group_by=group_by, groups=groups)


def _buckets_on(day: date) -> Subquery:
    """Each loan's bucket on `day`: its latest effective bucket change by then (rows a correction superseded are
    not what was true)."""
    latest = func.row_number().over(partition_by=RiskChange.loan_id,
                                    order_by=(RiskChange.effective_date.desc(), RiskChange.recorded_at.desc()))
    return (select(RiskChange.loan_id, RiskChange.to_value.label("bucket"), latest.label("latest"))
            .where(RiskChange.field == "bucket", RiskChange.effective_date <= day,
                   RiskChange.superseded_at.is_(None)).subquery())


def roll_rates(session: Session, start: date, end: date, *, scope: Visibility) -> RollRates:
    before, after = _buckets_on(start), _buckets_on(end)
    query = (select(before.c.bucket, after.c.bucket, func.count())
             .join(after, after.c.loan_id == before.c.loan_id).join(Loan, Loan.id == before.c.loan_id)
             .where(before.c.latest == 1, after.c.latest == 1, scope.where(Loan.branch))
             .group_by(before.c.bucket, after.c.bucket))
    moves: dict[str, dict[str, int]] = {b: dict.fromkeys(BUCKET_ORDER, 0) for b in BUCKET_ORDER}
    for was, now, count in session.execute(query).all():
        moves[was][now] = count
    counts = {b: sum(row.values()) for b, row in moves.items()}
    rates = {b: {to: n / counts[b] for to, n in row.items()} for b, row in moves.items() if counts[b]}
    return RollRates(start=start, end=end, counts=counts, rates=rates)


def _month_index(column: Any) -> ColumnElement[int]:
    return extract("year", column) * 12 + extract("month", column)


def month_on_book_expressions(disbursed: Any, bad_on: Any, as_of: date) -> tuple[ColumnElement[int],
                                                                                ColumnElement[int]]:
    """SQL for the last month on book ended by `as_of`, and the first month on book ending on or after `bad_on`
    (NULL without one), for loans disbursed on `disbursed`; months end on add_months(disbursed, m)."""
    # add_months(d, m) <= as_of: an earlier month, or as_of's month with d's day (clamped) reached.
    as_of_is_month_end = as_of.day == calendar.monthrange(as_of.year, as_of.month)[1]
    observed = (as_of.year * 12 + as_of.month) - _month_index(disbursed) - case(
        (or_(extract("day", disbursed) <= as_of.day, literal(as_of_is_month_end)), 0), else_=1)
    # bad_on <= add_months(d, m): from bad_on's month on if d's day (clamped) is not before bad_on's day.
    went_bad = _month_index(bad_on) - _month_index(disbursed) + case(
        (extract("day", disbursed) >= extract("day", bad_on), 0), else_=1)
    return observed, went_bad


def vintages(session: Session, as_of: date, *, months: int, scope: Visibility) -> list[Vintage]:
    """Per disbursement month: the share of loans that have been more than 30 days past due, by month on book.

    Month m of a loan disbursed on d ends on add_months(d, m) (clamped to month end). In SQL, per loan: the last
    month on book observed by `as_of` (month m is observed when it has ended by then), and the month on book in
    which it first went bad (the first m whose end is on or after that day); the loans are counted by cohort and
    those two figures, and only those few counts come back to make the curves.
    """
    first_bad = (select(RiskChange.loan_id, func.min(RiskChange.effective_date).label("on"))
                 .where(RiskChange.field == "bucket", RiskChange.to_value.in_(BAD_BUCKETS),
                        RiskChange.effective_date <= as_of, RiskChange.superseded_at.is_(None))
                 .group_by(RiskChange.loan_id).subquery())
    disbursed = Loan.disbursement_date
    observed, went_bad = month_on_book_expressions(disbursed, first_bad.c.on, as_of)
    cohort = (extract("year", disbursed) * 100 + extract("month", disbursed)).label("cohort")
    query = (select(cohort, observed.label("observed"), went_bad.label("went_bad"), func.count(),
                    func.sum(Loan.principal))
             .outerjoin(first_bad, first_bad.c.loan_id == Loan.id).where(scope.where(Loan.branch)))
    cohorts: dict[int, list[tuple[int, int | None, int, Decimal]]] = defaultdict(list)
    for key, seen, bad_in, count, principal in session.execute(query.group_by(cohort, "observed", "went_bad")):
        cohorts[int(key)].append((int(seen), None if bad_in is None else int(bad_in), count, _cents(principal)))
    result = []
    for key, groups in sorted(cohorts.items()):
        curve = []
        for month in range(1, months + 1):
            seen = [(bad_in, count) for observed_to, bad_in, count, _ in groups if observed_to >= month]
            if not seen:
                break
            total = sum(count for _, count in seen)
            curve.append(sum(count for bad_in, count in seen if bad_in is not None and bad_in <= month) / total)
        result.append(Vintage(cohort=f"{key // 100:04d}-{key % 100:02d}", loans=sum(g[2] for g in groups),
                              principal=sum((g[3] for g in groups), ZERO), curve=curve))
    return result
