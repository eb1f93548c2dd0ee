"""Hardship handling through the gateway: a deferral or a repayment plan proposed by a loan officer or collector,
approved by someone else with the right role, changes the schedule from that day; DPD counts against the new due
dates; the loan is at least special mention for its observation; early recall makes everything due at once."""

import uuid
from datetime import date
from decimal import ROUND_DOWN, Decimal

from services.monitoring.loans.schedule import add_months
from tests.monitoring.api.helpers import assert_problem, cob, officer, register, role, set_today

D = Decimal
CENT = D("0.01")


def gw(suite, method, path, headers, **kwargs):  # noqa: ANN001, ANN201
    return suite.client.request(method, f"/api/monitoring{path}", headers=headers, **kwargs)


def propose(suite, loan_id, what, body, headers, key=None):  # noqa: ANN001, ANN201
    return gw(suite, "POST", f"/loans/{loan_id}/{what}", {**headers, "Idempotency-Key": key or uuid.uuid4().hex},
              json=body)


def decide(suite, request_id, headers, approve=True):  # noqa: ANN001, ANN201
    return gw(suite, "POST", f"/change-requests/{request_id}/decision", headers, json={"approve": approve})


def loan(suite, loan_id):  # noqa: ANN001, ANN201
    response = gw(suite, "GET", f"/loans/{loan_id}", role(suite, "auditor"))
    assert response.status_code == 200, response.text
    return response.json()


def pay(suite, loan_id, amount, branch):  # noqa: ANN001, ANN201
    response = gw(suite, "POST", f"/loans/{loan_id}/repayments",
                  {**officer(suite, branch), "Idempotency-Key": uuid.uuid4().hex}, json={"amount": str(amount)})
    assert response.status_code == 201, response.text


def committee(suite):  # noqa: ANN001, ANN201
    return role(suite, "credit_committee")


def figures(suite, branch):  # noqa: ANN001, ANN201
    body = gw(suite, "GET", "/portfolio/figures", role(suite, "risk_analyst"), params={"group_by": "branch"}).json()
    [group] = [g for g in body["groups"] if g["group"] == branch]
    return group, {t["treatment"]: (t["loans"], t["outstanding"]) for t in group["treatments"]}


