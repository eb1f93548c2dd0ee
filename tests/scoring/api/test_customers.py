"""Scoring by customer_id: consent checked, relationship features taken from the customer's portrait."""

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from services.scoring.main import create_app
from services.scoring.scores.models import Score
from services.scoring.training import train
from shared.settings import KernelSettings
from tests.scoring.api.conftest import GERMAN, install
from tests.scoring.api.helpers import closed_port, new_customer

RELATIONSHIP = ["tenure_months", "products_held", "contacts_90d", "complaints_12m"]


@pytest.fixture(scope="module")
def relationship_model():
    """German applications with relationship columns that carry signal (as the bank's own data would)."""
    frame = pd.read_csv(GERMAN)
    rng = np.random.default_rng(3)
    bad = (frame["creditability"] == "bad").to_numpy()
    frame["tenure_months"] = np.clip(rng.normal(np.where(bad, 20, 40), 15), 0, None).round()
    frame["products_held"] = rng.poisson(np.where(bad, 1.0, 2.0))
    frame["contacts_90d"] = rng.poisson(np.where(bad, 1.5, 3.0))
    frame["complaints_12m"] = rng.poisson(np.where(bad, 0.6, 0.2))
    return train(frame, "creditability", good="good", seed=0, relationship_features=RELATIONSHIP)


@pytest.fixture(scope="module")
def officer(suite, relationship_model):  # noqa: ANN001, ANN201
    install(suite, relationship_model, note="relationship-aware")
    return suite.headers("officer.cust", ["loan_officer"], branch="BJ001")


def _application(applicants):  # noqa: ANN001, ANN202
    return dict(applicants[0])


def test_the_card_reports_the_auc_lift_of_relationship_features(relationship_model):
    assert relationship_model.card["relationship"]["features"] == RELATIONSHIP
    assert relationship_model.relationship_auc_lift > 0


def test_a_customer_is_scored_with_the_portraits_relationship_data(suite, officer, applicants):
    customer = new_customer(suite, officer)
    response = suite.direct["scoring"].post("/scores", json={"customer_id": customer,
                                                             "features": _application(applicants)}, headers=officer)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["customer_id"] == customer
    with suite.database("scoring").session() as session:
        inputs = session.get(Score, body["id"]).inputs
    portrait = suite.direct["customer"].get(f"/customers/{customer}/portrait", headers=officer).json()
    assert {f: inputs[f] for f in RELATIONSHIP} == {f: portrait[f] for f in RELATIONSHIP}
    # Without the customer, the same application lacks the relationship features the champion needs.
    bare = suite.direct["scoring"].post("/scores", json={"features": _application(applicants)}, headers=officer)
    assert bare.status_code == 422
    assert {e["field"] for e in bare.json()["errors"]} >= {f"body.features.{f}" for f in RELATIONSHIP}
    latest = suite.direct["scoring"].get("/scores", params={"customer_id": customer, "limit": 1}, headers=officer)
    assert [s["id"] for s in latest.json()["items"]] == [body["id"]]


def test_a_batch_mixes_customers_and_plain_rows(suite, officer, applicants):
    customers = [new_customer(suite, officer) for _ in range(2)]
    plain = {**_application(applicants), **{f: 3 for f in RELATIONSHIP}}
    rows = [{"customer_id": c, "features": _application(applicants)} for c in customers] + [{"features": plain}]
    response = suite.direct["scoring"].post("/scores:batch", json={"rows": rows}, headers=officer)
    assert response.status_code == 201, response.text
    assert [s["customer_id"] for s in response.json()["scores"]] == [*customers, None]


def test_a_customer_is_re_scored_by_id_alone_from_the_last_scores_inputs(suite, officer, applicants):
    customer = new_customer(suite, officer)
    first = suite.direct["scoring"].post("/scores", json={"customer_id": customer,
                                                          "features": _application(applicants)}, headers=officer)
    never_scored = new_customer(suite, officer)
    again = suite.direct["scoring"].post("/scores:batch", json={"rows": [{"customer_id": customer}]}, headers=officer)
    assert again.status_code == 201, again.text
    rescored = again.json()["scores"][0]
    assert rescored["pd"] == pytest.approx(first.json()["pd"]) and rescored["id"] != first.json()["id"]
    assert [w["code"] for w in rescored["warnings"]] == ["previous_inputs"]
    assert first.json()["id"] in rescored["warnings"][0]["message"]
    unknown = suite.direct["scoring"].post("/scores:batch", json={"rows": [{"customer_id": never_scored}]},
                                           headers=officer)
    assert unknown.status_code == 422
    assert "body.rows.0.features.duration_in_month" in {e["field"] for e in unknown.json()["errors"]}


def test_without_the_credit_bureau_consent_scoring_is_refused(suite, officer, applicants):
    customer = new_customer(suite, officer, consent=False)
    response = suite.direct["scoring"].post("/scores", json={"customer_id": customer,
                                                             "features": _application(applicants)}, headers=officer)
    assert response.status_code == 403 and response.json()["title"] == "consent required"
    unknown = suite.direct["scoring"].post("/scores", json={"customer_id": "no-such-customer",
                                                            "features": _application(applicants)}, headers=officer)
    assert unknown.status_code == 422 and unknown.json()["errors"][0]["field"] == "body.customer_id"


def test_a_customer_service_that_is_down_is_a_503_naming_it(suite, officer, applicants):
    kernel = KernelSettings(**{**suite.kernel.model_dump(), "customer_url": f"http://127.0.0.1:{closed_port()}"})
    app = create_app(kernel, verifier=suite.services["scoring"].state.verifier)
    with TestClient(app, base_url="http://scoring") as client:
        response = client.post("/scores", json={"customer_id": "c1", "features": _application(applicants)},
                               headers=officer)
    assert response.status_code == 503 and response.json()["service"] == "customer"
    assert "customer" in response.json()["detail"]
