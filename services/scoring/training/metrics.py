"""Quality measures of PD predictions (event = bad = 1)."""
from __future__ import annotations

import math

import numpy as np
from scipy import stats
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


def delong(y: np.ndarray, first: np.ndarray, second: np.ndarray, alpha: float = 0.05) -> dict[str, float]:
    """Paired DeLong test of AUC(first) − AUC(second) on the same cases (DeLong et al. 1988, midrank form)."""
    positives, negatives = y == 1, y == 0
    m, n = int(positives.sum()), int(negatives.sum())
    aucs, v01, v10 = [], [], []
    for scores in (first, second):
        pos, neg = scores[positives], scores[negatives]
        tx, ty = stats.rankdata(pos), stats.rankdata(neg)
        tz = stats.rankdata(np.concatenate([pos, neg]))
        aucs.append((tz[:m].sum() - m * (m + 1) / 2) / (m * n))
        v01.append((tz[:m] - tx) / n)
        v10.append(1 - (tz[m:] - ty) / m)
    sx, sy = np.cov(np.vstack(v01)), np.cov(np.vstack(v10))
    s = sx / m + sy / n
    variance = float(s[0, 0] + s[1, 1] - 2 * s[0, 1])
    diff = float(aucs[0] - aucs[1])
    se = math.sqrt(max(variance, 0.0))
    z = diff / se if se > 0 else 0.0
    half = float(stats.norm.ppf(1 - alpha / 2)) * se
    return {"auc_full": float(aucs[0]), "auc_base": float(aucs[1]), "lift": diff, "ci_low": diff - half,
            "ci_high": diff + half, "std_err": se, "p_value": float(2 * stats.norm.sf(abs(z)))}
