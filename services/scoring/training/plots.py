"""PNG plots of a model's test performance (matplotlib Agg, no pyplot global state)."""
from __future__ import annotations

import io

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from sklearn.metrics import roc_curve


def _png(fig: Figure) -> bytes:
    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, metadata={"Software": None})
    return buf.getvalue()


def roc_png(title: str, curves: dict[str, tuple[np.ndarray, np.ndarray]]) -> bytes:
    """curves: split name -> (y, pd)."""
    fig = Figure(figsize=(5, 5))
    ax = fig.add_subplot()
    for name, (y, pd_) in curves.items():
        fpr, tpr, _ = roc_curve(y, pd_)
        ax.plot(fpr, tpr, label=name)
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=0.8)
    ax.set(xlabel="False positive rate (goods declined)", ylabel="True positive rate (bads caught)", title=title)
    ax.legend(loc="lower right")
    return _png(fig)


def ks_png(title: str, y: np.ndarray, score: np.ndarray) -> bytes:
    order = np.argsort(score, kind="stable")
    s, yy = score[order], y[order]
    cum_bad = np.cumsum(yy) / max(yy.sum(), 1)
    cum_good = np.cumsum(1 - yy) / max((1 - yy).sum(), 1)
    gap = np.abs(cum_bad - cum_good)
    k = int(np.argmax(gap))
    fig = Figure(figsize=(6, 4))
    ax = fig.add_subplot()
    ax.plot(s, cum_bad, label="bad")
    ax.plot(s, cum_good, label="good")
    ax.vlines(s[k], cum_good[k], cum_bad[k], colors="black", linestyles=":", label=f"KS = {gap[k]:.3f}")
    ax.set(xlabel="score", ylabel="cumulative share", title=title)
    ax.legend(loc="lower right")
    return _png(fig)


def score_distribution_png(title: str, y: np.ndarray, score: np.ndarray) -> bytes:
    fig = Figure(figsize=(6, 4))
    ax = fig.add_subplot()
    edges = np.histogram_bin_edges(score, bins=20)
    ax.hist(score[y == 0], bins=edges, alpha=0.6, label="good", density=True)
    ax.hist(score[y == 1], bins=edges, alpha=0.6, label="bad", density=True)
    ax.set(xlabel="score", ylabel="density", title=title)
    ax.legend()
    return _png(fig)
