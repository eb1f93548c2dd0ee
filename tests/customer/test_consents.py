"""Consents per purpose, and the check other services make before acting."""

from tests.customer.factory import key


def _check(api, customer_id, purpose, headers):
    response = api.get(f"/customers/{customer_id}/consents/check", params={"purpose": purpose}, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def test_without_a_consent_the_check_refuses(api, actors):
    officer = actors.officer("CN01")
    customer = actors.register(officer, branch="CN01")
    answer = _check(api, customer["id"], "credit_bureau_query", actors.user("risk_analyst"))
    assert answer == {"customer_id": customer["id"], "purpose": "credit_bureau_query", "allowed": False,
                      "granted_at": None}


def test_grant_check_withdraw_and_history(api, actors):
    officer = actors.officer("CN02")
    customer = actors.register(officer, branch="CN02")
    base = f"/customers/{customer['id']}/consents"
    granted = api.post(base, json={"purpose": "credit_bureau_query", "source": "branch_form",
                                   "granted_at": "2026-01-10T08:00:00+08:00"}, headers={**officer, **key()})
    assert granted.status_code == 201 and granted.json()["active"] is True
    answer = _check(api, customer["id"], "credit_bureau_query", officer)
    assert answer["allowed"] is True and answer["granted_at"].startswith("2026-01-10T00:00:00")
    assert _check(api, customer["id"], "marketing", officer)["allowed"] is False

    again = api.post(base, json={"purpose": "credit_bureau_query", "source": "app"}, headers={**officer, **key()})
    assert again.status_code == 409

    withdrawn = api.post(f"{base}/credit_bureau_query/withdrawal", json={"source": "phone_recording"}, headers=officer)
    assert withdrawn.status_code == 200 and withdrawn.json()["withdrawn_at"]
    assert _check(api, customer["id"], "credit_bureau_query", officer)["allowed"] is False
    withdrawn_again = api.post(f"{base}/credit_bureau_query/withdrawal", json={"source": "app"}, headers=officer)
    assert withdrawn_again.status_code == 409

    api.post(base, json={"purpose": "credit_bureau_query", "source": "app"}, headers={**officer, **key()})
    summary = api.get(base, headers=officer).json()
    assert [h["active"] for h in summary["history"]] == [True, False]
    current = {c["purpose"]: c["allowed"] for c in summary["current"]}
    assert current == {"credit_bureau_query": True, "marketing": False, "partner_data_sharing": False,
                       "reminders_app": False, "reminders_sms": False, "reminders_email": False}


def test_consent_rules_refuse_bad_input_and_strangers(api, actors):
    officer = actors.officer("CN03")
    customer = actors.register(officer, branch="CN03")
    base = f"/customers/{customer['id']}/consents"
    bad_purpose = api.get(f"{base}/check", params={"purpose": "telepathy"}, headers=officer)
    assert bad_purpose.status_code == 422 and bad_purpose.json()["errors"][0]["field"] == "query.purpose"
    future = api.post(base, json={"purpose": "marketing", "source": "app", "granted_at": "2999-01-01T00:00:00Z"},
                      headers={**officer, **key()})
    assert future.status_code == 422 and future.json()["errors"][0]["field"] == "body.granted_at"
    stranger = actors.officer("CN99")
    assert api.get(f"{base}/check", params={"purpose": "marketing"}, headers=stranger).status_code == 404
    assert api.post(base, json={"purpose": "marketing", "source": "app"},
                    headers={**stranger, **key()}).status_code == 404
    retried = {**officer, **key()}
    first = api.post(base, json={"purpose": "marketing", "source": "app"}, headers=retried)
    second = api.post(base, json={"purpose": "marketing", "source": "app"}, headers=retried)
    assert first.status_code == second.status_code == 201 and first.json()["id"] == second.json()["id"]
