"""ONNX graphs that take RAW columns by name and return pd, score (and points per feature for the scorecard).

The scorecard graph is written by hand: bin by thresholds (IsNaN -> missing bin), LabelEncoder from category
to bin (default -> unknown bin), gather each bin's logit contribution, sum, sigmoid. The challenger graph is
skl2onnx's conversion of the encoding + trees pipeline, with pd and score appended.
"""
from __future__ import annotations

import json
from typing import Any

import lightgbm as lgb
import numpy as np
import onnx
import pandas as pd
from onnx import TensorProto, helper, numpy_helper
from onnxmltools.convert.lightgbm.operator_converters.LightGbm import convert_lightgbm
from skl2onnx import convert_sklearn, update_registered_converter
from skl2onnx.common.data_types import FloatTensorType, StringTensorType
from skl2onnx.common.shape_calculator import calculate_linear_classifier_output_shapes

from .challenger import Challenger
from .models import INTERNAL_PREFIX, PD_OUTPUT, POINTS_OUTPUT, SCORE_OUTPUT, FeatureSpec, Scaling
from .runtime import MISSING_CATEGORY, feeds_from_frame, make_session

OPSETS = {"": 17, "ai.onnx.ml": 3}
_P = INTERNAL_PREFIX
PARITY_TOLERANCE = 1e-5
_PD_CLIP = 1e-12  # keeps ln(odds) finite for the score of a challenger that is certain

update_registered_converter(
    lgb.LGBMClassifier,
    "LightGbmLGBMClassifier",
    calculate_linear_classifier_output_shapes,
    convert_lightgbm,
    options={"nocl": [True, False], "zipmap": [True, False, "columns"]},
)


class ParityError(RuntimeError):
    """The ONNX graph does not reproduce the in-process model."""


def _const(name: str, value: Any, dtype: Any) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(value, dtype=dtype), name)


def _set_metadata(model: onnx.ModelProto, family: str, features: list[str], scaling: Scaling) -> None:
    props = {"family": family, "features": json.dumps(features), "scaling": json.dumps(scaling.to_dict())}
    onnx.helper.set_model_props(model, props)
    model.producer_name = "loancrm-scoring-training"
    model.producer_version = "1"


