"""Early-warning rules as data: each kind is an evaluator; a rule row gives its thresholds and severity.

Evaluators are pure: they read the facts of one event on one loan and return the evidence of a hit, or None.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from services.monitoring.classification.rules import LoanClass, RiskState
from services.monitoring.errors import DomainError
from services.monitoring.rules.models import RuleKind


@dataclass(frozen=True)
class Feed:
    """One borrower's account transactions (rows as mappings, oldest first) and what the feed-wide rules need."""

    transactions: tuple[Mapping[str, Any], ...]
    # Payer that repaid this borrower (the keyed hash of its account, `payer_account_hash` of the rows) -> every
    # borrower it repaid -> their housing estate (or None).
    payers: Mapping[str, Mapping[str, str | None]]
    disbursed_on: date
    principal: Decimal
    # How far the feed is known to be complete: the latest day any of it covers, or the day COB closes. A gap
    # running to the end of the known feed is judged up to here, never up to a business date the feed has not
    # reached yet (a year of history loaded batch by batch must not look like a year without salary).
    known_until: date | None = None


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
    feed: Feed | None = None
    contact: Mapping[str, Any] | None = None  # complaints_12m, days_since_last_contact, csat_trend, nps_latest
    # The borrower's records in the outside feeds: "bureau", "legal", "financials" -> rows as mappings.
    outside: Mapping[str, Sequence[Mapping[str, Any]]] | None = None
    collateral: Mapping[str, Any] | None = None  # collateral_id, valuation_date, ltv_before, ltv_after


@dataclass(frozen=True)
class Hit:
    trigger: str  # with (loan, rule) unique: the same event never raises two alerts
    evidence: dict[str, Any] = field(default_factory=dict)
    severity: str | None = None  # when the evidence makes it worse than the rule's own severity


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


def _partial_payment(params: Mapping[str, Any], facts: Facts) -> Hit | None:
    payment = facts.payment
    if payment is None or Decimal(str(payment["overdue_after"])) <= 0:
        return None
    in_a_row = int(payment.get("partials_in_a_row", 1))
    if in_a_row < params.get("in_a_row", 1):
        return None
    return Hit(f"posting:{payment['posting_id']}", {"amount": str(payment["amount"]),
                                                    "still_overdue": str(payment["overdue_after"]),
                                                    "partials_in_a_row": in_a_row})


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


def _salary_stopped(params: Mapping[str, Any], facts: Facts) -> list[Hit]:
    """Every gap of more than `gap_days` between salary credits (once `min_credits` were paid) in the known feed,
    and the one running to the end of it: judged on the credits' own dates, so the order the rows arrived in
    does not matter. A gap that later rows fill is no longer reported (and its alert is disproved)."""
    if facts.feed is None:
        return []
    paid = sorted({t["booked_on"] for t in facts.feed.transactions
                   if t["kind"] == "salary" and t["direction"] == "credit"})
    known_until = min(facts.feed.known_until or facts.day, facts.day)
    hits = []
    # A borrower never paid a salary through this bank has nothing that could stop.
    for count, (last, resumed) in enumerate(zip(paid, [*paid[1:], None]), start=1):
        if count < params["min_credits"] or ((resumed or known_until) - last).days <= params["gap_days"]:
            continue
        hits.append(Hit(f"salary:{last.isoformat()}", {
            "last_salary_on": last.isoformat(), "resumed_on": resumed.isoformat() if resumed else None,
            "days_without": ((resumed or facts.day) - last).days, "salary_credits": count}))
    return hits


def _shared_payer(params: Mapping[str, Any], facts: Facts) -> Hit | None:
    if facts.feed is None or not facts.feed.payers:
        return None
    payer, repaid = max(facts.feed.payers.items(), key=lambda item: len(item[1]))
    if len(repaid) < params["borrowers"]:
        return None
    estates = Counter(estate for estate in repaid.values() if estate)
    shared = [estate for estate, count in estates.items() if count >= 2]
    # Payers are keyed by the keyed hash of their account; the evidence names the account masked, as this
    # borrower's rows show it (the alerts list shows it in clear to the roles that may see it).
    masked = next((t["payer_account_masked"] for t in facts.feed.transactions if t["payer_account_hash"] == payer),
                  None)
    # Escalation is a new event: the trigger differs, so a worse finding raises its own alert.
    return Hit(f"payer:{payer}:{'estate' if shared else 'borrowers'}",
               {"payer_account": masked, "payer_account_hash": payer, "borrowers": len(repaid),
                "shared_estates": sorted(shared)},
               severity=params["estate_severity"] if shared else None)


