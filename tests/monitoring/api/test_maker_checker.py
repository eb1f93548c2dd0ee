"""Maker-checker for every act that lowers a loan's recognised risk or what it owes (issue 15, Found 3): one person
asks, another with a role allowed to approves, and only then does the loan change."""

import uuid
from datetime import date, timedelta
from decimal import Decimal

import pytest

from services.monitoring.loans.money import to_cents
from tests.monitoring.api.helpers import (
    assert_problem,
    cob,
    decide,
    loan_now,
    officer,
    register,
    role,
    set_today,
)

TODAY = date(2041, 6, 30)
D = Decimal


@pytest.fixture(autouse=True)
def today(suite):
    set_today(suite, TODAY)


def overdue(suite, borrowers, dpd, **overrides):
    """A loan whose first instalment fell due `dpd` days before the business date and was never paid."""
    first_due = TODAY - timedelta(days=dpd)
    return register(suite, borrowers, term_months=24, first_due_date=first_due.isoformat(),
                    disbursement_date=(first_due - timedelta(days=20)).isoformat(), **overrides)


def post(suite, path, body, headers=None, key=None):
    return suite.direct["monitoring"].post(path, json=body, headers={
        **(headers or officer(suite)), "Idempotency-Key": key or uuid.uuid4().hex})


def pause(suite, loan_id, start, end=None, reason="dispute", headers=None):
    body = {"start": start.isoformat(), "reason": reason, **({"end": end.isoformat()} if end else {})}
    return post(suite, f"/loans/{loan_id}/delinquency-pauses", body, headers)


def state(loan):
    return loan["dpd"], loan["classification"]


def steps(request):
    return [e["step"] for e in request["events"]]


def test_found3_a_pause_cannot_hide_a_delinquency_and_waits_for_a_second_person(suite, borrowers):
    loan = overdue(suite, borrowers, 153)
    assert state(loan_now(suite, loan["id"])) == (153, "substandard")
    # The pause of the finding: from year one, with no end.
    assert_problem(pause(suite, loan["id"], date(1, 1, 1)), 422, "body.end")
    assert_problem(pause(suite, loan["id"], date(1, 1, 1), date(9999, 12, 31)), 422, "body.start")
    disbursed = date.fromisoformat(loan["disbursement_date"])
    assert_problem(pause(suite, loan["id"], disbursed - timedelta(days=1), TODAY), 422, "body.start")
    assert_problem(pause(suite, loan["id"], TODAY - timedelta(days=31), TODAY), 422, "body.start")
    assert_problem(pause(suite, loan["id"], TODAY, TODAY + timedelta(days=90)), 422, "body.end")
    assert_problem(pause(suite, loan["id"], TODAY, TODAY, reason="because I say so"), 422, "body.reason")
    assert state(loan_now(suite, loan["id"])) == (153, "substandard")

    asked = pause(suite, loan["id"], TODAY - timedelta(days=9), TODAY + timedelta(days=20))
    assert asked.status_code == 201, asked.text
    request = asked.json()
    assert (request["kind"], request["status"], steps(request)) == ("pause", "pending", ["requested"])
    assert state(loan_now(suite, loan["id"])) == (153, "substandard")  # nothing changes before approval
    assert_problem(decide(suite, request["id"], officer(suite)), 403)  # the maker
    assert_problem(decide(suite, request["id"], suite.headers("officer.two", ["loan_officer"], "BJ001")), 403)
    assert_problem(decide(suite, request["id"], role(suite, "collector")), 403)
    assert state(loan_now(suite, loan["id"])) == (153, "substandard")

    approved = decide(suite, request["id"])
    assert approved.status_code == 200, approved.text
    assert (approved.json()["status"], approved.json()["checker"]) == ("approved", "risk.analyst.one")
    assert steps(approved.json()) == ["requested", "approved", "applied"]
    # Ten paused days come off, no more: the loan is still substandard.
    assert state(loan_now(suite, loan["id"])) == (143, "substandard")
    assert_problem(decide(suite, request["id"]), 409)
    listed = suite.direct["monitoring"].get(f"/loans/{loan['id']}/delinquency-pauses",
                                            headers=officer(suite)).json()["items"]
    assert [(p["start"], p["end"]) for p in listed] == [
        ((TODAY - timedelta(days=9)).isoformat(), (TODAY + timedelta(days=20)).isoformat())]