def scorecard_onnx(bins: list[dict[str, Any]], intercept: float, scaling: Scaling) -> bytes:
    nodes: list[onnx.NodeProto] = []
    inits: list[onnx.TensorProto] = [
        _const(_P + "axis1", [1], np.int64),
        _const(_P + "intercept", intercept, np.float64),
        _const(_P + "neg_factor", -scaling.factor, np.float64),
        _const(_P + "base_points", scaling.offset / len(bins) - scaling.factor * intercept / len(bins), np.float64),
    ]
    inputs, contributions = [], []
    for i, table in enumerate(bins):
        name, p = table["feature"], f"{_P}f{i}_"
        values = np.asarray(table["contribution"], dtype=np.float64)
        if table["kind"] == "numeric":
            inputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, [None, 1]))
            splits, shift = table["splits"], 0
            if not splits:  # single bin: a split at +inf keeps the same "count splits <= x" rule
                splits, values, shift = [np.inf], np.concatenate([values[:1], values]), 1
            inits += [
                _const(p + "splits", [splits], np.float64),
                _const(p + "missing", table["missing_index"] + shift, np.int64),
                _const(p + "table", values, np.float64),
            ]
            nodes += [
                helper.make_node("Cast", [name], [p + "x"], to=TensorProto.DOUBLE),
                # bin index = number of split points <= x, as numpy.digitize(right=False) in optbinning
                helper.make_node("GreaterOrEqual", [p + "x", p + "splits"], [p + "ge"]),
                helper.make_node("Cast", [p + "ge"], [p + "ge_i"], to=TensorProto.INT64),
                helper.make_node("ReduceSum", [p + "ge_i", _P + "axis1"], [p + "bin"], keepdims=1),
                helper.make_node("IsNaN", [name], [p + "nan"]),
                helper.make_node("Where", [p + "nan", p + "missing", p + "bin"],
                                 [p + "idx" if not table.get("special_values") else p + "regular"]),
            ]
            if table.get("special_values"):  # a special value is looked up before the thresholds
                inits += [
                    # as the float32 input sees them (x arrives as float32, then is cast to double)
                    _const(p + "specials", [np.asarray(table["special_values"], np.float32)], np.float64),
                    _const(p + "special", table["special_index"] + shift, np.int64),
                ]
                nodes += [
                    helper.make_node("Equal", [p + "x", p + "specials"], [p + "eq"]),
                    helper.make_node("Cast", [p + "eq"], [p + "eq_i"], to=TensorProto.INT64),
                    helper.make_node("ReduceMax", [p + "eq_i"], [p + "any_i"], axes=[1], keepdims=1),
                    helper.make_node("Cast", [p + "any_i"], [p + "any"], to=TensorProto.BOOL),
                    helper.make_node("Where", [p + "any", p + "special", p + "regular"], [p + "idx"]),
                ]
        else:
            inputs.append(helper.make_tensor_value_info(name, TensorProto.STRING, [None, 1]))
            keys, ids = [], []
            for b, group in enumerate(table["groups"]):
                keys += group
                ids += [b] * len(group)
            keys.append(MISSING_CATEGORY)
            ids.append(table["missing_index"])
            for value in table.get("special_values") or []:
                keys.append(str(value))
                ids.append(table["special_index"])
            inits.append(_const(p + "table", values, np.float64))
            nodes.append(
                helper.make_node(
                    "LabelEncoder", [name], [p + "idx"], domain="ai.onnx.ml",
                    keys_strings=keys, values_int64s=ids, default_int64=table["unknown_index"],
                )
            )
        nodes.append(helper.make_node("Gather", [p + "table", p + "idx"], [p + "contrib"]))
        contributions.append(p + "contrib")

    nodes += [
        helper.make_node("Concat", contributions, [_P + "contrib"], axis=1),
        helper.make_node("ReduceSum", [_P + "contrib", _P + "axis1"], [_P + "contrib_sum"], keepdims=0),
        helper.make_node("Add", [_P + "contrib_sum", _P + "intercept"], [_P + "logit"]),
        helper.make_node("Sigmoid", [_P + "logit"], [_P + "pd64"]),
        helper.make_node("Cast", [_P + "pd64"], [PD_OUTPUT], to=TensorProto.FLOAT),
        # points = base - factor * contribution, so that sum(points) = offset + factor * ln(odds good:bad)
        helper.make_node("Mul", [_P + "contrib", _P + "neg_factor"], [_P + "points_scaled"]),
        helper.make_node("Add", [_P + "points_scaled", _P + "base_points"], [_P + "points64"]),
        helper.make_node("Cast", [_P + "points64"], [POINTS_OUTPUT], to=TensorProto.FLOAT),
        helper.make_node("ReduceSum", [_P + "points64", _P + "axis1"], [_P + "score64"], keepdims=0),
        helper.make_node("Cast", [_P + "score64"], [SCORE_OUTPUT], to=TensorProto.FLOAT),
    ]
    outputs = [
        helper.make_tensor_value_info(PD_OUTPUT, TensorProto.FLOAT, [None]),
        helper.make_tensor_value_info(SCORE_OUTPUT, TensorProto.FLOAT, [None]),
        helper.make_tensor_value_info(POINTS_OUTPUT, TensorProto.FLOAT, [None, len(bins)]),
    ]
    graph = helper.make_graph(nodes, "loancrm_scorecard", inputs, outputs, inits)
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid(d, v) for d, v in OPSETS.items()], ir_version=8
    )
    _set_metadata(model, "scorecard", [t["feature"] for t in bins], scaling)
    onnx.checker.check_model(model, full_check=True)
    return model.SerializeToString()


