from datetime import date
from decimal import Decimal

import pytest

from services.monitoring.errors import DomainError
from services.monitoring.loans.allocation import (
    AllocationStrategy,
    Component,
    DueItem,
    allocate,
)

D = Decimal
JAN, FEB, MAR = date(2024, 1, 10), date(2024, 2, 10), date(2024, 3, 10)


def dues() -> list[DueItem]:
    # Listed out of order on purpose: allocation must go by due date, not by list position.
    return [
        DueItem(2, FEB, penalty_due=D("10.00"), interest_due=D("50.00"), principal_due=D("500.00")),
        DueItem(1, JAN, penalty_due=D("10.00"), interest_due=D("50.00"), principal_due=D("500.00")),
        DueItem(3, MAR, penalty_due=D("0.00"), interest_due=D("50.00"), principal_due=D("500.00")),
    ]


def paid(allocation) -> dict[int, tuple[Decimal, Decimal, Decimal]]:
    return {line.number: (line.penalty, line.interest, line.principal) for line in allocation.lines}


def test_full_payment_settles_everything_without_overpayment():
    result = allocate(D("1670.00"), dues())
    assert result.overpayment == 0
    assert result.allocated == D("1670.00")
    assert paid(result) == {
        1: (D("10.00"), D("50.00"), D("500.00")),
        2: (D("10.00"), D("50.00"), D("500.00")),
        3: (D("0.00"), D("50.00"), D("500.00")),
    }


@pytest.mark.parametrize(
    ("amount", "first"),
    [
        (D("5.00"), (D("5.00"), D("0.00"), D("0.00"))),
        (D("10.00"), (D("10.00"), D("0.00"), D("0.00"))),
        (D("40.00"), (D("10.00"), D("30.00"), D("0.00"))),
        (D("60.00"), (D("10.00"), D("50.00"), D("0.00"))),
        (D("100.00"), (D("10.00"), D("50.00"), D("40.00"))),
    ],
)
def test_partial_payment_goes_penalty_then_interest_then_principal_on_the_oldest(amount, first):
    result = allocate(amount, dues())
    assert paid(result)[1] == first
    assert paid(result)[2] == paid(result)[3] == (D("0.00"),) * 3
    assert result.overpayment == 0


def test_vertical_settles_the_oldest_instalment_before_the_next():
    result = allocate(D("600.00"), dues(), strategy=AllocationStrategy.VERTICAL)
    assert paid(result)[1] == (D("10.00"), D("50.00"), D("500.00"))
    assert paid(result)[2] == (D("10.00"), D("30.00"), D("0.00"))


def test_horizontal_sweeps_all_penalties_then_all_interest_then_principal():
    result = allocate(D("600.00"), dues(), strategy="horizontal")
    assert paid(result)[1] == (D("10.00"), D("50.00"), D("430.00"))
    assert paid(result)[2] == (D("10.00"), D("50.00"), D("0.00"))
    assert paid(result)[3] == (D("0.00"), D("50.00"), D("0.00"))
    assert result.component_total("penalty") == D("20.00")
    assert result.component_total(Component.INTEREST) == D("150.00")
    assert result.component_total(Component.PRINCIPAL) == D("430.00")


def test_configured_order_principal_first_is_respected():
    result = allocate(D("520.00"), dues(), order=("principal", "interest", "penalty"))
    assert paid(result)[1] == (D("0.00"), D("20.00"), D("500.00"))


def test_early_repayment_pays_future_instalments_only_after_everything_due():
    # On Feb 20 instalments 1 and 2 are due, 3 is not: horizontal sweeps cover 1 and 2, then 3 is prepaid.
    result = allocate(D("1200.00"), dues(), strategy="horizontal", as_of=date(2024, 2, 20))
    assert paid(result)[1] == (D("10.00"), D("50.00"), D("500.00"))
    assert paid(result)[2] == (D("10.00"), D("50.00"), D("500.00"))
    assert paid(result)[3] == (D("0.00"), D("50.00"), D("30.00"))
    assert result.overpayment == 0


def test_prepayment_settles_future_instalments_one_at_a_time_oldest_first():
    future = DueItem(4, date(2024, 4, 10), penalty_due=D("0.00"), interest_due=D("50.00"), principal_due=D("500.00"))
    result = allocate(D("1700.00"), [*dues(), future], strategy="horizontal", as_of=date(2024, 2, 20))
    assert paid(result)[3] == (D("0.00"), D("50.00"), D("500.00"))
    assert paid(result)[4] == (D("0.00"), D("30.00"), D("0.00"))


def test_without_as_of_horizontal_treats_future_interest_as_due():
    result = allocate(D("1200.00"), dues(), strategy="horizontal")
    assert paid(result)[3][1] == D("50.00")
    assert paid(result)[2][2] == D("500.00")
    assert paid(result)[3][2] == D("30.00")


def test_overpayment_is_the_leftover_after_all_dues():
    result = allocate(D("2000.00"), dues())
    assert result.overpayment == D("330.00")
    assert result.allocated == D("1670.00")


def test_no_dues_makes_the_whole_amount_an_overpayment():
    result = allocate(D("25.00"), [])
    assert result.lines == ()
    assert result.overpayment == D("25.00")


@pytest.mark.parametrize("strategy", list(AllocationStrategy))
@pytest.mark.parametrize("cents", [1, 999, 6000, 56001, 111999, 167000, 167001, 250000])
def test_every_cent_is_accounted_for_and_no_component_overpaid(cents, strategy):
    amount = D(cents).scaleb(-2)
    result = allocate(amount, dues(), strategy=strategy)
    assert result.allocated + result.overpayment == amount
    by_number = {d.number: d for d in dues()}
    for line in result.lines:
        due = by_number[line.number]
        assert D(0) <= line.penalty <= due.penalty_due
        assert D(0) <= line.interest <= due.interest_due
        assert D(0) <= line.principal <= due.principal_due
    assert result.overpayment == max(D(0), amount - D("1670.00"))


def test_lines_are_oldest_first_and_cover_every_due_item():
    result = allocate(D("1.00"), dues())
    assert [line.number for line in result.lines] == [1, 2, 3]
    assert result.lines[0].total == D("1.00")


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"amount": D("0")}, "amount"),
        ({"amount": D("-5.00")}, "amount"),
        ({"amount": 5.0}, "amount"),
        ({"amount": D("5.001")}, "amount"),
        ({"order": ("penalty", "interest")}, "order"),
        ({"order": ("penalty", "penalty", "principal")}, "order"),
        ({"order": ("fees", "interest", "principal")}, "order"),
        ({"strategy": "diagonal"}, "strategy"),
        ({"as_of": "2024-02-20"}, "as_of"),
        ({"dues": [DueItem(1, JAN, D("0"), D("-1.00"), D("0"))]}, "dues.interest_due"),
        ({"dues": [DueItem(1, JAN, D("0"), D("1"), D("0")), DueItem(1, FEB, D("0"), D("1"), D("0"))]}, "dues"),
    ],
)
def test_invalid_input_names_the_field(kwargs, field):
    args = {"amount": D("10.00"), "dues": dues(), **kwargs}
    with pytest.raises(DomainError) as caught:
        allocate(**args)
    assert caught.value.field == field
