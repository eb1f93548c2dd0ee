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


def _num(v: Any) -> float:
    if v is None or (isinstance(v, str) and v.strip() == ""):
        return math.nan
    return float(v)


def _cat(v: Any) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return MISSING_CATEGORY
    return str(v)


def feeds_from_rows(schema: Sequence[FeatureSpec], rows: Sequence[Mapping[str, Any]]) -> dict[str, np.ndarray]:
    """Absent keys and None become NaN / "" so they land in the missing bin."""
    feeds: dict[str, np.ndarray] = {}
    for spec in schema:
        values = [row.get(spec.name) for row in rows]
        if spec.kind == "numeric":
            feeds[spec.name] = np.array([_num(v) for v in values], dtype=np.float32).reshape(-1, 1)
        else:
            feeds[spec.name] = np.array([_cat(v) for v in values], dtype=object).reshape(-1, 1)
    return feeds


def feeds_from_frame(schema: Sequence[FeatureSpec], frame: pd.DataFrame) -> dict[str, np.ndarray]:
    feeds: dict[str, np.ndarray] = {}
    for spec in schema:
        col = frame[spec.name]
        if spec.kind == "numeric":
            feeds[spec.name] = col.to_numpy(dtype=np.float32).reshape(-1, 1)
        else:
            feeds[spec.name] = np.array([_cat(v) for v in col], dtype=object).reshape(-1, 1)
    return feeds


def make_session(onnx_bytes: bytes) -> ort.InferenceSession:
    """One thread per session: a scoring service runs many small requests side by side."""
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    return ort.InferenceSession(onnx_bytes, sess_options=opts, providers=["CPUExecutionProvider"])
