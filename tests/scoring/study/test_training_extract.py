"""`loancrm scoring train --extract`: the study's point-in-time extract trains a model whose card reports the AUC
lift of the relationship measures with its confidence interval, on the same split."""

from __future__ import annotations

import argparse

from services.scoring.training.cli import add_train_arguments, train_from_args
from tests.scoring.study.generate import portfolio


def test_the_extract_trains_and_the_card_reports_the_lift_with_its_ci(tmp_path) -> None:  # noqa: ANN001
    extract = tmp_path / "extract.csv"
    # The generator plants collection calls on the loans that go on to default (for the study's sign test);
    # an extract's collection contacts are dated by as_of, so this one leaves them out.
    table = portfolio(n=2500, seed=11, effect=-0.5).drop(columns=["contacts_collection"])
    table["default_on"] = "2025-09-01"  # dated after as_of: must never be a feature
    table.assign(default_in_window=table["default_in_window"].astype(int)).to_csv(extract, index=False)
    args = add_train_arguments(argparse.ArgumentParser()).parse_args(["--extract", str(extract), "--seed", "0"])
    result = train_from_args(args)
    card = result.card
    assert result.report()["relationship"] == card["relationship"]
    lift = card["relationship"]
    assert lift["features"] == ["contacts_relationship", "csat_mean", "information_sharing", "loyalty_index"]
    low, high = lift["auc_lift_ci95"]
    assert low <= lift["auc_lift"] <= high and low > 0, lift
    assert card["relationship_auc_lift"] == lift["auc_lift"]
    features = set(card["dataset"]["candidate_features"])
    assert not features & {"loan_id", "customer_id", "default_on", "default_in_window"}