def test_a_rejected_pause_changes_nothing_and_a_second_pending_one_is_refused(suite, borrowers):
    loan = overdue(suite, borrowers, 40)
    first = pause(suite, loan["id"], TODAY - timedelta(days=5), TODAY).json()
    assert_problem(pause(suite, loan["id"], TODAY - timedelta(days=3), TODAY), 409)
    rejected = suite.direct["monitoring"].post(f"/change-requests/{first['id']}/decision", headers=role(
        suite, "admin"), json={"approve": False, "note": "no dispute on file"})
    assert rejected.status_code == 200, rejected.text
    assert (rejected.json()["status"], steps(rejected.json())) == ("rejected", ["requested", "rejected"])
    assert rejected.json()["events"][-1]["note"] == "no dispute on file"
    assert state(loan_now(suite, loan["id"])) == (40, "special_mention")
    assert suite.direct["monitoring"].get(f"/loans/{loan['id']}/delinquency-pauses",
                                          headers=officer(suite)).json()["items"] == []


def test_a_request_is_made_once_per_idempotency_key(suite, borrowers):
    loan = overdue(suite, borrowers, 20)
    body = {"start": (TODAY - timedelta(days=2)).isoformat(), "end": TODAY.isoformat(), "reason": "bank_error"}
    first = post(suite, f"/loans/{loan['id']}/delinquency-pauses", body, key="pause-once")
    again = post(suite, f"/loans/{loan['id']}/delinquency-pauses", body, key="pause-once")
    assert first.status_code == again.status_code == 201
    assert again.headers.get("idempotent-replayed") == "true" and again.json()["id"] == first.json()["id"]


def test_pending_requests_are_listed_for_checkers_page_by_page_within_the_branch(suite, borrowers):
    mine = [overdue(suite, borrowers, 10, branch="MC001", officer="officer.mc001",
                    headers=officer(suite, "MC001")) for _ in range(3)]
    other = overdue(suite, borrowers, 10, branch="MC002", officer="officer.mc002", headers=officer(suite, "MC002"))
    asked = [pause(suite, loan["id"], TODAY - timedelta(days=1), TODAY, headers=officer(suite, "MC001")).json()["id"]
             for loan in mine]
    theirs = pause(suite, other["id"], TODAY, TODAY, headers=officer(suite, "MC002")).json()["id"]

    def every_page(headers, **params):
        seen, cursor = [], None
        while True:
            page = suite.direct["monitoring"].get("/change-requests", headers=headers, params={
                "status": "pending", "limit": 1, **params, **({"cursor": cursor} if cursor else {})})
            assert page.status_code == 200, page.text
            seen += [r["id"] for r in page.json()["items"]]
            cursor = page.json()["next_cursor"]
            if cursor is None:
                return seen

    assert every_page(officer(suite, "MC001")) == asked  # oldest first, none of another branch
    everyone = every_page(role(suite, "risk_analyst"), kind="pause")
    assert set(asked) | {theirs} <= set(everyone) and len(everyone) == len(set(everyone))
    assert_problem(suite.direct["monitoring"].get(f"/change-requests/{theirs}", headers=officer(suite, "MC001")), 404)
    assert_problem(decide(suite, theirs, officer(suite, "MC001")), 403)
    assert decide(suite, asked[0]).status_code == 200
    assert every_page(officer(suite, "MC001")) == asked[1:]
    assert_problem(suite.direct["monitoring"].get("/change-requests", headers=role(suite, "risk_analyst"),
                                                  params={"cursor": "not-ours"}), 422, "query.cursor")


@pytest.fixture
def penalties(suite):
    app = suite.services["monitoring"]
    default = app.state.monitoring_settings
    app.state.monitoring_settings = default.model_copy(update={"penalty_daily_rates": {"personal_loan": D("0.0005")}})
    yield D("0.0005")
    app.state.monitoring_settings = default


