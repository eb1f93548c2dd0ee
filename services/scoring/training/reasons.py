"""Reason codes: which features pulled a score down most. Serving-side, needs only onnxruntime outputs.

* scorecard ("points_shortfall"): impact = the feature's max points - the points it got; the biggest
  shortfalls are the reasons. Unit: points.
* challenger ("occlusion"): impact = pd(row) - pd(row with the feature set to the reference value), the
  reference being the training median (numeric) / most frequent category (categorical). A positive impact
  means the applicant's actual value raises the PD over a typical applicant's. Unit: probability of default.
  It needs the ONNX session, which is run once on (features + 1) x rows variants.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from .models import PD_OUTPUT, POINTS_OUTPUT, FeatureSpec
from .runtime import feeds_from_rows

_MIN_IMPACT = 1e-9  # below this a feature did not hurt the score at all


def scorecard_reason_meta(bins: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "method": "points_shortfall",
        "unit": "points",
        "features": [t["feature"] for t in bins],
        "max_points": {t["feature"]: t["max_points"] for t in bins},
    }


def occlusion_reason_meta(frame: pd.DataFrame, schema: Sequence[FeatureSpec]) -> dict[str, Any]:
    reference: dict[str, Any] = {}
    for spec in schema:
        col = frame[spec.name].dropna()
        if spec.kind == "numeric":
            reference[spec.name] = float(col.median()) if len(col) else None
        else:
            counts = col.value_counts()
            # ties broken by name so that the reference row is deterministic
            reference[spec.name] = min(counts.index, key=lambda c: (-counts[c], str(c))) if len(counts) else None
    return {"method": "occlusion", "unit": "pd", "features": [s.name for s in schema], "reference": reference}


def _top(impacts: np.ndarray, features: list[str], top_k: int) -> list[tuple[str, float]]:
    values = impacts.tolist()  # Python floats: indexing a numpy array element by element is slow
    order = sorted(range(len(features)), key=lambda j: (-values[j], j))
    return [(features[j], values[j]) for j in order[:top_k] if values[j] > _MIN_IMPACT]


def reason_codes(
    model_meta: Mapping[str, Any],
    rows: Sequence[Mapping[str, Any]],
    source: Mapping[str, np.ndarray] | Any,
    top_k: int = 4,
) -> list[list[tuple[str, float]]]:
    """Top-k (feature, impact) per row, biggest first.

    ``model_meta`` is a model's metadata (``ModelResult.meta()`` or a bundle's manifest entry: it holds
    "schema" and "reason_meta"). ``source`` is either the outputs already computed for ``rows``
    (a mapping with ``points_per_feature``; scorecard only) or an onnxruntime ``InferenceSession``.
    """
    meta = model_meta["reason_meta"]
    features: list[str] = meta["features"]
    if not rows:
        return []

    def schema() -> list[FeatureSpec]:  # parsed only when the model has to be run here
        return [FeatureSpec.from_dict(s) for s in model_meta["schema"]]

    if meta["method"] == "points_shortfall":
        if isinstance(source, Mapping) and POINTS_OUTPUT in source:
            points = np.asarray(source[POINTS_OUTPUT], dtype=np.float64)
        else:
            points = source.run([POINTS_OUTPUT], feeds_from_rows(schema(), rows))[0].astype(np.float64)
        max_points = np.array([meta["max_points"][f] for f in features])
        return [_top(max_points - p, features, top_k) for p in points]

    if meta["method"] == "occlusion":
        if not hasattr(source, "run"):
            raise TypeError("occlusion reason codes need the onnxruntime session, not precomputed outputs")
        reference = meta["reference"]
        variants: list[Mapping[str, Any]] = []
        for row in rows:
            variants.append(row)
            variants.extend({**row, f: reference[f]} for f in features)
        pd_ = source.run([PD_OUTPUT], feeds_from_rows(schema(), variants))[0].astype(np.float64)
        pd_ = pd_.reshape(len(rows), len(features) + 1)
        return [_top(r[0] - r[1:], features, top_k) for r in pd_]

    raise ValueError(f"unknown reason-code method {meta['method']!r}")
