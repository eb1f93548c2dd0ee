"""The relationship study: does the bank's relationship with a borrower lower default, with the controls held?

Takes a plain table (one row per loan: its facts on as_of, the borrower's relationship measures on as_of, and
whether it went 90+ days past due in the window after), fits a logistic regression with statsmodels and reports
coefficients, odds ratios, 95% confidence intervals, p-values, sample sizes, default rates by relationship band
matched on grade and product, and the AUC lift of the relationship measures on a held-out split (DeLong CI).
No web framework, no HTTP here: `flows.py` builds the table.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import numpy as np
import pandas as pd
import statsmodels
import statsmodels.api as sm
from scipy import stats
from sklearn.model_selection import train_test_split
from sqlmodel import Session

from services.scoring.study.models import RelationshipStudy, StudyRead
from services.scoring.training.metrics import delong
from shared.errors import Problem

ALPHA = 0.05
# The relationship measures: name in the report → column of the extract. Collection contacts are never among them
# (the customer service leaves them out of contacts_relationship).
MEASURES = {"communication": "contacts_relationship", "satisfaction": "csat_mean",
            "information_sharing": "information_sharing"}
LOYALTY = {"loyalty": "loyalty_index"}
CATEGORICAL_CONTROLS = ("grade", "product", "vintage_year")
BANDS = ("low", "mid", "high")


@dataclass(frozen=True)
class StudyOptions:
    include_loyalty: bool = False
    test_share: float = 0.3
    seed: int = 0
    # Logistic regression needs events: at least this many defaults (and non-defaults) per fitted parameter.
    events_per_parameter: int = 5
    min_defaults: int = 20
    # A category of a control with fewer rows than this joins "other" (a sparse level makes the fit separate).
    min_level_rows: int = 30
    min_level_events: int = 5
    alpha: float = ALPHA

    def measures(self) -> dict[str, str]:
        return {**MEASURES, **(LOYALTY if self.include_loyalty else {})}


@dataclass
class Design:
    """The regression's inputs: outcome, the design matrix with an intercept, and how each column was made."""

    y: pd.Series
    x: pd.DataFrame
    relationship_terms: list[str]
    missing: dict[str, dict[str, Any]] = field(default_factory=dict)
    merged_levels: dict[str, list[str]] = field(default_factory=dict)
    scales: dict[str, dict[str, float]] = field(default_factory=dict)


def too_few(detail: str) -> Problem:
    return Problem(422, "Too few defaults for the study", detail)


def _number(table: pd.DataFrame, column: str) -> pd.Series:
    if column not in table:
        return pd.Series(np.nan, index=table.index, dtype=float)
    return pd.to_numeric(table[column], errors="coerce").astype(float)


def _fill(name: str, values: pd.Series, design: Design, columns: dict[str, pd.Series], how: str) -> pd.Series:
    """Missing values: an indicator column (when any is missing) and the sample median or mean in their place."""
    missing = values.isna()
    if missing.all():
        raise Problem(422, "Study cannot be fitted", f"{name} is missing for every loan of the extract.")
    fill = float(values.median() if how == "median" else values.mean())
    design.missing[name] = {"missing": int(missing.sum()), "handling": f"indicator {name}_missing + {how} fill "
                                                                        f"({fill:.4g})" if missing.any() else "none"}
    if missing.any() and not missing.all():
        columns[f"{name}_missing"] = missing.astype(float)
    return values.fillna(fill)


def _levels(values: pd.Series, y: pd.Series, options: StudyOptions, merged: dict[str, list[str]],
            name: str) -> pd.Series:
    """A level with few loans, or few defaults or non-defaults, joins the most common level: alone it would
    separate (and an "other" of thin levels could be as thin)."""
    values = values.fillna("unknown").astype(str)
    counts = pd.DataFrame({"level": values, "y": y}).groupby("level")["y"].agg(["size", "sum"])
    thin = counts[(counts["size"] < options.min_level_rows) | (counts["sum"] < options.min_level_events)
                  | (counts["size"] - counts["sum"] < options.min_level_events)].index
    if len(thin):
        merged[name] = sorted(thin)
    return values.where(~values.isin(thin), counts["size"].idxmax())


