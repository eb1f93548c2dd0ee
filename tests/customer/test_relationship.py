"""Relationship measures a risk analyst can trust: collection calls are not relationship, and a measure taken as of
a date uses nothing dated later."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from sqlalchemy import event

from services.customer.relationship.models import RelationshipFeatures
from services.customer.relationship.portfolio import churned
from services.customer.relationship.service import LOYALTY_WEIGHTS, information_sharing, loyalty_index
from services.customer.surveys.models import Survey
from tests.customer.factory import key, unique

TODAY = datetime.now(UTC).date()


def _at(days_ago: int, hour: int = 0) -> str:
    # Midnight by default: a contact at 10:00 twenty days ago is only 19 whole days before a clock read at 09:00.
    return datetime.combine(TODAY - timedelta(days=days_ago), datetime.min.time(), UTC).replace(
        hour=hour).isoformat()


def _contact(api, customer_id, who, purpose, days_ago, direction="outbound", channel="phone"):
    answer = api.post(f"/customers/{customer_id}/interactions", headers={**who, **key()}, json={
        "channel": channel, "direction": direction, "purpose": purpose, "outcome": "reached",
        "occurred_at": _at(days_ago)})
    assert answer.status_code == 201, answer.text


def _survey(suite, customer, days_ago, marks, nps):
    """An answered survey of the past (the API stamps `sent_at` now, so history is written directly)."""
    at = datetime.fromisoformat(_at(days_ago))
    dims = dict(zip(("service_efficiency", "service_quality", "product_range", "staff_attitude",
                     "resolution_speed"), marks, strict=True))
    with suite.database("customer").session() as session:
        session.add(Survey(customer_id=customer["id"], branch=customer["branch"], officer="li.wei", channel="sms",
                           sent_at=at - timedelta(hours=1), answered_at=at, nps=nps, sent_by="li.wei", **dims))
        session.commit()


def _features(api, analyst, customer_id, as_of, window=12):
    answer = api.get(f"/customers/{customer_id}/relationship", params={"as_of": as_of.isoformat(),
                                                                      "window_months": window}, headers=analyst)
    assert answer.status_code == 200, answer.text
    return answer.json()


def _portrait(api, who, customer_id):
    answer = api.get(f"/customers/{customer_id}/portrait", headers=who)
    assert answer.status_code == 200, answer.text
    return answer.json()


def _branch() -> str:
    return unique("RL").replace(".", "")[:10]


def test_a_collection_contact_does_not_raise_a_customers_relationship_measures(suite, api, actors):
    """Found 1: monitoring files its collection calls in the contact log; they must not make the delinquent look
    better communicated with (portrait, point-in-time features, loyalty)."""
    branch = _branch()
    officer, analyst = actors.officer(branch), actors.user("risk_analyst")
    customer = actors.register(officer, branch=branch)
    cid = customer["id"]
    _contact(api, cid, officer, "service", 20)
    portrait_before = _portrait(api, officer, cid)
    features_before = _features(api, analyst, cid, TODAY)
    collector = actors.user("collector")
    for days_ago in (10, 5, 1):
        _contact(api, cid, collector, "collection", days_ago)
    portrait_after = _portrait(api, officer, cid)
    features_after = _features(api, analyst, cid, TODAY)
    assert portrait_after["contacts_90d"] == portrait_before["contacts_90d"] == 1
    assert portrait_after["days_since_last_contact"] == portrait_before["days_since_last_contact"] == 20
    for name in ("contacts_relationship", "contacts_outbound", "contacts_inbound", "loyalty_index"):
        assert features_after[name] == features_before[name], name
    assert features_after["contacts_collection"] == 3 and features_before["contacts_collection"] == 0
    # A collector's contact is collection whatever the body says.
    refused = api.post(f"/customers/{cid}/interactions", headers={**collector, **key()}, json={
        "channel": "phone", "direction": "outbound", "purpose": "service", "outcome": "reached",
        "occurred_at": _at(1)})
    assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == "body.purpose"


def test_features_count_a_hand_built_history_exactly(suite, api, actors):
    branch = _branch()
    officer, analyst = actors.officer(branch), actors.user("risk_analyst")
    customer = actors.register(officer, branch=branch, monthly_income="10000.00")
    cid = customer["id"]
    _contact(api, cid, officer, "service", 300, direction="inbound", channel="branch")
    _contact(api, cid, officer, "service", 200)
    _contact(api, cid, officer, "marketing", 100, direction="inbound")
    _contact(api, cid, officer, "post_loan_follow_up", 50)
    _contact(api, cid, actors.user("collector"), "collection", 40)
    _contact(api, cid, officer, "service", 500)  # outside the 12-month window
    _survey(suite, customer, 150, (4, 4, 4, 4, 4), 8)
    _survey(suite, customer, 30, (2, 2, 2, 2, 2), 5)
    assert api.post(f"/customers/{cid}/complaints", headers={**officer, **key()}, json={
        "kind": "complaint", "channel": "phone", "category": "fees", "received_at": _at(60)}).status_code == 201
    for kind, body in (("documents", {"document_type": "income_proof", "provided_at": _at(90)}),
                       ("documents", {"document_type": "bank_statement", "provided_at": _at(80)}),
                       ("disclosures", {"disclosure": "rate_and_fees", "acknowledged_at": _at(70)})):
        assert api.post(f"/customers/{cid}/{kind}", headers={**officer, **key()}, json=body).status_code == 201
    assert api.post(f"/customers/{cid}/consents", headers={**officer, **key()}, json={
        "purpose": "partner_data_sharing", "source": "app", "granted_at": _at(120)}).status_code == 201
    opened = (TODAY - timedelta(days=400)).isoformat()
    assert api.post(f"/customers/{cid}/products", headers={**officer, **key()}, json={
        "product_code": "DEP-PLUS", "opened_on": opened}).status_code == 201
    f = _features(api, analyst, cid, TODAY)
    assert (f["contacts_service"], f["contacts_marketing"], f["contacts_followup"], f["contacts_collection"]) == \
        (1 + 1, 1, 1, 1)
    assert (f["contacts_inbound"], f["contacts_outbound"], f["contacts_relationship"]) == (2, 2, 4)
    assert f["surveys_count"] == 2 and f["csat_mean"] == 3.0 and f["nps_last"] == 5
    assert f["csat_trend"] < 0 and f["survey_dimensions"]["service_quality"] == 3.0
    assert (f["complaints"], f["complaints_resolved"], f["complaints_resolved_on_time"]) == (1, 0, 0)
    assert (f["documents_provided"], f["disclosures_acknowledged"], f["data_sharing_consents"],
            f["profile_updates"]) == (2, 1, 1, 0)
    assert f["information_sharing"] == round(25 * 2 / 3 + 25 + 25 * 1 / 2, 1)
    assert f["products_held"] == 1 and f["since"] == (TODAY - timedelta(days=500)).isoformat()
    assert f["annual_income"] == "120000.00" and f["monthly_debt_payments"] is None
    assert f["customer_type"] == "individual" and f["branch"] == branch


def test_nothing_dated_after_as_of_changes_the_features(suite, api, actors):
    """Found 2: an extract as of a date must not see what the bank learnt later."""
    branch = _branch()
    officer, analyst = actors.officer(branch), actors.user("risk_analyst")
    customer = actors.register(officer, branch=branch, monthly_income="10000.00", assets="50000.00")
    cid = customer["id"]
    as_of = TODAY - timedelta(days=60)
    _contact(api, cid, officer, "service", 200)
    _survey(suite, customer, 100, (3, 3, 3, 3, 3), 6)
    first = _features(api, analyst, cid, as_of)
    # Every kind of event, dated after as_of.
    _contact(api, cid, officer, "service", 30)
    _contact(api, cid, officer, "post_loan_follow_up", 10, direction="inbound")
    _survey(suite, customer, 20, (5, 5, 5, 5, 5), 10)
    assert api.post(f"/customers/{cid}/complaints", headers={**officer, **key()}, json={
        "kind": "complaint", "channel": "phone", "category": "fees", "received_at": _at(15)}).status_code == 201
    for kind, body in (("documents", {"document_type": "income_proof"}), ("disclosures", {"disclosure":
                                                                                          "risk_assessment"})):
        assert api.post(f"/customers/{cid}/{kind}", headers={**officer, **key()}, json=body).status_code == 201
    assert api.post(f"/customers/{cid}/consents", headers={**officer, **key()}, json={
        "purpose": "partner_data_sharing", "source": "app"}).status_code == 201
    assert api.post(f"/customers/{cid}/products", headers={**officer, **key()}, json={
        "product_code": "PL-PRIME", "opened_on": (TODAY - timedelta(days=5)).isoformat()}).status_code == 201
    current = api.get(f"/customers/{cid}", headers=officer)
    patched = api.patch(f"/customers/{cid}", json={"monthly_income": "90000.00", "assets": "2000000.00"},
                        headers={**officer, "If-Match": current.headers["ETag"]})
    assert patched.status_code == 200, patched.text
    assert _features(api, analyst, cid, as_of) == first
    now = _features(api, analyst, cid, TODAY)
    assert now["annual_income"] == "1080000.00" and now["profile_updates"] == 1 and now["products_held"] == 1
    assert now["contacts_relationship"] == first["contacts_relationship"] + 2
    shared = api.get(f"/customers/{cid}/information-sharing", headers=officer)
    assert shared.status_code == 200, shared.text
    events = shared.json()["items"]
    assert [e["kind"] for e in events].count("profile_update") == 1


def test_a_page_of_features_costs_the_same_queries_whatever_its_size(suite, api, actors):
    branch = _branch()
    officer, analyst = actors.officer(branch), actors.user("risk_analyst")
    for _ in range(12):
        customer = actors.register(officer, branch=branch)
        _contact(api, customer["id"], officer, "service", 3)
    engine = suite.database("customer").engine
    statements: list[str] = []

    def count(_connection, _cursor, statement, *_args) -> None:
        # Only the request's reads: the WAL checkpoint thread runs PRAGMAs on the same engine meanwhile.
        if statement.lstrip().upper().startswith("SELECT"):
            statements.append(statement)

    def page_cost(limit: int) -> int:
        statements.clear()
        event.listen(engine, "before_cursor_execute", count)
        try:
            answer = api.get("/relationship/features", params={"as_of": TODAY.isoformat(), "limit": limit},
                             headers=analyst)
        finally:
            event.remove(engine, "before_cursor_execute", count)
        assert answer.status_code == 200 and len(answer.json()["items"]) == limit
        return len(statements)

    assert page_cost(10) == page_cost(2)
    # The pages walk every customer once.
    seen, cursor = [], None
    while True:
        body = api.get("/relationship/features", params={"as_of": TODAY.isoformat(), "limit": 7,
                                                         **({"cursor": cursor} if cursor else {})},
                       headers=analyst).json()
        seen += [item["customer_id"] for item in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) >= 12


def _features_of(**overrides) -> dict:
    base = {"window_months": 12, "csat_mean": None, "nps_last": None, "complaints": 0,
            "complaints_resolved_on_time": 0, "contacts_relationship": 0, "information_sharing": 0.0,
            "tenure_months": 0, "products_held": 0}
    return {**base, **overrides}


def test_loyalty_weights_are_the_documented_ones():
    assert LOYALTY_WEIGHTS == {"satisfaction": 0.30, "communication": 0.20, "information_sharing": 0.20,
                               "tenure": 0.15, "products": 0.15}
    best = _features_of(csat_mean=5.0, nps_last=10, contacts_relationship=12, information_sharing=100.0,
                        tenure_months=60, products_held=3)
    assert loyalty_index(best) == 100.0
    # Unknown satisfaction is neutral (0.5); six contacts in 12 months half the communication part; two years of
    # five; one product of three.
    middling = _features_of(contacts_relationship=6, information_sharing=50.0, tenure_months=24, products_held=1)
    assert loyalty_index(middling) == round(100 * (0.3 * 0.5 + 0.2 * 0.5 + 0.2 * 0.5 + 0.15 * 0.4 + 0.15 / 3), 1)
    # A complaint not answered by its deadline costs a tenth of satisfaction.
    unhappy = _features_of(csat_mean=3.0, nps_last=5, complaints=1)
    assert loyalty_index(unhappy) == round(100 * 0.3 * (0.5 - 0.1), 1)
    assert information_sharing({"profile_updates": 5, "documents_provided": 3, "data_sharing_consents": 1,
                                "disclosures_acknowledged": 1}) == 87.5


def _rf(as_of: date, **overrides) -> RelationshipFeatures:
    base = {"customer_id": "c", "as_of": as_of, "window_months": 6, "branch": "B", "segment": "standard",
            "customer_type": "individual", "since": date(2020, 1, 1), "tenure_months": 60, "annual_income": None,
            "monthly_debt_payments": None, "contacts_service": 0, "contacts_marketing": 0, "contacts_followup": 0,
            "contacts_collection": 0, "contacts_inbound": 0, "contacts_outbound": 0, "contacts_relationship": 0,
            "csat_mean": None, "csat_trend": None, "nps_last": None, "survey_dimensions": {}, "surveys_count": 0,
            "complaints": 0, "complaints_resolved": 0, "complaints_resolved_on_time": 0, "profile_updates": 0,
            "documents_provided": 0, "data_sharing_consents": 0, "disclosures_acknowledged": 0,
            "information_sharing": 0.0, "products_held": 0, "products_ever": 1, "closed_on": None,
            "loyalty_index": 10.0, "loyalty_band": "low"}
    return RelationshipFeatures.model_validate({**base, **overrides})


def test_churn_is_no_product_and_no_relationship_contact_for_n_months():
    day = date(2026, 6, 30)
    assert churned(_rf(day), 6)
    assert not churned(_rf(day, products_held=1), 6)
    assert not churned(_rf(day, contacts_relationship=1), 6)
    # Collection calls keep nobody from churning.
    assert churned(_rf(day, contacts_collection=4), 6)
    # A relationship younger than the churn period has not had the time to lapse.
    assert not churned(_rf(day, since=date(2026, 3, 1)), 6)
    assert churned(_rf(day, products_held=2, closed_on=date(2026, 5, 1)), 6)


def test_loyalty_trend_figures_look_alikes_and_the_churn_model_answer(suite, api, actors):
    branch = _branch()
    officer, analyst = actors.officer(branch), actors.user("risk_analyst")
    holder = actors.register(officer, branch=branch, monthly_income="987654.00")
    twin = actors.register(officer, branch=branch, monthly_income="987654.00")
    for customer in (holder, twin):
        for days_ago in (40, 80, 120):
            _contact(api, customer["id"], officer, "service", days_ago)
    code = unique("LA").replace(".", "")[:12]
    assert api.post(f"/customers/{holder['id']}/products", headers={**officer, **key()}, json={
        "product_code": code, "opened_on": (TODAY - timedelta(days=30)).isoformat()}).status_code == 201
    assert api.post(f"/customers/{twin['id']}/products", headers={**officer, **key()}, json={
        "product_code": "OTHER", "opened_on": (TODAY - timedelta(days=30)).isoformat()}).status_code == 201
    alikes = api.get(f"/products/{code}/look-alikes", params={"limit": 3}, headers=officer)
    assert alikes.status_code == 200, alikes.text
    assert alikes.json()[0]["customer_id"] == twin["id"] and alikes.json()[0]["nearest_holder"] == holder["id"]
    trend = api.get(f"/customers/{holder['id']}/loyalty", params={"from": (TODAY - timedelta(days=150)).isoformat(),
                                                                  "to": TODAY.isoformat()}, headers=officer)
    assert trend.status_code == 200 and len(trend.json()["points"]) in (5, 6)
    assert trend.json()["points"][-1]["loyalty_index"] > trend.json()["points"][0]["loyalty_index"]
    segments = api.get("/relationship/loyalty-segments", headers=officer).json()
    assert sum(s["customers"] for s in segments) >= 2
    figures = api.get("/relationship/figures", params={"from": (TODAY - timedelta(days=90)).isoformat()},
                      headers=analyst)
    assert figures.status_code == 200 and {r["group"] for r in figures.json()} == {"all", "segment",
                                                                                    "loyalty_band"}
    chart = api.get("/relationship/figures.png", headers=analyst)
    assert chart.status_code == 200 and chart.content.startswith(b"\x89PNG")
    model = api.post("/relationship/churn-model", headers=analyst)
    assert model.status_code == 200, model.text
    assert model.json()["churn_months"] == 6 and len(model.json()["snapshots"]) == 4
    assert api.get("/relationship/features", params={"as_of": TODAY.isoformat()},
                   headers=officer).status_code == 403
