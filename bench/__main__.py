"""`python -m bench [NAME [ARGS...]]`: run one benchmark, or all of them at a quick size when no name is given.

Each prints ratios against a baseline measured in the same run and writes JSON under bench/results/.
"""

from __future__ import annotations

import importlib
import sys

BENCHMARKS = {
    "gateway": ("bench.bench_gateway", ["--requests", "400", "--rounds", "2"]),
    "scoring": ("bench.bench_scoring_onnx", []),
    "scoring_api": ("bench.bench_scoring_api", ["--requests", "1000"]),
    "customer": ("bench.bench_customer", ["--customers", "100000"]),
    "monitoring": ("bench.bench_monitoring", ["--loans", "200000"]),
    "cob": ("bench.bench_cob", ["--loans", "100000"]),
    "audit": ("bench.bench_audit", ["--writes", "500"]),
    "repayment_files": ("bench.bench_repayment_files", []),
    "generator": ("bench.bench_generator", ["--sizes", "2000,20000"]),
}


def main() -> int:
    names = sys.argv[1:2] or list(BENCHMARKS)
    extra = sys.argv[2:]
    for name in names:
        if name not in BENCHMARKS:
            print(f"unknown benchmark {name!r}; choose from {', '.join(BENCHMARKS)}", file=sys.stderr)
            return 2
        module_name, quick_args = BENCHMARKS[name]
        print(f"== {name}", flush=True)
        importlib.import_module(module_name).main(extra if sys.argv[1:2] else quick_args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
