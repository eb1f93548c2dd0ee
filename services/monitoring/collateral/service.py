"""Collateral records, their valuations, loan-to-value, and the cover expected loss takes off the exposure.

The arithmetic, per loan, on the business date (every amount Decimal, in the base currency):
  collateral_cover = Σ to_cents(value × rate) × (1 − haircut[kind]), each term in cents, guarantees apart
  secured          = min(collateral_cover, EAD)
  guarantee_cover  = min(Σ guaranteed × rate × (1 − haircut[kind]), EAD − secured)
  expected loss    = to_cents(PD × LGD × (EAD − secured − guarantee_cover))
so the effective LGD is LGD × (EAD − secured − guarantee_cover) / EAD. LTV = outstanding principal / Σ collateral
value (guarantees are not collateral value), to 4 places.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

from sqlalchemy import update
from sqlmodel import Session, select

from services.monitoring.alerts import service as alerts
from services.monitoring.collateral.models import (
    DEFAULT_HAIRCUTS,
    DEFAULT_REVALUATION_MONTHS,
    Collateral,
    CollateralCreate,
    CollateralKind,
    CollateralRead,
    CollateralValuation,
    RevaluationCreate,
    ValuationRead,
)
from services.monitoring.errors import DomainError
from services.monitoring.loans import service as loans
from services.monitoring.loans.models import Loan, LoanStatus
from services.monitoring.loans.money import ZERO, to_cents
from services.monitoring.loans.schedule import add_months
from services.monitoring.rules.engine import Facts
from services.monitoring.rules.models import RuleKind
from shared.auth.scope import Visibility
from shared.errors import Problem
from shared.pagination import Page, PageRequest, keyset

LTV_PLACES = Decimal("0.0001")
LGD_PLACES = Decimal("0.000001")


@dataclass(frozen=True)
class CollateralPolicy:
    """How collateral counts: the book's currency, rates into it, haircuts and revaluation intervals by kind."""

    base_currency: str = "CNY"
    fx_rates: Mapping[str, Decimal] = field(default_factory=dict)  # units of base currency per unit
    haircuts: Mapping[str, Decimal] = field(default_factory=lambda: dict(DEFAULT_HAIRCUTS))
    revaluation_months: Mapping[str, int] = field(default_factory=lambda: dict(DEFAULT_REVALUATION_MONTHS))

    def in_base(self, value: Decimal, currency: str) -> Decimal | None:
        """`value` in the base currency, in cents; None without a rate for `currency`."""
        if currency == self.base_currency:
            return value
        rate = self.fx_rates.get(currency)
        return None if rate is None else to_cents(value * rate, ROUND_HALF_UP)


@dataclass(frozen=True)
class Cover:
    collateral_value: Decimal
    collateral_cover: Decimal
    secured: Decimal
    guarantee_cover: Decimal
    unsecured: Decimal  # what loses LGD: EAD − secured − guarantee_cover
    not_counted: tuple[str, ...]


def cover(ead: Decimal, items: Iterable[Collateral], policy: CollateralPolicy) -> Cover:
    value = collateral = guaranteed = ZERO
    not_counted = []
    for item in items:
        in_base = policy.in_base(item.value, item.currency)
        if in_base is None:
            not_counted.append(item.id)
            continue
        counted = to_cents(in_base * (1 - policy.haircuts[item.kind]), ROUND_HALF_UP)
        if CollateralKind(item.kind).is_guarantee:
            guaranteed += counted
        else:
            value += in_base
            collateral += counted
    secured = min(collateral, ead)
    guarantee = min(guaranteed, ead - secured)
    return Cover(value, collateral, secured, guarantee, ead - secured - guarantee, tuple(not_counted))


def ltv(outstanding: Decimal, collateral_value: Decimal) -> Decimal | None:
    return None if collateral_value == 0 else (outstanding / collateral_value).quantize(LTV_PLACES, ROUND_HALF_UP)


def items_of(session: Session, loan_ids: Iterable[str]) -> dict[str, list[Collateral]]:
    found: dict[str, list[Collateral]] = {}
    ids = list(loan_ids)
    if ids:
        for item in session.exec(select(Collateral).where(Collateral.loan_id.in_(ids))
                                 .order_by(Collateral.created_at, Collateral.id)):
            found.setdefault(item.loan_id, []).append(item)
    return found


def loan_ltv(session: Session, loan: Loan, policy: CollateralPolicy) -> Decimal | None:
    return ltv(loan.outstanding_principal, cover(ZERO, items_of(session, [loan.id]).get(loan.id, []),
                                                 policy).collateral_value)


def _next_revaluation(kind: CollateralKind, every: int | None, valued: date,
                      policy: CollateralPolicy) -> tuple[int | None, date | None]:
    every = every or policy.revaluation_months.get(kind.value)
    return every, (add_months(valued, every) if every else None)


