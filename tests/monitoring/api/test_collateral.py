"""Collateral and guarantees as records, through the gateway: loan-to-value, an early warning when a revaluation
takes it over the rule's threshold, close of business flagging overdue revaluations, and the cover expected loss
takes off the exposure (exact Decimal arithmetic on both databases)."""

import uuid
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

from tests.monitoring.api.helpers import alerts_of, assert_problem, cob, officer, register, role, set_today

D = Decimal
CENT = D("0.01")


def gw(suite, method, path, headers, **kwargs):  # noqa: ANN001, ANN201
    return suite.client.request(method, f"/api/monitoring{path}", headers=headers, **kwargs)


def secure(suite, loan_id, branch, **body):  # noqa: ANN001, ANN201
    response = gw(suite, "POST", f"/loans/{loan_id}/collateral",
                  {**officer(suite, branch), "Idempotency-Key": uuid.uuid4().hex},
                  json={"description": "registration no. 2026-0042", "currency": "CNY", **body})
    assert response.status_code == 201, response.text
    return response.json()


def revalue(suite, collateral_id, value, on):  # noqa: ANN001, ANN201
    response = gw(suite, "POST", f"/collateral/{collateral_id}/valuations",
                  {**role(suite, "risk_analyst"), "Idempotency-Key": uuid.uuid4().hex},
                  json={"value": value, "valuation_date": on})
    assert response.status_code == 201, response.text
    return response.json()


def loss(suite, loan_id):  # noqa: ANN001, ANN201
    response = gw(suite, "GET", f"/loans/{loan_id}/expected-loss", role(suite, "auditor"))
    assert response.status_code == 200, response.text
    return response.json()


def portfolio_el(suite, branch):  # noqa: ANN001, ANN201
    body = gw(suite, "GET", "/portfolio/figures", role(suite, "risk_analyst"), params={"group_by": "branch"}).json()
    [group] = [g for g in body["groups"] if g["group"] == branch]
    return D(group["expected_loss"])


def test_collateral_and_a_guarantee_cut_expected_loss_by_the_exact_arithmetic(suite, borrowers):
    branch = "CL1"
    set_today(suite, date(2026, 1, 15))
    # Booked today, never scored: EAD 12 000.00 (nothing accrued yet), PD 0.01 (normal), LGD 0.45 (the default).
    booked = register(suite, borrowers, branch=branch, disbursement_date="2026-01-15")
    before = loss(suite, booked["id"])
    assert (before["ead"], before["pd"], before["product_lgd"], before["ltv"], before["expected_loss"]) == (
        "12000.00", "0.01", "0.45", None, "54.00")
    assert portfolio_el(suite, branch) == D("54.00")

    flat = secure(suite, booked["id"], branch, kind="property", value="9999.99", valuation_date="2026-01-10")
    guarantee = secure(suite, booked["id"], branch, kind="personal_guarantee", value="3333.33",
                       valuation_date="2026-01-15", guarantor_customer_id=borrowers.new_customer(branch))
    assert guarantee["guarantor_customer_id"] and guarantee["next_revaluation_on"] == "2027-01-15"
    foreign = secure(suite, booked["id"], branch, kind="deposit", value="1000.00", currency="EUR",
                     valuation_date="2026-01-15")
    assert (flat["revalue_every_months"], flat["next_revaluation_on"]) == (12, "2027-01-10")
    after = loss(suite, booked["id"])
    cover = (D("9999.99") * (1 - D("0.30"))).quantize(CENT, ROUND_HALF_UP)  # property haircut 30%: 6999.99
    guaranteed = (D("3333.33") * (1 - D("0.50"))).quantize(CENT, ROUND_HALF_UP)  # personal guarantee 50%: 1666.67
    unsecured = D("12000.00") - cover - guaranteed  # 3333.34
    expected = (D("0.01") * D("0.45") * unsecured).quantize(CENT, ROUND_HALF_UP)  # 15.00
    assert (D(after["collateral_value"]), D(after["collateral_cover"]), D(after["secured"]),
            D(after["guarantee_cover"]), D(after["expected_loss"])) == (
        D("9999.99"), cover, cover, guaranteed, expected)
    assert D(after["lgd"]) == (D("0.45") * unsecured / D("12000.00")).quantize(D("0.000001"))
    assert D(after["ltv"]) == (D("12000.00") / D("9999.99")).quantize(D("0.0001"), ROUND_HALF_UP)  # 1.2000
    assert after["not_counted"] == [foreign["id"]]  # no EUR rate configured: left out
    assert portfolio_el(suite, branch) == expected == D("15.00")

    # Cover beyond the exposure secures it all: nothing is expected to be lost.
    secure(suite, booked["id"], branch, kind="deposit", value="20000.00", valuation_date="2026-01-15")
    assert (loss(suite, booked["id"])["expected_loss"], portfolio_el(suite, branch)) == ("0.00", D("0.00"))
    listed = gw(suite, "GET", f"/loans/{booked['id']}/collateral", role(suite, "auditor")).json()["items"]
    assert [c["kind"] for c in listed] == ["property", "personal_guarantee", "deposit", "deposit"]
    assert_problem(gw(suite, "POST", f"/loans/{booked['id']}/collateral", officer(suite, branch), json={
        "kind": "vehicle", "description": "car", "value": "100.00", "currency": "CNY", "valuation_date": "2026-01-15",
        "guarantor_customer_id": "x"}), 422, "body.guarantor_customer_id")


