"""The effective history, held against a recomputation from the schedule and the postings alone.

The reference below knows only the contract's arithmetic (no penalties, payments of whole instalments, oldest
first): days past due from the oldest instalment not covered by the money received by each day, the M-buckets, the
five classes' day floors and the IFRS 9 stages. It shares no code with the service.
"""

import uuid
from datetime import date, timedelta
from decimal import Decimal
from itertools import pairwise

from tests.monitoring.api.helpers import admin, cob, officer, register, set_today, wait_for_cob

BRANCH = "HX001"
BOOKED = date(2026, 1, 15)


def _bucket(dpd):
    return "M0" if dpd == 0 else "M1" if dpd <= 30 else "M2" if dpd <= 60 else "M3" if dpd <= 90 else "M4+"


def _class(dpd):
    return ("normal" if dpd == 0 else "special_mention" if dpd <= 90 else "substandard" if dpd <= 270
            else "doubtful" if dpd <= 360 else "loss")


def _stage(dpd):
    return "1" if dpd == 0 else "2" if dpd <= 90 else "3"


def reference_dpd(schedule, payments, day):
    """Days past due on `day`: money received by then covers instalments oldest first."""
    received = sum((amount for on, amount in payments if on <= day), Decimal(0))
    for instalment in sorted(schedule, key=lambda i: i["due_date"]):
        owed = Decimal(instalment["total"])
        if received >= owed:
            received -= owed
            continue
        due = date.fromisoformat(instalment["due_date"])
        return max(0, (day - due).days)
    return 0


def reference_timeline(schedule, payments, through):
    """Per field, the effective changes (from, to, effective date) from booking to `through`."""
    changes = {"bucket": [], "loan_class": [], "stage": []}
    rules = {"bucket": _bucket, "loan_class": _class, "stage": _stage}
    day, last = BOOKED, {}
    while day <= through:
        dpd = reference_dpd(schedule, payments, day)
        for field, rule in rules.items():
            value = rule(dpd)
            if last.get(field) != value:
                changes[field].append((last.get(field), value, day.isoformat()))
                last[field] = value
        day += timedelta(days=1)
    return changes


def _history(suite, loan_id, view=None):
    params = {"view": view} if view else {}
    response = suite.direct["monitoring"].get(f"/loans/{loan_id}/history", params=params, headers=admin(suite))
    assert response.status_code == 200, response.text
    return response.json()["items"]


def assert_matches_reference(suite, loan, payments, through):
    rows = _history(suite, loan["id"])
    got = {field: [(r["from_value"], r["to_value"], r["effective_date"]) for r in rows if r["field"] == field]
           for field in ("bucket", "loan_class", "stage")}
    assert got == reference_timeline(loan["schedule"], payments, through)
    for field, changes in got.items():  # the effective rows chain
        assert all(later[0] == earlier[1] for earlier, later in pairwise(changes)), field


def _pay(suite, loan, amount, value_date):
    response = suite.direct["monitoring"].post(
        f"/loans/{loan['id']}/repayments", json={"amount": str(amount), "value_date": value_date.isoformat()},
        headers={**officer(suite, BRANCH), "Idempotency-Key": uuid.uuid4().hex})
    assert response.status_code == 201, response.text
    return response.json()["id"]


def _roll_rates(suite, start, end):
    response = suite.direct["monitoring"].get("/portfolio/roll-rates", headers=officer(suite, BRANCH),
                                              params={"start": start.isoformat(), "end": end.isoformat()})
    assert response.status_code == 200, response.text
    return response.json()


def _reference_rolls(loans, start, end):
    moves = {}
    for loan, payments in loans:
        was = _bucket(reference_dpd(loan["schedule"], payments, start))
        now = _bucket(reference_dpd(loan["schedule"], payments, end))
        moves.setdefault(was, {}).setdefault(now, 0)
        moves[was][now] += 1
    return {was: {to: n / sum(row.values()) for to, n in row.items()} for was, row in moves.items()}


def _rates(rolls):
    return {was: {to: rate for to, rate in row.items() if rate} for was, row in rolls["rates"].items()}