def register_collateral(session: Session, loan_id: str, command: CollateralCreate, *, by: str, scope: Visibility,
                        as_of: date, policy: CollateralPolicy) -> Collateral:
    loan = loans.lock_loan(session, loan_id, scope)
    if loan.status != LoanStatus.ACTIVE:
        raise Problem(409, "Conflict", f"The loan is {loan.status}; collateral is recorded on an active loan.")
    if command.valuation_date > as_of:
        raise DomainError("valuation_date", f"must not be after the business date {as_of.isoformat()}")
    if command.guarantor_customer_id is not None and not command.kind.is_guarantee:
        raise DomainError("guarantor_customer_id", "only a guarantee names a guarantor")
    every, next_on = _next_revaluation(command.kind, command.revalue_every_months, command.valuation_date, policy)
    item = Collateral(loan_id=loan.id, **command.model_dump(exclude={"kind", "revalue_every_months"}),
                      kind=command.kind.value, revalue_every_months=every, next_revaluation_on=next_on,
                      revaluation_overdue_since=next_on if next_on is not None and next_on < as_of else None,
                      created_by=by)
    session.add(item)
    session.flush()
    session.add(CollateralValuation(collateral_id=item.id, value=item.value, currency=item.currency,
                                    valuation_date=item.valuation_date, note="first valuation", recorded_by=by,
                                    recorded_on=as_of))
    session.flush()
    return item


def get_collateral(session: Session, collateral_id: str, scope: Visibility) -> Collateral:
    item = session.get(Collateral, collateral_id)
    if item is None or not scope.allows(session.get(Loan, item.loan_id).branch):
        raise Problem(404, "Not found", f"No collateral {collateral_id!r}.")
    return item


def revalue_collateral(session: Session, collateral_id: str, command: RevaluationCreate, *, by: str,
                       scope: Visibility, as_of: date, policy: CollateralPolicy) -> Collateral:
    """A new valuation: the record takes its value and date, its next revaluation is planned from it, and a value
    that pushes the loan's LTV over a threshold is the LTV rule's early warning."""
    found = get_collateral(session, collateral_id, scope)
    loan = loans.lock_loan(session, found.loan_id, scope)
    item = session.get(Collateral, collateral_id, populate_existing=True)
    if command.valuation_date > as_of:
        raise DomainError("valuation_date", f"must not be after the business date {as_of.isoformat()}")
    if command.valuation_date < item.valuation_date:
        raise DomainError("valuation_date", f"must not be before the last valuation "
                                            f"({item.valuation_date.isoformat()})")
    before = loan_ltv(session, loan, policy)
    item.value, item.valuation_date = command.value, command.valuation_date
    _, item.next_revaluation_on = _next_revaluation(CollateralKind(item.kind), item.revalue_every_months,
                                                    command.valuation_date, policy)
    item.revaluation_overdue_since = None
    session.add(item)
    session.add(CollateralValuation(collateral_id=item.id, value=command.value, currency=item.currency,
                                    valuation_date=command.valuation_date, note=command.note, recorded_by=by,
                                    recorded_on=as_of))
    session.flush()
    after = loan_ltv(session, loan, policy)
    alerts.warn(session, Facts(loan.id, loan.customer_id, as_of, collateral={
        "collateral_id": item.id, "valuation_date": command.valuation_date, "ltv_before": before,
        "ltv_after": after}), kinds=[RuleKind.LTV_ABOVE])
    return item


def flag_overdue_revaluations(session: Session, day: date) -> int:
    """Mark the records of active loans whose next revaluation fell due before `day`; returns how many were new."""
    active = select(Loan.id).where(Loan.status == LoanStatus.ACTIVE)
    return session.execute(update(Collateral).where(
        Collateral.next_revaluation_on < day, Collateral.revaluation_overdue_since.is_(None),
        Collateral.loan_id.in_(active)).values(revaluation_overdue_since=Collateral.next_revaluation_on)).rowcount


def _read(items: list[Collateral]) -> list[CollateralRead]:
    return [CollateralRead.model_validate(i) for i in items]


def loan_collateral(session: Session, loan_id: str, paging: PageRequest) -> Page[CollateralRead]:
    return keyset(session, select(Collateral).where(Collateral.loan_id == loan_id), paging, Collateral.created_at,
                  Collateral.id, read=_read)


def overdue_revaluations(session: Session, paging: PageRequest, *, scope: Visibility) -> Page[CollateralRead]:
    """The revaluation worklist: records COB flagged overdue, longest overdue first."""
    query = (select(Collateral).join(Loan, Loan.id == Collateral.loan_id)
             .where(Collateral.revaluation_overdue_since.is_not(None), scope.where(Loan.branch)))
    return keyset(session, query, paging, Collateral.revaluation_overdue_since, Collateral.id, read=_read)


def valuations(session: Session, collateral_id: str, paging: PageRequest) -> Page[ValuationRead]:
    return keyset(session, select(CollateralValuation).where(CollateralValuation.collateral_id == collateral_id),
                  paging, CollateralValuation.recorded_at, CollateralValuation.id,
                  read=lambda rows: [ValuationRead.model_validate(v) for v in rows])
