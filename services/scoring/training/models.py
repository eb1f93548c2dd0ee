"""Result and schema objects of the training pipeline.

Everything here is plain data (JSON-friendly through ``to_dict``) so that a registry or an HTTP layer can
store it without importing scikit-learn, optbinning or LightGBM.
"""
from __future__ import annotations

import hashlib
import math
from dataclasses import asdict, dataclass, field
from functools import cached_property
from typing import Any, Literal

FeatureKind = Literal["numeric", "categorical"]

PD_OUTPUT = "pd"
SCORE_OUTPUT = "score"
POINTS_OUTPUT = "points_per_feature"
# The graphs' own tensors are named under this prefix, so that no column (a "logit" or an "offset" in someone's
# book) can collide with one of them; a column may not start with it.
INTERNAL_PREFIX = "loancrm."


class DataError(ValueError):
    """The training data, or an option describing it, cannot be used; the message says what to change."""


@dataclass(frozen=True)
class Scaling:
    """points = offset + factor * ln(odds good:bad), factor = pdo / ln 2."""

    base_points: float = 600.0
    base_odds: float = 50.0
    pdo: float = 20.0

    @property
    def factor(self) -> float:
        return self.pdo / math.log(2.0)

    @property
    def offset(self) -> float:
        return self.base_points - self.factor * math.log(self.base_odds)

    def score_from_pd(self, pd_: float) -> float:
        return self.offset + self.factor * math.log((1.0 - pd_) / pd_)

    def to_dict(self) -> dict[str, float]:
        return {**asdict(self), "factor": self.factor, "offset": self.offset}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Scaling:
        return cls(float(data["base_points"]), float(data["base_odds"]), float(data["pdo"]))


@dataclass
class FeatureSpec:
    """One raw input column of a model, as the service should validate it.

    ``required`` means the key must be sent; ``nullable`` means a null/NaN (or "" for a categorical) is
    accepted and scored through the explicit missing bin / the trees' missing branch.
    """

    name: str
    kind: FeatureKind
    required: bool = True
    nullable: bool = True
    min: float | None = None
    max: float | None = None
    categories: list[str] | None = None
    special_values: list[Any] | None = None  # codes with a bin of their own (e.g. -1 = no data), outside the range
    # The input contract (bundle format 2; None in older bundles). `text`: how a category is normalised before it
    # is looked up, decided at training ("strip_casefold", "strip" or "exact"). `missing_learned`: training had
    # missing values, so a missing one is scored in its own bin. `fallback`: the value scored in place of an
    # unseen category or of a missing value without a learned bin: the feature's worst (see training/contract.py).
    text: str | None = None
    missing_learned: bool | None = None
    fallback: Any = None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("special_values", "text", "missing_learned", "fallback"):
            if data[key] is None:  # schemas without them stay as they were
                del data[key]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FeatureSpec:
        return cls(**data)

    @cached_property
    def known(self) -> frozenset[str]:
        """The categories (and categorical special values) the model has a bin for."""
        return frozenset(self.categories or ()) | frozenset(str(v) for v in self.special_values or ())

    @cached_property
    def fed(self) -> dict[str, str]:
        """Serving's memo of text -> category fed to the graph (runtime._categories)."""
        return {}


@dataclass
class SplitMetrics:
    """Discrimination and calibration of PD predictions on one split (event = bad = 1)."""

    n: int
    bad_rate: float
    auc: float
    gini: float
    ks: float
    brier: float
    calibration: list[dict[str, float]]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class SplitInfo:
    method: Literal["stratified", "out_of_time"]
    seed: int
    n_train: int
    n_validation: int
    n_test: int
    date_column: str | None = None
    date_ranges: dict[str, list[str]] | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class ModelResult:
    """One trained model family, ready to hand to a registry."""

    family: str
    onnx: bytes
    schema: list[FeatureSpec]
    reason_meta: dict[str, Any]
    params: dict[str, Any]
    validation: SplitMetrics
    test: SplitMetrics
    parity_max_abs_diff: float
    outputs: list[str]
    bins: list[dict[str, Any]] | None = None
    plots: dict[str, bytes] = field(default_factory=dict, repr=False)
    fitted: Any = field(default=None, repr=False, compare=False)  # in-process model, never serialised

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.onnx).hexdigest()

    @property
    def features(self) -> list[str]:
        return [f.name for f in self.schema]

    def metrics(self) -> dict[str, Any]:
        """Flat headline figures plus the full per-split metrics."""
        flat: dict[str, Any] = {}
        for split, m in (("validation", self.validation), ("test", self.test)):
            for key in ("auc", "gini", "ks", "brier"):
                flat[f"{split}_{key}"] = getattr(m, key)
        flat["parity_max_abs_diff"] = self.parity_max_abs_diff
        flat["splits"] = {"validation": self.validation.to_dict(), "test": self.test.to_dict()}
        return flat

    def meta(self) -> dict[str, Any]:
        """Everything about the model except the ONNX bytes and plots (what a bundle manifest keeps)."""
        return {
            "family": self.family,
            "onnx_sha256": self.sha256,
            "outputs": self.outputs,
            "schema": [f.to_dict() for f in self.schema],
            "reason_meta": self.reason_meta,
            "params": self.params,
            "bins": self.bins,
            "metrics": self.metrics(),
        }


@dataclass
class TrainResult:
    """Outcome of :func:`services.scoring.training.train`."""

    data_sha256: str
    target: str
    good_value: str | None
    scaling: Scaling
    split: SplitInfo
    features: list[str]
    iv_table: list[dict[str, Any]]
    scorecard: ModelResult
    challenger: ModelResult
    relationship_auc_lift: float | None
    card: dict[str, Any]

    @property
    def models(self) -> dict[str, ModelResult]:
        return {"scorecard": self.scorecard, "challenger": self.challenger}

    @property
    def parity_max_abs_diff(self) -> float:
        return max(m.parity_max_abs_diff for m in self.models.values())

    def report(self) -> dict[str, Any]:
        """The summary written by ``--report``."""
        out: dict[str, Any] = {name: m.metrics() for name, m in self.models.items()}
        for name, m in self.models.items():
            out[name] = {k: v for k, v in out[name].items() if k != "splits"}
            out[name].update(family=m.family, onnx_sha256=m.sha256, features=m.features)
        out.update(
            parity_max_abs_diff=self.parity_max_abs_diff,
            relationship_auc_lift=self.relationship_auc_lift,
            relationship=self.card.get("relationship"),
            data_sha256=self.data_sha256,
            features=self.features,
            split=self.split.to_dict(),
        )
        return out

    def save_bundle(self, path: str) -> None:
        from .bundle import save_bundle

        save_bundle(self, path)
