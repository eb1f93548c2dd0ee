"""Gradient-boosted challenger: one scikit-learn pipeline (categorical encoding + trees) per backend."""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.impute import SimpleImputer
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder

from .runtime import MISSING_CATEGORY
from .models import FeatureKind

# Small data: many weak trees, strong row/column subsampling and L2, few leaves.
LIGHTGBM_DEFAULTS: dict[str, Any] = {
    "learning_rate": 0.03,
    "max_depth": 3,
    "num_leaves": 7,
    "min_child_samples": 20,
    "subsample": 0.8,
    "subsample_freq": 1,
    "colsample_bytree": 0.5,
    "reg_lambda": 5.0,
}
# Tuned on the validation split only, in this order, until the time budget runs out (the defaults always): a
# candidate replaces the defaults only when its early-stopped validation AUC beats theirs by TUNING_MARGIN, so a
# 15% validation split's noise does not choose for it.
TUNING_GRID: tuple[dict[str, Any], ...] = (
    {},
    {"learning_rate": 0.05},
    {"colsample_bytree": 0.3},
    {"colsample_bytree": 0.8},
    {"num_leaves": 15, "max_depth": 4, "min_child_samples": 30},
    {"num_leaves": 3, "max_depth": 2},
    {"min_child_samples": 40, "reg_lambda": 10.0},
    {"reg_lambda": 1.0, "min_child_samples": 10},
)
TUNING_MARGIN = 0.005
TUNING_SECONDS = 20.0
SKLEARN_GBM_DEFAULTS: dict[str, Any] = {"learning_rate": 0.05, "max_depth": 2, "subsample": 0.8, "max_features": 0.5}
MAX_TREES = 1000
PATIENCE = 100


@dataclass
class Challenger:
    backend: str
    pipeline: Pipeline
    features: list[str]
    kinds: dict[str, FeatureKind]
    params: dict[str, Any] = field(default_factory=dict)

    def predict_pd(self, frame: pd.DataFrame) -> np.ndarray:
        return self.pipeline.predict_proba(_prepare(frame, self.features, self.kinds))[:, 1]


def _prepare(frame: pd.DataFrame, features: list[str], kinds: dict[str, FeatureKind]) -> pd.DataFrame:
    # The ONNX graph sees a missing category as "", so the in-process model must too.
    out = frame[features].copy()
    for c in features:
        if kinds[c] == "categorical":
            out[c] = out[c].fillna(MISSING_CATEGORY).astype(object)
    return out


def _encoder(features: list[str], kinds: dict[str, FeatureKind], impute: bool) -> ColumnTransformer:
    cats = [c for c in features if kinds[c] == "categorical"]
    nums = [c for c in features if kinds[c] == "numeric"]
    # LightGBM routes NaN itself; scikit-learn's GradientBoostingClassifier needs them imputed.
    num_step: Any = SimpleImputer(strategy="median") if impute else "passthrough"
    return ColumnTransformer(
        [("cat", OneHotEncoder(handle_unknown="ignore", sparse_output=False), cats), ("num", num_step, nums)]
    )


def _lightgbm(seed: int, n_estimators: int, params: dict[str, Any] | None = None) -> lgb.LGBMClassifier:
    return lgb.LGBMClassifier(
        n_estimators=n_estimators, random_state=seed, n_jobs=1, deterministic=True, verbose=-1,
        **(params or LIGHTGBM_DEFAULTS),
    )


def _tune(x_train: Any, y_train: np.ndarray, x_val: Any, y_val: np.ndarray, seed: int,
          budget_seconds: float) -> tuple[dict[str, Any], int, dict[str, Any]]:
    """Hyperparameters and number of trees, each candidate early-stopped on the validation split (the test split is
    never seen here). Returns the chosen parameters, trees and what was tried."""
    started = time.monotonic()
    tried: list[dict[str, Any]] = []
    for change in TUNING_GRID:
        if tried and time.monotonic() - started > budget_seconds:
            break
        params = {**LIGHTGBM_DEFAULTS, **change}
        probe = _lightgbm(seed, MAX_TREES, params).fit(
            x_train, y_train, eval_X=(x_val,), eval_y=(y_val,), eval_metric="auc",
            callbacks=[lgb.early_stopping(PATIENCE, first_metric_only=True, verbose=False)])
        trees = max(int(probe.best_iteration_ or MAX_TREES), 50)
        auc = float(roc_auc_score(y_val, probe.predict_proba(x_val, num_iteration=trees)[:, 1]))
        tried.append({"change": change, "validation_auc": auc, "n_estimators": trees, "params": params})
    best = max(tried, key=lambda t: t["validation_auc"])
    if best["validation_auc"] < tried[0]["validation_auc"] + TUNING_MARGIN:
        best = tried[0]
    report = {"on": "validation split", "budget_seconds": budget_seconds, "margin": TUNING_MARGIN,
              "candidates": [{k: t[k] for k in ("change", "validation_auc", "n_estimators")} for t in tried],
              "chosen": best["change"]}
    return best["params"], best["n_estimators"], report