def relationship_values(table: pd.DataFrame, options: StudyOptions) -> dict[str, pd.Series]:
    """Each measure on its study scale (communication: log(1 + contacts), others as reported), NaN where missing."""
    values = {}
    for name, column in options.measures().items():
        raw = _number(table, column)
        values[name] = np.log1p(raw.clip(lower=0)) if name == "communication" else raw
    return values


def design(table: pd.DataFrame, options: StudyOptions, *, with_relationship: bool = True) -> Design:
    y = table["default_in_window"].astype(bool).astype(int)
    built = Design(y=y, x=pd.DataFrame(index=table.index), relationship_terms=[])
    columns: dict[str, pd.Series] = {}
    if with_relationship:
        for name, values in relationship_values(table, options).items():
            filled = _fill(name, values, built, columns, "mean")
            sd = float(filled.std()) or 1.0
            built.scales[name] = {"mean": float(filled.mean()), "sd": sd}
            columns[name] = (filled - filled.mean()) / sd  # per standard deviation: comparable odds ratios
            built.relationship_terms.append(name)
    income = _number(table, "annual_income")
    debt = _number(table, "monthly_debt_payments")
    burden = (12 * debt / income.where(income > 0)).clip(0, 3)
    columns["log_income"] = _fill("log_income", np.log(income.where(income > 0)), built, columns, "median")
    columns["debt_burden"] = _fill("debt_burden", burden, built, columns, "median")
    year = table["vintage"].astype(str).str[:4] if "vintage" in table else pd.Series("unknown", index=table.index)
    grade = table["grade_at_origination"] if "grade_at_origination" in table else pd.Series(None, index=table.index)
    categorical = pd.DataFrame({name: _levels(values, y, options, built.merged_levels, name) for name, values in
                                (("grade", grade), ("product", table["product"]), ("vintage_year", year))})
    dummies = pd.get_dummies(categorical, drop_first=True, dtype=float)
    x = pd.concat([pd.DataFrame(columns), dummies], axis=1)
    x = x.loc[:, x.std() > 0]  # a constant column (one product only) says nothing and breaks the fit
    built.x = sm.add_constant(x, has_constant="add")
    return built


def _check_events(y: pd.Series, parameters: int, options: StudyOptions) -> None:
    defaults, n = int(y.sum()), len(y)
    needed = max(options.min_defaults, options.events_per_parameter * parameters)
    if min(defaults, n - defaults) < needed:
        raise too_few(f"{defaults} defaults and {n - defaults} non-defaults among {n} loans; the model has "
                      f"{parameters} parameters and needs at least {needed} of each "
                      f"({options.events_per_parameter} per parameter, at least {options.min_defaults}). "
                      "Take an earlier as_of, a longer window, or a larger portfolio.")


