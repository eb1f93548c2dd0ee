from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pytest

from services.scoring.registry.flows import artifact_store, reference_rows, register_trained
from services.scoring.training import TrainResult, train

GERMAN = Path(__file__).resolve().parents[3] / "services" / "scoring" / "data" / "german_credit.csv"
NUMERIC = {"duration_in_month", "credit_amount", "installment_rate_in_percentage_of_disposable_income",
           "present_residence_since", "age_in_years", "number_of_existing_credits_at_this_bank",
           "number_of_people_being_liable_to_provide_maintenance_for"}


def german_rows() -> list[dict[str, Any]]:
    with GERMAN.open() as handle:
        rows = list(csv.DictReader(handle))
    return [{k: (int(v) if k in NUMERIC else v) for k, v in row.items() if k != "creditability"} for row in rows]


@pytest.fixture(scope="session")
def applicants() -> list[dict[str, Any]]:
    return german_rows()


@pytest.fixture(scope="session")
def trained() -> TrainResult:
    """One training for every API test module (each suite registers the same result)."""
    return train(GERMAN, "creditability", good="good", seed=0)


def install(suite, result: TrainResult, note: str = "test champion") -> list:  # noqa: ANN001
    models = register_trained(suite.database("scoring"), artifact_store(suite.kernel), result, name="german-credit",
                              actor="tests", note=note, promote=True,
                              reference=reference_rows(GERMAN, "creditability"))
    suite.services["scoring"].state.scoring.serving.invalidate()
    return models


@pytest.fixture(scope="module")
def champion(suite, trained):  # noqa: ANN001, ANN201
    """The suite with a registered champion (scorecard) and challenger (LightGBM)."""
    return install(suite, trained)
