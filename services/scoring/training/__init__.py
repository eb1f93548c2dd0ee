"""Credit-scoring training pipeline (pure library: no web or database code).

Public API, imported lazily so that a scoring service can use ``bundle`` / ``reasons`` without loading the
training libraries::

    train(data, target, *, good=None, seed=0, date_column=None, ...) -> TrainResult
    save_bundle(result, path); load_bundle(path) -> ModelBundle
    score_rows(bundle, rows, role="scorecard", top_k=4) -> list[dict]
    reason_codes(model_meta, rows, outputs_or_session, top_k=4) -> list[list[(feature, impact)]]
"""
from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "train": "flows",
    "TrainConfig": "flows",
    "TrainingFlow": "flows",
    "MODEL_FAMILIES": "flows",
    "TrainResult": "models",
    "ModelResult": "models",
    "FeatureSpec": "models",
    "Scaling": "models",
    "SplitMetrics": "models",
    "ModelBundle": "bundle",
    "save_bundle": "bundle",
    "load_bundle": "bundle",
    "bundle_bytes": "bundle",
    "score_rows": "bundle",
    "reason_codes": "reasons",
    "ParityError": "onnx_export",
    "DataError": "models",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
