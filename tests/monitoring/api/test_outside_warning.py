"""Early warning from outside (credit-bureau, legal and financial-statement feeds) and from behaviour (account
inflows against the borrower's own history, falling satisfaction), through the gateway."""

import json
import os
import subprocess
import sys
import uuid
from datetime import date, timedelta
from decimal import Decimal

from tests.monitoring.api.helpers import (
    admin,
    alerts_of,
    assert_problem,
    cob,
    register,
    role,
    set_today,
)


def analyst(suite):
    return role(suite, "risk_analyst")


def upload(suite, feed, text, headers=None, key=None):
    return suite.client.post(f"/api/monitoring/feeds/{feed}/imports", files={"file": (f"{feed}.csv", text, "text/csv")},
                             headers={**(headers or analyst(suite)), "Idempotency-Key": key or uuid.uuid4().hex})


def of_rule(suite, loan, rule):
    return [a for a in alerts_of(suite, loan["id"]) if a["rule"] == rule]


BUREAU = "customer_id,lender,amount_overdue,days_overdue,reported_date\n"


def test_a_bureau_file_is_taken_row_by_row_once_and_warns_with_its_evidence(suite, borrowers):
    set_today(suite, date(2031, 3, 1))
    loan = register(suite, borrowers, disbursement_date="2031-01-10")
    text = (BUREAU + f"{loan['customer_id']},Other Bank,4500.00,45,2031-02-27\n"
            f"{loan['customer_id']},Card Co,abc,45,2031-02-27\n"
            f"nobody{uuid.uuid4().hex[:6]},Other Bank,100.00,45,2031-02-27\n"
            f"{loan['customer_id']},Card Co,900.00,45,2031-03-05\n")
    key = uuid.uuid4().hex
    first = upload(suite, "bureau", text, key=key)
    assert first.status_code == 201, first.text
    report = first.json()
    assert (report["rows"], report["accepted"], report["already_on_file"], report["rejected"],
            report["alerts_raised"]) == (4, 1, 0, 3, 1)
    errors = suite.client.get(f"/api/monitoring/feeds/imports/{report['id']}/errors", headers=role(suite, "auditor"))
    assert errors.status_code == 200
    assert [(e["row"], e["field"]) for e in errors.json()["items"]] == [
        (3, "amount_overdue"), (4, "customer_id"), (5, "reported_date")]
    [alert] = of_rule(suite, loan, "bureau_overdue")
    assert alert["severity"] == "medium" and alert["evidence"] == {
        "lender": "Other Bank", "amount_overdue": "4500.00", "days_overdue": 45, "reported_on": "2031-02-27",
        "rule_version": 1}
    # A retry with the same key answers the first report; the same rows again are on file already.
    assert upload(suite, "bureau", text, key=key).json() == report
    again = upload(suite, "bureau", text).json()
    assert (again["accepted"], again["already_on_file"], again["rejected"], again["alerts_raised"]) == (0, 1, 3, 0)
    assert len(of_rule(suite, loan, "bureau_overdue")) == 1
    listed = suite.client.get("/api/monitoring/feeds/imports", headers=analyst(suite), params={"limit": 1}).json()
    assert listed["items"][0]["id"] == again["id"] and listed["next_cursor"]
    # The collector working the loan sees the alert; loan officers and collectors cannot upload.
    seen = suite.client.get("/api/monitoring/alerts", params={"loan_id": loan["id"]}, headers=role(suite, "collector"))
    assert "bureau_overdue" in [a["rule"] for a in seen.json()["items"]]
    for who in ("collector", "auditor"):
        assert upload(suite, "bureau", text, headers=role(suite, who)).status_code == 403


def test_a_feed_file_with_the_wrong_columns_is_refused_whole(suite):
    missing = upload(suite, "bureau", "customer_id,lender\nc1,Other Bank\n")
    assert "days_overdue" in assert_problem(missing, 422, "body.file")["errors"][0]["message"]
    assert_problem(upload(suite, "legal", BUREAU), 422, "body.file")
    # A stray carriage return ends a line, as in any CSV reader: both halves are reported, nothing fails.
    broken = upload(suite, "bureau", BUREAU + "c1,Other\rBank,1.00,31,2031-01-01\n")
    assert broken.status_code == 201 and (broken.json()["rows"], broken.json()["rejected"]) == (2, 2)
    assert_problem(suite.client.get("/api/monitoring/feeds/imports/nope", headers=analyst(suite)), 404)


