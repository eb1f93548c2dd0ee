import subprocess
import sys
from datetime import date
from decimal import ROUND_HALF_EVEN, Decimal
from itertools import product
from pathlib import Path

import pytest

from services.monitoring.classification.rules import (
    CREDIT_CARD_FLOORS,
    LOAN_FLOORS,
    ChangeCause,
    ChangeRecord,
    ClassificationFloors,
    Ifrs9Stage,
    LoanClass,
    RiskState,
    apply_override,
    classification_floor,
    diff_states,
    expected_loss,
    ifrs9_stage,
)
from services.monitoring.errors import DomainError

D = Decimal
N, SM, SUB, DBT, LOSS = (
    LoanClass.NORMAL,
    LoanClass.SPECIAL_MENTION,
    LoanClass.SUBSTANDARD,
    LoanClass.DOUBTFUL,
    LoanClass.LOSS,
)
TODAY = date(2024, 6, 30)


def test_classes_are_ordered_and_labelled_in_chinese():
    assert N < SM < SUB < DBT < LOSS
    assert [c.label_zh for c in LoanClass] == ["正常", "关注", "次级", "可疑", "损失"]
    assert [c.is_non_performing for c in LoanClass] == [False, False, True, True, True]


@pytest.mark.parametrize(
    ("dpd", "floor"),
    [(0, N), (1, SM), (90, SM), (91, SUB), (270, SUB), (271, DBT), (360, DBT), (361, LOSS), (2000, LOSS)],
)
def test_loan_floors_at_each_regulatory_boundary(dpd, floor):
    assert classification_floor(dpd, LOAN_FLOORS, None, TODAY) is floor


@pytest.mark.parametrize(
    ("dpd", "floor"),
    [(0, N), (1, SM), (90, SM), (91, SUB), (120, SUB), (121, DBT), (180, DBT), (181, LOSS)],
)
def test_credit_card_floors_at_each_boundary(dpd, floor):
    assert classification_floor(dpd, CREDIT_CARD_FLOORS, None, TODAY) is floor


def test_floors_are_configurable_per_product():
    strict = ClassificationFloors.from_data([(1, "special_mention"), (61, LoanClass.SUBSTANDARD)])
    assert [strict.floor_for(d) for d in (0, 60, 61, 10_000)] == [N, SM, SUB, SUB]


@pytest.mark.parametrize(
    ("rows", "field"),
    [
        ([(0, "SPECIAL_MENTION")], "floors[0].min_dpd"),
        ([(1, "NORMAL")], "floors[0].loan_class"),
        ([(1, "SPECIAL_MENTION"), (1, "SUBSTANDARD")], "floors[1].min_dpd"),
        ([(1, "SUBSTANDARD"), (91, "SPECIAL_MENTION")], "floors[1].loan_class"),
        ([(1, "PERFORMING")], "floors[0].loan_class"),
        ([(1,)], "floors[0]"),
    ],
)
def test_invalid_floors_are_refused(rows, field):
    with pytest.raises(DomainError) as caught:
        ClassificationFloors.from_data(rows)
    assert caught.value.field == field


@pytest.mark.parametrize("dpd", [-1, True, 1.0])
def test_floor_refuses_a_nonsense_dpd(dpd):
    with pytest.raises(DomainError) as caught:
        classification_floor(dpd, LOAN_FLOORS, None, TODAY)
    assert caught.value.field == "dpd"


# --- restructuring ------------------------------------------------------------------------------------------

RESTRUCTURED = date(2024, 1, 31)


def test_restructuring_makes_a_performing_loan_at_least_special_mention():
    assert classification_floor(0, LOAN_FLOORS, RESTRUCTURED, date(2024, 2, 1)) is SM


def test_restructuring_never_improves_the_class_during_observation():
    # Substandard at restructuring, now current: the floor stays substandard for the observation year.
    assert classification_floor(0, LOAN_FLOORS, RESTRUCTURED, date(2024, 12, 1), previous_class=SUB) is SUB


