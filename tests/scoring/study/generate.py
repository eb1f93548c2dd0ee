"""Generated point-in-time extracts: a portfolio whose relationship effect on default is planted (or not)."""

from __future__ import annotations

import numpy as np
import pandas as pd

GRADES = {"A": -3.6, "B": -3.0, "C": -2.4, "D": -1.8, "E": -1.2}
PRODUCTS = {"personal_loan": 0.2, "mortgage": -0.6, "business_loan": 0.3, "credit_card": 0.4}


def portfolio(n: int = 3000, *, seed: int = 0, effect: float = -0.45, satisfaction_missing: float = 0.2,
              as_of: str = "2025-06-30") -> pd.DataFrame:
    """One row per loan, as `flows.extract` joins them. `effect`: the change in default log-odds per SD of each
    relationship measure (communication, satisfaction, information sharing); 0 plants none.

    Relationship is better among better grades (a latent engagement), so a study that did not match on grade
    would find an effect even with none planted."""
    rng = np.random.default_rng(seed)
    grade = rng.choice(list(GRADES), size=n, p=[0.15, 0.3, 0.3, 0.15, 0.1])
    product = rng.choice(list(PRODUCTS), size=n, p=[0.45, 0.2, 0.15, 0.2])
    grade_rank = pd.Series(grade).map({g: i for i, g in enumerate(GRADES)}).to_numpy()
    engagement = -0.35 * (grade_rank - 1.6) + rng.normal(size=n)
    communication = rng.poisson(np.exp(1.0 + 0.4 * engagement))
    satisfaction = np.clip(3.4 + 0.5 * engagement + rng.normal(scale=0.6, size=n), 1, 5)
    sharing = np.clip(0.5 + 0.15 * engagement + rng.normal(scale=0.15, size=n), 0, 1)
    income = np.exp(rng.normal(11.5, 0.5, size=n)) * (1.2 - 0.08 * grade_rank)
    burden = np.clip(rng.beta(2, 5, size=n) + 0.05 * grade_rank, 0, 1.5)
    debt = income * burden / 12

    def z(values: np.ndarray) -> np.ndarray:
        return (values - values.mean()) / values.std()

    log_odds = (pd.Series(grade).map(GRADES).to_numpy() + pd.Series(product).map(PRODUCTS).to_numpy()
                + 1.2 * burden + effect * (z(np.log1p(communication)) + z(satisfaction) + z(sharing)))
    default = rng.random(n) < 1 / (1 + np.exp(-log_odds))
    csat = np.where(rng.random(n) < satisfaction_missing, np.nan, np.round(satisfaction, 2))
    months = rng.integers(1, 36, size=n)
    vintage = (pd.Timestamp(as_of) - pd.to_timedelta(months * 30, unit="D")).strftime("%Y-%m")
    return pd.DataFrame({
        "loan_id": [f"L{seed}-{i}" for i in range(n)], "customer_id": [f"C{seed}-{i}" for i in range(n)],
        "product": product, "grade_at_origination": grade, "vintage": vintage,
        "principal": np.round(rng.uniform(5_000, 200_000, size=n), 2), "dpd_at_as_of": 0,
        "default_in_window": default, "annual_income": np.round(income, 2), "monthly_debt_payments": np.round(debt, 2),
        "contacts_relationship": communication, "contacts_collection": rng.poisson(4 * default + 0.2),
        "csat_mean": csat, "information_sharing": sharing, "loyalty_index": np.clip(0.5 + 0.1 * engagement, 0, 1),
    })
