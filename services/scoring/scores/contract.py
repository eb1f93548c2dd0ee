"""The input contract: each row is checked against the served models' feature schemas before scoring.

Unknown feature, missing required feature, wrong type, non-finite or out-of-range number -> 422 naming the field.
A category is first normalised as the model's training decided (case, surrounding space: FeatureSpec.text). An
unseen category, or a null where training had none, is scored as the feature's worst learned bin (its fallback,
see training/contract.py); a null where training had some, in the Missing bin. Either is a contract warning, and an
answer with one is never approved by the policy alone (policy/service.py).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from services.scoring.registry.serving import Served
from services.scoring.training.models import FeatureSpec
from services.scoring.training.runtime import normalise_text
from shared.errors import FieldError, Problem

MAX_REPORTED_ERRORS = 50
_last_contract: tuple[Served, float, Contract] | None = None  # (served, tolerance, its contract)


@dataclass(frozen=True)
class Contract:
    specs: dict[str, FeatureSpec]  # champion's specs, completed by the challenger's for features only it uses
    required: frozenset[str]
    tolerance: float

    @classmethod
    def of(cls, served: Served, tolerance: float) -> Contract:
        """Built once per served pair (a promotion or a refresh of the registry makes a new `Served`)."""
        global _last_contract
        last = _last_contract
        if last is not None and last[0] is served and last[1] == tolerance:
            return last[2]
        specs = {s.name: s for s in served.challenger.schema()} if served.challenger else {}
        champion = served.champion.schema()
        specs.update({s.name: s for s in champion})
        contract = cls(specs, frozenset(s.name for s in champion if s.required), tolerance)
        _last_contract = (served, tolerance, contract)
        return contract

    def bounds(self, spec: FeatureSpec) -> tuple[float, float]:
        lo = -math.inf if spec.min is None else spec.min
        hi = math.inf if spec.max is None else spec.max
        slack = (hi - lo) * self.tolerance if math.isfinite(hi - lo) else 0.0
        # Hard rule: what was never negative in training (amounts, counts, ages) may not be negative now.
        floor = 0.0 if spec.min is not None and spec.min >= 0 else -math.inf
        return max(lo - slack, floor), hi + slack


@dataclass
class CheckedRow:
    features: dict[str, Any]
    warnings: list[dict[str, str]] = field(default_factory=list)


def _warn(row: CheckedRow, spec: FeatureSpec, where: str, code: str, message: str) -> None:
    row.warnings.append({"field": where, "feature": spec.name, "code": code, "message": message})


def _check_value(contract: Contract, spec: FeatureSpec, value: Any, where: str, row: CheckedRow) -> str | None:
    """An error message, or None (possibly after adding a warning)."""
    if isinstance(value, str) and spec.kind == "categorical":
        value = normalise_text(value, spec.text)
        row.features[spec.name] = value  # stored as scored
    if value is None or (spec.kind == "categorical" and isinstance(value, str) and value.strip() == ""):
        if not spec.nullable:
            return "must not be null"
        worst = spec.fallback is not None and not spec.missing_learned
        _warn(row, spec, where, "missing_value", "no missing value in training: scored as the feature's worst bin"
              if worst else "scored in the Missing bin")
        return None
    if spec.kind == "numeric":
        if isinstance(value, bool) or not isinstance(value, int | float):
            return "must be a number"
        try:
            finite = math.isfinite(value)
        except OverflowError:  # an integer beyond float range
            finite = False
        if not finite:
            return "must be a finite number"
        if spec.special_values and value in spec.special_values:
            return None  # a code with a bin of its own (e.g. -1 = no data), outside the range by design
        lo, hi = contract.bounds(spec)
        if not lo <= value <= hi:
            return (f"{value} is outside the accepted range [{lo:g}, {hi:g}] (training range "
                    f"[{spec.min:g}, {spec.max:g}] widened by {contract.tolerance:.0%})")
        return None
    if not isinstance(value, str):
        return "must be a string (a category)"
    if spec.categories is not None and value not in spec.known:
        _warn(row, spec, where, "unseen_category", f"{value!r} was never seen in training; scored as the feature's "
              f"{'worst' if spec.fallback is not None else 'Unknown'} bin")
    return None


def check_row(contract: Contract, features: Mapping[str, Any], prefix: str,
              errors: list[FieldError]) -> CheckedRow:
    row = CheckedRow(dict(features))
    for name in sorted(contract.required - features.keys()):
        errors.append(FieldError(field=f"{prefix}.{name}", message="required by the model"))
    for name, value in features.items():
        where = f"{prefix}.{name}"
        spec = contract.specs.get(name)
        message = "not a feature of the served model" if spec is None else _check_value(
            contract, spec, value, where, row)
        if message is not None:
            errors.append(FieldError(field=where, message=message))
    return row


def check_rows(contract: Contract, rows: Sequence[Mapping[str, Any]], prefixes: Sequence[str]) -> list[CheckedRow]:
    """All rows checked; any error -> one 422 listing (the first few) bad fields."""
    errors: list[FieldError] = []
    checked = [check_row(contract, row, prefix, errors) for row, prefix in zip(rows, prefixes, strict=True)]
    if errors:
        shown = errors[:MAX_REPORTED_ERRORS]
        detail = "; ".join(f"{e.field}: {e.message}" for e in shown[:5])
        more = f" (and {len(errors) - len(shown)} more)" if len(errors) > len(shown) else ""
        raise Problem(422, "Invalid input", detail + more, errors=shown)
    return checked