def test_overdue_floor_still_applies_when_worse_during_observation():
    assert classification_floor(271, LOAN_FLOORS, RESTRUCTURED, date(2024, 12, 1), previous_class=SUB) is DBT


@pytest.mark.parametrize(
    ("as_of", "floor"),
    [(date(2025, 1, 30), SUB), (date(2025, 1, 31), N)],
)
def test_observation_period_is_one_year_from_restructuring(as_of, floor):
    assert classification_floor(0, LOAN_FLOORS, RESTRUCTURED, as_of, previous_class=SUB) is floor


def test_longer_observation_period_can_be_configured():
    as_of = date(2025, 6, 1)
    assert classification_floor(0, LOAN_FLOORS, RESTRUCTURED, as_of, observation_months=18) is SM
    assert classification_floor(0, LOAN_FLOORS, RESTRUCTURED, as_of, observation_months=12) is N


def test_observation_period_shorter_than_a_year_is_refused():
    with pytest.raises(DomainError) as caught:
        classification_floor(0, LOAN_FLOORS, RESTRUCTURED, TODAY, observation_months=6)
    assert caught.value.field == "observation_months"


def test_restructuring_after_as_of_does_not_apply_when_replaying_history():
    assert classification_floor(0, LOAN_FLOORS, RESTRUCTURED, date(2024, 1, 30)) is N


def test_without_restructuring_a_cured_loan_returns_to_normal():
    assert classification_floor(0, LOAN_FLOORS, None, TODAY, previous_class=SUB) is N


# --- overrides ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("floor", "requested"), list(product(LoanClass, LoanClass)))
def test_override_may_only_keep_or_worsen_the_class(floor, requested):
    if requested >= floor:
        assert apply_override(floor, requested) is requested
    else:
        with pytest.raises(DomainError) as caught:
            apply_override(floor, requested)
        assert caught.value.field == "requested_class"


# --- IFRS 9 -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("dpd", "loan_class", "stage"),
    [
        (0, N, 1),
        (30, N, 1),
        (31, N, 2),
        (90, SM, 2),
        (91, SM, 3),
        (0, SM, 2),
        (0, SUB, 3),
        (0, LOSS, 3),
    ],
)
def test_ifrs9_stage_boundaries(dpd, loan_class, stage):
    assert ifrs9_stage(dpd, loan_class) is Ifrs9Stage(stage)


@pytest.mark.parametrize(("notches", "stage"), [(0, 1), (1, 1), (2, 2), (4, 2)])
def test_grade_falling_two_notches_is_a_significant_increase(notches, stage):
    assert ifrs9_stage(0, N, grade_notches_down=notches) is Ifrs9Stage(stage)


def test_significant_increase_flag_moves_to_stage_2_but_not_3():
    assert ifrs9_stage(0, N, significant_increase=True) is Ifrs9Stage.STAGE_2
    assert ifrs9_stage(91, N, significant_increase=True) is Ifrs9Stage.STAGE_3


def test_stage_thresholds_are_configurable_and_validated():
    assert ifrs9_stage(16, N, stage2_dpd=15) is Ifrs9Stage.STAGE_2
    with pytest.raises(DomainError) as caught:
        ifrs9_stage(0, N, stage2_dpd=90, stage3_dpd=30)
    assert caught.value.field == "stage2_dpd"


# --- expected loss ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pd", "lgd", "ead", "loss"),
    [
        (D("0.02"), D("0.45"), D("100000.00"), D("900.00")),
        (D("0"), D("0.45"), D("100000.00"), D("0.00")),
        (D("1"), D("1"), D("1234.56"), D("1234.56")),
        (D("0.0125"), D("0.442"), D("1000.00"), D("5.53")),  # exactly 5.525: half-up, as amounts round by default
        (D("0.0375"), D("0.442"), D("1000.00"), D("16.58")),  # 16.575 up as well
    ],
)
def test_expected_loss_is_pd_times_lgd_times_ead_in_cents(pd, lgd, ead, loss):
    assert expected_loss(pd, lgd, ead) == loss


