"""`python -m bench generator [--sizes 100000,1000000] [--seed S] [--database postgresql]`: `loancrm demo generate`
at each size, each in a fresh process and fresh databases: embedded SQLite files by default, or with
`--database postgresql` one throwaway PostgreSQL database per service (LOANCRM_TEST_POSTGRES_URL or the local
default), created for the size and dropped after it.

Reports customers/s, the CPU seconds a thousand customers took (the process and its workers) and the process's peak
memory (RSS) per size, and the ratios between the largest and smallest size: memory flat as N grows means a peak
ratio near 1 while the customers grow tenfold. Migrations and training the default champion happen before the
clock starts. Writes bench/results/generator.json.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import date

from bench.common import write_result


def _cpu_s() -> float:
    return sum(usage.ru_utime + usage.ru_stime for usage in map(resource.getrusage, (resource.RUSAGE_SELF,
                                                                                    resource.RUSAGE_CHILDREN)))


def _child(customers: int, seed: int, workers: int) -> None:
    from loancrm.generate import default_workers, generate, prepare
    from shared.settings import KernelSettings, load_settings

    kernel = load_settings(KernelSettings)
    prepare(kernel)  # migrations and the default champion, outside the CPU count too
    workers = workers or default_workers(kernel)
    cpu = _cpu_s()
    summary = generate(customers, seed, as_of=date(2026, 11, 30), progress=False, workers=workers)
    cpu = _cpu_s() - cpu  # this process and its workers (reaped when the run ends)
    # The largest of this process and its workers (each holds one chunk at a time).
    peak_kib = max(resource.getrusage(who).ru_maxrss for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
    print(json.dumps({"customers": customers, "seconds": summary.seconds, "rows": summary.rows,
                      "customers_per_s": round(customers / summary.seconds, 1),
                      # CPU time moves less than the wall clock when other work shares the machine.
                      "cpu_s_per_1000_customers": round(cpu * 1000 / customers, 2),
                      "workers": workers, "peak_rss_mib": round(peak_kib / 1024, 1)}))


@contextmanager
def _databases(kind: str) -> Iterator[dict[str, str]]:
    """The environment naming each service's database: none (the embedded files under the var dir), or throwaway
    PostgreSQL databases."""
    if kind == "sqlite":
        yield {}
        return
    from tests.support import throwaway_postgres_database

    with ExitStack() as stack:
        yield {f"LOANCRM_{service.upper()}_DATABASE_URL": stack.enter_context(throwaway_postgres_database())
               for service in ("gateway", "customer", "scoring", "monitoring")}


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench generator")
    parser.add_argument("--sizes", default="2000,20000", help="comma-separated customer counts")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--workers", type=int, default=0, help="default: the generator's (loancrm demo generate)")
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        _child(args.child, args.seed, args.workers)
        return
    runs = []
    for size in (int(s) for s in args.sizes.split(",")):
        with tempfile.TemporaryDirectory(prefix="bench-generator-") as var_dir, _databases(args.database) as urls:
            command = [sys.executable, "-m", "bench.bench_generator", "--child", str(size), "--seed",
                       str(args.seed), "--workers", str(args.workers)]
            environment = {k: v for k, v in os.environ.items() if not k.endswith("_DATABASE_URL")}
            done = subprocess.run(command, env={**environment, **urls, "LOANCRM_VAR_DIR": var_dir},
                                  capture_output=True, text=True, check=True)
        run = json.loads(done.stdout.strip().splitlines()[-1])
        run["database"] = args.database
        run["load_average"] = os.getloadavg()
        print(json.dumps(run), flush=True)
        runs.append(run)
    small, large = runs[0], runs[-1]
    result = {"runs": runs,
              "peak_rss_ratio_largest_vs_smallest": round(large["peak_rss_mib"] / small["peak_rss_mib"], 2),
              "throughput_ratio_largest_vs_smallest": round(large["customers_per_s"] / small["customers_per_s"], 2),
              "customers_ratio": large["customers"] / small["customers"]}
    print(json.dumps({k: v for k, v in result.items() if k != "runs"}))
    write_result("generator", result)


if __name__ == "__main__":
    main(sys.argv[1:])
