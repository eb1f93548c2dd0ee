"""The training flow: load -> split -> scorecard -> challenger -> relationship lift -> card/outputs."""
from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from . import plots
from .bundle import save_bundle
from .card import build_card, render_markdown
from .challenger import BACKENDS, TUNING_SECONDS, fit_challenger
from .contract import scorecard_fallbacks, with_fallbacks, worst_values
from .dataset import Dataset, feature_schema, load_dataset
from .metrics import delong, evaluate
from .models import PD_OUTPUT, POINTS_OUTPUT, SCORE_OUTPUT, DataError, ModelResult, Scaling, SplitInfo, TrainResult
from .onnx_export import challenger_onnx, parity_max_abs_diff, scorecard_onnx
from .reasons import occlusion_reason_meta, scorecard_reason_meta
from .runtime import contract_frame, feeds_from_frame, make_session
from .scorecard import ScorecardParams, SpecialValues, fit_scorecard, iv_table
from .split import SplitIndices, split_rows

MODEL_FAMILIES = ("scorecard", *BACKENDS)  # every family the pipeline can fit and convert
_UNSEEN = "__unseen_in_training__"


@dataclass
class TrainConfig:
    target: str
    good: str | None = None
    seed: int = 0
    date_column: str | None = None
    scaling: Scaling = field(default_factory=Scaling)
    relationship_features: Sequence[str] = ()
    categorical: Sequence[str] | None = None  # force these columns categorical (e.g. integer codes)
    exclude: Sequence[str] | None = None  # ids and other non-features
    challenger: str = "lightgbm"
    scorecard: ScorecardParams = field(default_factory=ScorecardParams)
    out_dir: str | Path | None = None
    # Per feature, values that code "no data" or another special case (e.g. {"months_since_default": ["-1"]}):
    # the scorecard gives them a bin of their own. Given as text (as on the command line) or as values.
    special_values: Mapping[str, Sequence[Any]] = field(default_factory=dict)
    # How long the challenger may spend tuning its hyperparameters on the validation split.
    tuning_seconds: float = TUNING_SECONDS


def special_values_for(ds: Dataset, given: Mapping[str, Sequence[Any]]) -> SpecialValues:
    """The special values as the feature's kind wants them: numbers for a numeric column, text otherwise."""
    out: SpecialValues = {}
    for name, values in given.items():
        if name not in ds.kinds:
            raise DataError(f"special values for {name!r}, which is not a feature column")
        try:
            out[name] = [float(v) if ds.kinds[name] == "numeric" else str(v) for v in values]
        except ValueError:
            raise DataError(f"special values of the numeric column {name!r} must be numbers: {list(values)}") from None
    return out


def stress_frame(frame: pd.DataFrame, ds: Dataset, special: SpecialValues | None = None) -> pd.DataFrame:
    """The rows twice more: once with every numeric missing, once with every category unseen/missing,
    so that parity also covers the missing and unknown bins (and once per special value, for its bin)."""
    no_num = frame.copy()
    no_num[ds.numeric] = np.nan
    odd_cat = frame.copy()
    for i, c in enumerate(ds.categorical):
        odd_cat[c] = _UNSEEN if i % 2 == 0 else np.nan
    specials = []
    for name, values in (special or {}).items():
        for value in values:
            coded = frame.copy()
            coded[name] = value
            specials.append(coded)
    return pd.concat([frame, no_num, odd_cat, *specials], ignore_index=True)