def test_history_after_backdated_repayments_and_a_reversal_matches_a_recomputation(suite, borrowers):
    set_today(suite, BOOKED)
    headers = officer(suite, BRANCH)
    late, punctual, cured = (register(suite, borrowers, headers=headers, branch=BRANCH, officer="officer.hx001",
                                      disbursement_date=BOOKED.isoformat()) for _ in range(3))
    first, second, third = (Decimal(i["total"]) for i in late["schedule"][:3])
    # Every day from booking to the first due date closed in order, through COB's catch-up range.
    started = suite.direct["monitoring"].post("/cob/runs", headers=admin(suite),
                                              json={"business_date": "2026-01-16", "through": "2026-02-15"})
    assert started.status_code == 202, started.text
    assert wait_for_cob(suite, started.headers["location"]).json()["business_date"] == "2026-02-15"
    # The punctual borrower pays five instalments on the first due date.
    punctual_payments = [(date(2026, 2, 15), sum((Decimal(i["total"]) for i in punctual["schedule"][:5]),
                                                 Decimal(0)))]
    _pay(suite, punctual, punctual_payments[0][1], date(2026, 2, 15))
    for day in (date(2026, 2, 16), date(2026, 3, 18), date(2026, 4, 17), date(2026, 5, 17), date(2026, 5, 20)):
        cob(suite, day)  # the days on which the late loan's bucket, class or stage changes, and today
    today = date(2026, 5, 20)
    payments = []
    assert_matches_reference(suite, late, payments, today)
    # Four instalments paid on the first due date, booked in May: the loan was never late at all.
    cured_payments = [(date(2026, 2, 15), sum((Decimal(i["total"]) for i in cured["schedule"][:4]), Decimal(0)))]
    _pay(suite, cured, cured_payments[0][1], date(2026, 2, 15))
    assert_matches_reference(suite, cured, cured_payments, today)

    # Paid on 20 March, booked in May: from then on only the February instalment is late.
    bounced = _pay(suite, late, first, date(2026, 3, 20))
    payments.append((date(2026, 3, 20), first))
    assert_matches_reference(suite, late, payments, today)
    _pay(suite, late, second + third, date(2026, 4, 16))
    payments.append((date(2026, 4, 16), second + third))
    assert_matches_reference(suite, late, payments, today)
    recorded_before = _history(suite, late["id"], "recorded")

    # The first payment bounces: what it paid is owed again from its value date.
    reversal = suite.direct["monitoring"].post(f"/postings/{bounced}/reversal", json={"reason": "cheque bounced"},
                                               headers=headers)
    assert reversal.status_code == 200, reversal.text
    payments.remove((date(2026, 3, 20), first))
    assert_matches_reference(suite, late, payments, today)

    # Nothing recorded is ever deleted: the as-recorded trail keeps every row, the superseded ones marked.
    recorded = _history(suite, late["id"], "recorded")
    key = ("field", "from_value", "to_value", "effective_date", "recorded_at")
    assert {tuple(r[k] for k in key) for r in recorded_before} <= {tuple(r[k] for k in key) for r in recorded}
    superseded = [r for r in recorded if r["superseded_at"]]
    assert superseded and {r["superseded_by"] for r in superseded} <= {bounced, *(
        p["id"] for p in suite.direct["monitoring"].get(f"/loans/{late['id']}/postings",
                                                        headers=headers).json()["items"])}
    assert len(recorded) == len(_history(suite, late["id"])) + len(superseded)
    assert [r["recorded_at"] for r in recorded] == sorted(r["recorded_at"] for r in recorded)

    # Roll rates read the effective timeline: buckets the loans were really in on each date.
    loans = [(late, payments), (punctual, punctual_payments), (cured, cured_payments)]
    for start, end in ((date(2026, 3, 25), date(2026, 5, 20)), (date(2026, 4, 20), date(2026, 5, 18))):
        assert _rates(_roll_rates(suite, start, end)) == _reference_rolls(loans, start, end), (start, end)

    # Vintages too: of the three January loans only the late one was ever more than 30 days past due (from 18
    # March, in its third month on book); the months observed by 20 May are four.
    vintages = suite.direct["monitoring"].get("/portfolio/vintages", headers=headers).json()
    assert [(v["cohort"], v["loans"], v["curve"]) for v in vintages] == [("2026-01", 3, [0.0, 0.0, 1 / 3, 1 / 3])]
