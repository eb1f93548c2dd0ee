"""Close of business on the task queue beside the in-process run, same portfolio, same run, on PostgreSQL.

    python -m bench cob [--loans 1000000] [--workers 2] [--chunk-size 5000]

Two throwaway databases get the same generated portfolio (bench_monitoring's: 10% overdue); one is aged in this
process (the embedded default), the other by `--workers` real `loancrm worker` processes through RabbitMQ
(LOANCRM_TEST_AMQP_URL or the local guest account). The ageing step is timed (the steps after it run in the
coordinating process either way); a bare read of the rows is the floor.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import date, timedelta
from pathlib import Path

from bench.bench_monitoring import TODAY, bare_read, generate_portfolio
from bench.common import write_result
from loancrm import migrate
from services.monitoring.business_day import set_business_date
from services.monitoring.cob.flows import CobContext, run_cob
from services.monitoring.cob.workers import DramatiqQueue
from services.monitoring.settings import CobQueueSettings, MonitoringSettings
from shared.db import Database
from tests.support import throwaway_postgres_database

BROKER = os.environ.get("LOANCRM_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")
ROOT = Path(__file__).resolve().parent.parent


def worker_process(database_url: str, queue: str, var_dir: Path, name: str) -> subprocess.Popen:
    """A `loancrm worker` of this checkout on `queue`, its database connections named `name`; returns once it
    takes messages."""
    env = {**os.environ, "LOANCRM_COB_BROKER_URL": BROKER, "LOANCRM_COB_QUEUE": queue,
           "LOANCRM_MONITORING_DATABASE_URL": f"{database_url}?application_name={name}",
           "LOANCRM_VAR_DIR": str(var_dir), "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen([sys.executable, "-m", "loancrm", "worker"], cwd=ROOT, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    process.stdout.readline()  # its one line, printed once it consumes: ready
    return process


def _prepare(url: str, loans: int) -> None:
    migrate.upgrade(url, "monitoring")
    database = Database(url)
    try:
        with database.session() as session:
            set_business_date(session, TODAY - timedelta(days=1))
            session.commit()
    finally:
        database.dispose()
    generate_portfolio(url, loans)


def _age(url: str, day: date, chunk_size: int, queue: DramatiqQueue | None) -> tuple[float, dict]:
    database = Database(url)
    ctx = CobContext(database=database, settings=MonitoringSettings(cob_chunk_size=chunk_size), day=day,
                     peers=None, credentials=None, queue=queue)
    try:
        started = time.perf_counter()
        report = asyncio.run(run_cob(ctx, triggered_by="bench"))
        seconds = time.perf_counter() - started
    finally:
        database.dispose()
    assert report.status == "completed", report
    return seconds, report.model_dump(mode="json", include={"chunks_total", "loans_total", "loans_processed",
                                                            "loans_changed", "history_appended", "alerts_raised"})


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="bench cob")
    parser.add_argument("--loans", type=int, default=200_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--chunk-size", type=int, default=5000)
    args = parser.parse_args(argv)
    queue_name = f"loancrm-cob-bench-{uuid.uuid4().hex[:8]}"
    with throwaway_postgres_database() as alone, throwaway_postgres_database() as spread, \
            tempfile.TemporaryDirectory() as var_dir:
        for url in (alone, spread):
            _prepare(url, args.loans)
        read_s = bare_read(alone)
        queue = DramatiqQueue(CobQueueSettings(broker_url=BROKER, queue=queue_name, poll_seconds=0.05))
        workers = [worker_process(spread, queue_name, Path(var_dir), f"cob-bench-{n}") for n in range(args.workers)]
        try:
            # Two days, the two ways taking turns, so that neither is the one run on a cold machine.
            in_process_s, in_process = _age(alone, TODAY, args.chunk_size, None)
            queued_s, queued = _age(spread, TODAY, args.chunk_size, queue)
            next_queued_s, next_queued = _age(spread, TODAY + timedelta(days=1), args.chunk_size, queue)
            next_in_process_s, next_in_process = _age(alone, TODAY + timedelta(days=1), args.chunk_size, None)
        finally:
            for process in workers:
                process.send_signal(signal.SIGTERM)
                process.wait(60)
            for name in (queue_name, f"{queue_name}.DQ", f"{queue_name}.XQ"):
                queue.broker.channel.queue_delete(name)
            queue.close()
    # The same work, done once, either way.
    assert (queued, next_queued) == (in_process, next_in_process), (queued, in_process, next_queued, next_in_process)
    result = {"loans": args.loans, "workers": args.workers, "chunk_size": args.chunk_size,
              "bare_read_s": round(read_s, 3), "in_process_s": round(in_process_s, 3),
              "queued_s": round(queued_s, 3), "queued_vs_in_process": round(queued_s / in_process_s, 2),
              "next_day_in_process_s": round(next_in_process_s, 3), "next_day_queued_s": round(next_queued_s, 3),
              "next_day_queued_vs_in_process": round(next_queued_s / next_in_process_s, 2),
              "in_process_vs_bare_read": round(in_process_s / read_s, 2), "report": in_process,
              "load_average": [round(x, 2) for x in os.getloadavg()], "cpus": os.cpu_count()}
    path = write_result("cob", result)
    print(f"{args.loans} loans ({in_process['loans_total']} to age in {in_process['chunks_total']} chunks): "
          f"in-process {in_process_s:.2f}s, {args.workers} workers via RabbitMQ {queued_s:.2f}s "
          f"= {result['queued_vs_in_process']}x (next day {next_in_process_s:.2f}s vs {next_queued_s:.2f}s "
          f"= {result['next_day_queued_vs_in_process']}x); bare read {read_s:.2f}s; "
          f"load average {result['load_average']} on {result['cpus']} CPUs")
    print(f"wrote {path}")
    return result


if __name__ == "__main__":
    main()