def test_a_deferral_moves_the_schedule_from_its_approval_and_dpd_counts_against_the_new_dates(suite, borrowers):
    branch = "HS1"
    set_today(suite, date(2026, 1, 15))
    booked = register(suite, borrowers, branch=branch, disbursement_date="2026-01-15")  # 12 000, 12%, 12 months
    set_today(suite, date(2026, 2, 10))
    collector = role(suite, "collector")
    body = {"months": 3, "interest": "waived", "reason": "hospital stay: no income for three months"}
    key = uuid.uuid4().hex
    proposed = propose(suite, booked["id"], "deferrals", body, collector, key)
    assert proposed.status_code == 201, proposed.text
    request = proposed.json()
    assert (request["kind"], request["status"], request["maker"]) == ("deferral", "pending", "collector.one")
    assert request["approvers"] == ["admin", "credit_committee", "risk_analyst"]
    replayed = propose(suite, booked["id"], "deferrals", body, collector, key)  # a retry answers the first request
    assert replayed.json()["id"] == request["id"] and replayed.headers["idempotent-replayed"] == "true"
    assert loan(suite, booked["id"])["schedule"] == booked["schedule"]  # nothing changes before approval

    assert decide(suite, request["id"], officer(suite, branch)).status_code == 403  # not a checker
    assert decide(suite, request["id"], collector).status_code == 403  # nor the maker
    pending = gw(suite, "GET", "/change-requests", committee(suite), params={"status": "pending", "kind": "deferral"})
    assert request["id"] in [r["id"] for r in pending.json()["items"]]  # the committee's queue
    approved = decide(suite, request["id"], committee(suite))
    assert approved.status_code == 200, approved.text
    assert [e["step"] for e in approved.json()["events"]] == ["requested", "approved", "applied"]

    after = loan(suite, booked["id"])
    # Every instalment moved out by three months, amounts as they were (the holiday's interest waived).
    assert [(i["number"], i["due_date"], i["principal"], i["interest"]) for i in after["schedule"]] == [
        (i["number"], add_months(date(2026, 5, 15), n).isoformat(), i["principal"], i["interest"])
        for n, i in enumerate(booked["schedule"])]
    assert after["schedule"][0]["due_date"] == "2026-05-15" and after["schedule"][-1]["due_date"] == "2027-04-15"
    assert (after["dpd"], after["classification"], after["hardship_kind"], after["hardship_on"],
            after["hardship_until"]) == (0, "special_mention", "deferral", "2026-02-10", "2026-11-10")
    [record] = gw(suite, "GET", f"/loans/{booked['id']}/hardship", role(suite, "auditor")).json()["items"]
    assert (record["treatment"], record["proposed_by"], record["approved_by"], record["request_id"]) == (
        "deferral", "collector.one", "credit.committee.one", request["id"])
    assert [i["due_date"] for i in record["schedule_before"]] == [i["due_date"] for i in booked["schedule"]]
    assert [i["due_date"] for i in record["schedule_after"]] == [i["due_date"] for i in after["schedule"]]
    history = gw(suite, "GET", f"/loans/{booked['id']}/history", role(suite, "auditor")).json()["items"]
    assert ("loan_class", "special_mention", "deferral", request["id"]) in [
        (h["field"], h["to_value"], h["cause"], h["reference"]) for h in history]

    # The old due date passes without a payment: not overdue. The day after the new one: one day past due.
    assert cob(suite, date(2026, 2, 16)).json()["status"] == "completed"
    assert (loan(suite, booked["id"])["dpd"], loan(suite, booked["id"])["classification"]) == (0, "special_mention")
    cob(suite, date(2026, 5, 16))
    assert (loan(suite, booked["id"])["dpd"], loan(suite, booked["id"])["bucket"]) == (1, "M1")

    # Paid up to November ahead of time: still special mention the day before the observation ends, then normal.
    pay(suite, booked["id"], sum(D(i["total"]) for i in after["schedule"][:7]), branch)
    cob(suite, date(2026, 11, 9))
    assert (loan(suite, booked["id"])["dpd"], loan(suite, booked["id"])["classification"]) == (0, "special_mention")
    cob(suite, date(2026, 11, 10))
    assert loan(suite, booked["id"])["classification"] == "normal"


