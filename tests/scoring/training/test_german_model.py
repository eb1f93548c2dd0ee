"""What a risk analyst and the scoring service notice about a model trained on the German credit data."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from services.scoring.training import ParityError, TrainResult, load_bundle, reason_codes, save_bundle, score_rows
from services.scoring.training.dataset import load_dataset
from services.scoring.training.onnx_export import parity_max_abs_diff
from services.scoring.training.runtime import feeds_from_frame, feeds_from_rows, make_session
from services.scoring.training.split import split_rows

from .conftest import GERMAN


@pytest.fixture(scope="module")
def test_rows(german: TrainResult) -> pd.DataFrame:
    ds = load_dataset(GERMAN, "creditability", good="good")
    parts, _ = split_rows(ds.y, german.split.seed)
    return ds.frame.iloc[parts.test]


def _records(frame: pd.DataFrame) -> list[dict]:
    return [{k: (None if pd.isna(v) else v) for k, v in row.items()} for row in frame.to_dict("records")]


@pytest.mark.parametrize("role", ["scorecard", "challenger"])
def test_onnx_reproduces_in_process_model_on_whole_test_set(german: TrainResult, test_rows: pd.DataFrame,
                                                             role: str) -> None:
    model = german.models[role]
    onnx_pd = make_session(model.onnx).run(["pd"], feeds_from_frame(model.schema, test_rows))[0]
    assert len(onnx_pd) == len(test_rows) == german.split.n_test
    assert np.max(np.abs(onnx_pd - model.fitted.predict_pd(test_rows))) <= 1e-5
    assert model.parity_max_abs_diff <= 1e-5
    assert german.parity_max_abs_diff <= 1e-5


@pytest.mark.parametrize("role", ["scorecard", "challenger"])
def test_graph_takes_raw_columns_by_name(german: TrainResult, role: str) -> None:
    model = german.models[role]
    session = make_session(model.onnx)
    inputs = {i.name: i for i in session.get_inputs()}
    assert list(inputs) == model.features
    for spec in model.schema:
        assert inputs[spec.name].type == ("tensor(float)" if spec.kind == "numeric" else "tensor(string)")
        assert inputs[spec.name].shape[1] == 1
    assert {o.name for o in session.get_outputs()} >= {"pd", "score"}
    if role == "scorecard":
        points = next(o for o in session.get_outputs() if o.name == "points_per_feature")
        assert points.shape[1] == len(model.features)


@pytest.mark.parametrize("role", ["scorecard", "challenger"])
def test_missing_values_and_unseen_categories_score_without_nan(german: TrainResult, role: str) -> None:
    model = german.models[role]
    unseen = {s.name: ("never-seen-before" if s.kind == "categorical" else None) for s in model.schema}
    rows = [{}, unseen, {s.name: float("nan") if s.kind == "numeric" else None for s in model.schema}]
    out = make_session(model.onnx).run(None, feeds_from_rows(model.schema, rows))
    for array in out:
        assert np.all(np.isfinite(array))
    pd_ = out[0]
    assert np.all((pd_ > 0) & (pd_ < 1))


def test_scorecard_missing_and_unknown_land_in_their_explicit_bins(german: TrainResult) -> None:
    model = german.scorecard
    unseen = {s.name: ("never-seen-before" if s.kind == "categorical" else None) for s in model.schema}
    out = make_session(model.onnx).run(["points_per_feature"], feeds_from_rows(model.schema, [unseen]))[0][0]
    for j, table in enumerate(model.bins):
        expected = table["unknown_index"] if table["kind"] == "categorical" else table["missing_index"]
        assert table["labels"][expected] in ("Missing", "Unknown")
        assert out[j] == pytest.approx(table["points"][expected], abs=1e-3)


def test_score_follows_the_scaling(german: TrainResult, test_rows: pd.DataFrame) -> None:
    sc = german.scaling
    assert sc.score_from_pd(1 / 51) == pytest.approx(600.0)  # odds 50:1 -> base points
    assert sc.score_from_pd(1 / 26) == pytest.approx(580.0)  # odds halved -> minus PDO
    for model in german.models.values():
        pd_, score = make_session(model.onnx).run(["pd", "score"], feeds_from_frame(model.schema, test_rows))
        expected = sc.offset + sc.factor * np.log((1 - pd_.astype(float)) / pd_.astype(float))
        assert np.allclose(score, expected, atol=1e-2)
    points = make_session(german.scorecard.onnx).run(None, feeds_from_frame(german.scorecard.schema, test_rows))
    assert np.allclose(points[2].sum(axis=1), points[1], atol=1e-3)


def test_worse_value_never_earns_more_points(german: TrainResult) -> None:
    """Monotonic reason codes: moving a value towards the riskier side never raises that feature's points."""
    model = german.scorecard
    session = make_session(model.onnx)
    checked = 0
    for j, table in enumerate(model.bins):
        n_regular = table["missing_index"]
        rates = table["bad_rate"][:n_regular]
        points = table["points"][:n_regular]
        # whatever the kind, a bin with a higher bad rate must not score more
        for a in range(n_regular):
            for b in range(n_regular):
                if rates[a] is not None and rates[b] is not None and rates[a] > rates[b]:
                    assert points[a] <= points[b] + 1e-9
        if table["kind"] != "numeric" or table["bad_rate_trend"] == "none":
            continue
        spec = model.schema[j]
        grid = np.linspace(spec.min, spec.max, 60)
        if table["bad_rate_trend"] == "descending":
            grid = grid[::-1]  # walk from the safe side to the risky side
        rows = [{spec.name: float(v)} for v in grid]
        got = session.run(["points_per_feature"], feeds_from_rows(model.schema, rows))[0][:, j]
        assert np.all(np.diff(got) <= 1e-4), table["feature"]
        checked += 1
    assert checked >= 3


