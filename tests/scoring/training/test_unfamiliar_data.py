"""What a risk analyst trying the pipeline on a book of their own runs into first: column names that are not
identifiers, targets that are not clean 0/1 or good/bad, rare categories, and input errors on the command line."""
from __future__ import annotations

import argparse

import numpy as np
import pandas as pd
import pytest

from services.scoring.training import MODEL_FAMILIES, DataError
from services.scoring.training.cli import add_train_arguments, run_train
from services.scoring.training.dataset import load_dataset
from services.scoring.training.flows import build_model
from services.scoring.training.models import Scaling
from services.scoring.training.runtime import feeds_from_rows, make_session
from services.scoring.training.split import split_rows

from .conftest import synthetic_loans


@pytest.mark.parametrize("family", MODEL_FAMILIES)
def test_columns_named_with_punctuation_are_the_onnx_inputs(family: str) -> None:
    """As in "Give Me Some Credit" (NumberOfTime30-59DaysPastDueNotWorse): the graph is fed by the raw names."""
    names = {"debt_ratio": "NumberOfTime30-59 (ratio)", "employment": "employment/status", "region": "1st region"}
    loans = synthetic_loans(n=800).drop(columns="application_date").rename(columns=names)
    ds = load_dataset(loans, "status", good="repaid")
    parts, _ = split_rows(ds.y, 0)
    model = build_model(family, ds, parts, Scaling(), seed=0)
    session = make_session(model.onnx)
    assert [i.name for i in session.get_inputs()] == model.features
    out = session.run(["pd"], feeds_from_rows(model.schema, [{"NumberOfTime30-59 (ratio)": 0.9}]))[0]
    assert np.all(np.isfinite(out)) and model.parity_max_abs_diff <= 1e-5


def _labelled(target: list) -> pd.DataFrame:  # noqa: ANN001
    rng = np.random.default_rng(0)
    return pd.DataFrame({"x": rng.normal(size=len(target)), "status": target})


@pytest.mark.parametrize(
    ("target", "good", "message"),
    [
        (["N", "Y"] * 50 + ["maybe"], "N", r"\['N', 'Y', 'maybe'\]; with good='N'"),  # was counted as bad
        (["N", "Y"] * 50, "no", r"\['N', 'Y'\]; with good='no'"),  # a typo: every row was bad
        ([0, 1] * 50 + [None], None, "missing on 1 rows"),  # was dropped without a word
        ([0, 1, 2] * 30, None, "pass good="),
    ],
)
def test_a_target_that_is_not_cleanly_good_or_bad_is_refused(target: list, good: str | None, message: str) -> None:
    with pytest.raises(DataError, match=message):
        load_dataset(_labelled(target), "status", good=good)


def test_a_column_named_like_a_model_output_is_refused() -> None:
    """A bureau "score" column would clash with the graphs' "score" output inside ONNX."""
    frame = _labelled([0, 1] * 50).rename(columns={"x": "score"})
    with pytest.raises(DataError, match=r"\[.score.\] have the names of model outputs"):
        load_dataset(frame, "status")


def test_too_few_bad_rows_to_split_is_refused() -> None:
    with pytest.raises(DataError, match="only 3 bad rows"):
        split_rows(np.array([1, 1, 1] + [0] * 200), 0)


def test_unusable_data_ends_the_command_with_one_line(tmp_path) -> None:
    """Not a traceback: the analyst sees what to change (and a missing file is no different)."""
    csv = tmp_path / "book.csv"
    _labelled(["N", "Y"] * 50 + ["maybe"]).to_csv(csv, index=False)
    parser = add_train_arguments(argparse.ArgumentParser())
    with pytest.raises(SystemExit, match=r"^cannot train: target has values"):
        run_train(parser.parse_args(["--data", str(csv), "--target", "status", "--good", "N"]))
    with pytest.raises(SystemExit, match=r"^cannot train: cannot read .*nope\.csv"):
        run_train(parser.parse_args(["--data", str(tmp_path / "nope.csv"), "--target", "status"]))
    with pytest.raises(SystemExit, match=r"^cannot train: date column 'x' has missing or unparseable values"):
        _labelled(["N", "Y"] * 50).to_csv(csv, index=False)
        run_train(parser.parse_args(["--data", str(csv), "--target", "status", "--good", "N", "--date-column", "x"]))


def test_a_yyyymmdd_number_is_a_date_and_any_other_number_is_not() -> None:
    booked = pd.date_range("2021-12-01", periods=100, freq="D")
    frame = _labelled([0, 1] * 50).assign(booked=booked.strftime("%Y%m%d").astype(int))
    ds = load_dataset(frame, "status", date_column="booked")
    assert ds.dates.tolist() == booked.tolist()
    with pytest.raises(DataError, match="unparseable"):  # pandas took it for nanoseconds since 1970
        load_dataset(frame, "status", date_column="x")


