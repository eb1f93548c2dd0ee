"""Every shipped early-warning rule, on facts that fire it and on facts just short of it."""

from datetime import date, timedelta
from decimal import Decimal

import pytest

from services.monitoring.classification.rules import Ifrs9Stage, LoanClass, RiskState
from services.monitoring.errors import DomainError
from services.monitoring.rules.engine import SHIPPED_RULES, Facts, Feed, evaluate, evaluate_all, validate_params
from services.monitoring.rules.models import RuleKind

DAY = date(2026, 3, 1)
RULES = {rule["code"]: rule for rule in SHIPPED_RULES}


def state(dpd, loan_class=LoanClass.NORMAL):
    return RiskState(dpd, "M?", loan_class, Ifrs9Stage.STAGE_1)


def facts(**kwargs):
    return Facts("loan-1", "cust-1", DAY, **kwargs)


def txn(booked_on, amount, direction, kind, account="acc-1", counterparty=None, **extra):
    # As stored: accounts by their keyed hashes (here the names stand for them), the counterparty masked.
    return {"account_masked": account, "account_hash": account, "booked_on": booked_on, "amount": Decimal(amount),
            "direction": direction, "kind": kind, "loan_id": None, "counterparty_hash": counterparty,
            "counterparty_masked": counterparty, "merchant": None, "payer_account_hash": None,
            "payer_account_masked": None, "housing_estate": None, **extra}


def fed(*transactions, payers=None, disbursed_on=date(2026, 2, 20), principal="10000.00"):
    return facts(feed=Feed(tuple(transactions), payers or {}, disbursed_on, Decimal(principal)))


def outside(**records):
    return facts(outside=records)


def overdue(days, amount):
    return {"id": f"b{days}", "lender": "Other Bank", "amount_overdue": Decimal(amount), "days_overdue": days,
            "reported_on": date(2026, 2, 27)}


def case(status, case_type="lawsuit"):
    return {"id": f"l-{status}", "case_type": case_type, "amount": Decimal("50000"), "filed_on": date(2026, 2, 20),
            "status": status}


def statement(period_end, liabilities, current_ratio="1.50", debt_to_equity="1.20"):
    return {"period_end": period_end, "total_liabilities": Decimal(liabilities),
            "current_ratio": Decimal(current_ratio), "debt_to_equity": Decimal(debt_to_equity),
            "revenue": Decimal("5000000")}


def inflows(*amounts):
    """One transfer in per 30-day window, the last on DAY, oldest first."""
    return [txn(DAY - timedelta(days=30 * back), amount, "credit", "transfer")
            for back, amount in zip(range(len(amounts) - 1, -1, -1), amounts)]


SALARIES = [txn(date(2025, 11, 10), "9000", "credit", "salary"), txn(date(2025, 12, 10), "9000", "credit", "salary")]
REPAID_BY = {"payer-9": {"cust-1": "Sunshine Garden", "cust-2": "Moon Court", "cust-3": None}}
CASH_OUT = [txn(date(2026, 2, 26), "5000", "debit", "card_purchase", merchant="M-1"),
            txn(date(2026, 2, 27), "3000", "debit", "card_purchase", merchant="M-1")]

