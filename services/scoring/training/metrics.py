"""Quality measures of PD predictions (event = bad = 1)."""
from __future__ import annotations

import numpy as np
from sklearn.metrics import brier_score_loss, roc_auc_score, roc_curve

from .models import SplitMetrics


def ks_statistic(y: np.ndarray, pd_: np.ndarray) -> float:
    """Max distance between the cumulative distributions of bads and goods."""
    fpr, tpr, _ = roc_curve(y, pd_)
    return float(np.max(tpr - fpr))


def calibration_table(y: np.ndarray, pd_: np.ndarray, n_bins: int = 10) -> list[dict[str, float]]:
    """Deciles of predicted PD with the observed bad rate in each (ties kept together)."""
    order = np.argsort(pd_, kind="stable")
    rows = []
    for i, chunk in enumerate(np.array_split(order, n_bins)):
        if len(chunk) == 0:
            continue
        rows.append(
            {
                "decile": i + 1,
                "n": int(len(chunk)),
                "pd_min": float(pd_[chunk].min()),
                "pd_max": float(pd_[chunk].max()),
                "mean_pd": float(pd_[chunk].mean()),
                "bad_rate": float(y[chunk].mean()),
            }
        )
    return rows


def evaluate(y: np.ndarray, pd_: np.ndarray) -> SplitMetrics:
    auc = float(roc_auc_score(y, pd_))
    return SplitMetrics(
        n=int(len(y)),
        bad_rate=float(y.mean()),
        auc=auc,
        gini=2.0 * auc - 1.0,
        ks=ks_statistic(y, pd_),
        brier=float(brier_score_loss(y, pd_)),
        calibration=calibration_table(y, pd_),
    )
