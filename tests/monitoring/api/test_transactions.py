"""The account-transactions feed: bulk intake with row-level problems, and the feed rules firing or not on it."""

import uuid
from datetime import date

from tests.monitoring.api.helpers import admin, alerts_of, assert_problem, cob, officer, register, set_today

TODAY = date(2026, 3, 1)


def feed(suite, rows, key=None, headers=None):
    return suite.direct["monitoring"].post("/transactions:batch", json={"rows": rows}, headers={
        **(headers or officer(suite)), "Idempotency-Key": key or uuid.uuid4().hex})


def row(loan, booked_on, amount, direction, kind, **extra):
    return {"account": extra.pop("account", f"acc-{loan['customer_id'][:8]}"), "customer_id": loan["customer_id"],
            "booked_on": booked_on, "amount": amount, "direction": direction, "kind": kind, **extra}


def fired(suite, loan, rule):
    return [a for a in alerts_of(suite, loan["id"]) if a["rule"] == rule]


def test_a_batch_is_taken_once_and_a_bad_row_is_named(suite, borrowers):
    set_today(suite, TODAY)
    loan = register(suite, borrowers, disbursement_date="2026-02-01")
    rows = [row(loan, "2026-02-10", "9000.00", "credit", "salary")]
    first = feed(suite, rows, key="feed-1")
    again = feed(suite, rows, key="feed-1")
    assert first.status_code == again.status_code == 201, first.text
    assert first.json() == again.json() and first.json()["accepted"] == 1
    assert again.headers["Idempotent-Replayed"] == "true"
    bad_amount = feed(suite, rows + [row(loan, "2026-02-11", "-5", "credit", "salary")])
    assert_problem(bad_amount, 422, "body.rows.1.amount")
    bad_kind = feed(suite, [row(loan, "2026-02-11", "5.00", "sideways", "gift")])
    body = assert_problem(bad_kind, 422)
    assert {"body.rows.0.direction", "body.rows.0.kind"} <= {e["field"] for e in body["errors"]}
    assert_problem(feed(suite, [row(loan, "2026-02-11", "5.00", "credit", "salary", loan_id="nope")]), 422,
                   "body.rows.0.loan_id")
    assert_problem(feed(suite, [row(loan, "2026-03-02", "5.00", "credit", "salary")]), 422, "body.rows.0.booked_on")
    unkeyed = suite.direct["monitoring"].post("/transactions:batch", json={"rows": rows}, headers=officer(suite))
    assert_problem(unkeyed, 428)
    too_many = feed(suite, rows * 10_001)
    assert_problem(too_many, 422, "body.rows")


def test_loan_funds_moved_on_soon_after_disbursement_warn_and_own_transfers_do_not(suite, borrowers):
    set_today(suite, TODAY)
    moved = register(suite, borrowers, disbursement_date="2026-02-20")
    kept = register(suite, borrowers, disbursement_date="2026-02-20")
    receipt = feed(suite, [
        row(moved, "2026-02-22", "7000.00", "debit", "transfer", counterparty="6222-STRANGER", loan_id=moved["id"]),
        row(kept, "2026-02-22", "7000.00", "debit", "transfer", counterparty=f"acc-{kept['customer_id'][:8]}"),
        row(kept, "2026-02-28", "100.00", "debit", "transfer", counterparty="6222-STRANGER")])
    assert receipt.status_code == 201, receipt.text
    [alert] = fired(suite, moved, "funds_moved_on")
    assert alert["severity"] == "high" and alert["evidence"]["moved"] == "7000.00"
    assert fired(suite, kept, "funds_moved_on") == []


def test_card_cash_out_warns_on_round_sums_repaid_at_once(suite, borrowers):
    set_today(suite, TODAY)
    card = register(suite, borrowers, product="credit_card", disbursement_date="2026-02-01")
    shopper = register(suite, borrowers, product="credit_card", disbursement_date="2026-02-01")
    feed(suite, [row(card, "2026-02-25", "5000.00", "debit", "card_purchase", merchant="Lucky Jewels"),
                 row(card, "2026-02-26", "5000.00", "debit", "card_purchase", merchant="Lucky Jewels"),
                 row(card, "2026-02-27", "10000.00", "credit", "repayment"),
                 row(shopper, "2026-02-25", "4321.50", "debit", "card_purchase", merchant="Supermart"),
                 row(shopper, "2026-02-26", "5000.00", "debit", "card_purchase", merchant="Supermart"),
                 row(shopper, "2026-02-27", "9321.50", "credit", "repayment")])
    [alert] = fired(suite, card, "card_cash_out")
    assert alert["evidence"]["merchant"] == "Lucky Jewels" and alert["evidence"]["purchases"] == 2
    assert fired(suite, shopper, "card_cash_out") == []


def test_a_card_cash_out_at_a_merchant_with_the_longest_name_a_row_may_give_is_raised(suite, borrowers):
    """Found: the alert's trigger named the account and the merchant in full, past its 100 characters for a
    merchant name of 128 (which a feed row may give): on PostgreSQL the whole batch failed with a 500."""
    set_today(suite, TODAY)
    card = register(suite, borrowers, product="credit_card", disbursement_date="2026-02-01")
    merchant = "Lucky Jewels " + "x" * 115
    answer = feed(suite, [row(card, "2026-02-25", "5000.00", "debit", "card_purchase", merchant=merchant),
                          row(card, "2026-02-26", "5000.00", "debit", "card_purchase", merchant=merchant),
                          row(card, "2026-02-27", "10000.00", "credit", "repayment")])
    assert answer.status_code == 201, answer.text
    [alert] = fired(suite, card, "card_cash_out")
    assert alert["evidence"]["merchant"] == merchant


