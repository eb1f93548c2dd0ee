"""The fail-safe of the input contract: what an unseen category, or a missing value the model learned no bin for,
is scored as. Never better than the feature's worst learned bin, so that an odd input cannot earn points.

* scorecard: the representative value of the bin with the fewest points (regular, special, or for a category
  the learned missing bin); the graph's own Unknown bin, and a Missing bin nobody was seen in, carry that worst
  bin's points too, so the ONNX graph alone fails safe as well.
* tree challengers (no bins to read): the value with the worst partial dependence, i.e. the candidate (each
  category, or a quantile of the training values) that gives the highest average PD when put in every row of a
  training sample.

Serving substitutes the fallback before the graph runs (runtime.category, runtime._numbers); bundles of format 1,
which predate the rule, get it derived here from their binning table when loaded (scorecards only).
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from .models import FeatureSpec
from .runtime import MISSING_CATEGORY

_SAMPLE_ROWS = 300
_QUANTILES = np.linspace(0.0, 1.0, 21)


def _learned(table: dict[str, Any], index: int | None) -> bool:
    return index is not None and table["count"][index] > 0


def _bin_value(table: dict[str, Any], index: int) -> Any:
    """A raw value that lands in bin `index` (as the float32 graph input sees it, for a number)."""
    if index == table.get("special_index"):
        return table["special_values"][0]
    if index == table["missing_index"]:
        return MISSING_CATEGORY
    if table["kind"] == "categorical":
        return table["groups"][index][0]
    splits = table["splits"]
    if not splits:
        return 0.0
    if index == 0:  # below the first split (one unit below, unless float32 cannot tell them apart)
        value = np.float32(splits[0] - 1.0)
        while float(value) >= splits[0]:
            value = np.nextafter(value, np.float32(-np.inf))
        return float(value)
    value = np.float32(splits[index - 1])  # the smallest float32 at or above the bin's left edge
    while float(value) < splits[index - 1]:
        value = np.nextafter(value, np.float32(np.inf))
    return float(value)


def worst_bin(table: dict[str, Any]) -> int:
    """The learned bin with the fewest points (a categorical's learned missing bin included)."""
    candidates = list(range(table["missing_index"]))
    if table.get("special_index") is not None and _learned(table, table["special_index"]):
        candidates.append(table["special_index"])
    if table["kind"] == "categorical" and _learned(table, table["missing_index"]):
        candidates.append(table["missing_index"])
    return min(candidates, key=lambda i: (table["points"][i], i))


def fail_safe_table(table: dict[str, Any]) -> None:
    """The Unknown bin, and a Missing bin that no training row fell in, take the worst bin's WoE and points."""
    worst = worst_bin(table)
    for index in (table.get("unknown_index"), table["missing_index"]):
        if index is not None and not _learned(table, index):
            for key in ("woe", "contribution", "points"):
                table[key][index] = table[key][worst]


def scorecard_fallbacks(bins: Sequence[dict[str, Any]]) -> dict[str, Any]:
    return {table["feature"]: _bin_value(table, worst_bin(table)) for table in bins}


def worst_values(predict_pd: Callable[[pd.DataFrame], np.ndarray], frame: pd.DataFrame,
                 schema: Sequence[FeatureSpec], seed: int = 0) -> dict[str, Any]:
    """Per feature, the candidate value with the highest mean PD over a sample of `frame` (partial dependence)."""
    sample = frame.sample(n=min(len(frame), _SAMPLE_ROWS), random_state=seed)
    out: dict[str, Any] = {}
    for spec in schema:
        col = frame[spec.name]
        if spec.kind == "numeric":
            seen = col[np.isfinite(col)]
            candidates: list[Any] = sorted({float(np.float32(v)) for v in np.quantile(seen, _QUANTILES)}) \
                if len(seen) else [0.0]
        else:
            candidates = list(spec.categories or [])
            if spec.missing_learned:
                candidates.append(MISSING_CATEGORY)
        candidates += list(spec.special_values or [])
        variants = pd.concat([sample.assign(**{spec.name: np.nan if v == MISSING_CATEGORY else v})
                              for v in candidates], ignore_index=True)
        mean_pd = predict_pd(variants).reshape(len(candidates), len(sample)).mean(axis=1)
        out[spec.name] = candidates[int(np.argmax(mean_pd))]
    return out


def with_fallbacks(schema: Sequence[FeatureSpec], fallbacks: dict[str, Any]) -> list[FeatureSpec]:
    for spec in schema:
        spec.fallback = fallbacks[spec.name]
    return list(schema)


def upgrade_format1(model_meta: dict[str, Any]) -> None:
    """A format-1 model in place: text compared exactly (as it was), and for a scorecard the fallbacks from its
    bins. A format-1 tree model keeps none: its answers with contract warnings still only go to review."""
    tables = {t["feature"]: t for t in model_meta.get("bins") or []}
    for spec in model_meta["schema"]:
        table = tables.get(spec["name"])
        if spec["kind"] == "categorical":
            spec.setdefault("text", "exact")
        if table is not None:
            spec.setdefault("missing_learned", _learned(table, table["missing_index"]))
            spec.setdefault("fallback", _bin_value(table, worst_bin(table)))