def fit(built: Design) -> Any:
    """The maximum-likelihood logit; separation (a term predicting default perfectly) is a 409 saying which."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            result = sm.Logit(built.y, built.x, check_rank=False).fit(method="newton", maxiter=100, disp=False)
        except (np.linalg.LinAlgError, ValueError) as exc:
            raise Problem(409, "Study cannot be fitted", f"The regression could not be fitted ({exc}): the "
                          "controls are collinear or separate defaults perfectly.") from None
    # statsmodels warns instead of raising on perfect separation: a huge standard error or no convergence says so.
    bse = result.bse.replace([np.inf], np.nan)
    suspect = [t for t in built.x.columns if not np.isfinite(bse.get(t, np.nan)) or abs(result.params[t]) > 15]
    if not result.mle_retvals.get("converged", False) or suspect:
        raise Problem(409, "Study cannot be fitted", "The regression separates: "
                      f"{', '.join(suspect) or 'the fit'} predicts default (or no default) almost perfectly, so "
                      "its odds ratio is unbounded. Take a larger sample or a longer window.",
                      extra={"terms": suspect})
    return result


def _kind(term: str, relationship: list[str]) -> str:
    if term == "const":
        return "intercept"
    if term in relationship:
        return "relationship"
    return "missing_indicator" if term.endswith("_missing") else "control"


def coefficients(result: Any, built: Design) -> list[dict[str, Any]]:
    ci = result.conf_int(alpha=ALPHA)
    rows = []
    for term in built.x.columns:
        coef, low, high = float(result.params[term]), float(ci.loc[term, 0]), float(ci.loc[term, 1])
        rows.append({"term": term, "kind": _kind(term, built.relationship_terms), "coef": coef,
                     "std_err": float(result.bse[term]), "z": float(result.tvalues[term]),
                     "p_value": float(result.pvalues[term]), "ci_low": low, "ci_high": high,
                     "odds_ratio": math.exp(coef), "or_ci_low": math.exp(low), "or_ci_high": math.exp(high)})
    return rows


def lift(full: Design, base: Design, options: StudyOptions) -> dict[str, Any]:
    """AUC of the full model and of the same model without relationship measures, both fitted on one training
    split and judged on the same held-out loans."""
    y = full.y
    train, test = train_test_split(y.index, test_size=options.test_share, random_state=options.seed, stratify=y)
    if y.loc[test].sum() < 2 or y.loc[train].sum() < 2:
        raise too_few("The held-out split has too few defaults to compare AUCs.")
    scores = {}
    for name, built in (("full", full), ("base", base)):
        part = Design(y=built.y.loc[train], x=built.x.loc[train], relationship_terms=built.relationship_terms)
        part.x = part.x.loc[:, part.x.std() > 0].assign(const=1.0)
        result = fit(part)
        scores[name] = np.asarray(result.predict(built.x.loc[test, part.x.columns]))
    found = delong(y.loc[test].to_numpy(), scores["full"], scores["base"])
    return {**found, "method": "DeLong, paired on the same held-out loans",
            "split": {"test_share": options.test_share, "seed": options.seed, "stratified_on": "default_in_window",
                      "n_train": len(train), "n_test": len(test), "test_defaults": int(y.loc[test].sum())}}


def _bands(values: pd.Series) -> pd.Series:
    """Tertiles by rank (ties share a band)."""
    ranks = values.rank(method="average", pct=True)
    return pd.cut(ranks, [0, 1 / 3, 2 / 3, 1], labels=list(BANDS), include_lowest=True)


def band_rates(table: pd.DataFrame, options: StudyOptions) -> list[dict[str, Any]]:
    """Default rate per tertile of each measure (and of the mean of their z-scores), raw and matched on grade and
    product: within each grade × product cell holding every band, the band's rate, weighted by the cell's share
    of those loans (direct standardisation), so a band is not judged by a different mix of grades and products."""
    y = table["default_in_window"].astype(bool).astype(int)
    cell = (table.get("grade_at_origination", pd.Series("unknown", index=table.index)).fillna("unknown").astype(str)
            + " × " + table["product"].astype(str))
    values = relationship_values(table, options)
    zscores = pd.DataFrame({k: (v - v.mean()) / (v.std() or 1.0) for k, v in values.items()})
    values["relationship (all measures)"] = zscores.mean(axis=1, skipna=True)
    rows = []
    for measure, series in values.items():
        known = series.notna()
        frame = pd.DataFrame({"y": y[known], "band": _bands(series[known]), "cell": cell[known]})
        per_cell = frame.groupby(["cell", "band"], observed=False)["y"].agg(["mean", "size"]).unstack("band")
        complete = per_cell["size"].gt(0).all(axis=1)
        weights = per_cell["size"][complete].sum(axis=1)
        weights = weights / weights.sum() if weights.sum() else weights
        for band in BANDS:
            in_band = frame[frame["band"] == band]
            matched = float((per_cell["mean"][band][complete] * weights).sum()) if complete.any() else None
            rows.append({"measure": measure, "band": band, "n": len(in_band), "defaults": int(in_band["y"].sum()),
                         "raw_rate": float(in_band["y"].mean()) if len(in_band) else None,
                         "matched_rate": matched, "matched_cells": int(complete.sum()),
                         "matched_loans": int(per_cell["size"][complete].sum().sum()),
                         "missing": int((~known).sum())})
    return rows


def _direction(row: dict[str, Any], alpha: float) -> str:
    if row["p_value"] >= alpha:
        return "no effect detected"
    return "lowers default" if row["coef"] < 0 else "raises default"


def run_study(table: pd.DataFrame, *, as_of: date, window_months: int, options: StudyOptions | None = None,
              extract: dict[str, Any] | None = None) -> dict[str, Any]:
    """The report (JSON-ready). 422 for too few loans or defaults, 409 when the fit separates."""
    options = options or StudyOptions()
    if len(table) == 0 or "default_in_window" not in table:
        raise too_few("The extract holds no loans with an outcome.")
    built = design(table, options)
    _check_events(built.y, built.x.shape[1], options)
    result = fit(built)
    base = design(table, options, with_relationship=False)
    base_result = fit(base)
    rows = coefficients(result, built)
    relationship = []
    for row in rows:
        if row["kind"] != "relationship":
            continue
        scale = built.scales[row["term"]]
        relationship.append({
            "measure": row["term"], "column": options.measures()[row["term"]],
            "scale": "log(1 + contacts), per SD" if row["term"] == "communication" else "per SD",
            "sd": scale["sd"], "coef": row["coef"], "odds_ratio_per_sd": row["odds_ratio"],
            "or_ci_low": row["or_ci_low"], "or_ci_high": row["or_ci_high"], "p_value": row["p_value"],
            "significant": row["p_value"] < options.alpha, "direction": _direction(row, options.alpha)})
    statistic = float(2 * (result.llf - base_result.llf))
    df = len(built.relationship_terms)
    y = built.y
    return {
        "study": "relationship", "as_of": as_of.isoformat(), "window_months": window_months,
        "outcome": "more than 90 days past due within (as_of, as_of + window]",
        "alpha": options.alpha,
        "sample": {"n": int(len(y)), "defaults": int(y.sum()), "default_rate": float(y.mean()), **(extract or {})},
        "model": {"family": "logistic regression (maximum likelihood)", "library": f"statsmodels "
                  f"{statsmodels.__version__}", "parameters": int(built.x.shape[1]),
                  "pseudo_r2": float(result.prsquared), "log_likelihood": float(result.llf),
                  "controls": ["log_income", "debt_burden (12 × monthly debt payments / annual income, 0-3)",
                               "grade at origination", "product", "vintage year"]},
        "relationship": relationship,
        "joint_test": {"test": "likelihood ratio, relationship measures together", "statistic": statistic,
                       "df": df, "p_value": float(stats.chi2.sf(statistic, df))},
        "coefficients": rows,
        "missing_values": built.missing,
        "merged_levels": {"rule": f"levels with fewer than {options.min_level_rows} loans or fewer than "
                                  f"{options.min_level_events} defaults or non-defaults join the most "
                                  "common level",
                          **built.merged_levels},
        "bands": band_rates(table, options),
        "lift": lift(built, base, options),
    }


def keep_study(session: Session, report: dict[str, Any], *, by: str) -> StudyRead:
    study = RelationshipStudy(as_of=date.fromisoformat(report["as_of"]), window_months=report["window_months"],
                              report=report, created_by=by)
    session.add(study)
    session.flush()
    return study_read(study)


def get_study(session: Session, study_id: str) -> RelationshipStudy:
    study = session.get(RelationshipStudy, study_id)
    if study is None:
        raise Problem(404, "Not found", f"No relationship study {study_id!r}.")
    return study


def study_read(study: RelationshipStudy) -> StudyRead:
    return StudyRead(id=study.id, as_of=study.as_of, window_months=study.window_months, created_by=study.created_by,
                     created_at=study.created_at, chart=f"/studies/relationship/{study.id}/chart.png",
                     report=study.report)
