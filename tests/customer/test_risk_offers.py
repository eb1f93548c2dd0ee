"""Offers and campaigns respect risk (issue 15, Found 5): monitoring's delinquency and class decide the
portrait's `high_risk` and keep new credit away from customers in arrears."""

from datetime import date

from services.customer.portrait.scheduled import refresh_segments
from tests.customer.factory import key, person, unique
from tests.customer.test_lifecycle import book_overdue_loan, customer_without_monitoring, repay_in_full  # noqa: F401
from tests.monitoring.api.helpers import set_today

WEALTHY = {"monthly_income": "50000.00", "assets": "900000.00"}
CREDIT = {"loan", "card"}


def _offers(api, customer, headers):
    response = api.get(f"/customers/{customer['id']}/offers", params={"limit": 20}, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()["offers"]


def test_a_customer_56_days_past_due_gets_no_new_credit_and_is_high_risk(suite, api, actors):
    branch = unique("RO").replace(".", "")[:10]
    officer = actors.officer(branch)
    clean = actors.register(officer, **person(branch=branch, **WEALTHY))
    late = actors.register(officer, **person(branch=branch, **WEALTHY))
    book_overdue_loan(suite, late, officer)

    assert CREDIT & {o["kind"] for o in _offers(api, clean, officer)}
    offers = _offers(api, late, officer)
    assert offers and not CREDIT & {o["kind"] for o in offers}
    assert all("no new credit: open delinquency: 56 days past due" in o["reasons"] for o in offers)
    assert offers[0]["code"] == "DP-BUILDER" and "rehabilitation" in offers[0]["reasons"][1]

    portrait = api.get(f"/customers/{late['id']}/portrait", headers=officer).json()
    assert "high_risk" in portrait["segments"] and "high_value" not in portrait["segments"]
    assert (portrait["current_max_dpd"], portrait["max_dpd_12m"], portrait["worst_class"]) == (
        56, 56, "special_mention")
    assert portrait["credit_hold"] == "open delinquency: 56 days past due"
    assert "high_value" in api.get(f"/customers/{clean['id']}/portrait", headers=officer).json()["segments"]
    # The nightly batch asks no peer: it keeps the risk figures monitoring gave last, and the segment with them.
    refresh_segments(suite.database("customer"))
    members = api.get("/segments/high_risk/members", headers=officer).json()["items"]
    assert late["id"] in members and clean["id"] not in members


def test_once_repaid_a_serious_delinquency_still_holds_new_credit_for_a_year(suite, api, actors):
    officer = actors.officer("RO02")
    customer = actors.register(officer, **person(branch="RO02", **WEALTHY))
    repay_in_full(suite, book_overdue_loan(suite, customer, officer), officer)
    portrait = api.get(f"/customers/{customer['id']}/portrait", headers=officer).json()
    assert portrait["current_max_dpd"] == 0 and portrait["max_dpd_12m"] > 30
    assert portrait["credit_hold"].endswith("days past due within the last 12 months")
    assert "high_risk" in portrait["segments"]
    offers = _offers(api, customer, officer)
    assert offers and not CREDIT & {o["kind"] for o in offers}
    # A year on, the record is clean again.
    set_today(suite, date(2032, 5, 1))
    try:
        assert CREDIT & {o["kind"] for o in _offers(api, customer, officer)}
        assert "high_risk" not in api.get(f"/customers/{customer['id']}/portrait", headers=officer).json()["segments"]
    finally:
        set_today(suite, date(2031, 4, 12))


def test_without_monitoring_no_credit_is_offered_blindly(api, actors, customer_without_monitoring):  # noqa: F811
    officer = actors.officer("RO03")
    customer = actors.register(officer, **person(branch="RO03", **WEALTHY))
    response = customer_without_monitoring.get(f"/customers/{customer['id']}/offers", params={"limit": 20},
                                               headers=officer)
    assert response.status_code == 200, response.text
    offers = response.json()["offers"]
    assert offers and not CREDIT & {o["kind"] for o in offers}
    assert all(o["reasons"][0].startswith("no new credit: credit record unknown") for o in offers)
    # The figures monitoring gave last time stand in when it does not answer.
    api.get(f"/customers/{customer['id']}/portrait", headers=officer)
    again = customer_without_monitoring.get(f"/customers/{customer['id']}/offers", params={"limit": 20},
                                            headers=officer).json()["offers"]
    assert CREDIT & {o["kind"] for o in again}


def test_a_credit_campaign_leaves_out_customers_in_arrears_and_a_deposit_campaign_does_not(suite, api, actors):
    branch = unique("RC").replace(".", "")[:10]
    officer = actors.officer(branch)
    clean = actors.register(officer, **person(branch=branch, **WEALTHY))
    late = actors.register(officer, **person(branch=branch, **WEALTHY))
    book_overdue_loan(suite, late, officer)
    for customer in (clean, late):
        api.post(f"/customers/{customer['id']}/consents", json={"purpose": "marketing", "source": "app"},
                 headers={**officer, **key()})
        api.get(f"/customers/{customer['id']}/portrait", headers=officer)

    def audience(product_code):
        created = api.post("/campaigns", json={"name": product_code, "product_code": product_code},
                           headers={**officer, **key()})
        assert created.status_code == 201, created.text
        url = f"/campaigns/{created.json()['id']}"
        assert api.post(f"{url}/audience", headers=officer).status_code == 200
        return set(api.get(f"{url}/audience", headers=officer).json()["items"])

    assert audience("CC-CLASSIC") == {clean["id"]}
    assert audience("DP-TERM") == {clean["id"], late["id"]}