def cash_out_trigger(account_hash: str, merchant: str, repaid_on: str) -> str:
    """One cash-out's trigger: the account and the merchant digested together, so a long merchant name (up to 128
    characters) still fits the 100 of a trigger key."""
    return f"cashout:{hashlib.sha256(f'{account_hash}:{merchant}'.encode()).hexdigest()[:32]}:{repaid_on}"


def _card_cash_out(params: Mapping[str, Any], facts: Facts) -> list[Hit]:
    """Every repayment that covers round sums spent at one merchant just before: each is an event of its own, so a
    cash-out that recurs after an earlier one was dealt with raises a new alert."""
    if facts.feed is None:
        return []
    round_to, window = Decimal(params["round_to"]), params["window_days"]
    rows = facts.feed.transactions
    # Round purchases at a merchant, found once: most feeds have none, and then no repayment needs a look.
    rounded = [t for t in rows if t["kind"] == "card_purchase" and t["direction"] == "debit" and t["merchant"]
               and t["amount"] % round_to == 0]
    hits = []
    for repaid in (t for t in rows if rounded and t["kind"] == "repayment" and t["direction"] == "credit"):
        by_merchant: dict[str, list[Mapping[str, Any]]] = {}
        for t in rounded:
            if t["account_hash"] == repaid["account_hash"] and 0 <= (repaid["booked_on"] - t["booked_on"]).days \
                    <= window:
                by_merchant.setdefault(t["merchant"], []).append(t)
        for merchant, spent in sorted(by_merchant.items()):
            total = sum((t["amount"] for t in spent), Decimal(0))
            if len(spent) >= params["min_purchases"] and repaid["amount"] >= total * Decimal(params["repaid_share"]):
                # The account by its keyed hash, named masked (the alerts list opens it for the roles that may).
                hits.append(Hit(cash_out_trigger(repaid["account_hash"], merchant, repaid["booked_on"].isoformat()),
                                {"account": repaid["account_masked"], "account_hash": repaid["account_hash"],
                                 "merchant": merchant, "purchases": len(spent),
                                 "spent": str(total), "repaid": str(repaid["amount"]),
                                 "repaid_on": repaid["booked_on"].isoformat(),
                                 "spent_on": sorted({t["booked_on"].isoformat() for t in spent})}))
    return hits


def _funds_moved_on(params: Mapping[str, Any], facts: Facts) -> Hit | None:
    feed = facts.feed
    if feed is None:
        return None
    # Accounts compared by their keyed hashes: the counterparty is sealed, and named masked.
    own = {t["account_hash"] for t in feed.transactions}
    moved = [t for t in feed.transactions
             if t["kind"] in ("transfer", "cash") and t["direction"] == "debit"
             and t["loan_id"] in (None, facts.loan_id) and t["counterparty_hash"] not in own
             and 0 <= (t["booked_on"] - feed.disbursed_on).days <= params["within_days"]]
    total = sum((t["amount"] for t in moved), Decimal(0))
    if not moved or total < feed.principal * Decimal(params["share"]):
        return None
    return Hit(f"funds:{facts.loan_id}", {"moved": str(total), "principal": str(feed.principal),
                                         "to": sorted({t["counterparty_masked"] or t["kind"] for t in moved}),
                                         "within_days": params["within_days"]})


def _complaint_silence(params: Mapping[str, Any], facts: Facts) -> Hit | None:
    contact = facts.contact
    if contact is None or contact["complaints_12m"] < params["min_complaints"]:
        return None
    silent = contact["days_since_last_contact"]
    # A complaint with no contact ever logged is silence too.
    if silent is not None and silent < params["silent_days"]:
        return None
    return Hit(f"silence:{facts.day.isoformat()}", {"complaints_12m": contact["complaints_12m"],
                                                   "days_since_last_contact": silent})