def test_one_payer_for_several_borrowers_warns_and_a_shared_estate_raises_the_severity(suite, borrowers):
    set_today(suite, TODAY)
    payer = f"6222-{uuid.uuid4().hex[:8]}"
    loans = [register(suite, borrowers, product="mortgage", disbursement_date="2026-01-05") for _ in range(4)]

    def repaid(loan, estate, day="2026-02-05"):
        return row(loan, day, "3000.00", "credit", "repayment", loan_id=loan["id"], payer_account=payer,
                   housing_estate=estate)

    feed(suite, [repaid(loans[0], "Sunshine Garden"), repaid(loans[1], "Moon Court")])
    assert fired(suite, loans[0], "shared_payer") == []  # two borrowers: family help, not yet a pattern
    feed(suite, [repaid(loans[2], "River Bend")])
    assert [a["severity"] for a in fired(suite, loans[0], "shared_payer")] == ["medium"]
    feed(suite, [repaid(loans[3], "Sunshine Garden", "2026-02-06")])
    assert sorted(a["severity"] for a in fired(suite, loans[0], "shared_payer")) == ["high", "medium"]
    [worse] = [a for a in fired(suite, loans[3], "shared_payer") if a["severity"] == "high"]
    assert worse["evidence"]["shared_estates"] == ["Sunshine Garden"] and worse["evidence"]["borrowers"] == 4


def test_cob_warns_when_salary_credits_stop_and_not_while_they_come(suite, borrowers):
    set_today(suite, date(2034, 1, 1))
    stopped = register(suite, borrowers, disbursement_date="2033-12-01", first_due_date="2034-06-01")
    paid = register(suite, borrowers, disbursement_date="2033-12-01", first_due_date="2034-06-01")
    salaries = [(loan, f"2033-{month:02d}-10") for loan in (stopped, paid) for month in (9, 10, 11, 12)]
    feed(suite, [row(loan, day, "9000.00", "credit", "salary") for loan, day in salaries])
    assert fired(suite, stopped, "salary_stopped") == []
    set_today(suite, date(2034, 1, 20))
    feed(suite, [row(paid, "2034-01-10", "9000.00", "credit", "salary")])
    report = cob(suite, date(2034, 1, 26)).json()  # 47 days after the last December salary
    assert report["steps"]["feed_rules"]["status"] == "done", report["steps"]
    [alert] = fired(suite, stopped, "salary_stopped")
    assert alert["evidence"]["last_salary_on"] == "2033-12-10" and alert["evidence"]["days_without"] == 47
    assert fired(suite, paid, "salary_stopped") == []


def test_analysts_tune_feed_rules_through_the_rules_api(suite, borrowers):
    rule = next(r for r in suite.direct["monitoring"].get("/rules", headers=admin(suite)).json()["items"]
                if r["code"] == "funds_moved_on")
    body = {k: rule[k] for k in ("name", "kind", "severity", "enabled")}
    tuned = suite.direct["monitoring"].put("/rules/funds_moved_on", headers=admin(suite),
                                           json={**body, "params": {"within_days": 14, "share": "0.3"}})
    assert tuned.status_code == 200 and tuned.json()["params"]["within_days"] == 14
    nonsense = suite.direct["monitoring"].put("/rules/funds_moved_on", headers=admin(suite),
                                              json={**body, "params": {"within_days": 14, "share": "3"}})
    assert_problem(nonsense, 422, "body.params.share")


def test_feed_rows_for_another_branchs_borrower_are_refused_like_unknown_ones_and_warn_nobody(suite, borrowers):
    set_today(suite, TODAY)
    theirs = register(suite, borrowers, branch="SH002", disbursement_date="2026-02-20")
    mine = register(suite, borrowers, disbursement_date="2026-02-20")
    moved = {"counterparty": "6222-STRANGER"}
    named = feed(suite, [row(mine, "2026-02-22", "10.00", "credit", "salary"),
                         row(theirs, "2026-02-22", "7000.00", "debit", "transfer", loan_id=theirs["id"], **moved)])
    body = assert_problem(named, 422, "body.rows.1.loan_id")
    unknown = assert_problem(feed(suite, [row(mine, "2026-02-22", "7000.00", "debit", "transfer",
                                              loan_id="0" * 32, **moved)]), 422, "body.rows.0.loan_id")
    assert body["errors"][0]["message"] == unknown["errors"][0]["message"]
    assert theirs["customer_id"] not in named.text
    # A loan id of the caller's own borrower given with another customer's id names nobody either.
    mismatched = feed(suite, [row(theirs, "2026-02-22", "7000.00", "debit", "transfer", loan_id=mine["id"],
                                  **moved)])
    assert_problem(mismatched, 422, "body.rows.0.loan_id")
    assert mine["customer_id"] not in mismatched.text and theirs["customer_id"] not in mismatched.text
    unnamed = feed(suite, [row(theirs, "2026-02-22", "7000.00", "debit", "transfer", **moved)])
    assert_problem(unnamed, 422, "body.rows.0.customer_id")
    assert fired(suite, theirs, "funds_moved_on") == []
    # The branch's own officer feeds the same row and the rule fires.
    assert feed(suite, [row(theirs, "2026-02-22", "7000.00", "debit", "transfer", loan_id=theirs["id"], **moved)],
                headers=officer(suite, "SH002")).status_code == 201
    assert len(fired(suite, theirs, "funds_moved_on")) == 1
