"""Validation and rounding of money and rates shared by the monitoring rules."""

from datetime import date, datetime
from decimal import (
    ROUND_05UP,
    ROUND_CEILING,
    ROUND_DOWN,
    ROUND_FLOOR,
    ROUND_HALF_DOWN,
    ROUND_HALF_EVEN,
    ROUND_HALF_UP,
    ROUND_UP,
    Decimal,
)

from services.monitoring.errors import DomainError

CENT = Decimal("0.01")
ZERO = Decimal("0.00")
ROUNDING_MODES = frozenset(
    {ROUND_05UP, ROUND_CEILING, ROUND_DOWN, ROUND_FLOOR, ROUND_HALF_DOWN, ROUND_HALF_EVEN, ROUND_HALF_UP, ROUND_UP}
)


def require_decimal(field: str, value: object) -> Decimal:
    # Floats are refused outright: 0.1 + 0.2 style drift is exactly what a ledger must never show.
    if isinstance(value, bool) or not isinstance(value, (Decimal, int)):
        raise DomainError(field, f"must be a Decimal, got {type(value).__name__}")
    result = Decimal(value)
    if not result.is_finite():
        raise DomainError(field, "must be a finite number")
    return result


def require_money(field: str, value: object, *, positive: bool = False) -> Decimal:
    """A non-negative (or strictly positive) amount in whole cents."""
    amount = require_decimal(field, value)
    if amount < 0 or (positive and amount == 0):
        raise DomainError(field, "must be greater than 0" if positive else "must not be negative")
    # Sub-cent amounts could never be booked, and would break "principal sums exactly" guarantees.
    if amount != amount.quantize(CENT):
        raise DomainError(field, "must be in whole cents")
    return amount.quantize(CENT)


def require_fraction(field: str, value: object) -> Decimal:
    """A rate or probability given as a fraction in [0, 1], e.g. Decimal("0.0435") for 4.35 %."""
    fraction = require_decimal(field, value)
    if not 0 <= fraction <= 1:
        raise DomainError(field, "must be a fraction between 0 and 1 (e.g. 0.0435 for 4.35%)")
    return fraction


def require_rounding(value: str) -> str:
    if value not in ROUNDING_MODES:
        raise DomainError("rounding", f"unknown rounding mode {value!r}")
    return value


def require_date(field: str, value: object) -> date:
    # datetime is a date subclass; a time part means a wall-clock value slipped in where a business date belongs.
    if isinstance(value, datetime) or not isinstance(value, date):
        raise DomainError(field, "must be a business date (datetime.date without time)")
    return value


def to_cents(value: Decimal, rounding: str = ROUND_HALF_EVEN) -> Decimal:
    return value.quantize(CENT, rounding=rounding)
