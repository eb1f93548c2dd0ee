"""Loading a tabular dataset and deciding what each column is."""
from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .models import INTERNAL_PREFIX, PD_OUTPUT, POINTS_OUTPUT, SCORE_OUTPUT, DataError, FeatureKind, FeatureSpec
from .runtime import TEXT_RULES, normalise_text


@dataclass
class Dataset:
    frame: pd.DataFrame  # features only; numerics float64 (NaN = missing), categoricals object str / NaN
    y: np.ndarray  # 1 = bad (the "default" event)
    kinds: dict[str, FeatureKind]
    sha256: str
    target: str
    good_value: str | None
    dates: pd.Series | None
    text_rules: dict[str, str]  # per categorical feature, how its text is normalised (runtime.TEXT_RULES)

    @property
    def features(self) -> list[str]:
        return list(self.kinds)

    @property
    def numeric(self) -> list[str]:
        return [c for c, k in self.kinds.items() if k == "numeric"]

    @property
    def categorical(self) -> list[str]:
        return [c for c, k in self.kinds.items() if k == "categorical"]


def _sha256_of(data: str | Path | pd.DataFrame) -> tuple[pd.DataFrame, str]:
    if isinstance(data, pd.DataFrame):
        # Hash a canonical CSV rendering so that the same table hashes the same wherever it came from.
        buf = io.StringIO()
        data.to_csv(buf, index=False)
        return data.copy(), hashlib.sha256(buf.getvalue().encode()).hexdigest()
    try:
        raw = Path(data).read_bytes()
        return pd.read_csv(io.BytesIO(raw)), hashlib.sha256(raw).hexdigest()
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise DataError(f"cannot read {data}: {exc}") from None


def _encode_target(values: pd.Series, good: str | None) -> np.ndarray:
    # Every row must be plainly good or bad: a third value (a typo, "indeterminate") passing for bad, or
    # unlabelled rows vanishing, would change the population the model and its card describe.
    if values.isna().any():
        raise DataError(f"the target is missing on {int(values.isna().sum())} rows; label them or drop them")
    if good is not None:
        text = values.astype(str)
        distinct = sorted(text.unique().tolist())
        if str(good) not in distinct or len(distinct) > 2:
            raise DataError(f"target has values {distinct}; with good={str(good)!r} it must hold that value and "
                            "exactly one other (the bad one)")
        return (text != str(good)).to_numpy(dtype=np.int64)
    distinct = set(values.unique().tolist())
    if distinct <= {0, 1}:
        return values.to_numpy(dtype=np.int64)
    raise DataError(
        f"target has values {sorted(map(str, distinct))}; pass good=<value> to say which one is 'good'"
    )


def _parse_dates(values: pd.Series) -> pd.Series:
    """Dates as text (ISO and the like) or as yyyymmdd numbers, as bank extracts often have them; pandas would
    read any other number as nanoseconds since 1970. NaT where a value is not a date."""
    if pd.api.types.is_numeric_dtype(values):
        return pd.to_datetime(values.round().astype("Int64").astype(str), format="%Y%m%d", errors="coerce")
    return pd.to_datetime(values, errors="coerce")


def text_rule(series: pd.Series) -> str:
    """The most forgiving normalisation that keeps the column's categories apart: case and surrounding space are
    ignored unless the book itself tells "A" from "a" (or "a" from "a ")."""
    distinct = {str(v) for v in series.dropna().unique()}
    return next(rule for rule in TEXT_RULES if len({normalise_text(v, rule) for v in distinct}) == len(distinct))


def as_category(series: pd.Series, rule: str | None = None) -> pd.Series:
    """Categorical values as normalised Python str, missing (or blank) as NaN (optbinning's missing bin)."""
    def one(v: object) -> object:
        text = "" if pd.isna(v) else normalise_text(str(v), rule)
        return np.nan if text == "" else text
    return series.map(one).astype(object)


def load_dataset(
    data: str | Path | pd.DataFrame,
    target: str,
    good: str | None = None,
    date_column: str | None = None,
    categorical: list[str] | None = None,
    exclude: list[str] | None = None,
) -> Dataset:
    frame, sha = _sha256_of(data)
    if target not in frame.columns:
        raise DataError(f"target column {target!r} not in data")
    y = _encode_target(frame[target], good)
    if len(np.unique(y)) != 2:
        raise DataError("target needs both good and bad rows")

    dates = None
    if date_column is not None:
        if date_column not in frame.columns:
            raise DataError(f"date column {date_column!r} not in data")
        dates = _parse_dates(frame[date_column])
        if dates.isna().any():
            raise DataError(f"date column {date_column!r} has missing or unparseable values")

    unknown = [c for c in [*(categorical or []), *(exclude or [])] if c not in frame.columns]
    if unknown:  # a mistyped --exclude would otherwise leave the id column in as a feature
        raise DataError(f"columns {unknown} not in data")
    dropped = {target, date_column, *(exclude or [])}
    forced = set(categorical or [])
    kinds: dict[str, FeatureKind] = {}
    rules: dict[str, str] = {}
    features = pd.DataFrame(index=frame.index)
    for col in frame.columns:
        if col in dropped:
            continue
        series = frame[col]
        if pd.api.types.is_datetime64_any_dtype(series):
            continue  # a timestamp is for splitting (date_column), never a feature
        if col not in forced and (pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series)):
            kinds[col] = "numeric"
            # The served graphs take float32 inputs: training and parity see exactly the values serving will.
            features[col] = series.astype(np.float32).astype(np.float64)
        else:
            kinds[col] = "categorical"
            rules[col] = text_rule(series)
            features[col] = as_category(series, rules[col])
    if not kinds:
        raise DataError("no feature columns left")
    # The graphs' outputs and inner tensors carry these names, and an ONNX input cannot share a name with them.
    taken = [c for c in kinds if c in (PD_OUTPUT, SCORE_OUTPUT, POINTS_OUTPUT) or c.startswith(INTERNAL_PREFIX)]
    if taken:
        raise DataError(f"columns {taken} have the names of model outputs or start with {INTERNAL_PREFIX!r}; "
                        "rename them")
    return Dataset(features, y, kinds, sha, target, None if good is None else str(good), dates, rules)


def feature_schema(frame: pd.DataFrame, kinds: dict[str, FeatureKind], features: list[str],
                   special: dict[str, list] | None = None, text_rules: dict[str, str] | None = None,
                   ) -> list[FeatureSpec]:
    """Observed ranges / categories of the data the model was fitted on; a feature's special values (codes
    such as -1 for "no data") are accepted as they are and left out of its range. Each spec records whether a
    missing value was seen (else the model has no missing bin to learn from) and, for a category, its text rule;
    the fallback is the model's to set (training/contract.py)."""
    specs = []
    for name in features:
        col = frame[name]
        codes = list((special or {}).get(name) or []) or None
        if kinds[name] == "numeric":
            finite = col[np.isfinite(col) & ~col.isin(codes or [])]
            lo = float(finite.min()) if len(finite) else None
            hi = float(finite.max()) if len(finite) else None
            specs.append(FeatureSpec(name, "numeric", min=lo, max=hi, special_values=codes,
                                     missing_learned=bool(col.isna().any())))
        else:
            specs.append(FeatureSpec(name, "categorical", categories=sorted(col.dropna().unique().tolist()),
                                     special_values=codes, text=(text_rules or {}).get(name, "exact"),
                                     missing_learned=bool(col.isna().any())))
    return specs
