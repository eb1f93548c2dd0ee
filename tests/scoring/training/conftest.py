from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from services.scoring.training import TrainResult, train

GERMAN = Path(__file__).resolve().parents[3] / "services" / "scoring" / "data" / "german_credit.csv"


def synthetic_loans(n: int = 1500, seed: int = 7) -> pd.DataFrame:
    """A differently shaped book: other names, a date, missing values, target 'status' with good='repaid'."""
    rng = np.random.default_rng(seed)
    income = rng.lognormal(8.5, 0.5, n)
    debt_ratio = rng.beta(2, 5, n)
    tenure = rng.integers(0, 240, n).astype(float)
    contacts = rng.poisson(3, n).astype(float)
    region = rng.choice(["north", "south", "east", "west", "centre"], n)
    employment = rng.choice(["salaried", "self-employed", "civil servant", "unemployed"], n, p=[0.5, 0.25, 0.15, 0.1])
    channel = rng.choice(["branch", "app", "partner"], n)
    logit = (
        -1.2 - 0.8 * (np.log(income) - 8.5) + 3.0 * (debt_ratio - 0.3) - 0.004 * tenure - 0.15 * (contacts - 3)
        + np.select([employment == "unemployed", employment == "civil servant"], [1.2, -0.6], 0.0)
        + np.where(region == "south", 0.4, 0.0)
    )
    bad = rng.random(n) < 1.0 / (1.0 + np.exp(-logit))
    frame = pd.DataFrame(
        {
            "application_date": pd.Timestamp("2023-01-01") + pd.to_timedelta(rng.integers(0, 730, n), unit="D"),
            "monthly_income": income.round(2),
            "debt_ratio": debt_ratio.round(4),
            "tenure_months": tenure,
            "contact_frequency": contacts,
            "region": region,
            "employment": employment,
            "channel": channel,
            "status": np.where(bad, "defaulted", "repaid"),
        }
    )
    frame.loc[rng.random(n) < 0.08, "monthly_income"] = np.nan
    frame.loc[rng.random(n) < 0.05, "employment"] = None
    return frame


@pytest.fixture(scope="session")
def german() -> TrainResult:
    return train(GERMAN, "creditability", good="good", seed=0, relationship_features=["telephone", "housing"])


@pytest.fixture(scope="session")
def loans() -> pd.DataFrame:
    return synthetic_loans()
