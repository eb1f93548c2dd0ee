"""The pipeline on a differently shaped book: CLI and report, out-of-time split, reproducibility, families."""
from __future__ import annotations

import argparse
import json

import numpy as np
import pandas as pd
import pytest

from services.scoring.training import MODEL_FAMILIES, train
from services.scoring.training.cli import add_train_arguments, run_train
from services.scoring.training.dataset import load_dataset
from services.scoring.training.flows import build_model
from services.scoring.training.models import Scaling
from services.scoring.training.runtime import feeds_from_rows, make_session
from services.scoring.training.split import split_rows


def test_cli_trains_out_of_time_and_writes_report(loans: pd.DataFrame, tmp_path) -> None:
    csv = tmp_path / "loans.csv"
    loans.to_csv(csv, index=False)
    parser = add_train_arguments(argparse.ArgumentParser())
    args = parser.parse_args(
        [
            "--data", str(csv), "--target", "status", "--good", "repaid", "--seed", "1",
            "--date-column", "application_date", "--relationship-features", "contact_frequency",
            "--report", str(tmp_path / "report.json"), "--out", str(tmp_path / "out"),
        ]
    )
    report = run_train(args)
    on_disk = json.loads((tmp_path / "report.json").read_text())
    assert on_disk == json.loads(json.dumps(report))
    for role in ("scorecard", "challenger"):
        assert 0.6 < on_disk[role]["test_auc"] <= 1 and 0 < on_disk[role]["test_ks"] < 1
    assert on_disk["parity_max_abs_diff"] <= 1e-5
    assert isinstance(on_disk["relationship_auc_lift"], float)

    split = on_disk["split"]
    assert split["method"] == "out_of_time"
    ranges = split["date_ranges"]
    assert ranges["train"][1] <= ranges["validation"][0] <= ranges["validation"][1] <= ranges["test"][0]
    assert split["n_test"] == round(0.3 * len(loans))
    assert "application_date" not in on_disk["features"]

    out = tmp_path / "out"
    for name in ("scorecard.onnx", "challenger.onnx", "model_bundle.zip", "card.json", "card.md", "report.json"):
        assert (out / name).stat().st_size > 0
    assert len(list((out / "plots").glob("*.png"))) == 6


def test_out_of_time_split_puts_newest_rows_in_test(loans: pd.DataFrame) -> None:
    ds = load_dataset(loans, "status", good="repaid", date_column="application_date")
    parts, info = split_rows(ds.y, 0, ds.dates)
    dates = ds.dates.to_numpy()
    assert dates[parts.train].max() <= dates[parts.validation].min()
    assert dates[parts.validation].max() <= dates[parts.test].min()
    assert len(parts.train) + len(parts.validation) + len(parts.test) == len(loans)
    assert info.method == "out_of_time"


def test_random_split_is_stratified_and_seeded(loans: pd.DataFrame) -> None:
    ds = load_dataset(loans, "status", good="repaid")
    a, _ = split_rows(ds.y, 5)
    b, _ = split_rows(ds.y, 5)
    c, _ = split_rows(ds.y, 6)
    assert all(np.array_equal(x, y) for x, y in zip((a.train, a.validation, a.test), (b.train, b.validation, b.test)))
    assert not np.array_equal(a.test, c.test)
    assert len(a.test) == round(0.3 * len(loans))
    assert abs(ds.y[a.test].mean() - ds.y.mean()) < 0.01


def test_same_seed_same_models(loans: pd.DataFrame) -> None:
    first = train(loans, "status", good="repaid", seed=3)
    second = train(loans.copy(), "status", good="repaid", seed=3)
    assert first.data_sha256 == second.data_sha256
    for role in ("scorecard", "challenger"):
        assert first.models[role].sha256 == second.models[role].sha256
        assert first.models[role].metrics() == second.models[role].metrics()
    assert first.card == second.card
    # the event is the bad outcome whatever the target is called
    assert first.card["dataset"]["bad_rate"] == pytest.approx((loans["status"] == "defaulted").mean())
    schema = {s.name: s for s in first.challenger.schema}
    assert schema["employment"].categories == ["civil servant", "salaried", "self-employed", "unemployed"]


@pytest.mark.parametrize("family", MODEL_FAMILIES)
def test_every_model_family_converts_to_onnx(loans: pd.DataFrame, family: str) -> None:
    """Guards library upgrades: each family must still fit, convert and match itself through ONNX."""
    ds = load_dataset(loans, "status", good="repaid")
    parts, _ = split_rows(ds.y, 0)
    model = build_model(family, ds, parts, Scaling(), seed=0)
    assert model.parity_max_abs_diff <= 1e-5
    assert model.test.auc > 0.6
    session = make_session(model.onnx)
    assert [i.name for i in session.get_inputs()] == model.features
    out = session.run(["pd", "score"], feeds_from_rows(model.schema, [{}, {"region": "mars"}]))
    assert np.all(np.isfinite(out[0])) and np.all(np.isfinite(out[1]))
