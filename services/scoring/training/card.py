"""Model card: what was trained on what, how well it does, and how to read it."""
from __future__ import annotations

import importlib.metadata
from typing import Any

from .models import ModelResult, Scaling, SplitInfo

_LIBRARIES = ("scikit-learn", "optbinning", "lightgbm", "onnx", "onnxruntime", "skl2onnx", "onnxmltools", "numpy",
              "pandas")

NOTES = [
    "Event = bad (default), coded 1; pd is the probability of that event.",
    "Validation metrics come from models fitted on the training part only (the challenger picks its number "
    "of trees there); the shipped models are refitted on training + validation with the same settings and "
    "the test metrics are theirs.",
    "Scorecard: points = offset + factor * ln(odds good:bad), spread over features; a missing value scores "
    "its feature's Missing bin, an unseen category its Unknown bin (WoE 0, the population average).",
    "Reason codes: scorecard = biggest shortfall from a feature's max points; challenger = occlusion against "
    "the reference row (training medians / most frequent categories).",
]


def library_versions() -> dict[str, str]:
    return {name: importlib.metadata.version(name) for name in _LIBRARIES}


def _model_section(m: ModelResult) -> dict[str, Any]:
    return {
        "family": m.family,
        "onnx_sha256": m.sha256,
        "onnx_outputs": m.outputs,
        "features": m.features,
        "params": m.params,
        "metrics": m.metrics(),
    }


def build_card(
    *,
    data_sha256: str,
    n_rows: int,
    target: str,
    good_value: str | None,
    bad_rate: float,
    split: SplitInfo,
    scaling: Scaling,
    features: list[str],
    iv_table: list[dict[str, Any]],
    models: dict[str, ModelResult],
    relationship: dict[str, Any] | None,
) -> dict[str, Any]:
    return {
        "dataset": {
            "sha256": data_sha256,
            "rows": n_rows,
            "target": target,
            "good_value": good_value,
            "bad_rate": bad_rate,
            "candidate_features": features,
        },
        "split": split.to_dict(),
        "scaling": scaling.to_dict(),
        "iv_table": iv_table,
        "models": {role: _model_section(m) for role, m in models.items()},
        "relationship": relationship,
        "relationship_auc_lift": None if relationship is None else relationship["auc_lift"],
        "libraries": library_versions(),
        "notes": NOTES,
    }


def render_markdown(card: dict[str, Any]) -> str:
    ds, split = card["dataset"], card["split"]
    lines = [
        "# Credit-scoring model card",
        "",
        f"- Data sha256 `{ds['sha256']}`, {ds['rows']} rows, target `{ds['target']}` "
        f"(good = `{ds['good_value']}`), bad rate {ds['bad_rate']:.3f}",
        f"- Split: {split['method']}, seed {split['seed']}: train {split['n_train']}, "
        f"validation {split['n_validation']}, test {split['n_test']}",
        f"- Scaling: {card['scaling']['base_points']:g} points at odds {card['scaling']['base_odds']:g}:1, "
        f"PDO {card['scaling']['pdo']:g}",
        "",
        "| model | family | val AUC | test AUC | test Gini | test KS | test Brier | parity |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for role, m in card["models"].items():
        x = m["metrics"]
        lines.append(
            f"| {role} | {m['family']} | {x['validation_auc']:.4f} | {x['test_auc']:.4f} | {x['test_gini']:.4f} "
            f"| {x['test_ks']:.4f} | {x['test_brier']:.4f} | {x['parity_max_abs_diff']:.1e} |"
        )
    if card["relationship"]:
        r = card["relationship"]
        low, high = r["auc_lift_ci95"]
        lines += ["", f"Relationship features {', '.join(r['features'])}: test AUC lift {r['auc_lift']:+.4f} "
                      f"(95% CI {low:+.4f} to {high:+.4f}, DeLong, same split)"]
    lines += ["", "| feature | IV | in model |", "|---|---|---|"]
    lines += [f"| {r['feature']} | {r['iv']:.4f} | {'yes' if r['in_model'] else ''} |" for r in card["iv_table"]]
    lines += ["", "## Notes", "", *[f"- {n}" for n in card["notes"]], ""]
    return "\n".join(lines)