CASES = {
    "missed_payment": (facts(before=state(0), after=state(1)), facts(before=state(1), after=state(2))),
    "dpd_over_30": (facts(before=state(30), after=state(31)), facts(before=state(29), after=state(30))),
    "dpd_over_90": (facts(before=state(60), after=state(95)), facts(before=state(91), after=state(92))),
    "non_performing": (
        facts(before=state(90, LoanClass.SPECIAL_MENTION), after=state(91, LoanClass.SUBSTANDARD)),
        facts(before=state(91, LoanClass.SUBSTANDARD), after=state(271, LoanClass.DOUBTFUL))),
    "partial_payment": (  # the second short payment in a row fires; the first alone does not
        facts(payment={"posting_id": "p2", "amount": Decimal("50"), "overdue_after": Decimal("10.00"),
                       "partials_in_a_row": 2}),
        facts(payment={"posting_id": "p1", "amount": Decimal("50"), "overdue_after": Decimal("60.00"),
                       "partials_in_a_row": 1})),
    "score_drop": (
        facts(score={"previous_points": 650, "points": 600, "previous_grade": "B", "grade": "B"}),
        facts(score={"previous_points": 650, "points": 601, "previous_grade": "B", "grade": "C"})),
    "promise_broken": (
        facts(promise={"promise_id": "x", "amount": Decimal("100"), "promised_date": date(2026, 2, 28)}),
        facts(promise={"promise_id": "y", "amount": Decimal("100"), "promised_date": DAY})),
    "salary_stopped": (  # the last of three salaries came 81 days ago; then one 16 days ago
        fed(txn(date(2025, 10, 10), "9000", "credit", "salary"), *SALARIES),
        fed(*SALARIES, txn(date(2026, 2, 13), "9000", "credit", "salary"))),
    "shared_payer": (fed(payers=REPAID_BY), fed(payers={"payer-9": {"cust-1": None, "cust-2": None}})),
    "card_cash_out": (  # round sums at one merchant repaid at once; the same sums not repaid, or not round
        fed(*CASH_OUT, txn(date(2026, 2, 28), "8000", "credit", "repayment")),
        fed(txn(date(2026, 2, 26), "4999.50", "debit", "card_purchase", merchant="M-1"),
            txn(date(2026, 2, 27), "3000", "debit", "card_purchase", merchant="M-1"),
            txn(date(2026, 2, 28), "8000", "credit", "repayment"))),
    "funds_moved_on": (
        fed(txn(date(2026, 2, 22), "6000", "debit", "transfer", counterparty="stranger-1")),
        fed(txn(date(2026, 2, 22), "6000", "debit", "transfer", counterparty="acc-1"),
            txn(date(2026, 3, 1), "6000", "debit", "transfer", counterparty="stranger-1"))),
    "complaint_silence": (
        facts(contact={"complaints_12m": 1, "days_since_last_contact": 60}),
        facts(contact={"complaints_12m": 1, "days_since_last_contact": 59})),
    "bureau_overdue": (outside(bureau=[overdue(30, "1000.00")]), outside(bureau=[overdue(29, "5000.00")])),
    "legal_case": (outside(legal=[case("pending")]), outside(legal=[case("dismissed")])),
    "financials_weakening": (  # liabilities up 30%, then up 29% with the ratios sound
        outside(financials=[statement(date(2025, 6, 30), "1000000"), statement(date(2025, 12, 31), "1300000")]),
        outside(financials=[statement(date(2025, 6, 30), "1000000"), statement(date(2025, 12, 31), "1290000")])),
    "activity_drop": (  # six 30-day windows of 8,000 in, then under half that; then exactly half
        fed(*inflows("8000", "8000", "8000", "8000", "8000", "8000", "3999.99")),
        fed(*inflows("8000", "8000", "8000", "8000", "8000", "8000", "4000"))),
    "satisfaction_falling": (
        facts(contact={"complaints_12m": 0, "days_since_last_contact": 3, "csat_trend": -1.0, "nps_latest": 7}),
        facts(contact={"complaints_12m": 0, "days_since_last_contact": 3, "csat_trend": -0.9, "nps_latest": 4})),
    "ltv_over_80": (  # a revaluation from 0.80 to 0.8001; one that stays at 0.80
        facts(collateral={"collateral_id": "c-1", "valuation_date": DAY, "ltv_before": Decimal("0.8000"),
                          "ltv_after": Decimal("0.8001")}),
        facts(collateral={"collateral_id": "c-1", "valuation_date": DAY, "ltv_before": Decimal("0.7000"),
                          "ltv_after": Decimal("0.8000")})),
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


def test_a_payment_that_clears_the_arrears_is_never_partial():
    rule = RULES["partial_payment"]
    cleared = facts(payment={"posting_id": "p3", "amount": Decimal("60"), "overdue_after": Decimal("0.00"),
                             "partials_in_a_row": 0})
    assert evaluate(rule["kind"], {"in_a_row": 1}, cleared) is None


def test_rules_refuse_nonsense_thresholds():
    with pytest.raises(DomainError) as exc:
        validate_params(RuleKind.DPD_REACHED, {"days": 0})
    assert exc.value.field == "params.days"
    with pytest.raises(DomainError):
        validate_params(RuleKind.CLASS_WORSENED, {"at_least": "catastrophic"})
    with pytest.raises(DomainError):
        validate_params(RuleKind.SCORE_DROP, {"points": "fifty", "grade_notches": 2})


def test_borrowers_of_one_payer_in_one_estate_raise_the_severity():
    rule = RULES["shared_payer"]
    several = evaluate(rule["kind"], rule["params"], CASES["shared_payer"][0])
    assert several.severity is None and several.evidence["borrowers"] == 3
    same_estate = {"payer-9": {"cust-1": "Sunshine Garden", "cust-2": "Sunshine Garden", "cust-3": None}}
    worse = evaluate(rule["kind"], rule["params"], fed(payers=same_estate))
    assert worse.severity == "high" and worse.evidence["shared_estates"] == ["Sunshine Garden"]
    assert worse.trigger != several.trigger  # the escalation is an alert of its own


def test_card_cash_out_needs_the_repayment_to_cover_the_spending():
    rule = RULES["card_cash_out"]
    partly = fed(*CASH_OUT, txn(date(2026, 2, 28), "1000", "credit", "repayment"))
    assert evaluate(rule["kind"], rule["params"], partly) is None
    late = fed(*CASH_OUT, txn(date(2026, 3, 5), "8000", "credit", "repayment"))
    assert evaluate(rule["kind"], rule["params"], late) is None


def test_feed_rules_refuse_nonsense_thresholds():
    for kind, params, field in [
        (RuleKind.CARD_CASH_OUT, {"round_to": "0", "min_purchases": 2, "window_days": 3, "repaid_share": "0.9"},
         "params.round_to"),
        (RuleKind.FUNDS_MOVED_ON, {"within_days": 7, "share": "1.5"}, "params.share"),
        (RuleKind.SHARED_PAYER, {"borrowers": 3, "estate_severity": "dire"}, "params.estate_severity"),
        (RuleKind.SALARY_STOPPED, {"gap_days": 0, "min_credits": 3}, "params.gap_days"),
    ]:
        with pytest.raises(DomainError) as exc:
            validate_params(kind, params)
        assert exc.value.field == field


def test_silence_needs_a_complaint_and_never_contacted_counts_as_silent():
    rule = RULES["complaint_silence"]
    assert evaluate(rule["kind"], rule["params"], facts(contact={"complaints_12m": 0,
                                                                 "days_since_last_contact": 400})) is None
    assert evaluate(rule["kind"], rule["params"], facts(contact={"complaints_12m": 2,
                                                                 "days_since_last_contact": None})) is not None


def test_activity_is_judged_against_the_borrowers_own_history_only_when_the_feed_reaches_back():
    rule = RULES["activity_drop"]
    short = fed(*inflows("8000", "8000", "8000", "8000", "8000", "100")[1:])  # five windows: too little history
    assert evaluate(rule["kind"], rule["params"], short) is None
    repaid = fed(*inflows("8000", "8000", "8000", "8000", "8000", "8000", "3000"),
                 txn(DAY, "9000", "credit", "repayment"))  # a loan repayment is no inflow of the customer's own
    hit = evaluate(rule["kind"], rule["params"], repaid)
    assert hit.evidence["inflows_last_window"] == "3000" and hit.evidence["median_of_history"] == "8000"


def test_a_ratio_already_weak_is_one_alert_and_enforcement_is_high():
    rule = RULES["financials_weakening"]
    weak = [statement(date(2025, 6, 30), "1000000", current_ratio="0.80"),
            statement(date(2025, 12, 31), "1000000", current_ratio="0.70")]
    found = [h.trigger for h in evaluate_all(rule["kind"], rule["params"], outside(financials=weak))]
    assert found == ["financials:2025-06-30"]
    legal = RULES["legal_case"]
    assert evaluate(legal["kind"], legal["params"], outside(legal=[case("filed", "enforcement")])).severity == "high"


def test_outside_rules_refuse_nonsense_thresholds():
    for kind, params, field in [
        (RuleKind.BUREAU_OVERDUE, {"min_days_overdue": 30, "min_amount": "-1"}, "params.min_amount"),
        (RuleKind.ACTIVITY_DROP, {"window_days": 30, "history_windows": 6, "share": "2"}, "params.share"),
        (RuleKind.SATISFACTION_FALLING, {"csat_drop": "1.0", "nps_at_most": 11}, "params.nps_at_most"),
        (RuleKind.FINANCIALS_WEAKENING, {"liabilities_rise": "0", "current_ratio_below": "1",
                                         "debt_to_equity_above": "2"}, "params.liabilities_rise"),
    ]:
        with pytest.raises(DomainError) as exc:
            validate_params(kind, params)
        assert exc.value.field == field
