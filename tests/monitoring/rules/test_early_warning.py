"""Every shipped early-warning rule, on facts that fire it and on facts just short of it."""

from datetime import date
from decimal import Decimal

import pytest

from services.monitoring.classification.rules import Ifrs9Stage, LoanClass, RiskState
from services.monitoring.errors import DomainError
from services.monitoring.rules.engine import SHIPPED_RULES, Facts, evaluate, validate_params
from services.monitoring.rules.models import RuleKind

DAY = date(2026, 3, 1)
RULES = {rule["code"]: rule for rule in SHIPPED_RULES}


def state(dpd, loan_class=LoanClass.NORMAL):
    return RiskState(dpd, "M?", loan_class, Ifrs9Stage.STAGE_1)


def facts(**kwargs):
    return Facts("loan-1", "cust-1", DAY, **kwargs)


CASES = {
    "missed_payment": (facts(before=state(0), after=state(1)), facts(before=state(1), after=state(2))),
    "dpd_over_30": (facts(before=state(30), after=state(31)), facts(before=state(29), after=state(30))),
    "dpd_over_90": (facts(before=state(60), after=state(95)), facts(before=state(91), after=state(92))),
    "non_performing": (
        facts(before=state(90, LoanClass.SPECIAL_MENTION), after=state(91, LoanClass.SUBSTANDARD)),
        facts(before=state(91, LoanClass.SUBSTANDARD), after=state(271, LoanClass.DOUBTFUL))),
    "partial_payment": (
        facts(payment={"posting_id": "p1", "amount": Decimal("50"), "overdue_after": Decimal("10.00")}),
        facts(payment={"posting_id": "p2", "amount": Decimal("60"), "overdue_after": Decimal("0.00")})),
    "score_drop": (
        facts(score={"previous_points": 650, "points": 600, "previous_grade": "B", "grade": "B"}),
        facts(score={"previous_points": 650, "points": 601, "previous_grade": "B", "grade": "C"})),
    "promise_broken": (
        facts(promise={"promise_id": "x", "amount": Decimal("100"), "promised_date": date(2026, 2, 28)}),
        facts(promise={"promise_id": "y", "amount": Decimal("100"), "promised_date": DAY})),
}


def test_every_shipped_rule_has_cases():
    assert set(CASES) == set(RULES)


@pytest.mark.parametrize("code", sorted(CASES))
def test_a_shipped_rule_fires_on_its_event_and_not_short_of_it(code):
    rule = RULES[code]
    firing, quiet = CASES[code]
    hit = evaluate(rule["kind"], rule["params"], firing)
    assert hit is not None and hit.trigger and hit.evidence
    assert evaluate(rule["kind"], rule["params"], quiet) is None


def test_a_grade_fall_of_two_notches_is_a_score_drop_even_with_few_points():
    rule = RULES["score_drop"]
    small_fall = facts(score={"previous_points": 650, "points": 640, "previous_grade": "B", "grade": "D"})
    assert evaluate(rule["kind"], rule["params"], small_fall) is not None
    first_score = facts(score={"previous_points": None, "points": 400, "previous_grade": None, "grade": "E"})
    assert evaluate(rule["kind"], rule["params"], first_score) is None


def test_rules_refuse_nonsense_thresholds():
    with pytest.raises(DomainError) as exc:
        validate_params(RuleKind.DPD_REACHED, {"days": 0})
    assert exc.value.field == "params.days"
    with pytest.raises(DomainError):
        validate_params(RuleKind.CLASS_WORSENED, {"at_least": "catastrophic"})
    with pytest.raises(DomainError):
        validate_params(RuleKind.SCORE_DROP, {"points": "fifty", "grade_notches": 2})
