"""PNG charts of the portfolio figures (matplotlib, headless)."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")  # no display on a server

from matplotlib import pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from services.monitoring.portfolio.models import PortfolioFigures, RollRates, Vintage  # noqa: E402
from services.monitoring.portfolio.service import BUCKET_ORDER  # noqa: E402


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.tight_layout()
    figure.savefig(buffer, format="png", dpi=100)
    plt.close(figure)
    return buffer.getvalue()


def buckets_chart(figures: PortfolioFigures) -> bytes:
    figure, axis = plt.subplots(figsize=(7, 4))
    for group in figures.groups:
        axis.bar([f"{b.bucket}\n{group.group or ''}".strip() for b in group.buckets],
                 [float(b.outstanding) for b in group.buckets], label=group.group or "portfolio")
    axis.set_title(f"Outstanding principal by delinquency bucket, {figures.as_of.isoformat()}")
    axis.set_ylabel("outstanding principal")
    return _png(figure)


def vintages_chart(cohorts: list[Vintage]) -> bytes:
    figure, axis = plt.subplots(figsize=(7, 4))
    for cohort in cohorts:
        if cohort.curve:
            axis.plot(range(1, len(cohort.curve) + 1), [100 * r for r in cohort.curve], marker=".", label=cohort.cohort)
    axis.set_title("Vintage: share ever more than 30 days past due")
    axis.set_xlabel("months on book")
    axis.set_ylabel("% of cohort")
    if any(c.curve for c in cohorts):
        axis.legend(fontsize="small")
    return _png(figure)


def roll_rates_chart(rolls: RollRates) -> bytes:
    figure, axis = plt.subplots(figsize=(5, 4))
    matrix = [[rolls.rates.get(a, {}).get(b, 0.0) for b in BUCKET_ORDER] for a in BUCKET_ORDER]
    image = axis.imshow(matrix, cmap="Reds", vmin=0, vmax=1)
    axis.set_xticks(range(len(BUCKET_ORDER)), BUCKET_ORDER)
    axis.set_yticks(range(len(BUCKET_ORDER)), BUCKET_ORDER)
    axis.set_xlabel(f"bucket on {rolls.end.isoformat()}")
    axis.set_ylabel(f"bucket on {rolls.start.isoformat()}")
    figure.colorbar(image, ax=axis)
    return _png(figure)
