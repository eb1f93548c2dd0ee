"""POST /scores and /scores:batch: the answer, the input contract, shadow scoring, storage and reads."""

import asyncio
from decimal import Decimal

import httpx
import pytest

from services.scoring.scores.models import Score
from services.scoring.training.bundle import load_bundle, score_rows
from shared.clients.scoring import ScoreRow, ScoringClient
from shared.errors import Problem
from tests.scoring.api.helpers import new_customer


@pytest.fixture(scope="module")
def officer(suite, champion):  # noqa: ANN001, ANN201
    return suite.headers("officer.scores", ["loan_officer"], branch="BJ001")


def _post(suite, headers, body, path="/scores"):  # noqa: ANN001, ANN202
    return suite.direct["scoring"].post(path, json=body, headers=headers)


def test_a_score_has_the_documented_answer_and_matches_the_bundle(suite, officer, applicants, trained):
    response = _post(suite, officer, {"features": applicants[0], "requested_amount": "5000"})
    assert response.status_code == 201, response.text
    body = response.json()
    assert set(body) >= {"id", "model_version", "pd", "score", "points", "grade", "decision", "suggested_limit",
                         "rate_adjustment_bps", "reasons", "warnings", "created_at"}
    assert body["model_version"].startswith("german-credit-v") and body["warnings"] == []
    assert body["decision"] in {"approve", "review", "decline"}
    assert Decimal(body["suggested_limit"]) <= Decimal("5000") and isinstance(body["suggested_limit"], str)
    # Parity with the training library's own scoring of the same bundle.
    expected = score_rows(load_bundle(trained_bundle(trained)), [applicants[0]])[0]
    assert body["pd"] == pytest.approx(expected["pd"], abs=1e-6)
    assert body["score"] == pytest.approx(expected["score"], abs=1e-4)
    assert 0 < len(body["reasons"]) <= 4
    assert all(r["unit"] == "points" and r["impact"] > 0 for r in body["reasons"])
    impacts = [r["impact"] for r in body["reasons"]]
    assert impacts == sorted(impacts, reverse=True)


def trained_bundle(trained):  # noqa: ANN001, ANN201
    from services.scoring.training.bundle import bundle_bytes

    return bundle_bytes(trained)


def test_stored_scores_are_read_back_by_id_and_by_customer_newest_first(suite, officer, applicants):
    customer = new_customer(suite, officer)
    ids = []
    for i in range(3):
        response = _post(suite, officer, {"features": applicants[i], "customer_id": customer})
        assert response.status_code == 201, response.text
        ids.append(response.json()["id"])
    one = suite.direct["scoring"].get(f"/scores/{ids[0]}", headers=officer)
    assert one.status_code == 200 and one.json()["id"] == ids[0]
    listed = suite.direct["scoring"].get("/scores", params={"customer_id": customer, "limit": 2}, headers=officer)
    assert listed.status_code == 200
    assert [s["id"] for s in listed.json()["items"]] == [ids[2], ids[1]]
    assert listed.json()["items"][0]["customer_id"] == customer
    assert {"id", "customer_id", "model_version", "pd", "points", "score", "grade", "decision", "reasons",
            "created_at"} <= set(listed.json()["items"][0])
    missing = suite.direct["scoring"].get("/scores/nope", headers=officer)
    assert missing.status_code == 404 and missing.headers["content-type"] == "application/problem+json"


def test_personal_inputs_are_stored_hashed_and_the_challenger_shadows_unseen(suite, officer, applicants):
    body = _post(suite, officer, {"features": applicants[1]}).json()
    suite.services["scoring"].state.scoring.shadow.drain()  # shadows are stored after the answer
    with suite.database("scoring").session() as session:
        from sqlmodel import select

        stored = session.get(Score, body["id"])
        shadow = session.exec(select(Score).where(Score.champion_score_id == body["id"])).one()
    assert stored.inputs["foreign_worker"].startswith("hmac-sha256:")
    assert stored.inputs["personal_status_and_sex"].startswith("hmac-sha256:")
    assert stored.inputs["duration_in_month"] == applicants[1]["duration_in_month"]
    assert shadow.shadow and shadow.model_version != body["model_version"] and shadow.reasons == []
    key_file = suite.kernel.var_dir / "scoring_hash.key"
    assert key_file.stat().st_mode & 0o777 == 0o600
    # The shadow is never answered: not by id, not in the customer's list.
    assert suite.direct["scoring"].get(f"/scores/{shadow.id}", headers=officer).status_code == 404


def test_shadows_are_stored_after_the_answer_once_per_champion_score(suite, officer, applicants):
    shadow = suite.services["scoring"].state.scoring.shadow
    headers = {**officer, "Idempotency-Key": "shadow-once"}
    first = _post(suite, headers, {"features": applicants[5]}).json()
    assert _post(suite, headers, {"features": applicants[5]}).json()["id"] == first["id"]  # replayed
    batch = _post(suite, officer, {"rows": [{"features": a} for a in applicants[6:9]]}, path="/scores:batch").json()
    shadow.drain()
    ids = [first["id"]] + [s["id"] for s in batch["scores"]]
    with suite.database("scoring").session() as session:
        from sqlmodel import select

        twins = session.exec(select(Score).where(Score.champion_score_id.in_(ids))).all()
        caller = session.get(Score, first["id"]).created_by
    assert sorted(t.champion_score_id for t in twins) == sorted(ids) and all(t.shadow for t in twins)
    assert {t.created_by for t in twins} == {caller}
    assert shadow.drain() == 0