def challenger_onnx(model: Challenger, scaling: Scaling) -> bytes:
    types = [
        (c, StringTensorType([None, 1]) if model.kinds[c] == "categorical" else FloatTensorType([None, 1]))
        for c in model.features
    ]
    onx = convert_sklearn(
        model.pipeline, initial_types=types, options={id(model.pipeline): {"zipmap": False}}, target_opset=OPSETS
    )
    graph = onx.graph
    graph.name = f"loancrm_{model.backend}"  # skl2onnx picks a random uuid; the bytes must be reproducible
    probs = _P + graph.output[1].name  # a classifier's outputs: label, then probabilities
    _namespace(graph, model.features)
    graph.initializer.extend(
        [
            _const(_P + "pd_col", 1, np.int64),
            _const(_P + "pd_lo", _PD_CLIP, np.float64),
            _const(_P + "pd_hi", 1.0 - _PD_CLIP, np.float64),
            _const(_P + "one", 1.0, np.float64),
            _const(_P + "factor", scaling.factor, np.float64),
            _const(_P + "offset", scaling.offset, np.float64),
        ]
    )
    graph.node.extend(
        [
            helper.make_node("Gather", [probs, _P + "pd_col"], [PD_OUTPUT], axis=1),
            helper.make_node("Cast", [PD_OUTPUT], [_P + "pd64"], to=TensorProto.DOUBLE),
            helper.make_node("Clip", [_P + "pd64", _P + "pd_lo", _P + "pd_hi"], [_P + "pd_clipped"]),
            helper.make_node("Sub", [_P + "one", _P + "pd_clipped"], [_P + "good64"]),
            helper.make_node("Div", [_P + "good64", _P + "pd_clipped"], [_P + "odds"]),
            helper.make_node("Log", [_P + "odds"], [_P + "ln_odds"]),
            helper.make_node("Mul", [_P + "ln_odds", _P + "factor"], [_P + "scaled"]),
            helper.make_node("Add", [_P + "scaled", _P + "offset"], [_P + "score64"]),
            helper.make_node("Cast", [_P + "score64"], [SCORE_OUTPUT], to=TensorProto.FLOAT),
        ]
    )
    del graph.output[:]
    graph.output.extend(
        [
            helper.make_tensor_value_info(PD_OUTPUT, TensorProto.FLOAT, [None]),
            helper.make_tensor_value_info(SCORE_OUTPUT, TensorProto.FLOAT, [None]),
        ]
    )
    _set_metadata(onx, model.backend, model.features, scaling)
    onnx.checker.check_model(onx, full_check=True)
    return onx.SerializeToString()


def _namespace(graph: onnx.GraphProto, features: list[str]) -> None:
    """skl2onnx names its tensors freely ("label", "variable", ...) and turns a column such as
    "NumberOfTime30-59Days" into the input "NumberOfTime30_59Days". Its tensors move under the internal prefix and
    the inputs get the raw column names back, so no column can collide with either."""
    inputs = {i.name: f for i, f in zip(graph.input, features, strict=True)}
    inner = {n: _P + n for node in graph.node for n in node.output if n}
    inner.update({t.name: _P + t.name for t in graph.initializer})
    for i in graph.input:
        i.name = inputs[i.name]
    for t in graph.initializer:
        t.name = inner[t.name]
    for info in [*graph.output, *graph.value_info]:
        info.name = inner.get(info.name, info.name)
    for node in graph.node:
        node.input[:] = [inputs.get(n) or inner.get(n, n) for n in node.input]
        node.output[:] = [inner.get(n, n) for n in node.output]


def parity_max_abs_diff(
    onnx_bytes: bytes, schema: list[FeatureSpec], frame: pd.DataFrame, in_process_pd: np.ndarray,
    tolerance: float = PARITY_TOLERANCE,
) -> float:
    """max |pd_onnx - pd_in_process| over ``frame``; raises ParityError above ``tolerance``."""
    session = make_session(onnx_bytes)
    onnx_pd = session.run([PD_OUTPUT], feeds_from_frame(schema, frame))[0].astype(np.float64)
    diff = float(np.max(np.abs(onnx_pd - in_process_pd))) if len(frame) else 0.0
    if not np.all(np.isfinite(onnx_pd)) or diff > tolerance:
        raise ParityError(f"ONNX and in-process PD differ by {diff:.3g} (tolerance {tolerance:g})")
    return diff
