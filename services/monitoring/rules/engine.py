"""Early-warning rules as data: each kind is an evaluator; a rule row gives its thresholds and severity.

Evaluators are pure: they read the facts of one event on one loan and return the evidence of a hit, or None.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from services.monitoring.classification.rules import LoanClass, RiskState
from services.monitoring.errors import DomainError
from services.monitoring.rules.models import RuleKind


@dataclass(frozen=True)
class Facts:
    """What happened to one loan: a state change, a repayment, a new score, or a broken promise."""

    loan_id: str
    customer_id: str
    day: date
    before: RiskState | None = None
    after: RiskState | None = None
    payment: Mapping[str, Any] | None = None  # posting_id, amount, overdue_after
    score: Mapping[str, Any] | None = None  # previous_points, points, previous_grade, grade
    promise: Mapping[str, Any] | None = None  # promise_id, amount, promised_date


@dataclass(frozen=True)
class Hit:
    trigger: str  # with (loan, rule) unique: the same event never raises two alerts
    evidence: dict[str, Any] = field(default_factory=dict)


def _grade_notches(previous: str, current: str) -> int:
    # Letter grades: A best; each letter further down the alphabet is one notch worse.
    return ord(current[:1].upper()) - ord(previous[:1].upper())


def _dpd_reached(params: Mapping[str, Any], facts: Facts) -> Hit | None:
    days = params["days"]
    if facts.after is None or facts.after.dpd < days or (facts.before is not None and facts.before.dpd >= days):
        return None
    return Hit(f"dpd{days}:{facts.day.isoformat()}", {"dpd": facts.after.dpd, "bucket": facts.after.bucket,
                                                      "threshold_days": days})


def _class_worsened(params: Mapping[str, Any], facts: Facts) -> Hit | None:
    at_least = LoanClass[params["at_least"].upper()]
    if facts.after is None or facts.after.loan_class < at_least:
        return None
    if facts.before is not None and facts.before.loan_class >= at_least:
        return None
    previous = facts.before.loan_class.name.lower() if facts.before else None
    return Hit(f"class:{facts.after.loan_class.name.lower()}:{facts.day.isoformat()}",
               {"from": previous, "to": facts.after.loan_class.name.lower(), "dpd": facts.after.dpd})


def _partial_payment(_params: Mapping[str, Any], facts: Facts) -> Hit | None:
    payment = facts.payment
    if payment is None or Decimal(str(payment["overdue_after"])) <= 0:
        return None
    return Hit(f"posting:{payment['posting_id']}", {"amount": str(payment["amount"]),
                                                    "still_overdue": str(payment["overdue_after"])})


def _score_drop(params: Mapping[str, Any], facts: Facts) -> Hit | None:
    score = facts.score
    if score is None or score.get("previous_points") is None:
        return None
    fall = int(score["previous_points"]) - int(score["points"])
    notches = _grade_notches(score["previous_grade"] or "A", score["grade"] or "A")
    if fall < params["points"] and notches < params["grade_notches"]:
        return None
    return Hit(f"score:{facts.day.isoformat()}", {"from_points": score["previous_points"], "to_points": score["points"],
                                                  "from_grade": score["previous_grade"], "to_grade": score["grade"]})


def _promise_broken(params: Mapping[str, Any], facts: Facts) -> Hit | None:
    promise = facts.promise
    if promise is None or (facts.day - promise["promised_date"]).days <= params.get("grace_days", 0):
        return None
    return Hit(f"promise:{promise['promise_id']}", {"promised_amount": str(promise["amount"]),
                                                    "promised_date": promise["promised_date"].isoformat()})


def _require_int(name: str, minimum: int) -> Callable[[Mapping[str, Any]], None]:
    def check(params: Mapping[str, Any]) -> None:
        value = params.get(name)
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise DomainError(f"params.{name}", f"must be an integer of at least {minimum}")
    return check


def _require_class(params: Mapping[str, Any]) -> None:
    if str(params.get("at_least", "")).upper() not in LoanClass.__members__:
        raise DomainError("params.at_least", "must be a class: normal, special_mention, substandard, doubtful, loss")


EVALUATORS: dict[RuleKind, Callable[[Mapping[str, Any], Facts], Hit | None]] = {
    RuleKind.DPD_REACHED: _dpd_reached,
    RuleKind.CLASS_WORSENED: _class_worsened,
    RuleKind.PARTIAL_PAYMENT: _partial_payment,
    RuleKind.SCORE_DROP: _score_drop,
    RuleKind.PROMISE_BROKEN: _promise_broken,
}

VALIDATORS: dict[RuleKind, list[Callable[[Mapping[str, Any]], None]]] = {
    RuleKind.DPD_REACHED: [_require_int("days", 1)],
    RuleKind.CLASS_WORSENED: [_require_class],
    RuleKind.PARTIAL_PAYMENT: [],
    RuleKind.SCORE_DROP: [_require_int("points", 1), _require_int("grade_notches", 1)],
    RuleKind.PROMISE_BROKEN: [_require_int("grace_days", 0)],
}


def validate_params(kind: RuleKind, params: Mapping[str, Any]) -> None:
    for check in VALIDATORS[kind]:
        check(params)


def evaluate(kind: str, params: Mapping[str, Any], facts: Facts) -> Hit | None:
    return EVALUATORS[RuleKind(kind)](params, facts)


SHIPPED_RULES: list[dict[str, Any]] = [
    {"code": "missed_payment", "name": "An instalment was missed", "kind": RuleKind.DPD_REACHED,
     "params": {"days": 1}, "severity": "low"},
    {"code": "dpd_over_30", "name": "More than 30 days overdue (into M2)", "kind": RuleKind.DPD_REACHED,
     "params": {"days": 31}, "severity": "medium"},
    {"code": "dpd_over_90", "name": "More than 90 days overdue (into M4+)", "kind": RuleKind.DPD_REACHED,
     "params": {"days": 91}, "severity": "high"},
    {"code": "non_performing", "name": "Classified substandard or worse", "kind": RuleKind.CLASS_WORSENED,
     "params": {"at_least": "substandard"}, "severity": "high"},
    {"code": "partial_payment", "name": "A repayment left the loan overdue", "kind": RuleKind.PARTIAL_PAYMENT,
     "params": {}, "severity": "low"},
    {"code": "score_drop", "name": "Score fell by 50 points or two grades", "kind": RuleKind.SCORE_DROP,
     "params": {"points": 50, "grade_notches": 2}, "severity": "medium"},
    {"code": "promise_broken", "name": "A promise to pay was broken", "kind": RuleKind.PROMISE_BROKEN,
     "params": {"grace_days": 0}, "severity": "medium"},
]
