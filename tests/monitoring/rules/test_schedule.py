from datetime import date, datetime
from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, ROUND_UP, Decimal
from fractions import Fraction
from itertools import pairwise

import pytest

from services.monitoring.errors import DomainError
from services.monitoring.loans.schedule import RepaymentMethod, add_months, generate_schedule

D = Decimal
METHODS = list(RepaymentMethod)
CASES = [
    (D("120000.00"), D("0.0435"), 12),
    (D("100000.01"), D("0.0999"), 7),
    (D("333.33"), D("0.18"), 36),
    (D("5000000.00"), D("0.049"), 360),
    (D("1000.00"), D("0"), 3),
    (D("0.01"), D("0.05"), 480),
]


def cents_half_even(value: Fraction) -> Decimal:
    """Independent rounding: exact rational to cents, ties to even, without the decimal module's quantize."""
    scaled = value * 100
    floor = scaled.numerator // scaled.denominator
    rest = scaled - floor
    if rest > Fraction(1, 2) or (rest == Fraction(1, 2) and floor % 2):
        floor += 1
    return D(floor).scaleb(-2)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize(("principal", "rate", "term"), CASES)
def test_principal_sums_exactly_and_balances_chain(principal, rate, term, method):
    schedule = generate_schedule(principal, rate, term, method, date(2024, 3, 15))
    assert len(schedule) == term
    assert [i.number for i in schedule] == list(range(1, term + 1))
    assert sum(i.principal for i in schedule) == principal
    assert schedule[0].opening_balance == principal
    assert schedule[-1].closing_balance == 0
    for prev, nxt in pairwise(schedule):
        assert nxt.opening_balance == prev.closing_balance
    for inst in schedule:
        assert inst.total == inst.principal + inst.interest
        assert inst.closing_balance == inst.opening_balance - inst.principal
        assert inst.principal >= 0 and inst.interest >= 0
        for amount in (inst.principal, inst.interest, inst.total):
            assert amount.as_tuple().exponent == -2, "every amount is booked in cents"


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize(("principal", "rate", "term"), CASES)
def test_interest_is_the_rounded_monthly_rate_on_the_opening_balance(principal, rate, term, method):
    schedule = generate_schedule(principal, rate, term, method, date(2024, 3, 15))
    monthly = Fraction(rate) / 12
    for inst in schedule:
        assert inst.interest == cents_half_even(Fraction(inst.opening_balance) * monthly)


def test_known_annuity_120000_at_435_over_12_months():
    schedule = generate_schedule(D("120000"), D("0.0435"), 12, RepaymentMethod.EQUAL_INSTALMENT, date(2024, 1, 10))
    r = Fraction(435, 10000) / 12
    expected_payment = cents_half_even(120000 * r / (1 - (1 + r) ** -12))
    assert expected_payment == D("10237.19")
    assert all(i.total == expected_payment for i in schedule[:-1])
    assert schedule[0].interest == D("435.00")  # 120000 × 0.0435 / 12
    assert schedule[0].principal == D("9802.19")
    # The last instalment absorbs the accumulated rounding: a couple of cents, never more.
    assert abs(schedule[-1].total - expected_payment) <= D("0.06")
    assert schedule[-1].total == D("10237.17")
    assert sum(i.interest for i in schedule) == D("2846.26")


def test_annuity_rounding_drift_stays_small_over_a_long_term():
    schedule = generate_schedule(D("987654.32"), D("0.0531"), 360, "equal_instalment", date(2024, 1, 10))
    payment = schedule[0].total
    assert all(i.total == payment for i in schedule[:-1])
    # Each period's payment and interest rounding (≤ half a cent each) compound at the loan rate until maturity.
    r = Fraction(531, 10000) / 12
    bound = Fraction(1, 100) * ((1 + r) ** 360 - 1) / r
    assert 0 < Fraction(abs(schedule[-1].total - payment)) <= bound


def test_equal_principal_repays_the_same_principal_and_interest_falls():
    schedule = generate_schedule(D("100000.00"), D("0.06"), 3, "equal_principal", date(2024, 1, 10))
    assert [i.principal for i in schedule] == [D("33333.33"), D("33333.33"), D("33333.34")]
    assert [i.interest for i in schedule] == [D("500.00"), D("333.33"), D("166.67")]
    assert [i.total for i in schedule] == [D("33833.33"), D("33666.66"), D("33500.01")]


def test_interest_only_bullet_pays_principal_at_maturity():
    schedule = generate_schedule(D("120000.00"), D("0.0435"), 6, "interest_only_bullet", date(2024, 1, 10))
    assert [i.principal for i in schedule] == [D("0.00")] * 5 + [D("120000.00")]
    assert {i.interest for i in schedule} == {D("435.00")}
    assert all(i.closing_balance == D("120000.00") for i in schedule[:-1])
    assert schedule[-1].total == D("120435.00")


@pytest.mark.parametrize("method", METHODS)
def test_zero_rate_loan_charges_no_interest(method):
    schedule = generate_schedule(D("1000.00"), D("0"), 3, method, date(2024, 1, 10))
    assert all(i.interest == 0 for i in schedule)
    assert sum(i.total for i in schedule) == D("1000.00")


def test_zero_rate_annuity_spreads_the_odd_cent_to_the_last_instalment():
    schedule = generate_schedule(D("1000.00"), D("0"), 3, "equal_instalment", date(2024, 1, 10))
    assert [i.total for i in schedule] == [D("333.33"), D("333.33"), D("333.34")]


