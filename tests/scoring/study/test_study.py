"""The relationship study on generated extracts: it finds a planted effect, finds none where none is planted (at
about its stated false-positive rate), refuses what it cannot fit, and never uses collection contacts."""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest
from scipy import stats

from services.scoring.study.charts import study_chart
from services.scoring.study.service import StudyOptions, run_study
from shared.errors import Problem
from tests.scoring.study.generate import portfolio

AS_OF = date(2025, 6, 30)


def study(table, **options):  # noqa: ANN001, ANN201
    return run_study(table, as_of=AS_OF, window_months=12, options=StudyOptions(**options))


def test_a_planted_effect_is_recovered_with_its_sign_and_significance() -> None:
    report = study(portfolio(effect=-0.4, seed=3))
    assert {r["measure"] for r in report["relationship"]} == {"communication", "satisfaction", "information_sharing"}
    for row in report["relationship"]:
        assert row["coef"] < 0 and row["odds_ratio_per_sd"] < 1 and row["or_ci_high"] < 1, row
        assert row["significant"] and row["direction"] == "lowers default", row
    assert report["joint_test"]["p_value"] < 1e-6
    lift = report["lift"]
    assert lift["auc_full"] > lift["auc_base"] and lift["ci_low"] > 0, lift
    assert report["sample"]["n"] == 3000 and 0 < report["sample"]["defaults"] < 3000
    bands = {b["band"]: b for b in report["bands"] if b["measure"] == "relationship (all measures)"}
    assert bands["low"]["matched_rate"] > bands["mid"]["matched_rate"] > bands["high"]["matched_rate"]


def test_no_planted_effect_is_significant_at_about_the_stated_rate_over_seeds() -> None:
    """40 portfolios without an effect, but with relationship better among better grades: the joint test and each
    measure's Wald test reject at about alpha (5%), within a binomial tolerance (P(false failure) < 0.5%)."""
    seeds = range(40)
    joint, single = 0, 0
    for seed in seeds:
        report = study(portfolio(effect=0.0, seed=100 + seed, n=1500))
        joint += report["joint_test"]["p_value"] < report["alpha"]
        single += sum(r["significant"] for r in report["relationship"])
    assert joint <= stats.binom.ppf(0.995, 40, 0.05), joint
    assert single <= stats.binom.ppf(0.995, 120, 0.05), single


def test_without_matching_on_grade_the_null_portfolio_would_look_protective() -> None:
    """Why the controls matter: raw default rates fall with relationship in the null portfolio; the matched rates
    and the regression do not."""
    report = study(portfolio(effect=0.0, seed=0, n=6000))
    bands = {b["band"]: b for b in report["bands"] if b["measure"] == "relationship (all measures)"}
    raw_gap = bands["low"]["raw_rate"] - bands["high"]["raw_rate"]
    matched_gap = bands["low"]["matched_rate"] - bands["high"]["matched_rate"]
    assert raw_gap > 0.03 and abs(matched_gap) < raw_gap / 2, bands
    assert not any(r["significant"] for r in report["relationship"]) or report["joint_test"]["p_value"] > 0.01


def test_collection_contacts_never_enter_the_study() -> None:
    """Delinquent borrowers get collection calls: counting them would make contact look harmful."""
    table = portfolio(effect=-0.4, seed=5)
    plain = study(table)
    table["contacts_collection"] = table["contacts_collection"] * 10
    assert study(table)["relationship"] == plain["relationship"]
    assert all("collection" not in r["term"] for r in plain["coefficients"])


def test_missing_satisfaction_gets_an_indicator_and_a_fill() -> None:
    report = study(portfolio(seed=2, satisfaction_missing=0.3))
    assert report["missing_values"]["satisfaction"]["missing"] > 0
    assert "satisfaction_missing" in {r["term"] for r in report["coefficients"]}
    assert all(np.isfinite(r["coef"]) for r in report["coefficients"])


def test_too_few_defaults_is_a_422_saying_so() -> None:
    table = portfolio(n=200, seed=1)
    with pytest.raises(Problem) as refused:
        study(table)
    assert refused.value.status == 422 and "defaults" in refused.value.detail
    with pytest.raises(Problem) as empty:
        study(table.iloc[:0])
    assert empty.value.status == 422


def test_a_level_without_defaults_joins_the_most_common_one_instead_of_separating() -> None:
    table = portfolio(n=3000, seed=4)
    table.loc[table["product"] == "mortgage", "default_in_window"] = False  # no mortgage ever defaults
    report = study(table)
    assert report["merged_levels"]["product"] == ["mortgage"]
    assert "product_mortgage" not in {r["term"] for r in report["coefficients"]}


def test_separation_is_a_409_naming_the_term() -> None:
    table = portfolio(n=3000, seed=4)
    table["default_in_window"] = table["information_sharing"] < table["information_sharing"].median()
    with pytest.raises(Problem) as separated:
        study(table)
    assert separated.value.status == 409 and "information_sharing" in separated.value.detail


def test_the_chart_is_a_png() -> None:
    png = study_chart(study(portfolio(seed=1)))
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) < 200_000


def test_delong_agrees_with_the_plain_auc() -> None:
    from sklearn.metrics import roc_auc_score

    from services.scoring.training.metrics import delong

    rng = np.random.default_rng(0)
    y = rng.random(500) < 0.2
    first, second = y + rng.normal(size=500), rng.normal(size=500)
    found = delong(y.astype(int), first, second)
    assert found["auc_full"] == pytest.approx(roc_auc_score(y, first))
    assert found["auc_base"] == pytest.approx(roc_auc_score(y, second))
    assert found["ci_low"] < found["lift"] < found["ci_high"] and found["p_value"] < 0.001
