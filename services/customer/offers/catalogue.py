"""The product catalogue and the documented rules of differentiated service by grade.

High grades earn a better rate, a higher limit and the fast lane; low grades get guarantees, lower limits and
credit-building products. A product lists the grades, segments and lifecycle stages it is open to (None: any).
Unscored customers are treated as grade C until the scoring service grades them.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum


class ProductKind(StrEnum):
    LOAN = "loan"
    CARD = "card"
    DEPOSIT = "deposit"


@dataclass(frozen=True)
class Product:
    code: str
    kind: ProductKind
    name: str
    grades: frozenset[str] | None
    segments: frozenset[str] | None
    lifecycles: frozenset[str] | None
    base_rate: Decimal | None  # % a year: a loan's interest or a deposit's yield
    base_limit: Decimal | None
    credit_building: bool = False
    priority: int = 0  # higher first among equally fitting offers


@dataclass(frozen=True)
class GradeTerms:
    rate_change: Decimal  # percentage points on loans and cards
    limit_factor: Decimal
    fast_lane: bool
    guarantee: bool
    reason: str


UNSCORED_GRADE = "C"
TERMS = {
    "A": GradeTerms(Decimal("-0.50"), Decimal("1.5"), True, False,
                    "grade A: preferential rate, higher limit, fast lane"),
    "B": GradeTerms(Decimal("-0.20"), Decimal("1.2"), True, False, "grade B: reduced rate and fast-lane approval"),
    "C": GradeTerms(Decimal("0"), Decimal("1.0"), False, False, "standard terms"),
    "D": GradeTerms(Decimal("1.00"), Decimal("0.5"), False, True, "grade D: lower limit, a guarantor is required"),
    "E": GradeTerms(Decimal("2.00"), Decimal("0.25"), False, True, "grade E: credit-building products only"),
}
_ACTIVE = frozenset({"new", "growing", "mature", "declining", "dormant"})

CATALOGUE = (
    Product("PL-PRIME", ProductKind.LOAN, "Prime personal loan", frozenset("AB"), None, _ACTIVE,
            Decimal("3.45"), Decimal("200000.00"), priority=30),
    Product("PL-STD", ProductKind.LOAN, "Personal instalment loan", frozenset("BC"), None, None,
            Decimal("5.80"), Decimal("50000.00"), priority=20),
    Product("PL-GUARANTEED", ProductKind.LOAN, "Guaranteed starter loan", frozenset("D"), None, None,
            Decimal("7.20"), Decimal("20000.00"), credit_building=True, priority=15),
    Product("CC-PLATINUM", ProductKind.CARD, "Platinum credit card", frozenset("A"),
            frozenset({"high_value"}), None, None, Decimal("100000.00"), priority=35),
    Product("CC-CLASSIC", ProductKind.CARD, "Classic credit card", frozenset("ABC"), None, None,
            None, Decimal("30000.00"), priority=25),
    Product("CC-SECURED", ProductKind.CARD, "Secured credit-builder card", frozenset("DE"), None, None,
            None, Decimal("5000.00"), credit_building=True, priority=20),
    Product("DP-WEALTH", ProductKind.DEPOSIT, "Wealth management deposit", None, frozenset({"high_value"}), None,
            Decimal("2.60"), None, priority=28),
    Product("DP-TERM", ProductKind.DEPOSIT, "Three-year term deposit", None, None, None, Decimal("2.10"), None,
            priority=10),
    Product("DP-BUILDER", ProductKind.DEPOSIT, "Savings plan with financial-education sessions", frozenset("DE"),
            None, None, Decimal("1.80"), None, credit_building=True, priority=18),
)
BY_CODE = {product.code: product for product in CATALOGUE}