def test_a_revaluation_that_takes_ltv_over_the_threshold_raises_an_early_warning(suite, borrowers):
    branch = "CL2"
    set_today(suite, date(2026, 2, 1))
    booked = register(suite, borrowers, branch=branch, disbursement_date="2026-02-01")
    flat = secure(suite, booked["id"], branch, kind="property", value="20000.00", valuation_date="2026-02-01")
    assert loss(suite, booked["id"])["ltv"] == "0.6000"
    set_today(suite, date(2026, 3, 1))
    revalue(suite, flat["id"], "16000.00", "2026-02-28")  # LTV 0.75: under 0.8
    assert [a for a in alerts_of(suite, booked["id"]) if a["rule"] == "ltv_over_80"] == []
    revalued = revalue(suite, flat["id"], "14000.00", "2026-03-01")  # LTV 0.8571
    assert revalued["value"] == "14000.00" and revalued["next_revaluation_on"] == "2027-03-01"
    [alert] = [a for a in alerts_of(suite, booked["id"]) if a["rule"] == "ltv_over_80"]
    assert (alert["severity"], alert["evidence"]["ltv_before"], alert["evidence"]["ltv_after"],
            alert["evidence"]["max_ltv"]) == ("medium", "0.7500", "0.8571", "0.8")
    revalue(suite, flat["id"], "13000.00", "2026-03-01")  # still over: the same episode, no second alert
    assert len([a for a in alerts_of(suite, booked["id"]) if a["rule"] == "ltv_over_80"]) == 1
    history = gw(suite, "GET", f"/collateral/{flat['id']}/valuations", role(suite, "auditor")).json()["items"]
    assert [v["value"] for v in history] == ["20000.00", "16000.00", "14000.00", "13000.00"]
    assert_problem(gw(suite, "POST", f"/collateral/{flat['id']}/valuations", role(suite, "risk_analyst"),
                      json={"value": "1.00", "valuation_date": "2026-02-01"}), 422, "body.valuation_date")
    # The rule is configured like every other: an analyst can move its threshold.
    rule = gw(suite, "GET", "/rules", role(suite, "auditor"), params={"limit": 200}).json()["items"]
    assert {"code": "ltv_over_80", "kind": "ltv_above", "params": {"max_ltv": "0.8"}}.items() <= [
        r for r in rule if r["code"] == "ltv_over_80"][0].items()


def test_close_of_business_flags_a_revaluation_overdue_until_it_is_done(suite, borrowers):
    branch = "CL3"
    set_today(suite, date(2026, 3, 10))
    booked = register(suite, borrowers, branch=branch, disbursement_date="2026-03-10")
    car = secure(suite, booked["id"], branch, kind="vehicle", value="50000.00", valuation_date="2026-03-10",
                 revalue_every_months=1)
    assert car["next_revaluation_on"] == "2026-04-10"

    def overdue():  # noqa: ANN202
        items = gw(suite, "GET", "/collateral/overdue-revaluations", officer(suite, branch)).json()["items"]
        return [(c["id"], c["revaluation_overdue_since"]) for c in items]

    report = cob(suite, date(2026, 4, 10)).json()
    assert report["steps"]["collateral_revaluations"]["status"] == "done" and overdue() == []
    cob(suite, date(2026, 4, 11))
    assert overdue() == [(car["id"], "2026-04-10")]
    assert gw(suite, "GET", "/collateral/overdue-revaluations", officer(suite, "SH001")).json()["items"] == []
    revalue(suite, car["id"], "45000.00", "2026-04-11")
    assert overdue() == []
