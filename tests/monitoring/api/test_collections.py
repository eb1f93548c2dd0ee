"""Collections: actions reach the customer's contact log (now or via the outbox), promises are judged, the queue
puts the worst first."""

import uuid
from datetime import date
from decimal import Decimal

from tests.monitoring.api.helpers import alerts_of, assert_problem, cob, officer, peer_down, register, role, set_today


def record(suite, loan_id, headers=None, key=None, **body):
    payload = {"kind": "call", "channel": "phone", "outcome": "no answer", **body}
    return suite.direct["monitoring"].post(f"/loans/{loan_id}/collection-actions", json=payload,
                                           headers={**(headers or role(suite, "collector")),
                                                    "Idempotency-Key": key or uuid.uuid4().hex})


def test_a_call_is_written_to_the_customers_contact_log_once(suite, borrowers):
    set_today(suite, date(2027, 1, 10))
    loan = register(suite, borrowers, disbursement_date="2027-01-10")
    first = record(suite, loan["id"], key="call-1", notes="rang twice")
    again = record(suite, loan["id"], key="call-1", notes="rang twice")
    assert first.status_code == again.status_code == 201, first.text
    assert first.json()["id"] == again.json()["id"] and first.json()["contact_log"] == "written"
    logged = borrowers.contact_log(loan["customer_id"])
    assert len(logged) == 1
    assert {k: logged[0][k] for k in ("channel", "direction", "purpose", "outcome", "officer")} == {
        "channel": "phone", "direction": "outbound", "purpose": "collection", "outcome": "no_answer",
        "officer": "collector.one"}


def test_when_the_customer_service_is_down_the_entry_waits_for_cob(suite, borrowers):
    set_today(suite, date(2028, 1, 10))
    loan = register(suite, borrowers, disbursement_date="2028-01-10")
    with peer_down(suite, "customer"):
        queued = record(suite, loan["id"], kind="visit", channel="visit", outcome="nobody home")
    assert queued.status_code == 201 and queued.json()["contact_log"] == "queued"
    assert borrowers.contact_log(loan["customer_id"]) == []
    report = cob(suite, date(2028, 1, 11)).json()
    assert report["steps"]["contact_log_outbox"]["status"] == "done", report["steps"]
    assert len(borrowers.contact_log(loan["customer_id"])) == 1
    listed = suite.direct["monitoring"].get(f"/loans/{loan['id']}/collection-actions",
                                            headers=officer(suite)).json()["items"]
    assert [a["contact_log"] for a in listed] == ["written"]


def test_a_promise_to_pay_is_kept_by_paying_and_broken_by_not(suite, borrowers):
    set_today(suite, date(2029, 2, 20))
    kept_loan = register(suite, borrowers, disbursement_date="2029-01-10")
    broken_loan = register(suite, borrowers, disbursement_date="2029-01-10")
    for loan in (kept_loan, broken_loan):
        promise = record(suite, loan["id"], kind="promise_to_pay", outcome="will pay on the 25th",
                         promised_amount="500.00", promised_date="2029-02-25")
        assert promise.status_code == 201 and promise.json()["promise_status"] == "pending"
    paid = suite.direct["monitoring"].post(f"/loans/{kept_loan['id']}/repayments", json={"amount": "500.00"},
                                           headers={**officer(suite), "Idempotency-Key": uuid.uuid4().hex})
    assert paid.status_code == 201
    report = cob(suite, date(2029, 2, 26)).json()
    assert report["steps"]["promises"]["status"] == "done"
    # The run's count holds every alert it raised, the broken promise's too.
    assert report["steps"]["promises"]["alerts_raised"] == 1 and report["alerts_raised"] >= 1
    statuses = {loan["id"]: suite.direct["monitoring"].get(f"/loans/{loan['id']}/collection-actions",
                                                           headers=officer(suite)).json()["items"][0]["promise_status"]
                for loan in (kept_loan, broken_loan)}
    assert statuses == {kept_loan["id"]: "kept", broken_loan["id"]: "broken"}
    assert [a["rule"] for a in alerts_of(suite, broken_loan["id"])].count("promise_broken") == 1
    assert "promise_broken" not in [a["rule"] for a in alerts_of(suite, kept_loan["id"])]
    cob(suite, date(2029, 2, 27))
    assert [a["rule"] for a in alerts_of(suite, broken_loan["id"])].count("promise_broken") == 1


def test_a_promise_needs_its_terms(suite, borrowers):
    set_today(suite, date(2029, 3, 1))
    loan = register(suite, borrowers, disbursement_date="2029-01-10")
    assert_problem(record(suite, loan["id"], kind="promise_to_pay", promised_date="2029-03-05"), 422,
                   "body.promised_amount")
    assert_problem(record(suite, loan["id"], kind="promise_to_pay", promised_amount="10.00",
                          promised_date="2029-02-01"), 422, "body.promised_date")
    assert_problem(record(suite, loan["id"], promised_amount="10.00"), 422, "body.kind")
    assert_problem(record(suite, loan["id"], channel="pigeon"), 422, "body.channel")
    assert_problem(record(suite, loan["id"], headers=role(suite, "auditor")), 403)


def test_the_queue_puts_the_worst_first(suite, borrowers):
    set_today(suite, date(2030, 1, 10))
    early = register(suite, borrowers, disbursement_date="2029-09-10")  # far behind by the COB below
    late = register(suite, borrowers, disbursement_date="2030-01-10")
    cob(suite, date(2030, 2, 11))
    queue = suite.direct["monitoring"].get("/collections/queue", headers=role(suite, "collector")).json()["items"]
    ours = [item for item in queue if item["loan"]["id"] in {early["id"], late["id"]}]
    assert ours[0]["loan"]["id"] == early["id"] and ours[0]["alert"]["severity"] == "high"
    assert ours[-1]["loan"]["id"] == late["id"]
    severities = [item["alert"]["severity"] for item in queue]
    rank = {"high": 3, "medium": 2, "low": 1}
    assert [rank[s] for s in severities] == sorted((rank[s] for s in severities), reverse=True)
    assert Decimal(ours[0]["loan"]["outstanding_principal"]) > 0
