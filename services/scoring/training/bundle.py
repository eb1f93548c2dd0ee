"""One-file export of a trained model version, and scoring raw rows from it with onnxruntime.

The bundle is a zip: ``manifest.json`` (scaling, schema, binning table, reason mapping, metrics, card) plus
one ``<role>.onnx`` per model. Only this module, ``runtime`` and ``reasons`` are needed to serve it.
"""
from __future__ import annotations

import hashlib
import io
import json
import threading
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import onnxruntime as ort

from .contract import upgrade_format1
from .models import PD_OUTPUT, POINTS_OUTPUT, SCORE_OUTPUT, FeatureSpec, Scaling
from .reasons import reason_codes
from .runtime import feeds_from_rows, make_session

if TYPE_CHECKING:
    from .models import TrainResult

# Format 2 adds the input contract to each feature's schema (text rule, missing bin learned, fallback); format 1
# bundles still load, their contract derived on loading (contract.upgrade_format1).
BUNDLE_FORMAT = "loancrm-scoring-bundle/2"
_FORMAT_1 = "loancrm-scoring-bundle/1"
INPUT_CONTRACT = {
    "text": "per feature: strip_casefold, strip or exact, decided at training",
    "unseen_category": "scored as the feature's fallback, its worst learned bin",
    "missing_without_learned_bin": "scored as the feature's fallback, its worst learned bin",
}
DEFAULT_ROLE = "scorecard"
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # fixed so that the same model gives the same bytes
# What a bundle may unpack to (trained bundles are a few hundred KB to a few MB). Checked on the sizes the zip
# declares before anything is inflated; zipfile never inflates a member past its declared size.
MAX_UNPACKED_BYTES = 32 * 1024 * 1024


class BundleTooLarge(ValueError):
    pass


@dataclass
class ModelBundle:
    manifest: dict[str, Any]
    onnx: dict[str, bytes]
    _sessions: dict[str, ort.InferenceSession] = field(default_factory=dict, repr=False)
    _schemas: dict[str, list[FeatureSpec]] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def roles(self) -> list[str]:
        return list(self.manifest["models"])

    @property
    def scaling(self) -> Scaling:
        return Scaling.from_dict(self.manifest["scaling"])

    def model_meta(self, role: str = DEFAULT_ROLE) -> dict[str, Any]:
        return self.manifest["models"][role]

    def schema(self, role: str = DEFAULT_ROLE) -> list[FeatureSpec]:
        """Parsed once per role: every scoring request reads it (treat as read-only)."""
        if role not in self._schemas:
            self._schemas[role] = [FeatureSpec.from_dict(s) for s in self.model_meta(role)["schema"]]
        return self._schemas[role]

    def session(self, role: str = DEFAULT_ROLE) -> ort.InferenceSession:
        """Created once per bundle and role, then reused (InferenceSession.run is thread-safe)."""
        with self._lock:
            if role not in self._sessions:
                self._sessions[role] = make_session(self.onnx[role])
            return self._sessions[role]


def _manifest(result: TrainResult) -> dict[str, Any]:
    return {
        "format": BUNDLE_FORMAT,
        "input_contract": INPUT_CONTRACT,
        "data_sha256": result.data_sha256,
        "target": result.target,
        "good_value": result.good_value,
        "scaling": result.scaling.to_dict(),
        "split": result.split.to_dict(),
        "features": result.features,
        "iv_table": result.iv_table,
        "relationship_auc_lift": result.relationship_auc_lift,
        "models": {role: {**m.meta(), "path": f"{role}.onnx"} for role, m in result.models.items()},
        "card": result.card,
    }


def bundle_bytes(result: TrainResult) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        manifest = _manifest(result)
        entries = {"manifest.json": json.dumps(manifest, indent=1, sort_keys=True).encode()}
        entries.update({meta["path"]: result.models[role].onnx for role, meta in manifest["models"].items()})
        for name, data in entries.items():
            info = zipfile.ZipInfo(name, date_time=_ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, data)
    return buf.getvalue()


def save_bundle(result: TrainResult, path: str | Path) -> None:
    Path(path).write_bytes(bundle_bytes(result))


def load_bundle(source: str | Path | bytes) -> ModelBundle:
    raw = source if isinstance(source, bytes) else Path(source).read_bytes()
    with zipfile.ZipFile(io.BytesIO(raw)) as zf:
        unpacked = sum(info.file_size for info in zf.infolist())
        if unpacked > MAX_UNPACKED_BYTES:
            raise BundleTooLarge(f"the bundle unpacks to {unpacked} bytes; at most {MAX_UNPACKED_BYTES} are accepted")
        manifest = json.loads(zf.read("manifest.json"))
        if manifest.get("format") not in (BUNDLE_FORMAT, _FORMAT_1):
            raise ValueError(f"not a {BUNDLE_FORMAT} file")
        onnx_models = {role: zf.read(meta["path"]) for role, meta in manifest["models"].items()}
    for role, data in onnx_models.items():
        if hashlib.sha256(data).hexdigest() != manifest["models"][role]["onnx_sha256"]:
            raise ValueError(f"{role}.onnx does not match the sha256 in the manifest")
    if manifest["format"] == _FORMAT_1:
        for meta in manifest["models"].values():
            upgrade_format1(meta)
    return ModelBundle(manifest, onnx_models)


def score_rows(
    bundle: ModelBundle, rows: Sequence[Mapping[str, Any]], role: str = DEFAULT_ROLE, top_k: int = 4
) -> list[dict[str, Any]]:
    """Score raw rows (dicts of column -> value; None / absent = missing).

    Each result has ``pd``, ``score`` and ``reasons`` (top-k ``{"feature", "impact"}``, see ``reasons``);
    scorecard results also have ``points_per_feature`` ({feature: points}). ``top_k=0`` skips reasons.
    """
    if not rows:
        return []
    meta = bundle.model_meta(role)
    session = bundle.session(role)
    wanted = [o for o in (PD_OUTPUT, SCORE_OUTPUT, POINTS_OUTPUT) if o in meta["outputs"]]
    outputs = dict(zip(wanted, session.run(wanted, feeds_from_rows(bundle.schema(role), rows))))
    reasons = reason_codes(meta, rows, outputs if POINTS_OUTPUT in outputs else session, top_k) if top_k else None
    features = meta["reason_meta"]["features"]
    results = []
    for i in range(len(rows)):
        item: dict[str, Any] = {
            "pd": float(outputs[PD_OUTPUT][i]),
            "score": float(outputs[SCORE_OUTPUT][i]),
        }
        if POINTS_OUTPUT in outputs:
            points = np.asarray(outputs[POINTS_OUTPUT][i], dtype=float).tolist()
            item["points_per_feature"] = dict(zip(features, points))
        if reasons is not None:
            item["reasons"] = [{"feature": f, "impact": v} for f, v in reasons[i]]
        results.append(item)
    return results
