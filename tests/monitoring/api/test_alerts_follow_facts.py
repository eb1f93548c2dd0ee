"""Alerts follow the facts: a correction that disproves an alert closes it (naming the posting), a reversal
reopens that same alert, texts state recomputed facts, and every rule judges value dates over the whole known
history, whatever order the feed arrives in."""

from __future__ import annotations

import random
import uuid
from datetime import date, timedelta
from decimal import Decimal

from tests.monitoring.api.helpers import alerts_of, officer, register, role, set_today

TODAY = date(2031, 6, 1)  # a loan disbursed 2031-01-15 is 106 days past due: instalments 1-4 unpaid
STATE_RULES = {"missed_payment", "dpd_over_30", "dpd_over_90", "non_performing"}


def pay(suite, loan_id, amount, value_date=None):
    body = {"amount": str(amount)} | ({"value_date": value_date} if value_date else {})
    response = suite.direct["monitoring"].post(f"/loans/{loan_id}/repayments", json=body,
                                               headers={**officer(suite), "Idempotency-Key": uuid.uuid4().hex})
    assert response.status_code == 201, response.text
    return response.json()


def reverse(suite, posting_id):
    response = suite.direct["monitoring"].post(f"/postings/{posting_id}/reversal", json={"reason": "cheque bounced"},
                                               headers=officer(suite))
    assert response.status_code == 200, response.text
    return response.json()


def by_rule(suite, loan_id, rules=STATE_RULES):
    found: dict[str, list[dict]] = {}
    for alert in alerts_of(suite, loan_id):
        if alert["rule"] in rules:
            found.setdefault(alert["rule"], []).append(alert)
    return found


def overdue_loan(suite, borrowers):
    set_today(suite, TODAY)
    loan = register(suite, borrowers, disbursement_date="2031-01-15")
    assert loan["dpd"] == 106
    assert set(by_rule(suite, loan["id"])) == STATE_RULES  # booked overdue: it warns at once
    return loan


def test_a_backdated_repayment_that_disproves_alerts_closes_them_and_its_reversal_reopens_the_same(suite, borrowers):
    loan = overdue_loan(suite, borrowers)
    raised = {rule: alerts[0]["id"] for rule, alerts in by_rule(suite, loan["id"]).items()}
    owed = sum(Decimal(i["total"]) for i in loan["schedule"][:4])
    posting = pay(suite, loan["id"], owed, "2031-02-15")  # everything due, paid on the first due date
    assert posting["loan"]["dpd"] == 0
    closed = by_rule(suite, loan["id"])
    for rule, alerts in closed.items():
        assert [(a["id"], a["status"], a["corrected_by"]) for a in alerts] == [
            (raised[rule], "resolved_by_correction", posting["id"])], rule
    trail = suite.direct["monitoring"].get(f"/alerts/{raised['dpd_over_30']}/events",
                                           headers=role(suite, "auditor")).json()["items"]
    assert trail[-1]["to_status"] == "resolved_by_correction" and posting["id"] in trail[-1]["note"]

    reverse(suite, posting["id"])
    reopened = by_rule(suite, loan["id"])
    for rule, alerts in reopened.items():  # the same alert, open again: no twin
        assert [(a["id"], a["status"], a["corrected_by"]) for a in alerts] == [(raised[rule], "open", None)], rule
    assert reopened["dpd_over_30"][0]["evidence"]["dpd"] == 106


def test_an_alert_that_still_stands_states_the_recomputed_facts(suite, borrowers):
    loan = overdue_loan(suite, borrowers)
    assert by_rule(suite, loan["id"])["dpd_over_30"][0]["evidence"]["bucket"] == "M4+"
    pay(suite, loan["id"], loan["schedule"][0]["total"], "2031-02-15")  # instalment 1 on its due date
    alerts = by_rule(suite, loan["id"])
    [over_30] = alerts["dpd_over_30"]
    assert over_30["status"] == "open"
    assert (over_30["evidence"]["dpd"], over_30["evidence"]["bucket"]) == (78, "M3")  # due 03-15, not 02-15
    assert [a["status"] for a in alerts["dpd_over_90"]] == ["resolved_by_correction"]


