"""The study's chart (matplotlib, headless): odds ratios with 95% CIs, and matched default rate by band."""

from __future__ import annotations

import io
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display on a server

from matplotlib import pyplot as plt  # noqa: E402
from matplotlib.ticker import FormatStrFormatter, NullFormatter  # noqa: E402

from services.scoring.study.service import BANDS  # noqa: E402


def study_chart(report: dict[str, Any]) -> bytes:
    figure, (odds, rates) = plt.subplots(1, 2, figsize=(10, 4))
    terms = [r for r in report["coefficients"] if r["kind"] in ("relationship", "control")
             and not r["term"].startswith(("grade_", "product_", "vintage_year_"))]
    labels = [r["term"] for r in terms]
    ratios = [r["odds_ratio"] for r in terms]
    errors = [[r["odds_ratio"] - r["or_ci_low"] for r in terms], [r["or_ci_high"] - r["odds_ratio"] for r in terms]]
    colours = ["tab:green" if r["kind"] == "relationship" else "tab:gray" for r in terms]
    odds.errorbar(ratios, range(len(terms)), xerr=errors, fmt="none", ecolor="tab:gray", capsize=3)
    odds.scatter(ratios, range(len(terms)), color=colours, zorder=3)
    odds.axvline(1.0, color="black", linewidth=0.8, linestyle="--")
    odds.set_xscale("log")
    odds.xaxis.set_major_formatter(FormatStrFormatter("%.2g"))
    odds.xaxis.set_minor_formatter(NullFormatter())
    odds.set_yticks(range(len(terms)), labels)
    odds.invert_yaxis()
    odds.set_xlabel("odds ratio of default (95% CI); relationship per SD")
    odds.set_title("Logistic regression with controls")
    measures = list(dict.fromkeys(b["measure"] for b in report["bands"]))
    width = 0.8 / max(len(measures), 1)
    for i, measure in enumerate(measures):
        values = {b["band"]: b["matched_rate"] for b in report["bands"] if b["measure"] == measure}
        rates.bar([j + i * width for j in range(len(BANDS))], [100 * (values.get(b) or 0) for b in BANDS],
                  width=width, label=measure)
    rates.set_xticks([j + 0.4 - width / 2 for j in range(len(BANDS))], list(BANDS))
    rates.set_ylabel("default rate, %, matched on grade × product")
    rates.set_xlabel("relationship band (tertile)")
    rates.set_title(f"Default within {report['window_months']} months of {report['as_of']}")
    rates.legend(fontsize=7)
    buffer = io.BytesIO()
    figure.tight_layout()
    figure.savefig(buffer, format="png", dpi=80)
    plt.close(figure)
    return buffer.getvalue()