@pytest.mark.parametrize("change, field, words", [
    ({"favourite_colour": "blue"}, "body.features.favourite_colour", "not a feature"),
    ({"duration_in_month": "twelve"}, "body.features.duration_in_month", "number"),
    ({"duration_in_month": True}, "body.features.duration_in_month", "number"),
    ({"duration_in_month": 10_000}, "body.features.duration_in_month", "range"),
    ({"duration_in_month": 10**400}, "body.features.duration_in_month", "finite"),
    ({"credit_amount": -5}, "body.features.credit_amount", "range"),
    ({"purpose": 7}, "body.features.purpose", "string"),
])
def test_the_input_contract_names_the_bad_field(suite, officer, applicants, change, field, words):
    response = _post(suite, officer, {"features": {**applicants[2], **change}})
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    errors = response.json()["errors"]
    assert [e["field"] for e in errors] == [field] and words in errors[0]["message"]


def test_a_missing_required_feature_is_refused(suite, officer, applicants):
    features = {k: v for k, v in applicants[2].items() if k != "duration_in_month"}
    response = _post(suite, officer, {"features": features})
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "body.features.duration_in_month"


def test_an_unseen_category_is_scored_as_the_worst_bin_with_a_warning(suite, officer, applicants):
    response = _post(suite, officer, {"features": {**applicants[3], "purpose": "space travel"}})
    assert response.status_code == 201, response.text
    warnings = response.json()["warnings"]
    assert warnings == [{"field": "body.features.purpose", "code": "unseen_category",
                         "message": "'space travel' was never seen in training; scored as the feature's worst bin"}]
    nulled = _post(suite, officer, {"features": {**applicants[3], "credit_amount": None}}).json()
    assert nulled["warnings"][0]["code"] == "missing_value"


def test_a_batch_is_scored_in_one_call_and_a_bad_row_is_named(suite, officer, applicants):
    rows = [{"features": a} for a in applicants[:300]]
    response = _post(suite, officer, {"rows": rows}, "/scores:batch")
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["count"] == 300 and len(body["scores"]) == 300
    single = _post(suite, officer, {"features": applicants[17]}).json()
    assert body["scores"][17]["pd"] == pytest.approx(single["pd"])
    rows[17] = {"features": {**applicants[17], "credit_amount": "lots"}}
    bad = _post(suite, officer, {"rows": rows}, "/scores:batch")
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["field"] == "body.rows.17.features.credit_amount"


def test_a_retried_score_with_the_same_key_returns_the_first_answer(suite, officer, applicants):
    headers = {**officer, "Idempotency-Key": "score-retry-1"}
    first = _post(suite, headers, {"features": applicants[4]})
    again = _post(suite, headers, {"features": applicants[4]})
    assert first.status_code == again.status_code == 201 and first.json() == again.json()


def test_roles_without_scoring_rights_are_refused(suite, champion, applicants):
    collector = suite.headers("collector.scores", ["collector"])
    assert _post(suite, collector, {"features": applicants[0]}).status_code == 403
    auditor = suite.headers("auditor.scores", ["auditor"])
    assert _post(suite, auditor, {"features": applicants[0]}).status_code == 403
    assert suite.direct["scoring"].get("/scores", params={"customer_id": "x"}, headers=auditor).status_code == 200


def test_a_worse_value_never_earns_more_points_from_that_feature(suite, officer, applicants, trained):
    """Reason-code monotonicity: along each numeric feature the points move one way only, the way WoE says."""
    bundle = load_bundle(trained_bundle(trained))
    base = applicants[0]
    for spec in bundle.schema("scorecard"):
        if spec.kind != "numeric":
            continue
        grid = [spec.min + (spec.max - spec.min) * i / 40 for i in range(41)]
        rows = [{**base, spec.name: v} for v in grid]
        results = score_rows(bundle, rows)
        points = [r["points_per_feature"][spec.name] for r in results]
        pds = [r["pd"] for r in results]
        steps = [b - a for a, b in zip(points, points[1:]) if abs(b - a) > 1e-9]
        assert all(s > 0 for s in steps) or all(s < 0 for s in steps), spec.name
        # Whichever way the points move, a worse (higher-PD) value never gets more points from the feature.
        for (p1, d1), (p2, d2) in zip(zip(points, pds), zip(points[1:], pds[1:])):
            if d2 > d1 + 1e-12:
                assert p2 <= p1 + 1e-9, spec.name


def test_the_typed_client_scores_a_batch_and_reads_the_latest_score(suite, champion, applicants):
    token = suite.token("client.user", ["loan_officer"], branch="BJ001")

    async def run():  # noqa: ANN202
        client = ScoringClient(suite.kernel, httpx.ASGITransport(suite.services["scoring"]))
        try:
            scores = await client.score_batch([ScoreRow(features=a) for a in applicants[:3]], token=token)
            with pytest.raises(Problem) as bad:
                await client.score_batch([ScoreRow(features={"nope": 1})], token=token)
            latest = await client.latest_score("nobody-yet", token=token)
        finally:
            await client.aclose()
        return scores, bad.value, latest

    scores, bad, latest = asyncio.run(run())
    assert [s.decision for s in scores] and all(s.model_version.startswith("german-credit") for s in scores)
    assert bad.status == 422 and latest is None


def test_scores_are_reachable_through_the_gateway(suite, officer, applicants):
    response = suite.client.post("/api/scoring/scores:batch", json={"rows": [{"features": applicants[6]}]},
                                 headers=officer)
    assert response.status_code == 201, response.text
    score_id = response.json()["scores"][0]["id"]
    assert suite.client.get(f"/api/scoring/scores/{score_id}", headers=officer).json()["id"] == score_id
