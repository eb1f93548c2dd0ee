"""Per-product policy: classification floors, delinquency buckets and repayment allocation order."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from services.monitoring.classification.rules import CREDIT_CARD_FLOORS, LOAN_FLOORS, ClassificationFloors
from services.monitoring.delinquency.rules import DEFAULT_BUCKETS, BucketScheme
from services.monitoring.loans.allocation import DEFAULT_ORDER, AllocationStrategy, Component


class Product(StrEnum):
    PERSONAL_LOAN = "personal_loan"
    MORTGAGE = "mortgage"
    BUSINESS_LOAN = "business_loan"
    CREDIT_CARD = "credit_card"


@dataclass(frozen=True)
class ProductPolicy:
    floors: ClassificationFloors
    buckets: BucketScheme
    order: tuple[Component, ...]
    strategy: AllocationStrategy


_LOAN = ProductPolicy(LOAN_FLOORS, DEFAULT_BUCKETS, DEFAULT_ORDER, AllocationStrategy.VERTICAL)
POLICIES: dict[Product, ProductPolicy] = {
    Product.PERSONAL_LOAN: _LOAN,
    Product.MORTGAGE: _LOAN,
    Product.BUSINESS_LOAN: _LOAN,
    # Card rules sweep every overdue interest before any principal.
    Product.CREDIT_CARD: ProductPolicy(CREDIT_CARD_FLOORS, DEFAULT_BUCKETS, DEFAULT_ORDER,
                                       AllocationStrategy.HORIZONTAL),
}


def policy(product: str) -> ProductPolicy:
    return POLICIES[Product(product)]