def _ltv_above(params: Mapping[str, Any], facts: Facts) -> Hit | None:
    """A revaluation took the loan-to-value from at most `max_ltv` to above it (a falling collateral value)."""
    valued = facts.collateral
    if valued is None or valued["ltv_after"] is None:
        return None
    limit, before, after = Decimal(params["max_ltv"]), valued["ltv_before"], valued["ltv_after"]
    if after <= limit or (before is not None and before > limit):
        return None
    return Hit(f"ltv:{valued['collateral_id']}:{valued['valuation_date'].isoformat()}", {
        "collateral_id": valued["collateral_id"], "valuation_date": valued["valuation_date"].isoformat(),
        "ltv_before": None if before is None else str(before), "ltv_after": str(after), "max_ltv": str(limit)})


def _require_int(name: str, minimum: int) -> Callable[[Mapping[str, Any]], None]:
    def check(params: Mapping[str, Any]) -> None:
        value = params.get(name)
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise DomainError(f"params.{name}", f"must be an integer of at least {minimum}")
    return check


def _require_decimal(name: str, *, at_most: Decimal | None = None) -> Callable[[Mapping[str, Any]], None]:
    """A positive decimal (as a string, e.g. "0.5", so JSON keeps it exact), at most `at_most` when given."""
    def check(params: Mapping[str, Any]) -> None:
        raw = params.get(name)
        try:
            value = Decimal(str(raw))
        except ArithmeticError:
            value = Decimal(0)
        if isinstance(raw, bool) or not value.is_finite() or value <= 0 or (at_most is not None and value > at_most):
            limit = f" and at most {at_most}" if at_most is not None else ""
            raise DomainError(f"params.{name}", f"must be a decimal above 0{limit}, e.g. \"0.5\"")
    return check


def _require_severity(name: str) -> Callable[[Mapping[str, Any]], None]:
    def check(params: Mapping[str, Any]) -> None:
        if params.get(name) not in ("low", "medium", "high"):
            raise DomainError(f"params.{name}", "must be a severity: low, medium or high")
    return check


def _require_class(params: Mapping[str, Any]) -> None:
    if str(params.get("at_least", "")).upper() not in LoanClass.__members__:
        raise DomainError("params.at_least", "must be a class: normal, special_mention, substandard, doubtful, loss")


# An evaluator finds one event (a Hit or None) or, for the feed rules that read a whole history, every event in it.
EVALUATORS: dict[RuleKind, Callable[[Mapping[str, Any], Facts], Hit | list[Hit] | None]] = {
    RuleKind.DPD_REACHED: _dpd_reached,
    RuleKind.CLASS_WORSENED: _class_worsened,
    RuleKind.PARTIAL_PAYMENT: _partial_payment,
    RuleKind.SCORE_DROP: _score_drop,
    RuleKind.PROMISE_BROKEN: _promise_broken,
    RuleKind.SALARY_STOPPED: _salary_stopped,
    RuleKind.SHARED_PAYER: _shared_payer,
    RuleKind.CARD_CASH_OUT: _card_cash_out,
    RuleKind.FUNDS_MOVED_ON: _funds_moved_on,
    RuleKind.COMPLAINT_SILENCE: _complaint_silence,
    RuleKind.LTV_ABOVE: _ltv_above,
}

VALIDATORS: dict[RuleKind, list[Callable[[Mapping[str, Any]], None]]] = {
    RuleKind.DPD_REACHED: [_require_int("days", 1)],
    RuleKind.CLASS_WORSENED: [_require_class],
    RuleKind.PARTIAL_PAYMENT: [_require_int("in_a_row", 1)],
    RuleKind.SCORE_DROP: [_require_int("points", 1), _require_int("grade_notches", 1)],
    RuleKind.PROMISE_BROKEN: [_require_int("grace_days", 0)],
    RuleKind.SALARY_STOPPED: [_require_int("gap_days", 1), _require_int("min_credits", 1)],
    RuleKind.SHARED_PAYER: [_require_int("borrowers", 2), _require_severity("estate_severity")],
    RuleKind.CARD_CASH_OUT: [_require_decimal("round_to"), _require_int("min_purchases", 1),
                             _require_int("window_days", 0), _require_decimal("repaid_share", at_most=Decimal(1))],
    RuleKind.FUNDS_MOVED_ON: [_require_int("within_days", 0), _require_decimal("share", at_most=Decimal(1))],
    RuleKind.COMPLAINT_SILENCE: [_require_int("min_complaints", 1), _require_int("silent_days", 1)],
    RuleKind.LTV_ABOVE: [_require_decimal("max_ltv", at_most=Decimal(5))],
}


