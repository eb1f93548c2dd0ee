"""Repayment allocation: how one received amount is split over unpaid instalment components.

The order can be set by law or product, so both the component order and the strategy are parameters.
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from enum import StrEnum

from services.monitoring.errors import DomainError
from services.monitoring.loans.money import ZERO, require_date, require_money


class Component(StrEnum):
    PENALTY = "penalty"
    INTEREST = "interest"
    PRINCIPAL = "principal"


class AllocationStrategy(StrEnum):
    # Each instalment, oldest first, is settled component by component before the next one is touched.
    VERTICAL = "vertical"
    # Every due penalty first, then every due interest, then every due principal, each sweep oldest first.
    HORIZONTAL = "horizontal"


DEFAULT_ORDER: tuple[Component, ...] = (Component.PENALTY, Component.INTEREST, Component.PRINCIPAL)


@dataclass(frozen=True)
class DueItem:
    """What is still unpaid on one instalment."""

    number: int
    due_date: date
    penalty_due: Decimal
    interest_due: Decimal
    principal_due: Decimal

    def due(self, component: Component) -> Decimal:
        return {
            Component.PENALTY: self.penalty_due,
            Component.INTEREST: self.interest_due,
            Component.PRINCIPAL: self.principal_due,
        }[component]


@dataclass(frozen=True)
class InstalmentAllocation:
    number: int
    due_date: date
    penalty: Decimal
    interest: Decimal
    principal: Decimal

    @property
    def total(self) -> Decimal:
        return self.penalty + self.interest + self.principal


@dataclass(frozen=True)
class Allocation:
    amount: Decimal
    lines: tuple[InstalmentAllocation, ...]  # one per due item, oldest first, zero lines included
    overpayment: Decimal  # left over after every due item is settled; kept as a credit on the account

    @property
    def allocated(self) -> Decimal:
        return self.amount - self.overpayment

    def component_total(self, component: Component | str) -> Decimal:
        field = Component(component).value
        return sum((getattr(line, field) for line in self.lines), ZERO)


def _require_order(order: Iterable[Component | str]) -> tuple[Component, ...]:
    try:
        parsed = tuple(Component(c) for c in order)
    except ValueError as exc:
        raise DomainError("order", str(exc)) from None
    if sorted(parsed) != sorted(Component):
        raise DomainError("order", "must name penalty, interest and principal exactly once each")
    return parsed


def _require_dues(dues: Sequence[DueItem]) -> list[DueItem]:
    seen: set[int] = set()
    for item in dues:
        if item.number in seen:
            raise DomainError("dues", f"instalment {item.number} is listed twice")
        seen.add(item.number)
        require_date("dues.due_date", item.due_date)
        for component in Component:
            require_money(f"dues.{component.value}_due", item.due(component))
    return sorted(dues, key=lambda item: (item.due_date, item.number))


def allocate(
    amount: Decimal,
    dues: Sequence[DueItem],
    order: Iterable[Component | str] = DEFAULT_ORDER,
    strategy: AllocationStrategy | str = AllocationStrategy.VERTICAL,
    as_of: date | None = None,
) -> Allocation:
    """Split `amount` over `dues`; what no due item can absorb is returned as overpayment.

    With `as_of`, instalments due after it are paid only once everything due by then is settled, and then
    instalment by instalment (early repayment): a horizontal sweep must not pay next year's interest before
    today's overdue principal. Without it every due item is treated as due.
    """
    amount = require_money("amount", amount, positive=True)
    components = _require_order(order)
    try:
        strategy = AllocationStrategy(strategy)
    except ValueError:
        raise DomainError("strategy", f"unknown allocation strategy {strategy!r}") from None
    items = _require_dues(dues)
    if as_of is not None:
        require_date("as_of", as_of)

    def is_due(item: DueItem) -> bool:
        return as_of is None or item.due_date <= as_of

    current = [i for i, item in enumerate(items) if is_due(item)]
    future = [i for i, item in enumerate(items) if not is_due(item)]
    if strategy is AllocationStrategy.HORIZONTAL:
        slots = [(i, c) for c in components for i in current]
    else:
        slots = [(i, c) for i in current for c in components]
    slots += [(i, c) for i in future for c in components]

    paid: dict[tuple[int, Component], Decimal] = {}
    remaining = amount
    for index, component in slots:
        if remaining == 0:
            break
        share = min(remaining, items[index].due(component))
        paid[(index, component)] = share
        remaining -= share

    lines = tuple(
        InstalmentAllocation(
            number=item.number,
            due_date=item.due_date,
            penalty=paid.get((i, Component.PENALTY), ZERO),
            interest=paid.get((i, Component.INTEREST), ZERO),
            principal=paid.get((i, Component.PRINCIPAL), ZERO),
        )
        for i, item in enumerate(items)
    )
    return Allocation(amount=amount, lines=lines, overpayment=remaining)
