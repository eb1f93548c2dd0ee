"""PSI of the features and the score against the training sample, by endpoint and by command."""

import argparse

import pytest

from services.scoring.cli import add_psi_arguments, run_psi
from services.scoring.hashing import hash_personal
from services.scoring.stability.service import _feature_psi, band, psi


def test_traffic_like_the_training_sample_is_stable_and_a_shifted_feature_is_flagged(suite, champion, applicants,
                                                                                      monkeypatch):
    analyst = suite.headers("analyst.psi", ["risk_analyst"])
    client = suite.direct["scoring"]
    empty = client.get("/stability", headers=analyst)
    assert empty.status_code == 200 and empty.json()["n_recent"] == 0
    assert client.post("/scores:batch", json={"rows": [{"features": a} for a in applicants[:500]]},
                       headers=analyst).status_code == 201
    report = client.get("/stability", params={"window": 500}, headers=analyst).json()
    assert report["n_recent"] == 500 and report["score"]["band"] == "stable"
    bands = {f["feature"]: f["band"] for f in report["features"]}
    assert bands["duration_in_month"] == "stable" and set(bands.values()) <= {"stable", "watch", None}
    assert report["bands"]["shift"] == "PSI > 0.25"

    shifted = [{"features": {**a, "duration_in_month": 60}} for a in applicants[500:900]]
    assert client.post("/scores:batch", json={"rows": shifted}, headers=analyst).status_code == 201
    report = client.get("/stability", params={"window": 400}, headers=analyst).json()
    worst = report["features"][0]
    assert worst["feature"] == "duration_in_month" and worst["band"] == "shift" and worst["psi"] > 0.25

    # The command reads the same report straight from the database.
    monkeypatch.setenv("LOANCRM_VAR_DIR", str(suite.kernel.var_dir))
    monkeypatch.setenv("LOANCRM_SCORING_DATABASE_URL", suite.kernel.database_url("scoring"))
    args = add_psi_arguments(argparse.ArgumentParser()).parse_args(["--window", "400"])
    assert run_psi(args)["features"][0]["psi"] == worst["psi"]

    officer = suite.headers("officer.psi", ["loan_officer"], branch="BJ001")
    assert client.get("/stability", headers=officer).status_code == 403


def test_psi_bands_and_hashed_categories_compare_like_raw_ones():
    assert psi([50, 50], [50, 50]) == 0.0
    assert band(0.05) == "stable" and band(0.1) == "watch" and band(0.25) == "watch" and band(0.26) == "shift"
    table = {"feature": "sex", "kind": "categorical", "groups": [["f"], ["m"]], "labels": ["f", "m", "Missing",
             "Unknown"], "count": [30, 70, 0, 0], "missing_index": 2, "unknown_index": 3, "splits": None}
    raw = [{"sex": "f"}] * 60 + [{"sex": "m"}] * 40 + [{"sex": None}] * 5
    key = b"k" * 32
    hashed = [hash_personal(key, row, ["sex"]) for row in raw]
    plain, secret = _feature_psi(table, raw, False, key), _feature_psi(table, hashed, True, key)
    assert plain["psi"] == pytest.approx(secret["psi"]) and plain["band"] == "shift"
    assert [b["actual"] for b in secret["bins"]] == [60, 40, 5, 0]