def build_model(
    family: str, ds: Dataset, parts: SplitIndices, scaling: Scaling, seed: int,
    scorecard_params: ScorecardParams = ScorecardParams(), special: SpecialValues | None = None,
    tuning_seconds: float = TUNING_SECONDS,
) -> ModelResult:
    """Fit one family, export it to ONNX, prove parity, measure it."""
    fit_rows = ds.frame.iloc[parts.fit]
    test = ds.frame.iloc[parts.test]
    val = ds.frame.iloc[parts.validation]
    if family == "scorecard":
        train_rows = ds.frame.iloc[parts.train]
        selection = fit_scorecard(train_rows, ds.y[parts.train], ds.kinds, scaling, scorecard_params, special)
        final = fit_scorecard(fit_rows, ds.y[parts.fit], ds.kinds, scaling, scorecard_params, special)
        bins = final.bins()
        onnx_bytes = scorecard_onnx(bins, final.intercept, scaling)
        schema = with_fallbacks(feature_schema(fit_rows, ds.kinds, final.features, special, ds.text_rules),
                                scorecard_fallbacks(bins))
        reason_meta = scorecard_reason_meta(bins)
        params: dict[str, Any] = {
            **scorecard_params.to_dict(),
            "intercept": final.intercept,
            "dropped_for_coefficient_sign": final.dropped_for_sign,
        }
        outputs = [PD_OUTPUT, SCORE_OUTPUT, POINTS_OUTPUT]
        fitted: Any = final
    else:
        selection, final = fit_challenger(
            ds.frame, ds.y, ds.kinds, parts.train, parts.validation, parts.fit, seed, backend=family,
            tuning_seconds=tuning_seconds)
        bins = None
        onnx_bytes = challenger_onnx(final, scaling)
        schema = feature_schema(fit_rows, ds.kinds, final.features, special, ds.text_rules)
        schema = with_fallbacks(schema, worst_values(final.predict_pd, fit_rows, schema, seed))
        reason_meta = occlusion_reason_meta(fit_rows, schema)
        params = final.params
        outputs = [PD_OUTPUT, SCORE_OUTPUT]
        fitted = final

    stress = stress_frame(test, ds, special)
    # Both sides see what serving feeds the graph: unseen and unlearned missing values replaced by the fallback.
    parity = parity_max_abs_diff(onnx_bytes, schema, stress, fitted.predict_pd(contract_frame(schema, stress)))
    y_val, y_test = ds.y[parts.validation], ds.y[parts.test]
    pd_val = selection.predict_pd(val)
    onnx_test = make_session(onnx_bytes).run([PD_OUTPUT, SCORE_OUTPUT], feeds_from_frame(schema, test))
    pd_test, score_test = (np.asarray(o, dtype=np.float64) for o in onnx_test)
    title = f"{family} (test)"
    pngs = {
        "roc": plots.roc_png(f"{family} ROC", {"validation": (y_val, pd_val), "test": (y_test, pd_test)}),
        "ks": plots.ks_png(f"{title} KS", y_test, score_test),
        "score_distribution": plots.score_distribution_png(f"{title} scores", y_test, score_test),
    }
    return ModelResult(
        family=family,
        onnx=onnx_bytes,
        schema=schema,
        reason_meta=reason_meta,
        params=params,
        validation=evaluate(y_val, pd_val),
        test=evaluate(y_test, pd_test),
        parity_max_abs_diff=parity,
        outputs=outputs,
        bins=bins,
        plots=pngs,
        fitted=fitted,
    )


