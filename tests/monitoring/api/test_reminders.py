"""Reminders before the due date: by product and grade, through consenting channels only, logged as service
contacts with their delivery status, never past the weekly contact cap, and never twice."""

import asyncio
from datetime import UTC, date, datetime

from services.monitoring.cob.flows import CobContext
from shared.clients.identity import CallerToken
from services.monitoring.reminders.scheduled import remind
from tests.customer.factory import key
from tests.monitoring.api.helpers import admin, cob, officer, register, role, scored_borrower, set_today


def _consent(suite, customer_id, purpose="reminders_sms"):  # noqa: ANN001, ANN202
    granted = suite.direct["customer"].post(f"/customers/{customer_id}/consents", headers={**admin(suite), **key()},
                                            json={"purpose": purpose, "source": "branch_form"})
    assert granted.status_code == 201, granted.text


def _reminders(suite, loan_id):  # noqa: ANN001, ANN202
    return suite.client.get("/api/monitoring/reminders", params={"loan_id": loan_id},
                            headers=officer(suite)).json()["items"]


def _loan(suite, borrowers, customer_id):  # noqa: ANN001, ANN202
    return register(suite, borrowers, customer_id=customer_id, disbursement_date="2034-01-10",
                    first_due_date="2034-02-10")


def test_reminders_follow_the_grade_the_consents_and_the_weekly_cap(suite, borrowers, rows_by_grade):
    set_today(suite, date(2034, 1, 10))
    weak = scored_borrower(suite, borrowers, rows_by_grade["E"])
    strong = scored_borrower(suite, borrowers, rows_by_grade["A"])
    opted_out, silent, pressed = (borrowers.new_customer() for _ in range(3))
    for customer in (weak, opted_out, pressed):
        _consent(suite, customer)
    _consent(suite, strong, "reminders_app")
    withdrawn = suite.direct["customer"].post(f"/customers/{opted_out}/consents/reminders_sms/withdrawal",
                                              json={"source": "phone_recording"}, headers=admin(suite))
    assert withdrawn.status_code == 200, withdrawn.text
    for _ in range(3):  # three collection calls this week: the cap (3) is reached
        logged = suite.direct["customer"].post(f"/customers/{pressed}/interactions", headers={**admin(suite), **key()},
                                               json={"channel": "phone", "direction": "outbound",
                                                     "purpose": "collection", "outcome": "no_answer",
                                                     "occurred_at": datetime.now(UTC).isoformat()})
        assert logged.status_code == 201, logged.text
    loans = {name: _loan(suite, borrowers, customer) for name, customer in (
        ("weak", weak), ("strong", strong), ("opted_out", opted_out), ("silent", silent), ("pressed", pressed))}

    # A risk analyst moves grade A personal loans to a week ahead; a loan officer may not.
    path = "/api/monitoring/reminder-schedules/personal_loan/A"
    assert suite.client.put(path, json={"offsets_days": [7]}, headers=officer(suite)).status_code == 403
    bad = suite.client.put(path, json={"offsets_days": [0, 7]}, headers=role(suite, "risk_analyst"))
    assert bad.status_code == 422
    assert suite.client.put("/api/monitoring/reminder-schedules/yacht/A", json={"offsets_days": [7]},
                            headers=role(suite, "risk_analyst")).status_code == 422
    changed = suite.client.put(path, json={"offsets_days": [7]}, headers=role(suite, "risk_analyst"))
    assert changed.status_code == 200 and changed.json()["offsets_days"] == [7]
    listed = suite.client.get("/api/monitoring/reminder-schedules", headers=role(suite, "auditor")).json()["items"]
    assert {(r["product"], r["grade"], tuple(r["offsets_days"])) for r in listed} >= {("personal_loan", "A", (7,))}

    report = cob(suite, date(2034, 1, 31)).json()  # 10 days ahead: grade E only
    assert report["steps"]["reminders"]["status"] == "done", report["steps"]["reminders"]
    [first] = _reminders(suite, loans["weak"]["id"])
    assert (first["status"], first["offset_days"], first["channel"], first["due_date"]) == (
        "sent", 10, "sms", "2034-02-10")
    assert all(_reminders(suite, loans[n]["id"]) == [] for n in ("strong", "opted_out", "silent", "pressed"))
    [contact] = [c for c in borrowers.contact_log(weak) if c["outcome"] == "repayment_reminder"]
    assert (contact["id"], contact["purpose"], contact["channel"], contact["delivery_status"]) == (
        first["interaction_id"], "service", "sms", "sent")
    assert "falls due on 2034-02-10" in contact["notes"]

    # The message provider reports back; a delivered message stays delivered.
    delivery = f"/api/customer/interactions/{contact['id']}/delivery"
    assert suite.client.post(delivery, json={"delivery_status": "delivered"},
                             headers=admin(suite)).json()["delivery_status"] == "delivered"
    assert suite.client.post(delivery, json={"delivery_status": "failed"}, headers=admin(suite)).status_code == 409

    # Re-running the day's job sends nothing twice.
    state = suite.services["monitoring"].state
    ctx = CobContext(database=suite.database("monitoring"), settings=state.monitoring_settings,
                     day=date(2034, 1, 31), peers=state.peers,
                     credentials=CallerToken(admin(suite)["Authorization"].removeprefix("Bearer ")))
    again = asyncio.run(remind(ctx))
    assert (again["queued"], again["sent"]) == (0, 0)
    assert len([c for c in borrowers.contact_log(weak) if c["outcome"] == "repayment_reminder"]) == 1

    cob(suite, date(2034, 2, 3))  # 7 days ahead: grade A, by the schedule set above, in the app
    [ahead] = _reminders(suite, loans["strong"]["id"])
    assert (ahead["status"], ahead["offset_days"], ahead["channel"]) == ("sent", 7, "app")

    cob(suite, date(2034, 2, 5))  # 5 days ahead: grade E again, and the borrowers never scored
    weak_now = {r["offset_days"]: r["status"] for r in _reminders(suite, loans["weak"]["id"])}
    assert weak_now == {10: "sent", 5: "sent"}
    skipped = {name: [(r["status"], r["reason"]) for r in _reminders(suite, loans[name]["id"])]
               for name in ("opted_out", "silent", "pressed")}
    assert skipped["opted_out"] == [("skipped", "the customer opted out of reminders")]
    assert skipped["silent"] == [("skipped", "no channel the customer consents to be reminded by")]
    [(status, reason)] = skipped["pressed"]
    assert status == "skipped" and reason.startswith("weekly contact cap reached (3 contacts in 7 days, cap 3)")
    assert [c["purpose"] for c in borrowers.contact_log(pressed)] == ["collection"] * 3  # nothing more was sent
