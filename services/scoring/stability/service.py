"""Population stability (PSI) of each scorecard feature and of the score: training sample vs recent traffic.

Feature bins are the scorecard's own (counts from the sample it was fitted on); recent inputs are binned the
same way. Personal categorical inputs are stored hashed, so their reference categories are hashed with the
same key before comparing; a hashed numeric input cannot be binned and is reported as not measurable.
The score's reference is the deciles of the training sample's scores, kept with the model at registration.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from sqlmodel import Session, select

from services.scoring.hashing import hash_personal
from services.scoring.registry.models import ModelVersion
from services.scoring.scores.models import Score
from services.scoring.training.bundle import ModelBundle, score_rows

BANDS = {"stable": "PSI < 0.1", "watch": "0.1 <= PSI <= 0.25", "shift": "PSI > 0.25"}
SCORE_BINS = 10
_FLOOR = 1e-4  # an empty bin counts as this share, so PSI stays finite


def psi(expected: Sequence[float], actual: Sequence[float]) -> float:
    e = np.asarray(expected, dtype=float)
    a = np.asarray(actual, dtype=float)
    e = np.maximum(e / max(e.sum(), 1.0), _FLOOR)
    a = np.maximum(a / max(a.sum(), 1.0), _FLOOR)
    return float(np.sum((a - e) * np.log(a / e)))


def band(value: float) -> str:
    return "stable" if value < 0.1 else "watch" if value <= 0.25 else "shift"


def score_reference(bundle: ModelBundle, role: str, rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Decile edges and counts of the model's scores on its training sample."""
    scores = np.array([r["score"] for r in score_rows(bundle, rows, role=role, top_k=0)])
    edges = np.unique(np.quantile(scores, np.linspace(0, 1, SCORE_BINS + 1)[1:-1])).tolist()
    return {"edges": edges, "counts": np.bincount(np.searchsorted(edges, scores, side="right"),
                                                  minlength=len(edges) + 1).tolist(), "n": len(scores)}


def _bin_index(table: Mapping[str, Any], value: Any, categories: Mapping[Any, int]) -> int:
    if value is None or value == "" or (isinstance(value, float) and math.isnan(value)):
        return table["missing_index"]
    if table.get("special_values") and value in table["special_values"]:
        return table["special_index"]
    if table["kind"] == "numeric":
        try:
            number = float(value)
        except (TypeError, ValueError):  # not a number where the scorecard bins numbers: counted as missing
            return table["missing_index"]
        return int(np.searchsorted(table["splits"] or [], number, side="right"))
    return categories.get(value, table.get("unknown_index", table["missing_index"]))


def _hashable(value: Any) -> Any:
    # A JSON list or object as an input bins like any unknown category.
    return value if not isinstance(value, (list, dict)) else repr(value)


def _feature_psi(table: Mapping[str, Any], inputs: Sequence[Mapping[str, Any]], hashed: bool,
                 hash_key: bytes) -> dict[str, Any]:
    name = table["feature"]
    if hashed and table["kind"] == "numeric":
        return {"feature": name, "psi": None, "band": None, "note": "stored hashed; not measurable"}
    categories: dict[Any, int] = {}
    for index, group in enumerate(table["groups"] or []):
        for category in group:
            key = hash_personal(hash_key, {name: category}, [name])[name] if hashed else category
            categories[key] = index
    actual = np.zeros(len(table["count"]), dtype=float)
    # Each distinct value is binned once: a window of 50,000 scores holds a few hundred values per feature, and
    # binning row by row took a minute.
    for value, count in Counter(_hashable(row.get(name)) for row in inputs).items():
        actual[_bin_index(table, value, categories)] += count
    value = psi(table["count"], actual)
    return {"feature": name, "psi": round(value, 6), "band": band(value),
            "bins": [{"label": label, "expected": int(e), "actual": int(a)}
                     for label, e, a in zip(table["labels"], table["count"], actual, strict=True)]}


def stability_report(session: Session, bundle: ModelBundle, model: ModelVersion, *, window: int,
                     personal: Sequence[str], hash_key: bytes) -> dict[str, Any]:
    recent = session.exec(select(Score.score, Score.inputs).where(Score.model_id == model.id)
                          .order_by(Score.created_at.desc()).limit(window)).all()
    report: dict[str, Any] = {"model_id": model.id, "model_version": model.label, "window": window,
                              "n_recent": len(recent), "bands": BANDS, "score": None, "features": []}
    if not recent:
        return report
    reference = model.reference
    if reference is not None:
        actual = np.bincount(np.searchsorted(reference["edges"], [r.score for r in recent], side="right"),
                             minlength=len(reference["edges"]) + 1)
        value = psi(reference["counts"], actual)
        report["score"] = {"psi": round(value, 6), "band": band(value), "reference_n": reference["n"]}
    personal_set = set(personal)
    tables = bundle.model_meta("scorecard")["bins"] or []
    report["features"] = sorted(
        (_feature_psi(t, [r.inputs for r in recent], t["feature"] in personal_set, hash_key) for t in tables),
        key=lambda f: -(f["psi"] or 0.0))
    return report
