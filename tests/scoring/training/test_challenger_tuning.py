"""The challenger tunes on the validation split only, within its time budget, with early stopping."""

from __future__ import annotations

import numpy as np
import pandas as pd

from services.scoring.training import challenger
from services.scoring.training.challenger import TUNING_GRID, fit_challenger


def frame(n: int = 600, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n), "c": rng.choice(["x", "y", "z"], size=n)})
    y = (rng.random(n) < 1 / (1 + np.exp(-(x["a"] - 0.5 * x["b"] + (x["c"] == "x"))))).astype(int).to_numpy()
    return x, y


def test_tuning_sees_train_and_validation_only_and_reports_what_it_tried(monkeypatch) -> None:  # noqa: ANN001
    x, y = frame()
    train, val, test = np.arange(0, 400), np.arange(400, 480), np.arange(480, 600)
    fit = np.concatenate([train, val])
    seen: list[int] = []
    original = challenger._tune

    def spy(x_train, y_train, x_val, y_val, seed, budget):  # noqa: ANN001, ANN202
        seen.extend([len(y_train), len(y_val)])
        return original(x_train, y_train, x_val, y_val, seed, budget)

    monkeypatch.setattr(challenger, "_tune", spy)
    _, final = fit_challenger(x, y, {"a": "numeric", "b": "numeric", "c": "categorical"}, train, val, fit, 0,
                              tuning_seconds=60)
    assert seen == [len(train), len(val)] and len(test) not in seen
    tuning = final.params["tuning"]
    assert tuning["on"] == "validation split" and len(tuning["candidates"]) == len(TUNING_GRID)
    assert all(c["n_estimators"] >= 50 for c in tuning["candidates"])  # early-stopped, at least 50 trees
    chosen = next(c for c in tuning["candidates"] if c["change"] == tuning["chosen"])
    assert chosen["validation_auc"] >= tuning["candidates"][0]["validation_auc"]


def test_no_budget_keeps_the_defaults() -> None:
    x, y = frame(seed=1)
    train, val = np.arange(0, 450), np.arange(450, 600)
    _, final = fit_challenger(x, y, {"a": "numeric", "b": "numeric", "c": "categorical"}, train, val,
                              np.arange(600), 0, tuning_seconds=0)
    assert [c["change"] for c in final.params["tuning"]["candidates"]] == [{}]
    assert final.params["tuning"]["chosen"] == {}