Evaluator = Callable[[Mapping[str, Any], Facts], Hit | list[Hit] | None]


def register(kind: RuleKind, evaluator: Evaluator, validators: Iterable[Callable[[Mapping[str, Any]], None]],
             shipped: Iterable[dict[str, Any]] = ()) -> None:
    """Add a rule kind from its own module (see `rules/__init__.py`): its evaluator, its parameter checks and the
    rules of that kind the bank ships with."""
    if kind in EVALUATORS:
        raise ValueError(f"rule kind {kind.value!r} is registered twice")
    EVALUATORS[kind] = evaluator
    VALIDATORS[kind] = list(validators)
    SHIPPED_RULES.extend(shipped)


def validate_params(kind: RuleKind, params: Mapping[str, Any]) -> None:
    for check in VALIDATORS[kind]:
        check(params)


def evaluate_all(kind: str, params: Mapping[str, Any], facts: Facts) -> list[Hit]:
    # A stored kind is the enum's value, a key of EVALUATORS as it is (a StrEnum): the enum only names a bad one.
    evaluator = EVALUATORS.get(kind) or EVALUATORS[RuleKind(kind)]
    found = evaluator(params, facts)
    return found if isinstance(found, list) else [] if found is None else [found]


def evaluate(kind: str, params: Mapping[str, Any], facts: Facts) -> Hit | None:
    """The latest event the rule finds, or None."""
    found = evaluate_all(kind, params, facts)
    return found[-1] if found else None


SHIPPED_RULES: list[dict[str, Any]] = [
    {"code": "missed_payment", "name": "An instalment was missed", "kind": RuleKind.DPD_REACHED,
     "params": {"days": 1}, "severity": "low"},
    {"code": "dpd_over_30", "name": "More than 30 days overdue (into M2)", "kind": RuleKind.DPD_REACHED,
     "params": {"days": 31}, "severity": "medium"},
    {"code": "dpd_over_90", "name": "More than 90 days overdue (into M4+)", "kind": RuleKind.DPD_REACHED,
     "params": {"days": 91}, "severity": "high"},
    {"code": "non_performing", "name": "Classified substandard or worse", "kind": RuleKind.CLASS_WORSENED,
     "params": {"at_least": "substandard"}, "severity": "high"},
    {"code": "partial_payment", "name": "Two repayments in a row left the loan overdue",
     "kind": RuleKind.PARTIAL_PAYMENT, "params": {"in_a_row": 2}, "severity": "low"},
    {"code": "score_drop", "name": "Score fell by 50 points or two grades", "kind": RuleKind.SCORE_DROP,
     "params": {"points": 50, "grade_notches": 2}, "severity": "medium"},
    {"code": "promise_broken", "name": "A promise to pay was broken", "kind": RuleKind.PROMISE_BROKEN,
     "params": {"grace_days": 0}, "severity": "medium"},
    {"code": "salary_stopped", "name": "Salary credits stopped for over 45 days", "kind": RuleKind.SALARY_STOPPED,
     "params": {"gap_days": 45, "min_credits": 3}, "severity": "medium"},
    {"code": "shared_payer", "name": "One account repays three or more borrowers' loans",
     "kind": RuleKind.SHARED_PAYER, "params": {"borrowers": 3, "estate_severity": "high"}, "severity": "medium"},
    {"code": "card_cash_out", "name": "Round sums at one merchant repaid at once", "kind": RuleKind.CARD_CASH_OUT,
     "params": {"round_to": "1000", "min_purchases": 2, "window_days": 3, "repaid_share": "0.9"},
     "severity": "high"},
    {"code": "funds_moved_on", "name": "Half the loan moved to other accounts within a week of disbursement",
     "kind": RuleKind.FUNDS_MOVED_ON, "params": {"within_days": 7, "share": "0.5"}, "severity": "high"},
    {"code": "complaint_silence", "name": "A complaint, then no contact for 60 days",
     "kind": RuleKind.COMPLAINT_SILENCE, "params": {"min_complaints": 1, "silent_days": 60}, "severity": "medium"},
    {"code": "ltv_over_80", "name": "A revaluation took the loan-to-value above 80%", "kind": RuleKind.LTV_ABOVE,
     "params": {"max_ltv": "0.8"}, "severity": "medium"},
]
