"""The contact log, complaints with deadlines, and surveys that call for follow-up."""

from datetime import UTC, datetime, timedelta

from tests.customer.factory import key, unique

CALL = {"channel": "phone", "direction": "outbound", "purpose": "collection", "outcome": "promise_to_pay",
        "occurred_at": "2026-03-02T10:15:00Z", "notes": "Will pay on Friday."}


def _ago(days):
    return (datetime.now(UTC) - timedelta(days=days)).isoformat()


def test_a_collection_call_is_logged_once_even_when_retried(api, actors):
    customer = actors.register(actors.officer("IN01"), branch="IN01")
    collector = actors.user("collector")
    url, headers = f"/customers/{customer['id']}/interactions", {**collector, **key()}
    first = api.post(url, json=CALL, headers=headers)
    again = api.post(url, json=CALL, headers=headers)
    assert first.status_code == again.status_code == 201 and first.json()["id"] == again.json()["id"]
    stored = first.json()
    assert stored["purpose"] == "collection" and stored["branch"] == "IN01"
    assert stored["occurred_at"] == "2026-03-02T10:15:00Z"
    assert len(api.get(url, headers=collector).json()["items"]) == 1
    bad = api.post(url, json={**CALL, "channel": "pigeon"}, headers={**collector, **key()})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "body.channel"
    future = api.post(url, json={**CALL, "occurred_at": "2999-01-01T00:00:00Z"}, headers={**collector, **key()})
    assert future.status_code == 422 and future.json()["errors"][0]["field"] == "body.occurred_at"



def test_close_of_business_logs_collection_calls_and_service_reminders_but_nothing_else(api, actors):
    customer = actors.register(actors.officer("IN02"), branch="IN02")
    batch = actors.user("batch")
    url = f"/customers/{customer['id']}/interactions"
    reminder = {**CALL, "purpose": "service", "outcome": "repayment_reminder", "notes": "Instalment due on Friday."}
    assert api.post(url, json=reminder, headers={**batch, **key()}).status_code == 201
    assert api.post(url, json=CALL, headers={**batch, **key()}).status_code == 201
    marketing = api.post(url, json={**CALL, "purpose": "marketing"}, headers={**batch, **key()})
    assert marketing.status_code == 422 and marketing.json()["errors"][0]["field"] == "body.purpose"
    # A collector still only ever logs collection calls.
    service = api.post(url, json=reminder, headers={**actors.user("collector"), **key()})
    assert service.status_code == 422 and service.json()["errors"][0]["field"] == "body.purpose"

def test_the_contact_log_filters_by_channel_officer_and_time(api, actors):
    branch = unique("IN").replace(".", "")[:10]
    # Who made a contact is whoever logs it: two officers of the branch log three contacts.
    first, second = unique("a"), unique("b")
    officer, colleague = (actors.suite.headers(name, ["loan_officer"], branch) for name in (first, second))
    customer = actors.register(officer, branch=branch)
    url = f"/customers/{customer['id']}/interactions"
    for channel, who, at in (("phone", officer, "2026-01-01T09:00:00Z"), ("wechat", officer, "2026-02-01T09:00:00Z"),
                             ("visit", colleague, "2026-03-01T09:00:00Z")):
        assert api.post(url, json={**CALL, "channel": channel, "occurred_at": at, "purpose": "service"},
                        headers={**who, **key()}).status_code == 201
    by_officer = api.get("/interactions", params={"officer": first, "customer_id": customer["id"]}, headers=officer)
    assert [i["channel"] for i in by_officer.json()["items"]] == ["wechat", "phone"]
    window = api.get("/interactions", params={"customer_id": customer["id"], "since": "2026-01-15T00:00:00Z",
                                              "until": "2026-02-15T00:00:00Z"}, headers=officer)
    assert [i["channel"] for i in window.json()["items"]] == ["wechat"]
    page = api.get(url, params={"limit": 2}, headers=officer).json()
    rest = api.get(url, params={"limit": 2, "cursor": page["next_cursor"]}, headers=officer).json()
    assert [i["channel"] for i in page["items"] + rest["items"]] == ["visit", "wechat", "phone"]
    assert api.get("/interactions", params={"customer_id": customer["id"]},
                   headers=actors.officer("ELSEWHERE")).json()["items"] == []