def test_partial_payment_judges_the_value_date_not_the_booking_date(suite, borrowers):
    loan = overdue_loan(suite, borrowers)
    for instalment in loan["schedule"][:3]:  # paid on their due dates, booked today
        pay(suite, loan["id"], instalment["total"], instalment["due_date"])
    assert "partial_payment" not in by_rule(suite, loan["id"], {"partial_payment"})
    pay(suite, loan["id"], "100.00")  # one real partial payment
    assert "partial_payment" not in by_rule(suite, loan["id"], {"partial_payment"})
    pay(suite, loan["id"], "100.00")
    [alert] = by_rule(suite, loan["id"], {"partial_payment"})["partial_payment"]
    assert alert["evidence"]["partials_in_a_row"] == 2 and alert["evidence"]["amount"] == "100.00"


# The feed --------------------------------------------------------------------------------------------------------

YEAR_END = date(2031, 12, 31)


def feed(suite, rows):
    response = suite.direct["monitoring"].post("/transactions:batch", json={"rows": rows}, headers={
        **officer(suite), "Idempotency-Key": uuid.uuid4().hex})
    assert response.status_code == 201, response.text
    return response.json()


def salary(loan, day, account=None):
    return {"account": account or f"acc-{loan['customer_id'][:8]}", "customer_id": loan["customer_id"],
            "booked_on": day.isoformat(), "amount": "9000.00", "direction": "credit", "kind": "salary"}