@pytest.mark.parametrize(("rounding", "interest"), [(ROUND_HALF_EVEN, D("0.02")), (ROUND_HALF_UP, D("0.03"))])
def test_rounding_mode_is_a_parameter(rounding, interest):
    # 100.00 × 0.003 / 12 = 0.025 exactly: the tie that separates the two modes.
    schedule = generate_schedule(
        D("100.00"), D("0.003"), 1, "interest_only_bullet", date(2024, 1, 10), rounding=rounding
    )
    assert schedule[0].interest == interest


@pytest.mark.parametrize("method", METHODS)
def test_rounding_up_a_tiny_loan_never_repays_more_than_was_lent(method):
    # 1.00 over 200 months rounds each share up to a cent: the loan is repaid by month 100, then nothing is due.
    schedule = generate_schedule(D("1.00"), D("0"), 200, method, date(2024, 1, 10), rounding=ROUND_UP)
    assert sum(i.principal for i in schedule) == D("1.00")
    assert all(i.closing_balance >= 0 and i.principal >= 0 for i in schedule)


def test_default_rounding_is_half_up():
    # 0.025 rounds up to 0.03 as most banks here round (half-even gave 0.02).
    schedule = generate_schedule(D("100.00"), D("0.003"), 1, "interest_only_bullet", date(2024, 1, 10))
    assert schedule[0].interest == D("0.03")


@pytest.mark.parametrize(
    ("disbursed", "expected"),
    [
        (date(2024, 1, 31), [date(2024, 2, 29), date(2024, 3, 31), date(2024, 4, 30), date(2024, 5, 31)]),
        (date(2023, 1, 31), [date(2023, 2, 28), date(2023, 3, 31), date(2023, 4, 30), date(2023, 5, 31)]),
        (date(2024, 8, 30), [date(2024, 9, 30), date(2024, 10, 30), date(2024, 11, 30), date(2024, 12, 30)]),
        (date(2024, 11, 30), [date(2024, 12, 30), date(2025, 1, 30), date(2025, 2, 28), date(2025, 3, 30)]),
    ],
)
def test_due_dates_are_end_of_month_safe_and_anchored(disbursed, expected):
    schedule = generate_schedule(D("4000.00"), D("0.05"), 4, "equal_principal", disbursed)
    assert [i.due_date for i in schedule] == expected


def test_add_months_across_years():
    assert add_months(date(2024, 12, 31), 2) == date(2025, 2, 28)
    assert add_months(date(2024, 2, 29), 12) == date(2025, 2, 28)
    assert add_months(date(2024, 2, 29), 48) == date(2028, 2, 29)


def test_explicit_first_due_date_anchors_the_dates_and_charges_actual_days():
    schedule = generate_schedule(
        D("120000.00"), D("0.0435"), 3, "interest_only_bullet", date(2024, 1, 10), first_due_date=date(2024, 2, 25)
    )
    assert [i.due_date for i in schedule] == [date(2024, 2, 25), date(2024, 3, 25), date(2024, 4, 25)]
    assert schedule[0].interest == D("667.00")  # 120000 × 0.0435 × 46 / 360
    assert schedule[1].interest == D("435.00")


def test_first_due_date_equal_to_the_regular_date_changes_nothing():
    regular = generate_schedule(D("50000.00"), D("0.05"), 6, "equal_instalment", date(2024, 1, 31))
    explicit = generate_schedule(
        D("50000.00"), D("0.05"), 6, "equal_instalment", date(2024, 1, 31), first_due_date=date(2024, 2, 29)
    )
    assert explicit == regular


@pytest.mark.parametrize("term", [1, 480])
def test_term_limits_are_inclusive(term):
    assert len(generate_schedule(D("480000.00"), D("0.05"), term, "equal_principal", date(2024, 1, 10))) == term


GOOD = dict(
    principal=D("1000.00"),
    annual_rate=D("0.05"),
    term_months=12,
    method="equal_instalment",
    disbursement_date=date(2024, 1, 10),
)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"principal": D("0")}, "principal"),
        ({"principal": D("-100.00")}, "principal"),
        ({"principal": 1000.0}, "principal"),
        ({"principal": D("100.005")}, "principal"),
        ({"principal": D("NaN")}, "principal"),
        ({"principal": "1000"}, "principal"),
        ({"annual_rate": D("-0.01")}, "annual_rate"),
        ({"annual_rate": D("4.35")}, "annual_rate"),
        ({"annual_rate": 0.0435}, "annual_rate"),
        ({"term_months": 0}, "term_months"),
        ({"term_months": 481}, "term_months"),
        ({"term_months": 12.0}, "term_months"),
        ({"term_months": True}, "term_months"),
        ({"method": "balloon"}, "method"),
        ({"disbursement_date": datetime(2024, 1, 10, 9, 30)}, "disbursement_date"),
        ({"disbursement_date": "2024-01-10"}, "disbursement_date"),
        ({"first_due_date": date(2024, 1, 10)}, "first_due_date"),
        ({"first_due_date": date(2023, 12, 1)}, "first_due_date"),
        ({"rounding": "ROUND_SOMETIMES"}, "rounding"),
    ],
)
def test_invalid_input_names_the_field(change, field):
    with pytest.raises(DomainError) as caught:
        generate_schedule(**{**GOOD, **change})
    assert caught.value.field == field
    assert str(caught.value).startswith(f"{field}:")


def test_method_accepts_enum_or_its_value():
    assert generate_schedule(**{**GOOD, "method": RepaymentMethod.EQUAL_INSTALMENT}) == generate_schedule(**GOOD)


def test_method_labels_are_the_bank_names():
    assert [m.label_zh for m in RepaymentMethod] == ["等额本息", "等额本金", "先息后本"]
