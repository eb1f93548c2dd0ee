"""Alerts as a collector meets them: raised once per event, worked forward only, rules changed by analysts."""

import uuid
from datetime import date
from decimal import Decimal

from tests.monitoring.api.helpers import alerts_of, assert_problem, cob, officer, register, role, set_today
from tests.test_idempotency import assert_one_answer, race


def act(suite, alert_id, action, headers):
    return suite.direct["monitoring"].post(f"/alerts/{alert_id}/{action}", json={"note": "called"}, headers=headers)


def test_an_alert_moves_forward_only_and_remembers_its_owner(suite, borrowers):
    set_today(suite, date(2027, 1, 10))
    loan = register(suite, borrowers, disbursement_date="2027-01-10")
    cob(suite, date(2027, 2, 11))
    listed = suite.direct["monitoring"].get("/alerts", params={"customer_id": loan["customer_id"], "status": "open"},
                                            headers=role(suite, "auditor")).json()["items"]
    assert len(listed) == 1
    alert = listed[0]
    assert set(alert) == {"id", "loan_id", "customer_id", "rule", "severity", "status", "owner", "due_at", "evidence",
                          "created_at", "corrected_by"}
    assert (alert["rule"], alert["severity"], alert["status"], alert["owner"]) == (
        "missed_payment", "low", "open", None)
    assert alert["due_at"] == "2027-02-18" and alert["evidence"]["dpd"] == 1
    collector = role(suite, "collector")
    assert_problem(act(suite, alert["id"], "resolve", collector), 409)  # no skipping acknowledgement
    assert_problem(act(suite, alert["id"], "acknowledge", role(suite, "auditor")), 403)
    assert_problem(act(suite, alert["id"], "acknowledge", officer(suite, "SH002")), 404)
    acknowledged = act(suite, alert["id"], "acknowledge", collector).json()
    assert (acknowledged["status"], acknowledged["owner"]) == ("acknowledged", "collector.one")
    assert act(suite, alert["id"], "start", collector).json()["status"] == "in_progress"
    assert act(suite, alert["id"], "resolve", collector).json()["status"] == "resolved"
    for action in ("acknowledge", "start", "dismiss"):
        assert_problem(act(suite, alert["id"], action, collector), 409)
    trail = suite.direct["monitoring"].get(f"/alerts/{alert['id']}/events",
                                           headers=role(suite, "auditor")).json()["items"]
    assert [(e["from_status"], e["to_status"], e["actor"]) for e in trail] == [
        ("open", "acknowledged", "collector.one"), ("acknowledged", "in_progress", "collector.one"),
        ("in_progress", "resolved", "collector.one")]
    open_now = suite.direct["monitoring"].get("/alerts", params={"customer_id": loan["customer_id"], "status": "open"},
                                              headers=collector).json()["items"]
    assert open_now == []


def test_a_false_positive_closes_an_open_alert(suite, borrowers):
    set_today(suite, date(2028, 1, 10))
    loan = register(suite, borrowers, disbursement_date="2028-01-10")
    cob(suite, date(2028, 2, 11))
    alert = alerts_of(suite, loan["id"])[0]
    assert act(suite, alert["id"], "dismiss", officer(suite)).json()["status"] == "false_positive"


def test_an_acknowledgement_retried_with_its_key_gets_the_first_answer_and_one_event(suite, borrowers):
    set_today(suite, date(2028, 6, 10))
    loan = register(suite, borrowers, disbursement_date="2028-06-10")
    cob(suite, date(2028, 7, 11))
    [alert] = [a for a in alerts_of(suite, loan["id"]) if a["status"] == "open"]
    collector = role(suite, "collector")
    answers = race(lambda k: suite.direct["monitoring"].post(
        f"/alerts/{alert['id']}/acknowledge", json={"note": "called"}, headers={**collector, **k}))
    assert assert_one_answer(answers, 200)["status"] == "acknowledged"
    events = suite.direct["monitoring"].get(f"/alerts/{alert['id']}/events", headers=collector).json()["items"]
    assert [e["to_status"] for e in events].count("acknowledged") == 1, events


def _pay(suite, loan_id, amount):
    response = suite.direct["monitoring"].post(f"/loans/{loan_id}/repayments", json={"amount": amount},
                                               headers={**officer(suite), "Idempotency-Key": uuid.uuid4().hex})
    assert response.status_code == 201, response.text
    return response.json()


def test_two_short_payments_in_a_row_raise_partial_payment_and_one_does_not(suite, borrowers):
    set_today(suite, date(2029, 1, 10))
    loan = register(suite, borrowers, disbursement_date="2029-01-10")
    cob(suite, date(2029, 2, 12))
    first = _pay(suite, loan["id"], "50.00")
    assert first["loan"]["dpd"] == 2
    assert "partial_payment" not in [a["rule"] for a in alerts_of(suite, loan["id"])]
    _pay(suite, loan["id"], "40.00")
    [partial_alert] = [a for a in alerts_of(suite, loan["id"]) if a["rule"] == "partial_payment"]
    assert partial_alert["evidence"]["amount"] == "40.00" and partial_alert["evidence"]["partials_in_a_row"] == 2
    _pay(suite, loan["id"], str(Decimal(loan["schedule"][0]["total"]) - Decimal("90.00")))
    assert [a["rule"] for a in alerts_of(suite, loan["id"])].count("partial_payment") == 1


def _rule_body(**overrides):
    body = {"name": "More than 30 days overdue (into M2)", "kind": "dpd_reached", "params": {"days": 31},
            "severity": "medium", "enabled": True}
    body.update(overrides)
    return body


def test_analysts_tune_rules_as_data_and_others_cannot(suite, borrowers):
    analyst = role(suite, "risk_analyst")
    rules = suite.direct["monitoring"].get("/rules", headers=role(suite, "auditor")).json()["items"]
    assert {r["code"] for r in rules} >= {"missed_payment", "dpd_over_30", "dpd_over_90", "non_performing",
                                          "partial_payment", "score_drop", "promise_broken"}
    by_collector = suite.direct["monitoring"].put("/rules/dpd_over_30", json=_rule_body(),
                                                  headers=role(suite, "collector"))
    assert_problem(by_collector, 403)
    assert_problem(suite.direct["monitoring"].put("/rules/dpd_over_30", json=_rule_body(params={"days": 0}),
                                                  headers=analyst), 422, "body.params.days")
    assert_problem(suite.direct["monitoring"].put("/rules/dpd_over_30", json=_rule_body(kind="score_drop"),
                                                  headers=analyst), 422, "body.kind")
    assert_problem(suite.direct["monitoring"].put("/rules/nope", json=_rule_body(), headers=analyst), 404)
    created = suite.direct["monitoring"].post("/rules", json=_rule_body(name="Sixty days overdue", params={"days": 61},
                                                                        severity="high"), headers=analyst)
    assert created.status_code == 201 and created.json()["code"] == "sixty_days_overdue"
    switched_off = suite.direct["monitoring"].put("/rules/missed_payment", headers=analyst, json=_rule_body(
        name="An instalment was missed", params={"days": 1}, severity="low", enabled=False)).json()
    assert switched_off["version"] == 2 and switched_off["updated_by"] == "risk.analyst.one"
    set_today(suite, date(2030, 1, 10))
    loan = register(suite, borrowers, disbursement_date="2030-01-10")
    cob(suite, date(2030, 2, 11))
    assert alerts_of(suite, loan["id"]) == []  # missed_payment is off
    cob(suite, date(2030, 4, 12))
    assert sorted(a["rule"] for a in alerts_of(suite, loan["id"])) == ["dpd_over_30", "sixty_days_overdue"]