class TrainingFlow:
    """Runs the steps in order; ``progress`` is called with each step's name when it is done."""

    def __init__(self, data: str | Path | pd.DataFrame, config: TrainConfig) -> None:
        self.data = data
        self.config = config
        self.ds: Dataset
        self.parts: SplitIndices
        self.split_info: SplitInfo
        self.models: dict[str, ModelResult] = {}
        self.relationship: dict[str, Any] | None = None
        self.result: TrainResult
        self.special: SpecialValues = {}

    @property
    def steps(self) -> list[tuple[str, Callable[[], None]]]:
        steps = [("load", self.load), ("split", self.split), ("scorecard", self.scorecard),
                 ("challenger", self.challenger)]
        if self.config.relationship_features:
            steps.append(("relationship", self.relationship_lift))
        steps.append(("card", self.card))
        if self.config.out_dir is not None:
            steps.append(("write", self.write))
        return steps

    def run(self, progress: Callable[[str], None] | None = None) -> TrainResult:
        for name, step in self.steps:
            step()
            if progress is not None:
                progress(name)
        return self.result

    def load(self) -> None:
        c = self.config
        self.ds = load_dataset(self.data, c.target, c.good, c.date_column, list(c.categorical or []),
                               list(c.exclude or []))
        self.special = special_values_for(self.ds, c.special_values)
        unknown = [f for f in c.relationship_features if f not in self.ds.kinds]
        if unknown:
            raise DataError(f"relationship features not among the feature columns: {unknown}")

    def split(self) -> None:
        self.parts, self.split_info = split_rows(self.ds.y, self.config.seed, self.ds.dates)

    def scorecard(self) -> None:
        c = self.config
        self.models["scorecard"] = build_model("scorecard", self.ds, self.parts, c.scaling, c.seed, c.scorecard,
                                               self.special)

    def challenger(self) -> None:
        c = self.config
        self.models["challenger"] = build_model(c.challenger, self.ds, self.parts, c.scaling, c.seed,
                                                special=self.special, tuning_seconds=c.tuning_seconds)

    def relationship_lift(self) -> None:
        """Scorecard without the relationship columns, same split: what do they add on the test set?"""
        c, ds, parts = self.config, self.ds, self.parts
        without = [f for f in ds.features if f not in set(c.relationship_features)]
        reduced = fit_scorecard(ds.frame.iloc[parts.fit][without], ds.y[parts.fit], ds.kinds, c.scaling, c.scorecard,
                                self.special)
        test = ds.frame.iloc[parts.test]
        without_pd = reduced.predict_pd(test)
        auc_without = evaluate(ds.y[parts.test], without_pd).auc
        auc_with = self.models["scorecard"].test.auc
        # DeLong, paired: both scorecards judged on the same test rows.
        paired = delong(ds.y[parts.test], np.asarray(self.models["scorecard"].fitted.predict_pd(test)),
                        np.asarray(without_pd))
        self.relationship = {
            "features": list(c.relationship_features),
            "test_auc_with": auc_with,
            "test_auc_without": auc_without,
            "auc_lift": auc_with - auc_without,
            "auc_lift_ci95": [paired["ci_low"], paired["ci_high"]],
            "auc_lift_p_value": paired["p_value"],
            "method": "scorecard with and without these features, same split; DeLong paired 95% CI on the test rows",
        }

    def card(self) -> None:
        c, ds = self.config, self.ds
        scorecard = self.models["scorecard"].fitted
        ivs = iv_table(scorecard)
        card = build_card(
            data_sha256=ds.sha256, n_rows=len(ds.y), target=ds.target, good_value=ds.good_value,
            bad_rate=float(ds.y.mean()), split=self.split_info, scaling=c.scaling, features=ds.features,
            iv_table=ivs, models=self.models, relationship=self.relationship,
        )
        self.result = TrainResult(
            data_sha256=ds.sha256, target=ds.target, good_value=ds.good_value, scaling=c.scaling,
            split=self.split_info, features=ds.features, iv_table=ivs,
            scorecard=self.models["scorecard"], challenger=self.models["challenger"],
            relationship_auc_lift=None if self.relationship is None else self.relationship["auc_lift"],
            card=card,
        )

    def write(self) -> None:
        write_outputs(self.result, Path(self.config.out_dir))  # type: ignore[arg-type]


def write_outputs(result: TrainResult, out: Path) -> None:
    """<role>.onnx, model_bundle.zip, card.json / card.md, report.json, plots/<role>_<plot>.png."""
    (out / "plots").mkdir(parents=True, exist_ok=True)
    for role, m in result.models.items():
        (out / f"{role}.onnx").write_bytes(m.onnx)
        for name, png in m.plots.items():
            (out / "plots" / f"{role}_{name}.png").write_bytes(png)
    save_bundle(result, out / "model_bundle.zip")
    (out / "card.json").write_text(json.dumps(result.card, indent=2))
    (out / "card.md").write_text(render_markdown(result.card))
    (out / "report.json").write_text(json.dumps(result.report(), indent=2))


def train(
    data: str | Path | pd.DataFrame,
    target: str,
    *,
    good: str | None = None,
    seed: int = 0,
    date_column: str | None = None,
    base_points: float = 600.0,
    base_odds: float = 50.0,
    pdo: float = 20.0,
    relationship_features: Sequence[str] = (),
    categorical: Sequence[str] | None = None,
    exclude: Sequence[str] | None = None,
    challenger: str = "lightgbm",
    scorecard_params: ScorecardParams | None = None,
    out_dir: str | Path | None = None,
    special_values: Mapping[str, Sequence[Any]] | None = None,
    progress: Callable[[str], None] | None = None,
) -> TrainResult:
    """Train the scorecard and the challenger on a CSV path or DataFrame; see ``TrainResult``.

    Raises ``ParityError`` if an ONNX graph does not reproduce its in-process model within 1e-5.
    """
    config = TrainConfig(
        target=target, good=good, seed=seed, date_column=date_column,
        scaling=Scaling(base_points, base_odds, pdo), relationship_features=tuple(relationship_features),
        categorical=categorical, exclude=exclude, challenger=challenger,
        scorecard=scorecard_params or ScorecardParams(), out_dir=out_dir, special_values=dict(special_values or {}),
    )
    return TrainingFlow(data, config).run(progress)
