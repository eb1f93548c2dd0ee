"""Next best offers by grade, and campaigns that reach only customers who agreed to marketing."""

from datetime import UTC, datetime

import pytest

from services.customer.offers.service import next_best_offers
from services.customer.portrait.models import PortraitRead
from tests.customer.factory import key, unique


def _portrait(grade, segments=(), lifecycle="mature"):
    return PortraitRead(
        customer_id="c1", branch="BJ001", status="active", kyc_status="verified", referred_by=None, tenure_months=30,
        products_held=1, contacts_90d=1, contacts_prior_90d=1,
        days_since_last_contact=5, csat_avg=None, csat_trend=None, nps_latest=None, complaints_12m=0,
        monthly_income=None, assets=None, latest_score=None, latest_grade=grade, value_tier="standard",
        lifecycle_stage=lifecycle, retention_risk=False, segments=list(segments), cluster=None, cluster_label=None,
        score_status="available", refreshed_at=datetime.now(UTC))


def test_a_high_grade_earns_a_better_rate_a_higher_limit_and_the_fast_lane():
    best = next_best_offers(_portrait("A", ["high_value"]), limit=10).offers
    codes = [o.code for o in best]
    assert codes[0] == "CC-PLATINUM" and "PL-PRIME" in codes
    prime = next(o for o in best if o.code == "PL-PRIME")
    assert str(prime.rate) == "2.95" and str(prime.limit) == "300000.00" and prime.fast_lane
    assert any("grade A" in reason for reason in prime.reasons)


def test_a_low_grade_gets_credit_building_products_with_a_guarantee():
    offers = next_best_offers(_portrait("E"), limit=10).offers
    assert offers and all("builds a credit record" in o.reasons for o in offers)
    card = next(o for o in offers if o.code == "CC-SECURED")
    assert card.requires_guarantee and not card.fast_lane and str(card.limit) == "1250.00"
    assert next_best_offers(_portrait("A", lifecycle="lost"), limit=10).offers == []


def test_an_unscored_customer_gets_standard_terms_over_the_api(api, actors):
    officer = actors.officer("OF01")
    customer = actors.register(officer, branch="OF01")
    body = api.get(f"/customers/{customer['id']}/offers", headers=officer)
    assert body.status_code == 200, body.text
    offers = body.json()
    assert offers["grade"] is None and 1 <= len(offers["offers"]) <= 3
    assert [o["rank"] for o in offers["offers"]] == list(range(1, len(offers["offers"]) + 1))
    assert all(o["reasons"] for o in offers["offers"])
    assert {p["code"] for p in api.get("/products", headers=officer).json()["items"]} >= {"PL-PRIME", "DP-TERM"}
    assert api.get(f"/customers/{customer['id']}/offers", headers=actors.officer("OF99")).status_code == 404


def test_a_campaign_reaches_only_consenting_customers_and_reports_conversions(api, actors):
    branch = unique("CA").replace(".", "")[:10]
    officer = actors.officer(branch)
    wealthy = dict(branch=branch, monthly_income="50000.00", assets="900000.00")
    willing, unwilling = actors.register(officer, **wealthy), actors.register(officer, **wealthy)
    api.post(f"/customers/{willing['id']}/consents", json={"purpose": "marketing", "source": "app"},
             headers={**officer, **key()})
    for customer in (willing, unwilling):
        assert "high_value" in api.get(f"/customers/{customer['id']}/portrait", headers=officer).json()["segments"]

    campaign = api.post("/campaigns", json={"name": "Wealth deposit", "segment": "high_value",
                                            "product_code": "DP-WEALTH"}, headers={**officer, **key()})
    assert campaign.status_code == 201, campaign.text
    url = f"/campaigns/{campaign.json()['id']}"
    built = api.post(f"{url}/audience", headers=officer).json()
    assert built["audience_size"] == 1 and built["excluded_without_consent"] == 1
    assert api.get(f"{url}/audience", headers=officer).json()["items"] == [willing["id"]]

    pitch = {"channel": "phone", "direction": "outbound", "purpose": "marketing", "outcome": "converted",
             "occurred_at": datetime.now(UTC).isoformat(), "campaign_id": campaign.json()["id"]}
    refused = api.post(f"/customers/{unwilling['id']}/interactions", json=pitch, headers={**officer, **key()})
    assert refused.status_code == 409 and refused.json()["type"].endswith("consent-required")
    assert api.post(f"/customers/{willing['id']}/interactions", json=pitch,
                    headers={**officer, **key()}).status_code == 201

    report = api.get(f"{url}/report", headers=officer).json()
    assert report["total"]["conversion_rate"] == 1.0 and report["total"]["response_rate"] == 1.0
    assert [r["key"] for r in report["by_grade"]] == ["unscored"]
    assert {r["key"] for r in report["by_segment"]} >= {"high_value"}
    assert api.post(f"{url}/audience", headers=officer).status_code == 409
    assert api.get(f"{url}/report", headers=actors.officer("ELSE")).status_code == 404


@pytest.mark.parametrize("body", [{"name": "x", "product_code": "NOPE"}, {"name": "x", "segment": "vip"}])
def test_a_campaign_with_an_unknown_product_or_segment_is_a_422(api, actors, body):
    response = api.post("/campaigns", json=body, headers={**actors.admin(), **key()})
    assert response.status_code == 422 and response.json()["errors"][0]["field"].startswith("body.")