def test_the_bureau_threshold_is_edited_through_the_rules_api(suite, borrowers):
    set_today(suite, date(2031, 4, 1))
    loan = register(suite, borrowers, disbursement_date="2031-01-10")
    rule = {"name": "Overdue 30 days or more at another lender (credit bureau)", "kind": "bureau_overdue",
            "params": {"min_days_overdue": 60, "min_amount": "1000"}, "severity": "high"}
    bad = suite.client.put("/api/monitoring/rules/bureau_overdue", headers=analyst(suite),
                           json={**rule, "params": {"min_days_overdue": 0, "min_amount": "1000"}})
    assert_problem(bad, 422, "body.params.min_days_overdue")
    changed = suite.client.put("/api/monitoring/rules/bureau_overdue", headers=analyst(suite), json=rule)
    assert changed.status_code == 200 and changed.json()["version"] == 2
    try:
        upload(suite, "bureau", BUREAU + f"{loan['customer_id']},Other Bank,4500.00,45,2031-03-30\n")
        assert of_rule(suite, loan, "bureau_overdue") == []
        upload(suite, "bureau", BUREAU + f"{loan['customer_id']},Other Bank,4500.00,75,2031-03-31\n")
        [alert] = of_rule(suite, loan, "bureau_overdue")
        assert alert["severity"] == "high" and alert["evidence"]["days_overdue"] == 75
    finally:
        suite.client.put("/api/monitoring/rules/bureau_overdue", headers=analyst(suite), json={
            **rule, "params": {"min_days_overdue": 30, "min_amount": "1000"}, "severity": "medium"})


def test_lawsuits_and_enforcement_warn_and_a_dismissed_case_does_not(suite, borrowers):
    set_today(suite, date(2031, 5, 1))
    sued, enforced, dismissed = (register(suite, borrowers, disbursement_date="2031-01-10") for _ in range(3))
    text = ("customer_id,case_type,amount,filed_date,status\n"
            f"{sued['customer_id']},lawsuit,80000.00,2031-04-20,pending\n"
            f"{enforced['customer_id']},enforcement,12000.00,2031-04-21,filed\n"
            f"{dismissed['customer_id']},lawsuit,5000.00,2031-04-22,dismissed\n"
            f"{sued['customer_id']},appeal,1.00,2031-04-22,filed\n")
    report = upload(suite, "legal", text).json()
    assert (report["accepted"], report["rejected"], report["alerts_raised"]) == (3, 1, 2)
    [lawsuit] = of_rule(suite, sued, "legal_case")
    assert lawsuit["severity"] == "medium" and lawsuit["evidence"]["case_type"] == "lawsuit"
    assert [a["severity"] for a in of_rule(suite, enforced, "legal_case")] == ["high"]
    assert of_rule(suite, dismissed, "legal_case") == []


def test_a_business_borrower_whose_liabilities_rise_and_ratios_weaken_is_warned(suite, borrowers):
    set_today(suite, date(2031, 8, 1))
    firm = register(suite, borrowers, disbursement_date="2031-01-10")
    header = "customer_id,period_end,total_liabilities,current_ratio,debt_to_equity,revenue\n"
    steady = upload(suite, "financials", header + f"{firm['customer_id']},2030-12-31,1000000.00,1.50,1.20,"
                                                  "5000000.00\n").json()
    assert (steady["accepted"], steady["alerts_raised"]) == (1, 0)
    worse = upload(suite, "financials", header + f"{firm['customer_id']},2031-06-30,1400000.00,0.90,1.80,"
                                                 "4000000.00\n").json()
    assert worse["alerts_raised"] == 1
    [alert] = of_rule(suite, firm, "financials_weakening")
    assert alert["evidence"] == {"period_end": "2031-06-30", "previous_period_end": "2030-12-31",
                                 "total_liabilities": "1400000.00",
                                 "weakened": {"liabilities_rise": "0.4000", "current_ratio": "0.90"},
                                 "rule_version": 1}


def _inflows(suite, loan, amounts, end):
    """One credit a window of 30 days, the last window's on `end`, oldest first."""
    rows = [{"account": f"ACC-{loan['id'][:8]}", "customer_id": loan["customer_id"],
             "booked_on": (end - timedelta(days=30 * back)).isoformat(), "amount": amount, "direction": "credit",
             "kind": "transfer"} for back, amount in zip(range(len(amounts) - 1, -1, -1), amounts)]
    response = suite.client.post("/api/monitoring/transactions:batch", json={"rows": rows}, headers={
        **admin(suite), "Idempotency-Key": uuid.uuid4().hex})
    assert response.status_code == 201, response.text
    return response.json()