def employer_book(n: int = 3000, seed: int = 11) -> pd.DataFrame:
    """300 employers, a few large and a long tail seen once or twice, each with a risk of its own."""
    rng = np.random.default_rng(seed)
    names = np.array([f"employer {i:03d}" for i in range(300)])
    share = 1.0 / np.arange(1, 301) ** 1.1
    employer = rng.choice(300, n, p=share / share.sum())
    bureau = rng.normal(650, 70, n)
    logit = -1.8 + rng.normal(0, 0.5, 300)[employer] - 0.012 * (bureau - 650)
    bad = rng.random(n) < 1.0 / (1.0 + np.exp(-logit))
    return pd.DataFrame({"employer": names[employer], "bureau_score": bureau.round(), "bad": bad.astype(int)})


def test_rare_categories_share_one_bin_instead_of_being_binned_by_chance() -> None:
    ds = load_dataset(employer_book(), "bad")
    parts, _ = split_rows(ds.y, 0)
    model = build_model("scorecard", ds, parts, Scaling(), seed=0)
    employer = next(t for t in model.bins if t["feature"] == "employer")
    counts = ds.frame["employer"].iloc[parts.fit].value_counts()
    rare = set(counts[counts < 0.01 * len(parts.fit)].index)
    assert any(rare <= set(group) for group in employer["groups"])
    # Binned one by one, the tail made employer's IV look huge (0.6) and the scorecard lost AUC on the test set.
    assert employer["iv"] < 0.3 and model.test.auc > 0.70 and model.parity_max_abs_diff <= 1e-5


def test_the_command_line_excludes_ids_and_takes_integer_coded_categories(tmp_path) -> None:
    """Taiwan-default-like: an ID row number and EDUCATION coded 0-6 (risk not monotonic in the code)."""
    rng = np.random.default_rng(5)
    n = 1200
    education = rng.choice([1, 2, 3, 4], n)
    bad = rng.random(n) < np.where(education == 3, 0.45, 0.12)
    csv = tmp_path / "taiwan.csv"
    pd.DataFrame({"ID": np.arange(1, n + 1), "EDUCATION": education, "LIMIT_BAL": rng.lognormal(11, 0.5, n).round(),
                  "default.payment.next.month": bad.astype(int)}).to_csv(csv, index=False)
    parser = add_train_arguments(argparse.ArgumentParser())
    report = run_train(parser.parse_args(["--data", str(csv), "--target", "default.payment.next.month",
                                          "--exclude", "ID", "--categorical", "EDUCATION"]))
    assert report["features"] == ["EDUCATION", "LIMIT_BAL"]
    assert "EDUCATION" in report["scorecard"]["features"] and report["scorecard"]["test_auc"] > 0.6
    with pytest.raises(SystemExit, match=r"columns \['Id'\] not in data"):
        run_train(parser.parse_args(["--data", str(csv), "--target", "default.payment.next.month", "--exclude", "Id"]))


@pytest.mark.parametrize("backend", ["lightgbm", "sklearn_gbm"])
def test_split_points_between_neighbouring_float32_values_keep_onnx_parity(backend: str) -> None:
    """A book with long decimals (utilisation 0.3345...) puts trees' split points a float32 step away from data
    values; the graph, fed float32, must still take the same branch as the model for every row."""
    rng = np.random.default_rng(3)
    base = np.float32(np.arange(1, 31) / 7)  # none exact in binary: each sits between two float32 neighbours
    step_up = rng.random(3000) < 0.5
    x = np.where(step_up, np.nextafter(base[rng.integers(0, 30, 3000)], np.float32(np.inf)),
                 base[rng.integers(0, 30, 3000)])
    # The risk flips between a value and its float32 neighbour, so the trees must split exactly there.
    bad = rng.random(3000) < np.where(step_up, 0.8, 0.2)
    frame = pd.DataFrame({"utilisation": x.astype(np.float64), "noise": rng.normal(size=3000),
                          "status": np.where(bad, "default", "repaid")})
    ds = load_dataset(frame, "status", good="repaid")
    parts, _ = split_rows(ds.y, 0)
    model = build_model(backend, ds, parts, Scaling(), seed=0)  # raises ParityError beyond 1e-5
    assert model.parity_max_abs_diff <= 1e-5 and model.test.auc > 0.55  # the trees did split there


@pytest.mark.parametrize("family", MODEL_FAMILIES)
def test_columns_named_like_the_graphs_own_tensors_train_and_serve(family: str) -> None:
    """A book's "offset", "odds", "logit" or "label" column: the graphs' inner tensors (ours and skl2onnx's) are
    named apart from any column."""
    names = {"debt_ratio": "logit", "employment": "odds", "region": "offset", "monthly_income": "label",
             "channel": "probabilities", "tenure_months": "variable"}
    loans = synthetic_loans(n=800).drop(columns="application_date").rename(columns=names)
    ds = load_dataset(loans, "status", good="repaid")
    parts, _ = split_rows(ds.y, 0)
    model = build_model(family, ds, parts, Scaling(), seed=0)
    assert set(names.values()) & set(model.features) and model.parity_max_abs_diff <= 1e-5