def test_overdue_complaints_are_listed_for_managers_until_answered(api, actors):
    branch = unique("CP").replace(".", "")[:10]
    officer = actors.officer(branch)
    customer = actors.register(officer, branch=branch)
    url = f"/customers/{customer['id']}/complaints"
    late = api.post(url, json={"kind": "complaint", "channel": "branch", "category": "fees",
                               "received_at": _ago(20)}, headers={**officer, **key()}).json()
    fresh = api.post(url, json={"kind": "feedback", "channel": "app", "category": "app_ux"},
                     headers={**officer, **key()}).json()
    assert late["overdue"] is True and fresh["overdue"] is False and late["assigned_to"]
    overdue = [c["id"] for c in api.get("/complaints/overdue", headers=officer).json()["items"]]
    assert overdue == [late["id"]]
    assert late["id"] not in [c["id"] for c in api.get("/complaints/overdue",
                                                               headers=actors.officer("CPX")).json()["items"]]
    assert api.get("/complaints/overdue", headers=actors.user("collector")).status_code == 403

    no_answer = api.post(f"/complaints/{late['id']}/response", json={"status": "resolved"}, headers=officer)
    assert no_answer.status_code == 422 and no_answer.json()["errors"][0]["field"] == "body.response"
    done = api.post(f"/complaints/{late['id']}/response", json={"status": "resolved", "response": "Fee refunded."},
                    headers=officer)
    assert done.status_code == 200 and done.json()["responded_at"] and done.json()["overdue"] is False
    reopen = api.post(f"/complaints/{late['id']}/response", json={"status": "in_progress"}, headers=officer)
    assert reopen.status_code == 409
    assert api.get("/complaints/overdue", headers=officer).json()["items"] == []


def test_a_low_survey_answer_opens_a_follow_up_for_the_officer(api, actors):
    branch = unique("SV").replace(".", "")[:10]
    officer = actors.officer(branch)
    owner = unique("rm")
    customer = actors.register(officer, branch=branch)
    sent = api.post(f"/customers/{customer['id']}/surveys", json={"channel": "sms", "officer": owner},
                    headers={**officer, **key()}).json()
    assert sent["answered_at"] is None
    happy = {"service_efficiency": 5, "service_quality": 5, "product_range": 4, "staff_attitude": 5,
             "resolution_speed": 4, "nps": 9}
    unhappy = {**happy, "resolution_speed": 1, "nps": 5}
    bad = api.post(f"/surveys/{sent['id']}/answer", json={**happy, "nps": 11}, headers=officer)
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "body.nps"
    answered = api.post(f"/surveys/{sent['id']}/answer", json=unhappy, headers=officer).json()
    assert answered["csat_avg"] == 4.0 and answered["follow_up_task_id"]
    assert api.post(f"/surveys/{sent['id']}/answer", json=unhappy, headers=officer).status_code == 409
    tasks = api.get("/tasks", params={"officer": owner, "status": "open"}, headers=officer).json()["items"]
    assert len(tasks) == 1 and "resolution_speed 1" in tasks[0]["reason"] and "NPS 5" in tasks[0]["reason"]
    assert api.post(f"/tasks/{tasks[0]['id']}/completion", headers=officer).status_code == 200
    assert api.get("/tasks", params={"officer": owner, "status": "open"}, headers=officer).json()["items"] == []

    second = api.post(f"/customers/{customer['id']}/surveys", json={"channel": "app", "officer": owner},
                      headers={**officer, **key()}).json()
    assert api.post(f"/surveys/{second['id']}/answer", json=happy, headers=officer).json()["follow_up_task_id"] is None
    trend = api.get("/satisfaction/trend", params={"by": "branch", "key": branch}, headers=officer).json()
    assert len(trend) == 1 and trend[0]["responses"] == 2 and trend[0]["csat_avg"] == 4.3
    assert trend[0]["nps_avg"] == 7.0
    per_officer = api.get("/satisfaction/trend", params={"by": "officer", "key": owner}, headers=officer).json()
    assert per_officer[0]["key"] == owner


def test_a_complaint_is_due_in_calendar_days_from_when_the_bank_received_it(api, actors):
    officer = actors.officer("CP77")
    customer = actors.register(officer, branch="CP77")
    url = f"/customers/{customer['id']}/complaints"
    # Received on a Friday afternoon, logged later: 15 calendar days (weekends count) to the minute from receipt.
    received = datetime(2026, 11, 6, 16, 40, tzinfo=UTC)
    filed = api.post(url, json={"kind": "complaint", "channel": "branch", "category": "fees",
                                "received_at": received.isoformat()}, headers={**officer, **key()})
    assert filed.status_code == 201, filed.text
    due = datetime.fromisoformat(filed.json()["due_at"].replace("Z", "+00:00"))
    assert due == received + timedelta(days=15) and due.isoformat().startswith("2026-11-21T16:40")
    assert filed.json()["overdue"] is True  # judged on today's clock, not on a business date
    # Without received_at the clock starts now.
    fresh = api.post(url, json={"kind": "complaint", "channel": "phone", "category": "fees"},
                     headers={**officer, **key()}).json()
    started = datetime.fromisoformat(fresh["opened_at"].replace("Z", "+00:00"))
    assert datetime.fromisoformat(fresh["due_at"].replace("Z", "+00:00")) - started == timedelta(days=15)
    assert fresh["overdue"] is False