def test_inflows_falling_against_the_borrowers_own_history_warn(suite, borrowers):
    end = date(2032, 9, 1)
    set_today(suite, end)
    fallen, steady, new = (register(suite, borrowers, disbursement_date="2032-01-10") for _ in range(3))
    _inflows(suite, fallen, ["8000.00", "8000.00", "9000.00", "7000.00", "8000.00", "8500.00", "3000.00"], end)
    _inflows(suite, steady, ["8000.00", "8000.00", "9000.00", "7000.00", "8000.00", "8500.00", "4500.00"], end)
    _inflows(suite, new, ["8000.00", "1000.00"], end)  # two months of history: nothing to fall from
    [alert] = of_rule(suite, fallen, "activity_drop")
    assert alert["evidence"] == {
        "inflows_last_window": "3000.00", "median_of_history": "8000.00", "window_days": 30,
        "history_windows": ["8000.00", "8000.00", "9000.00", "7000.00", "8000.00", "8500.00"],
        "judged_to": "2032-09-01", "rule_version": 1}
    assert of_rule(suite, steady, "activity_drop") == [] and of_rule(suite, new, "activity_drop") == []


def test_falling_satisfaction_warns_at_close_of_business_and_a_customer_service_down_is_skipped(suite, borrowers):
    from tests.monitoring.api.helpers import peer_down

    set_today(suite, date(2041, 1, 10))
    unhappy, happy = (register(suite, borrowers, disbursement_date="2041-01-10") for _ in range(2))
    direct, headers = suite.direct["customer"], admin(suite)
    for loan, scores in ((unhappy, (5, 2)), (happy, (4, 4))):
        for score in scores:
            sent = direct.post(f"/customers/{loan['customer_id']}/surveys", headers={
                **headers, "Idempotency-Key": uuid.uuid4().hex}, json={"channel": "sms", "officer": "officer.bj001"})
            assert sent.status_code == 201, sent.text
            answered = direct.post(f"/surveys/{sent.json()['id']}/answer", headers=headers, json={
                "service_efficiency": score, "service_quality": score, "product_range": score,
                "staff_attitude": score, "resolution_speed": score, "nps": 8})
            assert answered.status_code == 200, answered.text
    report = cob(suite, date(2041, 1, 11)).json()
    assert report["steps"]["contact_silence"]["status"] == "done", report["steps"]
    [alert] = of_rule(suite, unhappy, "satisfaction_falling")
    assert alert["evidence"] == {"csat_trend": -3.0, "nps_latest": 8, "rule_version": 1}
    assert of_rule(suite, happy, "satisfaction_falling") == []
    with peer_down(suite, "customer"):
        down = cob(suite, date(2041, 3, 1)).json()
    assert down["status"] == "completed" and down["steps"]["contact_silence"]["status"] == "skipped"


def _legal(customer_id, filed):
    return f"customer_id,case_type,amount,filed_date,status\n{customer_id},lawsuit,50000.00,{filed},pending\n"


