"""Serving-side helpers: onnxruntime sessions and feeds (one [N, 1] tensor per raw column, by name).

Kept free of training libraries so that a scoring service can import it cheaply.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import onnxruntime as ort
import pandas as pd

from .models import FeatureSpec

MISSING_CATEGORY = ""  # what a missing categorical looks like inside the ONNX graphs


# How a category is normalised before it is looked up: decided per feature at training (see dataset.py) and kept
# in the bundle's schema, so serving treats "Education" and "education " as training did.
TEXT_RULES = ("strip_casefold", "strip", "exact")


def normalise_text(value: str, rule: str | None) -> str:
    if rule == "strip_casefold":
        return value.strip().casefold()
    if rule == "strip":
        return value.strip()
    return value


def _missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v)) or (isinstance(v, str) and v.strip() == "")


def _numbers(spec: FeatureSpec, values: Sequence[Any]) -> np.ndarray:
    out = np.array([math.nan if v is None or (isinstance(v, str) and v.strip() == "") else float(v) for v in values],
                   dtype=np.float32).reshape(-1, 1)
    if spec.fallback is not None and not spec.missing_learned:
        # No missing bin learned: the feature's worst value instead (the fail-safe of the input contract).
        out[np.isnan(out)] = np.float32(spec.fallback)
    return out


_MEMO_LIMIT = 4096  # distinct texts remembered per feature: a book's categories, not every odd value sent


def _categories(spec: FeatureSpec, values: Sequence[Any]) -> np.ndarray:
    memo = spec.fed  # text -> category fed, as `category` decides it (10k-row batches repeat a few values)
    out = []
    for v in values:
        fed = memo.get(v) if type(v) is str else None
        if fed is None:
            fed = category(spec, v)
            if type(v) is str and len(memo) < _MEMO_LIMIT:
                memo[v] = fed
        out.append(fed)
    return np.array(out, dtype=object).reshape(-1, 1)


def category(spec: FeatureSpec, v: Any) -> str:
    """The category the graph is fed: normalised text; an unseen category, or a missing one the model learned no
    bin for, becomes the feature's fallback (its worst learned bin) when the bundle records one."""
    value = MISSING_CATEGORY if _missing(v) else normalise_text(str(v), spec.text)
    if spec.fallback is None:
        return value
    if value == MISSING_CATEGORY:
        return value if spec.missing_learned else str(spec.fallback)
    return value if spec.categories is None or value in spec.known else str(spec.fallback)


def feeds_from_rows(schema: Sequence[FeatureSpec], rows: Sequence[Mapping[str, Any]]) -> dict[str, np.ndarray]:
    """Absent keys and None are missing: the missing bin, or the fallback (see `category`)."""
    feeds: dict[str, np.ndarray] = {}
    for spec in schema:
        values = [row.get(spec.name) for row in rows]
        feeds[spec.name] = _numbers(spec, values) if spec.kind == "numeric" else _categories(spec, values)
    return feeds


def contract_frame(schema: Sequence[FeatureSpec], frame: pd.DataFrame) -> pd.DataFrame:
    """`frame` as the served graph sees it (fallbacks applied, text normalised), for the in-process model: a missing
    category stays NaN, a missing number the model learned a bin for too."""
    out = frame.copy()
    for spec in schema:
        col = frame[spec.name]
        if spec.kind == "numeric":
            if spec.fallback is not None and not spec.missing_learned:
                out[spec.name] = col.fillna(float(spec.fallback))
        else:
            fed = [category(spec, v) for v in col]
            out[spec.name] = pd.Series([np.nan if v == MISSING_CATEGORY else v for v in fed], index=col.index,
                                       dtype=object)
    return out


def feeds_from_frame(schema: Sequence[FeatureSpec], frame: pd.DataFrame) -> dict[str, np.ndarray]:
    feeds: dict[str, np.ndarray] = {}
    for spec in schema:
        col = frame[spec.name]
        if spec.kind == "numeric":
            if spec.fallback is not None and not spec.missing_learned:
                col = col.fillna(float(spec.fallback))
            feeds[spec.name] = col.to_numpy(dtype=np.float32).reshape(-1, 1)
        else:
            feeds[spec.name] = _categories(spec, col.tolist())
    return feeds


def make_session(onnx_bytes: bytes) -> ort.InferenceSession:
    """One thread per session: a scoring service runs many small requests side by side."""
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    return ort.InferenceSession(onnx_bytes, sess_options=opts, providers=["CPUExecutionProvider"])
