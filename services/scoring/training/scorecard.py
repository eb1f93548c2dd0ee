"""WOE-binned logistic scorecard: optbinning for the bins, scikit-learn for the regression."""
from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from optbinning import BinningProcess
from sklearn.linear_model import LogisticRegression

from .contract import fail_safe_table
from .models import DataError, FeatureKind, Scaling

# optbinning's WoE is ln(%good / %bad): a riskier bin has a lower WoE, so every coefficient must be negative
# for a riskier bin to cost points. A positive one (collinearity) would reward risk, so that feature goes.
_UNKNOWN_PROBE = "\x00unseen-category"


@contextmanager
def _quiet() -> Iterator[None]:
    """optbinning 1.0 trips pandas 3 deprecation warnings that say nothing to our users."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", module=r"optbinning(\.|$)")
        yield


@dataclass(frozen=True)
class ScorecardParams:
    min_iv: float = 0.02
    C: float = 0.1  # L2 strength of the logistic regression on WoE values
    max_n_bins: int = 8
    min_bin_size: float = 0.05
    # Categories rarer than this share of the rows share one "others" bin: binned by their own few rows (an
    # employer seen once), they land in the best or worst bin by chance and the scorecard learns noise.
    cat_cutoff: float = 0.01

    def to_dict(self) -> dict[str, Any]:
        return {"min_iv": self.min_iv, "C": self.C, "max_n_bins": self.max_n_bins, "min_bin_size": self.min_bin_size,
                "cat_cutoff": self.cat_cutoff}


# Per feature, values that code "no data" or another special case (-1, 999, "N/A"...): they get a bin of their
# own instead of being binned with the values they happen to be near.
SpecialValues = dict[str, list[Any]]


@dataclass
class Scorecard:
    binning: BinningProcess
    lr: LogisticRegression
    features: list[str]
    kinds: dict[str, FeatureKind]
    scaling: Scaling
    iv: dict[str, float]
    dropped_for_sign: list[str] = field(default_factory=list)
    special: SpecialValues = field(default_factory=dict)

    def woe(self, frame: pd.DataFrame) -> pd.DataFrame:
        with _quiet():
            out = self.binning.transform(frame[self.binning.variable_names], metric="woe", metric_missing="empirical",
                                         metric_special="empirical")
        return out[self.features]

    def predict_pd(self, frame: pd.DataFrame) -> np.ndarray:
        return self.lr.predict_proba(self.woe(frame).to_numpy())[:, 1]

    @property
    def intercept(self) -> float:
        return float(self.lr.intercept_[0])

    def bins(self) -> list[dict[str, Any]]:
        """Per selected feature: bins with WoE, logit contribution and points, then the missing bin
        (and, for categoricals, the unknown-category bin), then the special-values bin if it has any. The unknown
        bin, and a missing bin no row fell in, score as the worst bin (contract.fail_safe_table)."""
        n = len(self.features)
        base = self.scaling.offset / n - self.scaling.factor * self.intercept / n
        tables = []
        for coef, name in zip(self.lr.coef_[0], self.features):
            with _quiet():
                table = _feature_bins(self.binning.get_binned_variable(name), self.kinds[name],
                                      self.special.get(name, []))
            table["coefficient"] = float(coef)
            table["contribution"] = [float(coef * w) for w in table["woe"]]
            table["points"] = [base - self.scaling.factor * c for c in table["contribution"]]
            fail_safe_table(table)
            table["max_points"] = max(table["points"])
            table["iv"] = self.iv[name]
            tables.append(table)
        return tables


def _feature_bins(optb: Any, kind: FeatureKind, special: list[Any]) -> dict[str, Any]:
    build = optb.binning_table.build()
    counts = build["Count"].to_numpy()
    events = build["Event"].to_numpy()
    if kind == "numeric":
        splits = [float(s) for s in optb.splits]
        edges = [-np.inf, *splits, np.inf]
        labels = [f"[{edges[i]:g}, {edges[i + 1]:g})" for i in range(len(splits) + 1)] + ["Missing"]
        probes = np.array([splits[0] - 1.0 if splits else 0.0, *splits, np.nan], dtype=float)
        groups = None
    else:
        splits = None
        groups = [[str(c) for c in g] for g in optb.splits]
        labels = [", ".join(g) for g in groups] + ["Missing", "Unknown"]
        probes = np.array([g[0] for g in groups] + [np.nan, _UNKNOWN_PROBE], dtype=object)
    n_bins = len(probes) - (1 if kind == "numeric" else 2)
    if special:  # its own bin, last (the indices of the missing and unknown bins stay where they were)
        labels.append("Special")
        probes = np.concatenate([probes, np.array(special[:1], dtype=probes.dtype)])
    # Ask optbinning itself for each bin's WoE, so the ONNX graph reproduces its transform exactly.
    woe = optb.transform(probes, metric="woe", metric_missing="empirical", metric_special="empirical")
    # optbinning's table: the regular bins, then Special, then Missing.
    bin_counts = [int(c) for c in counts[:n_bins]] + [int(counts[n_bins + 1])]
    bin_events = [int(e) for e in events[:n_bins]] + [int(events[n_bins + 1])]
    if kind == "categorical":
        bin_counts.append(0)
        bin_events.append(0)
    if special:
        bin_counts.append(int(counts[n_bins]))
        bin_events.append(int(events[n_bins]))
    rates = [e / c if c else None for e, c in zip(bin_events, bin_counts)]
    regular = [r for r in rates[:n_bins] if r is not None]
    trend = ("ascending" if regular == sorted(regular)
             else "descending" if regular == sorted(regular, reverse=True) else "none")
    table = {
        "feature": optb.name,
        "kind": kind,
        "splits": splits,
        "groups": groups,
        "labels": labels,
        "count": bin_counts,
        "bad": bin_events,
        "bad_rate": rates,
        "woe": [float(w) for w in woe],
        "bad_rate_trend": trend,
        "missing_index": n_bins,
        "unknown_index": n_bins + 1 if kind == "categorical" else None,
    }
    if special:  # absent otherwise, so a model without special values exports as it always did
        table.update(special_values=list(special), special_index=len(labels) - 1)
    return table


def fit_binning(frame: pd.DataFrame, y: np.ndarray, kinds: dict[str, FeatureKind], params: ScorecardParams,
                special: SpecialValues | None = None) -> BinningProcess:
    names = list(frame.columns)
    numeric = [c for c in names if kinds[c] == "numeric"]
    categorical = [c for c in names if kinds[c] == "categorical"]
    fit_params: dict[str, dict[str, Any]] = {c: {"monotonic_trend": "auto_asc_desc"} for c in numeric}
    fit_params.update({c: {"cat_cutoff": params.cat_cutoff} for c in categorical})
    for name, values in (special or {}).items():
        if name in names:
            fit_params.setdefault(name, {})["special_codes"] = list(values)
    binning = BinningProcess(
        names,
        categorical_variables=categorical,
        max_n_bins=params.max_n_bins,
        min_bin_size=params.min_bin_size,
        selection_criteria={"iv": {"min": params.min_iv}},
        binning_fit_params=fit_params,
        n_jobs=1,
        verbose=False,
    )
    with _quiet():
        return binning.fit(frame, y)


def fit_scorecard(
    frame: pd.DataFrame,
    y: np.ndarray,
    kinds: dict[str, FeatureKind],
    scaling: Scaling,
    params: ScorecardParams = ScorecardParams(),
    special: SpecialValues | None = None,
) -> Scorecard:
    special = {name: values for name, values in (special or {}).items() if name in frame.columns and values}
    binning = fit_binning(frame, y, kinds, params, special)
    with _quiet():
        summary = binning.summary().set_index("name")
        woe = binning.transform(frame, metric="woe", metric_missing="empirical", metric_special="empirical")
    iv = {str(k): float(v) for k, v in summary["iv"].items()}
    features = [str(f) for f in binning.get_support(names=True)]
    if not features:
        raise DataError(f"no feature reaches the information-value threshold {params.min_iv}")
    dropped: list[str] = []
    while True:
        lr = LogisticRegression(C=params.C, max_iter=2000).fit(woe[features].to_numpy(), y)
        wrong = [f for f, b in zip(features, lr.coef_[0]) if b >= 0]
        if not wrong or len(features) == 1:
            break
        weakest = min(wrong, key=lambda f: iv[f])
        features.remove(weakest)
        dropped.append(weakest)
    return Scorecard(binning, lr, features, {f: kinds[f] for f in frame.columns}, scaling, iv, dropped, special)


def iv_table(card: Scorecard) -> list[dict[str, Any]]:
    with _quiet():
        summary = card.binning.summary()
    rows = []
    for rec in summary.sort_values("iv", ascending=False).to_dict("records"):
        name = str(rec["name"])
        rows.append(
            {
                "feature": name,
                "kind": card.kinds[name],
                "iv": float(rec["iv"]),
                "n_bins": int(rec["n_bins"]),
                "passes_iv_threshold": bool(rec["selected"]),
                "in_model": name in card.features,
            }
        )
    return rows