def test_a_penalty_waiver_is_at_most_what_is_due_and_a_payment_then_owes_none(suite, borrowers, penalties):
    loan = overdue(suite, borrowers, 45)
    first, second = loan["schedule"][:2]
    due = sum(to_cents(D(i["total"]) * penalties * (TODAY - date.fromisoformat(i["due_date"])).days)
              for i in (first, second))
    path = f"/loans/{loan['id']}/waivers"
    reason = "hospital stay, late fees forgiven"
    assert_problem(post(suite, path, {"component": "principal", "amount": "1.00", "reason": reason}), 422,
                   "body.component")
    assert_problem(post(suite, path, {"component": "penalty", "amount": str(due + D("0.01")), "reason": reason}),
                   422, "body.amount")
    asked = post(suite, path, {"component": "penalty", "amount": str(due), "reason": reason})
    assert asked.status_code == 201, asked.text
    assert all(i["penalty_waived"] == "0.00" for i in loan_now(suite, loan["id"])["schedule"])
    approved = decide(suite, asked.json()["id"])
    assert approved.status_code == 200, approved.text
    assert D(approved.json()["events"][-1]["detail"]["amount"]) == due
    schedule = loan_now(suite, loan["id"])["schedule"]
    assert sum(D(i["penalty_waived"]) for i in schedule) == due
    owed = D(first["total"]) + D(second["total"])
    paid = post(suite, f"/loans/{loan['id']}/repayments", {"amount": str(owed)})
    assert paid.status_code == 201, paid.text
    assert (D(paid.json()["penalty"]), paid.json()["loan"]["dpd"]) == (0, 0)


def test_an_interest_waiver_never_touches_principal_and_applies_on_approval(suite, borrowers):
    loan = overdue(suite, borrowers, 5)
    first = loan["schedule"][0]
    interest = D(first["interest"])
    path = f"/loans/{loan['id']}/waivers"
    reason = "goodwill after a branch error"
    assert_problem(post(suite, path, {"component": "interest", "amount": str(interest + D("0.01")),
                                      "reason": reason}), 422, "body.amount")
    asked = post(suite, path, {"component": "interest", "amount": str(interest), "reason": reason}).json()
    assert loan_now(suite, loan["id"])["schedule"][0]["interest"] == first["interest"]
    assert decide(suite, asked["id"]).status_code == 200
    after = loan_now(suite, loan["id"])
    assert (after["schedule"][0]["interest"], after["schedule"][0]["interest_waived"]) == ("0.00", first["interest"])
    assert (after["dpd"], after["outstanding_principal"]) == (5, loan["outstanding_principal"])  # principal stays
    paid = post(suite, f"/loans/{loan['id']}/repayments", {"amount": first["principal"]})
    assert (D(paid.json()["interest"]), paid.json()["loan"]["dpd"]) == (0, 0)
    check = suite.direct["monitoring"].get(f"/loans/{loan['id']}/balance-check", headers=role(suite, "auditor"))
    assert check.json()["consistent"], check.json()