def _float32_splits(pipeline: Pipeline) -> Pipeline:
    """Each split point lowered to the largest float32 at or below it. The ONNX tree ensemble compares float32
    inputs with float32 split points; LightGBM's double split points, rounded to nearest, sent an input equal to
    the rounded value the other way (PD off by 1e-3 on a book with long decimals). With float32 data, `x <= t` and
    `x <= floor32(t)` agree for every input, so the model's answers do not change."""
    gbm = pipeline.named_steps["gbm"]
    lines = gbm.booster_.model_to_string().split("\n")
    for i, line in enumerate(lines):
        if line.startswith("threshold="):
            splits = np.array(line.removeprefix("threshold=").split(), dtype=np.float64)
            lowered = splits.astype(np.float32)
            above = lowered.astype(np.float64) > splits
            lowered[above] = np.nextafter(lowered[above], np.float32(-np.inf))
            lines[i] = "threshold=" + " ".join(f"{v:.17g}" for v in lowered.astype(np.float64))
    # tree_sizes (byte offsets for parallel loading) no longer match the edited trees; without it LightGBM reads
    # the trees one after the other.
    gbm._Booster = lgb.Booster(model_str="\n".join(line for line in lines if not line.startswith("tree_sizes=")))
    return pipeline


def _fit_lightgbm(
    train: pd.DataFrame, y_train: np.ndarray, val: pd.DataFrame, y_val: np.ndarray,
    full: pd.DataFrame, y_full: np.ndarray, features: list[str], kinds: dict[str, FeatureKind], seed: int,
    tuning_seconds: float = TUNING_SECONDS,
) -> tuple[Pipeline, Pipeline, dict[str, Any]]:
    """Tune hyperparameters and the number of trees on validation, then refit on train + validation with them."""
    pre = _encoder(features, kinds, impute=False).fit(train)
    params, n_trees, tuning = _tune(pre.transform(train), y_train, pre.transform(val), y_val, seed, tuning_seconds)
    selection = _float32_splits(
        Pipeline([("pre", pre), ("gbm", _lightgbm(seed, n_trees, params).fit(pre.transform(train), y_train))]))
    final = Pipeline([("pre", _encoder(features, kinds, impute=False)), ("gbm", _lightgbm(seed, n_trees, params))])
    final = _float32_splits(final.fit(full, y_full))
    return selection, final, {**params, "n_estimators": n_trees, "tuning": tuning}


def _fit_sklearn_gbm(
    train: pd.DataFrame, y_train: np.ndarray, val: pd.DataFrame, y_val: np.ndarray,
    full: pd.DataFrame, y_full: np.ndarray, features: list[str], kinds: dict[str, FeatureKind], seed: int,
    tuning_seconds: float = TUNING_SECONDS,
) -> tuple[Pipeline, Pipeline, dict[str, Any]]:
    def make(n: int) -> Pipeline:
        gbm = GradientBoostingClassifier(n_estimators=n, random_state=seed, **SKLEARN_GBM_DEFAULTS)
        return Pipeline([("pre", _encoder(features, kinds, impute=True)), ("gbm", gbm)])

    selection = make(300).fit(train, y_train)
    # staged_predict_proba gives the validation curve of every prefix of the ensemble in one pass.
    staged = selection.named_steps["gbm"].staged_predict_proba(selection.named_steps["pre"].transform(val))
    aucs = [roc_auc_score(y_val, p[:, 1]) for p in staged]
    n_trees = max(int(np.argmax(aucs)) + 1, 50)
    selection = make(n_trees).fit(train, y_train)
    return selection, make(n_trees).fit(full, y_full), {**SKLEARN_GBM_DEFAULTS, "n_estimators": n_trees}


BACKENDS: dict[str, Callable[..., tuple[Pipeline, Pipeline, dict[str, Any]]]] = {
    "lightgbm": _fit_lightgbm,
    "sklearn_gbm": _fit_sklearn_gbm,
}


def fit_challenger(
    frame: pd.DataFrame,
    y: np.ndarray,
    kinds: dict[str, FeatureKind],
    train_idx: np.ndarray,
    val_idx: np.ndarray,
    fit_idx: np.ndarray,
    seed: int,
    backend: str = "lightgbm",
    tuning_seconds: float = TUNING_SECONDS,
) -> tuple[Challenger, Challenger]:
    """Returns (selection model fitted on train only, final model refitted on train + validation)."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown challenger backend {backend!r}; choose from {sorted(BACKENDS)}")
    features = list(frame.columns)
    data = _prepare(frame, features, kinds)
    selection, final, params = BACKENDS[backend](
        data.iloc[train_idx], y[train_idx], data.iloc[val_idx], y[val_idx],
        data.iloc[fit_idx], y[fit_idx], features, kinds, seed, tuning_seconds,
    )
    return Challenger(backend, selection, features, kinds, params), Challenger(backend, final, features, kinds, params)