def test_the_review_reports_precision_recall_and_lead_time_per_rule_on_a_planted_portfolio(suite, borrowers, tmp_path):
    """Four loans of a branch of their own: A and C are never repaid and default (more than 90 days past due on
    2033-05-12, their first instalment being due 2033-02-10); B and D repay in full. The bureau rule warns about A
    and B on 2033-01-20, the legal rule about C and D on 2033-02-01."""
    branch = "EWR01"
    set_today(suite, date(2033, 1, 10))
    a, b, c, d = (register(suite, borrowers, disbursement_date="2033-01-10", branch=branch) for _ in range(4))
    set_today(suite, date(2033, 1, 20))
    assert upload(suite, "bureau", BUREAU + "".join(f"{loan['customer_id']},Other Bank,4500.00,40,2033-01-19\n"
                                                    for loan in (a, b))).json()["alerts_raised"] == 2
    set_today(suite, date(2033, 2, 1))
    for loan in (c, d):
        assert upload(suite, "legal", _legal(loan["customer_id"], "2033-01-30")).json()["alerts_raised"] == 1
    for loan in (b, d):
        paid = suite.client.post(f"/api/monitoring/loans/{loan['id']}/repayments", json={"amount": str(sum(
                                 Decimal(r["total"]) for r in loan["schedule"]))},  # in full: more is refused
                                 headers={**admin(suite), "Idempotency-Key": uuid.uuid4().hex})
        assert paid.status_code == 201, paid.text
    cob(suite, date(2033, 5, 12))  # A and C: 91 days past due
    window = {"since": "2033-01-01", "until": "2033-12-31", "branch": branch}
    page = suite.client.get("/api/monitoring/rules/review", params=window, headers=role(suite, "auditor"))
    assert page.status_code == 200, page.text
    reviews = {r["code"]: r for r in page.json()["items"]}
    assert {"bureau_overdue", "legal_case", "activity_drop", "dpd_over_90"} <= set(reviews)

    def figures(review):
        return {name: review[name] for name in ("defaults_from", "alerted_loans", "alerted_then_defaulted",
                                                "default_precision", "defaulted_loans", "warned_defaults",
                                                "default_recall", "lead_time")}

    def lead(days, median=None, **ranges):
        distribution = {"0-30": 0, "31-90": 0, "91-180": 0, "181-365": 0, "366+": 0, **ranges}
        return {"loans": len(days), "median_days": median, "min_days": min(days, default=None),
                "max_days": max(days, default=None), "distribution": distribution}

    # Bureau: A (defaulted 112 days after 2033-01-20) and B (never); legal: C (100 days after 2033-02-01) and D.
    assert figures(reviews["bureau_overdue"]) == {
        "defaults_from": "history", "alerted_loans": 2, "alerted_then_defaulted": 1, "default_precision": 0.5,
        "defaulted_loans": 2, "warned_defaults": 1, "default_recall": 0.5,
        "lead_time": lead([112], 112.0, **{"91-180": 1})}
    assert figures(reviews["legal_case"])["lead_time"] == lead([100], 100.0, **{"91-180": 1})
    assert figures(reviews["legal_case"])["default_precision"] == 0.5
    # Over 90 days past due fires on the default itself: exact, and no warning ahead.
    assert figures(reviews["dpd_over_90"]) == {
        "defaults_from": "history", "alerted_loans": 2, "alerted_then_defaulted": 2, "default_precision": 1.0,
        "defaulted_loans": 2, "warned_defaults": 2, "default_recall": 1.0,
        "lead_time": lead([0, 0], 0.0, **{"0-30": 2})}
    assert figures(reviews["activity_drop"]) == {
        "defaults_from": "history", "alerted_loans": 0, "alerted_then_defaulted": 0, "default_precision": None,
        "defaulted_loans": 2, "warned_defaults": 0, "default_recall": 0.0, "lead_time": lead([])}
    one = suite.client.get("/api/monitoring/rules/bureau_overdue/review", params=window, headers=analyst(suite))
    assert figures(one.json()) == figures(reviews["bureau_overdue"])
    assert_problem(suite.client.get("/api/monitoring/rules/review", headers=analyst(suite),
                                    params={**window, "until": "2032-12-31"}), 422, "query.until")
    assert suite.client.get("/api/monitoring/rules/review", params=window,
                            headers=role(suite, "collector")).status_code == 403

    # The same review against a ground-truth file, from the command line: A defaulted on 2033-03-01, B on
    # 2033-07-01; C is named for its pattern only (no default); a loan not on the book is left out.
    truth = tmp_path / "truth.jsonl"
    truth.write_text("\n".join(json.dumps(row) for row in (
        {"loan_id": a["id"], "defaulted_on": "2033-03-01", "pattern": "bureau"},
        {"loan_id": b["id"], "defaulted_on": "2033-07-01"}, {"loan_id": c["id"], "pattern": "lawsuit"},
        {"loan_id": uuid.uuid4().hex, "defaulted_on": "2033-02-01"})) + "\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOANCRM_")}
    env.update(LOANCRM_VAR_DIR=str(tmp_path), LOANCRM_MONITORING_DATABASE_URL=suite.kernel.database_url("monitoring"))
    ran = subprocess.run([sys.executable, "-m", "loancrm", "rules", "review", "--since", "2033-01-01", "--until",
                          "2033-12-31", "--branch", branch, "--rule", "bureau_overdue", "--rule", "legal_case",
                          "--truth", str(truth)], env=env, capture_output=True, text=True, timeout=120)
    assert ran.returncode == 0, ran.stderr
    by_truth = {r["code"]: r for r in json.loads(ran.stdout)}
    assert set(by_truth) == {"bureau_overdue", "legal_case"}
    assert figures(by_truth["bureau_overdue"]) == {
        "defaults_from": "truth", "alerted_loans": 2, "alerted_then_defaulted": 2, "default_precision": 1.0,
        "defaulted_loans": 2, "warned_defaults": 2, "default_recall": 1.0,
        "lead_time": lead([40, 162], 101.0, **{"31-90": 1, "91-180": 1})}
    assert figures(by_truth["legal_case"])["default_precision"] == 0.0
    assert figures(by_truth["legal_case"])["default_recall"] == 0.0
    truth.write_text('{"loan_id": "x", "defaulted_on": "someday"}\n')
    bad = subprocess.run([sys.executable, "-m", "loancrm", "rules", "review", "--since", "2033-01-01", "--until",
                          "2033-12-31", "--truth", str(truth)], env=env, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "--truth: line 1" in bad.stderr
