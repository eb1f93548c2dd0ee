"""The stability report reads a bounded window of recent scores (a window of 50,000 took a minute)."""


def test_a_window_past_the_bound_is_a_422_naming_it(suite, champion):
    analyst = suite.headers("analyst.window", ["risk_analyst"])
    response = suite.client.get("/api/scoring/stability", params={"window": 50_001}, headers=analyst)
    assert response.status_code == 422, response.text
    assert [e["field"] for e in response.json()["errors"]] == ["query.window"]
    assert suite.client.get("/api/scoring/stability", params={"window": 50_000}, headers=analyst).status_code == 200


def test_repeated_inputs_count_once_each_in_their_bins(suite, champion, applicants):
    analyst = suite.headers("analyst.repeat", ["risk_analyst"])
    rows = [{"features": applicants[0]}] * 30 + [{"features": {**applicants[1], "duration_in_month": None}}] * 12
    assert suite.client.post("/api/scoring/scores:batch", json={"rows": rows}, headers=analyst).status_code == 201
    report = suite.client.get("/api/scoring/stability", params={"window": 42}, headers=analyst).json()
    duration = next(f for f in report["features"] if f["feature"] == "duration_in_month")
    actual = [b["actual"] for b in duration["bins"] if b["actual"]]
    assert sorted(actual) == [12, 30] and sum(b["actual"] for b in duration["bins"]) == 42