def test_a_repayment_plan_reduces_instalments_and_respreads_or_defers_the_shortfall(suite, borrowers):
    branch = "HS2"
    set_today(suite, date(2026, 11, 20))
    respread = register(suite, borrowers, branch=branch, disbursement_date="2026-11-20")
    at_end = register(suite, borrowers, branch=branch, disbursement_date="2026-11-20")
    maker = officer(suite, branch)
    for booked, shortfall in ((respread, "respread"), (at_end, "at_end")):
        proposed = propose(suite, booked["id"], "repayment-plans", {
            "months": 3, "reduced_instalment": "300.00", "shortfall": shortfall, "reason": "shop closed for repairs"},
            maker)
        assert proposed.status_code == 201, proposed.text
        assert decide(suite, proposed.json()["id"], role(suite, "risk_analyst")).status_code == 200

    original = respread["schedule"]
    # Each reduced instalment asks for 300.00: the month's interest first, the rest principal.
    short = sum(D(i["principal"]) - (D("300.00") - D(i["interest"])) for i in original[:3])
    for booked in (respread, at_end):
        schedule = loan(suite, booked["id"])["schedule"]
        assert [D(i["total"]) for i in schedule[:3]] == [D("300.00")] * 3
        assert [i["interest"] for i in schedule[:3]] == [i["interest"] for i in original[:3]]
        assert [i["due_date"] for i in schedule] == [i["due_date"] for i in original]  # due dates stay
        assert sum(D(i["principal"]) for i in schedule) == D("12000.00")
        # The shortfall bears no further interest: the schedule's interest is the same in all.
        assert sum(D(i["interest"]) for i in schedule) == sum(D(i["interest"]) for i in original)
    spread = loan(suite, respread["id"])["schedule"]
    share = (short / 9).quantize(CENT, rounding=ROUND_DOWN)
    assert [D(i["principal"]) - D(o["principal"]) for i, o in zip(spread[3:], original[3:], strict=True)] == (
        [share] * 8 + [short - share * 8])
    end = loan(suite, at_end["id"])["schedule"]
    assert [i["principal"] for i in end[3:-1]] == [o["principal"] for o in original[3:-1]]
    assert D(end[-1]["principal"]) == D(original[-1]["principal"]) + short
    now = loan(suite, respread["id"])
    assert (now["dpd"], now["classification"], now["hardship_until"]) == (0, "special_mention", "2027-05-20")

    group, treated = figures(suite, branch)
    assert treated["repayment_plan"] == (2, "24000.00") and treated["deferral"] == (0, "0.00")
    # Expected loss: the same 12 000.00 exposure, without a plan at the normal class's PD 0.01, under one at
    # special mention's 0.05 (LGD 0.45).
    third = register(suite, borrowers, branch=branch, disbursement_date="2026-11-20")
    losses = {k: gw(suite, "GET", f"/loans/{b['id']}/expected-loss", role(suite, "auditor")).json()
              for k, b in (("plain", third), ("plan", respread))}
    assert [(v["ead"], v["pd"], v["expected_loss"]) for v in losses.values()] == [
        ("12000.00", "0.01", "54.00"), ("12000.00", "0.05", "270.00")]
    assert D(group["expected_loss"]) == D("540.00")  # both plans' loans
    # A plan that reduces nothing, or leaves no instalment after it, is refused with the field named.
    assert_problem(propose(suite, third["id"], "repayment-plans", {
        "months": 2, "reduced_instalment": "5000.00", "shortfall": "at_end", "reason": "too generous"}, maker),
        422, "body.reduced_instalment")
    assert_problem(propose(suite, third["id"], "repayment-plans", {
        "months": 12, "reduced_instalment": "100.00", "shortfall": "respread", "reason": "the whole loan"}, maker),
        422, "body.months")
    # A loan officer of another branch does not see the loan; an auditor reads but never proposes.
    assert propose(suite, third["id"], "deferrals", {"months": 1, "interest": "waived", "reason": "other branch"},
                   officer(suite, "SH001")).status_code == 404
    assert propose(suite, third["id"], "deferrals", {"months": 1, "interest": "waived", "reason": "auditor"},
                   role(suite, "auditor")).status_code == 403


def test_a_deferral_with_interest_charged_spreads_the_holidays_interest(suite, borrowers):
    branch = "HS3"
    set_today(suite, date(2026, 11, 25))
    booked = register(suite, borrowers, branch=branch, disbursement_date="2026-11-25")
    proposed = propose(suite, booked["id"], "deferrals", {"months": 2, "interest": "charged", "reason": "harvest"},
                       role(suite, "collector"))
    assert decide(suite, proposed.json()["id"], committee(suite)).status_code == 200
    schedule = loan(suite, booked["id"])["schedule"]
    holiday = (D("12000.00") * D("0.12") / 12 * 2).quantize(CENT)  # 240.00
    share = (holiday / 12).quantize(CENT, rounding=ROUND_DOWN)
    assert [D(i["interest"]) - D(o["interest"]) for i, o in zip(schedule, booked["schedule"], strict=True)] == (
        [share] * 11 + [holiday - share * 11])
    assert schedule[0]["due_date"] == "2027-02-25"