def test_expected_loss_rounding_mode_is_a_parameter():
    assert expected_loss(D("0.0125"), D("0.442"), D("1000.00"), rounding=ROUND_HALF_EVEN) == D("5.52")


@pytest.mark.parametrize(
    ("args", "field"),
    [
        ((D("1.1"), D("0.45"), D("100.00")), "pd"),
        ((0.02, D("0.45"), D("100.00")), "pd"),
        ((D("0.02"), D("-0.1"), D("100.00")), "lgd"),
        ((D("0.02"), D("0.45"), D("-1.00")), "ead"),
    ],
)
def test_expected_loss_refuses_bad_inputs(args, field):
    with pytest.raises(DomainError) as caught:
        expected_loss(*args)
    assert caught.value.field == field


# --- change history -----------------------------------------------------------------------------------------

BEFORE = RiskState(dpd=30, bucket="M1", loan_class=SM, stage=Ifrs9Stage.STAGE_1)


def test_unchanged_state_produces_no_records():
    assert diff_states(BEFORE, BEFORE, ChangeCause.COB_AGEING, TODAY) == []


def test_each_changed_field_is_recorded_with_its_cause():
    after = RiskState(dpd=31, bucket="M2", loan_class=SM, stage=Ifrs9Stage.STAGE_2)
    records = diff_states(BEFORE, after, "cob_ageing", TODAY)
    assert records == [
        ChangeRecord("dpd", 30, 31, ChangeCause.COB_AGEING, TODAY),
        ChangeRecord("bucket", "M1", "M2", ChangeCause.COB_AGEING, TODAY),
        ChangeRecord("stage", Ifrs9Stage.STAGE_1, Ifrs9Stage.STAGE_2, ChangeCause.COB_AGEING, TODAY),
    ]


def test_backdated_cure_is_recorded_as_new_records_with_the_value_date():
    cured = RiskState(dpd=0, bucket="M0", loan_class=N, stage=Ifrs9Stage.STAGE_1)
    records = diff_states(BEFORE, cured, ChangeCause.BACKDATED_REPAYMENT, date(2024, 6, 1))
    assert {r.field for r in records} == {"dpd", "bucket", "loan_class"}
    assert all(r.cause is ChangeCause.BACKDATED_REPAYMENT and r.effective_date == date(2024, 6, 1) for r in records)


def test_first_state_records_every_field_from_nothing():
    records = diff_states(None, BEFORE, ChangeCause.COB_AGEING, TODAY)
    assert [(r.field, r.from_value) for r in records] == [
        ("dpd", None),
        ("bucket", None),
        ("loan_class", None),
        ("stage", None),
    ]


def test_unknown_cause_is_refused():
    with pytest.raises(DomainError) as caught:
        diff_states(BEFORE, BEFORE, "because", TODAY)
    assert caught.value.field == "cause"


def test_rule_modules_stay_free_of_web_and_database_frameworks():
    code = (
        "import sys\n"
        "import services.monitoring.loans.schedule, services.monitoring.loans.allocation\n"
        "import services.monitoring.delinquency.rules, services.monitoring.classification.rules\n"
        "leaked = [m for m in ('fastapi', 'sqlalchemy', 'sqlmodel', 'pydantic') if m in sys.modules]\n"
        "assert not leaked, leaked\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[3])


def test_a_hardship_observation_keeps_a_current_loan_special_mention_from_approval_to_the_day_before_its_end():
    window = (date(2026, 2, 10), date(2026, 8, 10))
    floor = [classification_floor(0, LOAN_FLOORS, None, day, hardship=window)
             for day in (date(2026, 2, 9), date(2026, 2, 10), date(2026, 8, 9), date(2026, 8, 10))]
    assert floor == [LoanClass.NORMAL, LoanClass.SPECIAL_MENTION, LoanClass.SPECIAL_MENTION, LoanClass.NORMAL]
    # A floor, not a cap: arrears past 90 days are substandard in the observation too.
    assert classification_floor(95, LOAN_FLOORS, None, date(2026, 3, 1), hardship=window) is LoanClass.SUBSTANDARD