def test_reason_codes_name_the_biggest_shortfalls(german: TrainResult, test_rows: pd.DataFrame) -> None:
    model = german.scorecard
    rows = _records(test_rows.head(20))
    run = make_session(model.onnx).run(None, feeds_from_rows(model.schema, rows))
    outputs = dict(zip(["pd", "score", "points_per_feature"], run))
    reasons = reason_codes(model.meta(), rows, outputs, top_k=3)
    max_points = np.array([t["max_points"] for t in model.bins])
    for i, top in enumerate(reasons):
        shortfall = max_points - outputs["points_per_feature"][i]
        assert len(top) <= 3
        assert [v for _, v in top] == sorted((v for _, v in top), reverse=True)
        assert top[0][1] == pytest.approx(shortfall.max(), abs=1e-3)
        assert top[0][0] == model.features[int(np.argmax(shortfall))]
    # the session path gives the same answer as precomputed outputs
    assert reason_codes(model.meta(), rows, make_session(model.onnx), top_k=3) == reasons


def test_challenger_occlusion_reasons(german: TrainResult, test_rows: pd.DataFrame) -> None:
    model = german.challenger
    session = make_session(model.onnx)
    reference = model.reason_meta["reference"]
    assert set(reference) == set(model.features)
    assert reason_codes(model.meta(), [reference], session) == [[]]  # a typical applicant has nothing against him
    rows = _records(test_rows.head(10))
    for top in reason_codes(model.meta(), rows, session, top_k=4):
        assert len(top) <= 4
        assert all(v > 0 for _, v in top)
        assert [v for _, v in top] == sorted((v for _, v in top), reverse=True)


def test_bundle_reloads_to_identical_scores(german: TrainResult, test_rows: pd.DataFrame, tmp_path) -> None:
    path = tmp_path / "model.zip"
    save_bundle(german, path)
    german.save_bundle(tmp_path / "again.zip")
    assert (tmp_path / "again.zip").read_bytes() == path.read_bytes()
    bundle = load_bundle(path)
    rows = _records(test_rows)
    for role, model in german.models.items():
        expected = make_session(model.onnx).run(["pd", "score"], feeds_from_rows(model.schema, rows))
        scored = score_rows(bundle, rows, role=role, top_k=2)
        assert [r["pd"] for r in scored] == expected[0].astype(float).tolist()
        assert [r["score"] for r in scored] == expected[1].astype(float).tolist()
        assert all(len(r["reasons"]) <= 2 for r in scored)
    assert bundle.session("scorecard") is bundle.session("scorecard")
    first = score_rows(bundle, rows[:1])[0]
    assert set(first["points_per_feature"]) == set(german.scorecard.features)
    assert math.isclose(sum(first["points_per_feature"].values()), first["score"], abs_tol=1e-2)
    manifest = bundle.manifest
    assert manifest["scaling"]["pdo"] == 20 and manifest["models"]["scorecard"]["bins"]
    assert manifest["models"]["challenger"]["reason_meta"]["method"] == "occlusion"


def test_schema_describes_the_inputs(german: TrainResult) -> None:
    for model in german.models.values():
        for spec in model.schema:
            assert spec.required
            if spec.kind == "numeric":
                assert spec.min is not None and spec.min <= spec.max
            else:
                assert spec.categories and spec.min is None
    duration = next(s for s in german.challenger.schema if s.name == "duration_in_month")
    assert 4.0 <= duration.min < duration.max <= 72.0  # observed on the rows the model was fitted on


def test_card_iv_table_metrics_and_plots(german: TrainResult) -> None:
    assert len(german.data_sha256) == 64
    assert german.iv_table[0]["iv"] >= german.iv_table[-1]["iv"]
    assert {r["feature"] for r in german.iv_table if r["in_model"]} == set(german.scorecard.features)
    assert german.card["relationship"]["features"] == ["telephone", "housing"]
    assert german.relationship_auc_lift == pytest.approx(
        german.card["relationship"]["test_auc_with"] - german.card["relationship"]["test_auc_without"]
    )
    for model in german.models.values():
        for split in (model.validation, model.test):
            assert split.gini == pytest.approx(2 * split.auc - 1)
            assert 0 < split.ks < 1 and 0 < split.brier < 0.25
            assert len(split.calibration) == 10 and sum(r["n"] for r in split.calibration) == split.n
        assert set(model.plots) == {"roc", "ks", "score_distribution"}
        assert all(png.startswith(b"\x89PNG") for png in model.plots.values())
        assert len(model.sha256) == 64


def test_pipeline_refuses_a_graph_that_drifts_from_its_model(german: TrainResult, test_rows: pd.DataFrame) -> None:
    model = german.scorecard
    off_by_a_bit = model.fitted.predict_pd(test_rows) + 2e-5
    with pytest.raises(ParityError):
        parity_max_abs_diff(model.onnx, model.schema, test_rows, off_by_a_bit)