def test_a_write_off_takes_a_loss_loan_out_of_the_book_once_approved(suite, borrowers):
    branch = {"branch": "WO001", "officer": "officer.wo001", "headers": officer(suite, "WO001")}
    healthy = overdue(suite, borrowers, 100, **branch)
    lost = overdue(suite, borrowers, 400, **branch)
    path = "/loans/{}/write-off"
    reason = "borrower insolvent, nothing recoverable"
    assert_problem(post(suite, path.format(healthy["id"]), {"reason": reason}, officer(suite, "WO001")), 409)
    asked = post(suite, path.format(lost["id"]), {"reason": reason}, officer(suite, "WO001"))
    assert asked.status_code == 201, asked.text
    assert loan_now(suite, lost["id"])["status"] == "active"
    assert_problem(decide(suite, asked.json()["id"], officer(suite, "WO001")), 403)
    approved = decide(suite, asked.json()["id"], suite.headers("admin.checker", ["admin"]))
    assert approved.status_code == 200, approved.text
    written = loan_now(suite, lost["id"])
    interest_due = sum(D(i["interest"]) for i in lost["schedule"] if date.fromisoformat(i["due_date"]) <= TODAY)
    assert (written["status"], written["written_off_on"]) == ("written_off", TODAY.isoformat())
    assert D(written["written_off_amount"]) == D(lost["outstanding_principal"]) + interest_due
    assert D(approved.json()["events"][-1]["detail"]["amount"]) == D(written["written_off_amount"])

    figures = suite.direct["monitoring"].get("/portfolio/figures", params={"group_by": "branch"},
                                             headers=role(suite, "risk_analyst")).json()
    [group] = [g for g in figures["groups"] if g["group"] == "WO001"]
    assert (group["loans"], D(group["outstanding"])) == (1, D(healthy["outstanding_principal"]))
    assert (group["written_off_loans"], D(group["written_off"])) == (1, D(written["written_off_amount"]))

    assert_problem(post(suite, f"/loans/{lost['id']}/repayments", {"amount": "100.00"}, officer(suite, "WO001")), 409)
    assert_problem(post(suite, path.format(lost["id"]), {"reason": reason}, officer(suite, "WO001")), 409)
    cob(suite, TODAY + timedelta(days=1))
    assert loan_now(suite, lost["id"])["dpd"] == written["dpd"]  # COB no longer ages it
    assert loan_now(suite, healthy["id"])["dpd"] == 101


def test_a_restructuring_and_an_override_wait_for_the_checker_and_show_in_one_queue(suite, borrowers):
    set_today(suite, TODAY + timedelta(days=1))  # after the write-off test's COB closed TODAY
    loan = register(suite, borrowers, disbursement_date=(TODAY + timedelta(days=1)).isoformat())
    maker = suite.headers("analyst.maker", ["risk_analyst"])
    asked = post(suite, f"/loans/{loan['id']}/restructuring", {"reason": "term extended"}, maker)
    assert asked.status_code == 201, asked.text
    assert loan_now(suite, loan["id"])["classification"] == "normal"
    assert_problem(decide(suite, asked.json()["id"], maker), 403)
    override = post(suite, f"/loans/{loan['id']}/class-overrides",
                    {"requested_class": "doubtful", "reason": "fraud suspected"}, maker)
    assert override.status_code == 201, override.text
    queue = suite.direct["monitoring"].get("/change-requests", params={"loan_id": loan["id"], "status": "pending"},
                                           headers=role(suite, "risk_analyst")).json()["items"]
    assert [(r["kind"], r["maker"]) for r in queue] == [("restructuring", "analyst.maker"),
                                                       ("class_override", "analyst.maker")]
    assert queue[0]["approvers"] == ["admin", "risk_analyst"]
    assert decide(suite, asked.json()["id"]).status_code == 200
    assert loan_now(suite, loan["id"])["classification"] == "special_mention"
    history = suite.direct["monitoring"].get(f"/loans/{loan['id']}/history", headers=maker).json()["items"]
    assert {(h["cause"], h["to_value"], h["reference"]) for h in history if h["field"] == "loan_class"} >= {
        ("restructuring", "special_mention", asked.json()["id"])}
    assert decide(suite, override.json()["id"]).status_code == 200
    assert loan_now(suite, loan["id"])["classification"] == "doubtful"


def test_a_request_that_no_longer_holds_on_the_day_of_approval_is_refused(suite, borrowers):
    loan = overdue(suite, borrowers, 5)
    first = loan["schedule"][0]
    asked = post(suite, f"/loans/{loan['id']}/waivers", {"component": "interest", "amount": first["interest"],
                                                         "reason": "goodwill after a branch error"}).json()
    assert post(suite, f"/loans/{loan['id']}/repayments", {"amount": first["total"]}).status_code == 201
    assert_problem(decide(suite, asked["id"]), 409)  # the interest was paid meanwhile: nothing left to waive
    assert loan_now(suite, loan["id"])["schedule"][0]["interest_waived"] == "0.00"
    rejected = decide(suite, asked["id"], approve=False)
    assert (rejected.status_code, rejected.json()["status"]) == (200, "rejected")