def monthly(start: date, months: int) -> list[date]:
    return [date(start.year + (start.month - 1 + m) // 12, (start.month - 1 + m) % 12 + 1, start.day)
            for m in range(months)]


def feed_loan(suite, borrowers):
    set_today(suite, YEAR_END)
    return register(suite, borrowers, disbursement_date="2031-01-02", first_due_date="2032-06-02")


def test_salary_sent_in_date_order_batches_raises_no_stop(suite, borrowers):
    loan = feed_loan(suite, borrowers)
    paid = monthly(date(2031, 1, 25), 12)
    feed(suite, [salary(loan, d) for d in paid[:6]])  # January to June: the feed reaches only June so far
    feed(suite, [salary(loan, d) for d in paid[6:]])
    assert by_rule(suite, loan["id"], {"salary_stopped"}) == {}


def test_a_salary_gap_that_later_rows_fill_closes_as_resolved_by_correction(suite, borrowers):
    loan = feed_loan(suite, borrowers)
    paid = monthly(date(2031, 1, 25), 12)
    feed(suite, [salary(loan, d) for d in paid[:3] + paid[6:]])  # April to June not sent yet
    [alert] = by_rule(suite, loan["id"], {"salary_stopped"})["salary_stopped"]
    assert (alert["status"], alert["evidence"]["last_salary_on"], alert["evidence"]["resumed_on"]) == (
        "open", "2031-03-25", "2031-07-25")
    feed(suite, [salary(loan, d) for d in paid[3:6]])
    [closed] = by_rule(suite, loan["id"], {"salary_stopped"})["salary_stopped"]
    assert closed["id"] == alert["id"] and closed["status"] == "resolved_by_correction"
    rows = suite.direct["monitoring"].get("/alerts", params={"loan_id": loan["id"], "status": "open"},
                                          headers=officer(suite)).json()["items"]
    assert "salary_stopped" not in {a["rule"] for a in rows}
    assert closed["corrected_by"]  # the April salary row


def cash_out(loan, day: date, merchant="Lucky Jewels"):
    account = f"card-{loan['customer_id'][:8]}"
    base = {"account": account, "customer_id": loan["customer_id"]}
    return [{**base, "booked_on": (day - timedelta(days=2)).isoformat(), "amount": "5000.00", "direction": "debit",
             "kind": "card_purchase", "merchant": merchant},
            {**base, "booked_on": (day - timedelta(days=1)).isoformat(), "amount": "5000.00", "direction": "debit",
             "kind": "card_purchase", "merchant": merchant},
            {**base, "booked_on": day.isoformat(), "amount": "10000.00", "direction": "credit", "kind": "repayment"}]


def test_a_card_cash_out_that_recurs_after_resolution_raises_a_new_alert(suite, borrowers):
    set_today(suite, YEAR_END)
    loan = register(suite, borrowers, product="credit_card", disbursement_date="2031-01-02")
    feed(suite, cash_out(loan, date(2031, 3, 10)))
    [first] = by_rule(suite, loan["id"], {"card_cash_out"})["card_cash_out"]
    collector = role(suite, "collector")
    for action in ("acknowledge", "start", "resolve"):
        moved = suite.direct["monitoring"].post(f"/alerts/{first['id']}/{action}", json={}, headers=collector)
        assert moved.status_code == 200, moved.text
    feed(suite, cash_out(loan, date(2031, 9, 20)))
    alerts = by_rule(suite, loan["id"], {"card_cash_out"})["card_cash_out"]
    assert [(a["status"], a["evidence"]["repaid_on"]) for a in alerts] == [
        ("resolved", "2031-03-10"), ("open", "2031-09-20")]


# Acceptance: one year of feed in date order, in customer order and shuffled gives the same alerts ------------------

BORROWERS = 8
BATCH = 120  # several batches per load, as the 10,000-row cap makes of a real year


def year_of_feed(loans: list[dict], seed: int) -> list[dict]:
    """The same year for each list of loans: salaries on the 25th (borrower 1 stops in June and resumes in
    September, borrower 2 stops for good in August), everyday card spending, and a cash-out for borrowers 3 and 5."""
    rng = random.Random(seed)
    rows: list[dict] = []
    for n, loan in enumerate(loans):
        for day in monthly(date(2031, 1, 25), 12):
            if (n == 1 and date(2031, 6, 1) <= day < date(2031, 9, 1)) or (n == 2 and day >= date(2031, 8, 1)):
                continue
            rows.append(salary(loan, day))
        for week in range(52):
            day = date(2031, 1, 3) + timedelta(days=7 * week + rng.randrange(7))
            rows.append({"account": f"card-{loan['customer_id'][:8]}", "customer_id": loan["customer_id"],
                         "booked_on": min(day, YEAR_END).isoformat(), "amount": f"{rng.randrange(20, 900)}.50",
                         "direction": "debit", "kind": "card_purchase", "merchant": f"shop-{rng.randrange(5)}"})
        if n in (3, 5):
            rows += cash_out(loan, date(2031, 4 + n, 12))
    return rows


def standing_alerts(suite, loans: list[dict]) -> set[tuple]:
    """(rule, borrower, facts) of the open feed alerts, with each borrower's own ids written as its number (and its
    account's keyed hash left out: another id of the borrower's)."""
    found = set()
    for n, loan in enumerate(loans):
        for alert in alerts_of(suite, loan["id"]):
            if alert["rule"] in {"salary_stopped", "card_cash_out"} and alert["status"] == "open":
                facts = tuple(sorted((k, str(v).replace(loan["customer_id"][:8], "#")) for k, v in
                                     alert["evidence"].items() if k != "account_hash"))
                found.add((alert["rule"], n, facts))
    return found


def test_the_same_year_of_feed_in_any_order_raises_the_same_alerts(suite, borrowers):
    set_today(suite, YEAR_END)
    loads = {}
    for order in ("date", "customer", "shuffled"):
        loans = [register(suite, borrowers, disbursement_date="2031-01-02", first_due_date="2032-06-02")
                 for _ in range(BORROWERS)]
        rows = year_of_feed(loans, seed=7)
        if order == "date":
            rows.sort(key=lambda r: r["booked_on"])
        elif order == "shuffled":
            random.Random(11).shuffle(rows)
        for start in range(0, len(rows), BATCH):
            feed(suite, rows[start:start + BATCH])
        loads[order] = standing_alerts(suite, loans)
    assert loads["date"] == loads["customer"] == loads["shuffled"]
    truth = {(rule, n) for rule, n, _ in loads["date"]}
    assert truth == {("salary_stopped", 1), ("salary_stopped", 2), ("card_cash_out", 3), ("card_cash_out", 5)}
