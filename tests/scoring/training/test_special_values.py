"""Special values: codes such as -1 ("no data") get a scorecard bin of their own, the ONNX graph reproduces it,
the input contract accepts them outside the range, and the command line takes them."""
from __future__ import annotations

import argparse

import numpy as np
import pandas as pd
import pytest

from services.scoring.scores.contract import Contract, check_rows
from services.scoring.training import train
from services.scoring.training.bundle import load_bundle, score_rows
from services.scoring.training.cli import add_train_arguments, parse_special_values
from services.scoring.training.flows import TrainConfig, TrainingFlow
from shared.errors import Problem


def coded_book(n: int = 2500, seed: int = 3) -> pd.DataFrame:
    """`months_since_arrears` is -1 when there is no arrears history at all: those applicants are riskier than
    the long-clean ones the value -1 would be binned with. `segment` codes the unknown as "999"."""
    rng = np.random.default_rng(seed)
    months = rng.integers(0, 120, n).astype(float)
    no_history = rng.random(n) < 0.2
    income = rng.lognormal(8.5, 0.4, n)
    segment = rng.choice(["retail", "sme", "private"], n)
    unknown_segment = rng.random(n) < 0.1
    logit = -1.0 - 0.02 * (months - 60) - 0.7 * (np.log(income) - 8.5) + np.where(no_history, 1.3, 0.0) \
        + np.where(unknown_segment, 0.8, 0.0) + np.where(segment == "sme", 0.3, 0.0)
    bad = rng.random(n) < 1.0 / (1.0 + np.exp(-logit))
    months[no_history] = -1.0
    return pd.DataFrame({
        "months_since_arrears": months,
        "monthly_income": income.round(2),
        "segment": np.where(unknown_segment, "999", segment),
        "status": np.where(bad, "defaulted", "repaid"),
    })


@pytest.fixture(scope="module")
def book() -> pd.DataFrame:
    return coded_book()


@pytest.fixture(scope="module")
def with_specials(book):  # noqa: ANN001, ANN201
    return train(book, "status", good="repaid", seed=0,
                 special_values={"months_since_arrears": ["-1"], "segment": ["999"]})


def _table(result, feature: str) -> dict:  # noqa: ANN001
    return next(t for t in result.scorecard.bins if t["feature"] == feature)


def test_a_special_value_gets_its_own_bin_reproduced_by_the_onnx_graph(with_specials) -> None:
    months = _table(with_specials, "months_since_arrears")
    assert months["labels"][-1] == "Special" and months["special_values"] == [-1.0]
    assert months["special_index"] == len(months["labels"]) - 1 == len(months["points"]) - 1
    assert months["count"][months["special_index"]] > 0
    # Parity over the test set, its missing/unknown variants and a copy with every special value (training
    # refuses to finish above 1e-5).
    assert with_specials.parity_max_abs_diff <= 1e-5
    bundle = load_bundle(_bytes(with_specials))
    row = {"months_since_arrears": -1.0, "monthly_income": 5000.0, "segment": "retail"}
    scored = score_rows(bundle, [row])[0]
    # The graph puts -1 in the special bin, not in the lowest-months bin it would fall into by value.
    assert scored["points_per_feature"]["months_since_arrears"] == pytest.approx(
        months["points"][months["special_index"]], abs=1e-4)
    assert months["points"][months["special_index"]] != pytest.approx(months["points"][0], abs=1e-3)
    # The riskier "no history" applicants cost points against a long clean record.
    assert months["points"][months["special_index"]] < max(months["points"][:months["missing_index"]])


def test_a_categorical_special_code_has_its_own_bin_too(with_specials) -> None:
    if "segment" not in [t["feature"] for t in with_specials.scorecard.bins]:
        pytest.skip("segment did not make it into the scorecard")
    segment = _table(with_specials, "segment")
    assert segment["special_values"] == ["999"] and all("999" not in g for g in segment["groups"])
    bundle = load_bundle(_bytes(with_specials))
    scored = score_rows(bundle, [{"months_since_arrears": 30.0, "monthly_income": 5000.0, "segment": "999"}])[0]
    assert scored["points_per_feature"]["segment"] == pytest.approx(segment["points"][segment["special_index"]],
                                                                    abs=1e-4)


def test_the_input_contract_accepts_a_special_value_outside_the_range(with_specials) -> None:
    schema = {s.name: s for s in with_specials.scorecard.schema}
    months = schema["months_since_arrears"]
    assert months.special_values == [-1.0] and months.min is not None and months.min >= 0
    contract = Contract(schema, frozenset(schema), tolerance=0.5)
    rows = check_rows(contract, [{"months_since_arrears": -1, "monthly_income": 5000.0, "segment": "999"}], ["b"])
    assert rows[0].warnings == []
    with pytest.raises(Problem) as refused:  # any other negative value is still refused
        check_rows(contract, [{"months_since_arrears": -2, "monthly_income": 5000.0, "segment": "retail"}], ["b"])
    assert refused.value.errors[0].field == "b.months_since_arrears"


def test_the_command_line_takes_special_values(book, tmp_path) -> None:
    assert parse_special_values(["months_since_arrears=-1, 999", "segment=999"]) == {
        "months_since_arrears": ["-1", "999"], "segment": ["999"]}
    with pytest.raises(SystemExit):
        parse_special_values(["months_since_arrears"])
    args = add_train_arguments(argparse.ArgumentParser()).parse_args(
        ["--data", "x.csv", "--target", "status", "--special-values", "months_since_arrears=-1"])
    assert args.special_values == ["months_since_arrears=-1"]
    with pytest.raises(ValueError, match="not a feature"):
        TrainingFlow(book, TrainConfig(target="status", good="repaid", special_values={"nope": ["1"]})).load()
    with pytest.raises(ValueError, match="must be numbers"):
        TrainingFlow(book, TrainConfig(target="status", good="repaid",
                                       special_values={"monthly_income": ["n/a"]})).load()


def _bytes(result) -> bytes:  # noqa: ANN001
    from services.scoring.training.bundle import bundle_bytes

    return bundle_bytes(result)
