"""Scoring throughput: ONNX (onnxruntime, one thread) vs the same model in process (optbinning/scikit-learn/LightGBM).

Trains both families on the shipped German credit data, then times batches of 1, 100 and 10,000 rows in the
same run, two ways:
  * model call: inputs already in each runtime's shape (DataFrame vs dict of [N, 1] arrays);
  * from rows: starting from the list of dicts a service receives (building the DataFrame / the feeds counts).
Ratios are what to read; absolute rows/s move with the machine. Writes bench/results/bench_scoring_onnx.json.

    .venv/bin/python bench/bench_scoring_onnx.py [--seconds 0.5]
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from services.scoring.training import train  # noqa: E402
from services.scoring.training.card import library_versions  # noqa: E402
from services.scoring.training.dataset import load_dataset  # noqa: E402
from services.scoring.training.runtime import feeds_from_frame, feeds_from_rows, make_session  # noqa: E402

DATA = ROOT / "services" / "scoring" / "data" / "german_credit.csv"
BATCHES = (1, 100, 10_000)


def per_call_seconds(fn: Callable[[], object], budget: float) -> float:
    """Median of 5 rounds, each looping ``fn`` for about budget/5 seconds."""
    fn()  # warm-up (lazy allocations, caches)
    start = time.perf_counter()
    fn()
    once = max(time.perf_counter() - start, 1e-7)
    loops = max(1, int(budget / 5 / once))
    rounds = []
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(loops):
            fn()
        rounds.append((time.perf_counter() - start) / loops)
    return float(np.median(rounds))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=0.5, help="time budget per measurement")
    args = parser.parse_args(argv)

    result = train(DATA, "creditability", good="good", seed=0)
    frame = load_dataset(DATA, "creditability", good="good").frame
    rng = np.random.default_rng(0)
    rows_out = []
    for role, model in result.models.items():
        session = make_session(model.onnx)
        for batch in BATCHES:
            sample = frame.iloc[rng.integers(0, len(frame), batch)].reset_index(drop=True)
            records = [{k: (None if pd.isna(v) else v) for k, v in r.items()} for r in sample.to_dict("records")]
            feeds = feeds_from_frame(model.schema, sample)
            fitted = model.fitted
            timings = {
                "onnx_call": per_call_seconds(lambda: session.run(["pd"], feeds), args.seconds),
                "in_process_call": per_call_seconds(lambda: fitted.predict_pd(sample), args.seconds),
                "onnx_from_rows": per_call_seconds(
                    lambda: session.run(["pd"], feeds_from_rows(model.schema, records)), args.seconds
                ),
                "in_process_from_rows": per_call_seconds(
                    lambda: fitted.predict_pd(pd.DataFrame.from_records(records)), args.seconds
                ),
            }
            rows_out.append(
                {
                    "model": role,
                    "family": model.family,
                    "batch": batch,
                    **{f"{k}_rows_per_s": batch / v for k, v in timings.items()},
                    "speedup_call": timings["in_process_call"] / timings["onnx_call"],
                    "speedup_from_rows": timings["in_process_from_rows"] / timings["onnx_from_rows"],
                }
            )

    header = f"{'model':<11}{'batch':>7}{'onnx rows/s':>14}{'in-proc rows/s':>16}{'ONNX x':>8}{'x (from dicts)':>16}"
    print(header)
    print("-" * len(header))
    for r in rows_out:
        print(
            f"{r['model']:<11}{r['batch']:>7}{r['onnx_call_rows_per_s']:>14,.0f}{r['in_process_call_rows_per_s']:>16,.0f}"
            f"{r['speedup_call']:>8.1f}{r['speedup_from_rows']:>16.1f}"
        )
    out_dir = ROOT / "bench" / "results"
    out_dir.mkdir(parents=True, exist_ok=True)
    payload = {
        "benchmark": "scoring_onnx_vs_in_process",
        "python": platform.python_version(),
        "machine": platform.machine(),
        "libraries": library_versions(),
        "threads": {"onnxruntime_intra_op": 1, "lightgbm_n_jobs": 1},
        "results": rows_out,
    }
    (out_dir / "bench_scoring_onnx.json").write_text(json.dumps(payload, indent=2))
    print(f"\nwritten {out_dir / 'bench_scoring_onnx.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