def test_early_recall_makes_everything_due_when_the_contract_allows_it(suite, borrowers):
    branch = "HS4"
    set_today(suite, date(2027, 1, 15))
    plain = register(suite, borrowers, branch=branch, disbursement_date="2027-01-15")
    recallable = register(suite, borrowers, branch=branch, disbursement_date="2027-01-15", early_recall_allowed=True)
    assert loan(suite, recallable["id"])["early_recall_allowed"] is True
    set_today(suite, date(2027, 2, 5))
    maker = officer(suite, branch)
    assert_problem(propose(suite, plain["id"], "early-recall", {"reason": "assets sold off"}, maker), 409)
    proposed = propose(suite, recallable["id"], "early-recall", {"reason": "assets sold off"}, maker)
    assert proposed.status_code == 201, proposed.text
    assert decide(suite, proposed.json()["id"], committee(suite)).status_code == 200

    after = loan(suite, recallable["id"])
    # One instalment due today: all the principal, and February's interest accrued for 21 of its 31 days.
    accrued = (D(recallable["schedule"][0]["interest"]) * 21 / 31).quantize(CENT)
    assert [(i["due_date"], i["principal"], D(i["interest"])) for i in after["schedule"]] == [
        ("2027-02-05", "12000.00", accrued)]
    assert after["recalled_on"] == "2027-02-05" and after["dpd"] == 0
    assert_problem(propose(suite, recallable["id"], "deferrals", {"months": 1, "interest": "waived",
                                                                   "reason": "too late"}, maker), 409)
    cob(suite, date(2027, 2, 6))
    now = loan(suite, recallable["id"])
    assert (now["dpd"], now["bucket"], now["classification"]) == (1, "M1", "special_mention")
    _, treated = figures(suite, branch)
    assert treated["early_recall"] == (1, "12000.00")


def test_asset_preservation_is_a_collection_action_worked_through_its_steps(suite, borrowers):
    branch = "HS5"
    set_today(suite, date(2027, 3, 1))
    booked = register(suite, borrowers, branch=branch, disbursement_date="2027-03-01")
    set_today(suite, date(2027, 8, 1))
    collector = role(suite, "collector")
    opened = gw(suite, "POST", f"/loans/{booked['id']}/collection-actions", {**collector, "Idempotency-Key": "ap1"},
                json={"kind": "asset_preservation", "channel": "visit", "outcome": "case opened with the court"})
    assert opened.status_code == 201, opened.text
    action = opened.json()["id"]
    steps = [("freeze_request", "2027-08-01", "filed", "(2027) filing 77"),
             ("preservation_order", "2027-08-01", "granted: flat frozen", "(2027) ruling 1234")]
    for step, on, outcome, ref in steps:
        made = gw(suite, "POST", f"/collection-actions/{action}/preservation-steps",
                  {**collector, "Idempotency-Key": uuid.uuid4().hex},
                  json={"step": step, "occurred_on": on, "outcome": outcome, "document_ref": ref})
        assert made.status_code == 201, made.text
    listed = gw(suite, "GET", f"/collection-actions/{action}/preservation-steps", role(suite, "auditor")).json()
    assert [(s["step"], s["occurred_on"], s["outcome"], s["document_ref"], s["recorded_by"])
            for s in listed["items"]] == [(*s, "collector.one") for s in steps]
    assert_problem(gw(suite, "POST", f"/collection-actions/{action}/preservation-steps", collector, json={
        "step": "enforcement", "occurred_on": "2027-08-02", "outcome": "not yet"}), 422, "body.occurred_on")
    call = gw(suite, "POST", f"/loans/{booked['id']}/collection-actions", collector,
              json={"kind": "call", "channel": "phone", "outcome": "no answer"}).json()["id"]
    assert_problem(gw(suite, "POST", f"/collection-actions/{call}/preservation-steps", collector, json={
        "step": "enforcement", "occurred_on": "2027-08-01", "outcome": "wrong action"}), 409)
    _, treated = figures(suite, branch)
    assert treated["asset_preservation"] == (1, "12000.00")
