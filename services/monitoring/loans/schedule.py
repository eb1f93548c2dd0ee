"""Repayment schedule generation (还款计划) for the three repayment methods banks offer.

Interest accrues per monthly period at annual_rate / 12 on the opening balance. When the first due date is set
explicitly and does not fall one month after disbursement, that broken first period is charged by the loan's day
count (`DayCount`: actual/360 by default, the Chinese-bank basis; actual/365 or 30/360 per product), so a long or
short first period costs what it lasts. Every amount is rounded to the cent by the loan's `Rounding` (half-up by
default, as most banks here round; half-even per product).
"""

import calendar
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal, localcontext
from enum import StrEnum

from services.monitoring.errors import DomainError
from services.monitoring.loans.money import (
    ZERO,
    require_date,
    require_fraction,
    require_money,
    require_rounding,
    to_cents,
)

MAX_TERM_MONTHS = 480


class Rounding(StrEnum):
    """How an amount is rounded to the cent."""

    HALF_UP = "half_up"  # 0.005 → 0.01: what most banks here use, and the default
    HALF_EVEN = "half_even"  # 0.005 → 0.00, 0.015 → 0.02 (banker's rounding)

    @property
    def mode(self) -> str:
        return ROUND_HALF_UP if self is Rounding.HALF_UP else ROUND_HALF_EVEN


class DayCount(StrEnum):
    """How a broken first period's days become a fraction of the annual rate."""

    ACTUAL_360 = "actual/360"  # actual days / 360: the default, the Chinese-bank basis
    ACTUAL_365 = "actual/365"  # actual days / 365 (fixed)
    THIRTY_360 = "30/360"  # every month 30 days (a 31st counts as the 30th) / 360

    def year_fraction(self, start: date, end: date) -> Decimal:
        if self is DayCount.THIRTY_360:
            d1 = min(start.day, 30)
            d2 = min(end.day, 30) if d1 == 30 else end.day
            days = 360 * (end.year - start.year) + 30 * (end.month - start.month) + d2 - d1
            return Decimal(days) / 360
        return Decimal((end - start).days) / (360 if self is DayCount.ACTUAL_360 else 365)


class RepaymentMethod(StrEnum):
    EQUAL_INSTALMENT = "equal_instalment"  # 等额本息: annuity, same total every month
    EQUAL_PRINCIPAL = "equal_principal"  # 等额本金: same principal every month, interest falls
    INTEREST_ONLY_BULLET = "interest_only_bullet"  # 先息后本: interest monthly, all the principal at maturity

    @property
    def label_zh(self) -> str:
        return _METHOD_LABELS_ZH[self]


_METHOD_LABELS_ZH = {
    RepaymentMethod.EQUAL_INSTALMENT: "等额本息",
    RepaymentMethod.EQUAL_PRINCIPAL: "等额本金",
    RepaymentMethod.INTEREST_ONLY_BULLET: "先息后本",
}


@dataclass(frozen=True)
class Instalment:
    number: int
    due_date: date
    principal: Decimal
    interest: Decimal
    total: Decimal
    opening_balance: Decimal
    closing_balance: Decimal


def add_months(anchor: date, months: int) -> date:
    """The date `months` after `anchor`, clamped to month end but always anchored to the original day.

    Computing every due date from the anchor (never from the previous due date) is what keeps Jan 31 → Feb 28 →
    Mar 31 instead of drifting to the 28th for the rest of the loan.
    """
    month_index = anchor.month - 1 + months
    year, month = anchor.year + month_index // 12, month_index % 12 + 1
    return date(year, month, min(anchor.day, calendar.monthrange(year, month)[1]))


def _require_method(value: object) -> RepaymentMethod:
    try:
        return RepaymentMethod(value)
    except ValueError:
        allowed = ", ".join(m.value for m in RepaymentMethod)
        raise DomainError("method", f"unknown repayment method {value!r}; expected one of {allowed}") from None


def _require_term(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise DomainError("term_months", "must be an integer number of months")
    if not 1 <= value <= MAX_TERM_MONTHS:
        raise DomainError("term_months", f"must be between 1 and {MAX_TERM_MONTHS}")
    return value


def _annuity_payment(principal: Decimal, monthly_rate: Decimal, term: int, rounding: str) -> Decimal:
    if monthly_rate == 0:
        return to_cents(principal / term, rounding)
    with localcontext() as ctx:
        ctx.prec = 50  # ample headroom so only the final cent rounding is visible
        payment = principal * monthly_rate / (1 - (1 + monthly_rate) ** -term)
    return to_cents(payment, rounding)


def generate_schedule(
    principal: Decimal,
    annual_rate: Decimal,
    term_months: int,
    method: RepaymentMethod | str,
    disbursement_date: date,
    first_due_date: date | None = None,
    rounding: str = ROUND_HALF_UP,
    day_count: DayCount | str = DayCount.ACTUAL_360,
) -> list[Instalment]:
    """The full schedule; principals sum exactly to `principal`, the last instalment absorbing rounding."""
    principal = require_money("principal", principal, positive=True)
    annual_rate = require_fraction("annual_rate", annual_rate)
    term = _require_term(term_months)
    method = _require_method(method)
    disbursement_date = require_date("disbursement_date", disbursement_date)
    rounding = require_rounding(rounding)
    try:
        day_count = DayCount(day_count)
    except ValueError:
        raise DomainError("day_count", f"unknown day count {day_count!r}") from None
    regular_first_due = add_months(disbursement_date, 1)
    if first_due_date is None:
        first_due_date = regular_first_due
    first_due_date = require_date("first_due_date", first_due_date)
    if first_due_date <= disbursement_date:
        raise DomainError("first_due_date", "must be after the disbursement date")

    monthly_rate = annual_rate / 12
    is_annuity = method is RepaymentMethod.EQUAL_INSTALMENT
    payment = _annuity_payment(principal, monthly_rate, term, rounding) if is_annuity else ZERO
    is_equal_principal = method is RepaymentMethod.EQUAL_PRINCIPAL
    regular_principal = to_cents(principal / term, rounding) if is_equal_principal else ZERO
    # Without an explicit first due date the disbursement day is the anchor, so a loan paid out on the 31st
    # falls due on the last day of short months and back on the 31st afterwards.
    anchor, offset = (disbursement_date, 0) if first_due_date == regular_first_due else (first_due_date, 1)

    schedule: list[Instalment] = []
    balance = principal
    for number in range(1, term + 1):
        regular_interest = to_cents(balance * monthly_rate, rounding)
        if number == term:
            principal_part = balance
        elif is_annuity:
            principal_part = payment - regular_interest
        elif is_equal_principal:
            principal_part = regular_principal
        else:
            principal_part = ZERO
        # Rounding a tiny loan's payment up could otherwise retire more than is owed before the last instalment.
        principal_part = min(principal_part, balance)
        interest = regular_interest
        if number == 1 and offset:
            fraction = day_count.year_fraction(disbursement_date, first_due_date)
            interest = to_cents(balance * annual_rate * fraction, rounding)
        schedule.append(
            Instalment(
                number=number,
                due_date=add_months(anchor, number - offset),
                principal=principal_part,
                interest=interest,
                total=principal_part + interest,
                opening_balance=balance,
                closing_balance=balance - principal_part,
            )
        )
        balance -= principal_part
    return schedule
