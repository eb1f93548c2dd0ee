"""COB on the task queue: two real `loancrm worker` processes on RabbitMQ, one killed (SIGKILL) in the middle of a
chunk; the chunk is redelivered to the other and the end state equals a one-process run of the same portfolio.

PostgreSQL only: the workers are separate processes on one shared database, and the kill is timed by a row lock
the test holds on one loan (the worker ageing that loan's chunk waits on it, its chunk half done, when killed).
SQLite runs COB in-process (the embedded default), which tests/monitoring/api/test_cob.py covers.
"""

from __future__ import annotations

import asyncio
import signal
import socket
import threading
import time
import uuid

import psycopg
import pytest
from sqlalchemy.engine import make_url

from bench.bench_cob import BROKER, worker_process
from bench.bench_monitoring import TODAY, generate_portfolio
from loancrm import migrate
from services.monitoring.cob import flows
from services.monitoring.cob.workers import DramatiqQueue
from services.monitoring.settings import CobQueueSettings, MonitoringSettings
from shared.db import Database
from tests.conftest import require_postgres
from tests.support import throwaway_postgres_database

pytestmark = pytest.mark.postgres
LOANS, CHUNK = 4000, 40  # 400 overdue loans: 10 chunks


def _broker_problem() -> str | None:
    url = make_url(BROKER.replace("amqp://", "postgresql://", 1))
    try:
        socket.create_connection((url.host, url.port or 5672), timeout=2).close()
    except OSError as exc:
        return f"RabbitMQ at {url.host}:{url.port}: {exc}"
    return None


@pytest.fixture
def require_broker() -> None:
    require_postgres()
    problem = _broker_problem()
    if problem:
        pytest.skip(problem)


def _libpq(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _portfolio(url: str) -> None:
    migrate.upgrade(url, "monitoring")
    generate_portfolio(url, LOANS)


def _end_state(url: str) -> dict[str, list[tuple]]:
    """What COB leaves that a user sees: each loan's state, its history, its alerts, the run's figures."""
    with psycopg.connect(_libpq(url)) as conn:
        return {
            "loans": conn.execute("SELECT id, dpd, bucket, classification, ifrs9_stage FROM loans "
                                  "ORDER BY id").fetchall(),
            "history": conn.execute("SELECT loan_id, field, from_value, to_value, effective_date, cause, reference "
                                    "FROM risk_changes ORDER BY loan_id, field, effective_date, to_value").fetchall(),
            "alerts": conn.execute("SELECT loan_id, rule, trigger_key, status FROM alerts "
                                   "ORDER BY loan_id, rule, trigger_key").fetchall(),
            "run": conn.execute("SELECT status, chunks_total, chunks_done, loans_total, loans_processed, "
                                "loans_changed, history_appended, alerts_raised, failures FROM cob_runs "
                                "WHERE business_date = %s", (TODAY,)).fetchall(),
        }


def _run_cob(url: str, queue: DramatiqQueue | None) -> flows.CobReport:
    database = Database(url)
    settings = MonitoringSettings(cob_chunk_size=CHUNK, cob_heartbeat_seconds=1)
    ctx = flows.CobContext(database=database, settings=settings, day=TODAY, peers=None, credentials=None,
                           queue=queue)
    try:
        return asyncio.run(flows.run_cob(ctx, triggered_by="test"))
    finally:
        database.dispose()


def _waiting_worker(url: str, deadline: float) -> str:
    """The worker whose chunk waits on the test's lock: by the application name its connection carries."""
    with psycopg.connect(_libpq(url), autocommit=True) as conn:
        while time.monotonic() < deadline:
            row = conn.execute("SELECT application_name FROM pg_stat_activity WHERE datname = current_database() "
                               "AND application_name LIKE 'cob-worker-%%' AND wait_event_type = 'Lock'").fetchone()
            if row:
                return row[0]
            time.sleep(0.05)
    raise AssertionError("no worker reached the locked loan")


def test_a_worker_killed_mid_chunk_leaves_the_state_of_a_one_process_run(require_broker, tmp_path):
    with throwaway_postgres_database() as alone, throwaway_postgres_database() as spread:
        for url in (alone, spread):
            _portfolio(url)
        in_process = _run_cob(alone, None)
        assert in_process.status == "completed" and in_process.chunks_total >= 8

        queue_name = f"loancrm-cob-test-{uuid.uuid4().hex[:8]}"
        queue = DramatiqQueue(CobQueueSettings(broker_url=BROKER, queue=queue_name, poll_seconds=0.1))
        workers = {f"cob-worker-{n}": worker_process(spread, queue_name, tmp_path, f"cob-worker-{n}") for n in (1, 2)}
        holder = psycopg.connect(_libpq(spread))
        try:
            # Hold one overdue loan of a middle chunk: the worker ageing it stops there, its chunk half done.
            [locked] = holder.execute("SELECT id FROM loans WHERE oldest_unpaid_due < %s ORDER BY id "
                                      "OFFSET %s LIMIT 1 FOR UPDATE", (TODAY, 200)).fetchone()
            result: dict[str, flows.CobReport] = {}
            coordinator = threading.Thread(target=lambda: result.update(report=_run_cob(spread, queue)))
            coordinator.start()
            victim = _waiting_worker(spread, time.monotonic() + 120)
            workers[victim].send_signal(signal.SIGKILL)
            assert workers[victim].wait(30) == -signal.SIGKILL
            holder.rollback()  # the killed worker's transaction is rolled back by PostgreSQL, not committed
            coordinator.join(180)
            assert not coordinator.is_alive(), "COB did not finish on the surviving worker"
        finally:
            holder.close()
            for process in workers.values():
                if process.poll() is None:
                    process.send_signal(signal.SIGTERM)
                    process.wait(30)
            for name in (queue_name, f"{queue_name}.DQ", f"{queue_name}.XQ"):  # the test's own queues
                queue.broker.channel.queue_delete(name)
            queue.close()
        report = result["report"]
        assert report.status == "completed" and report.chunks_done == report.chunks_total
        assert report.attempts == 1  # one run, one coordinator: the chunk came back through the broker
        with psycopg.connect(_libpq(spread)) as conn:
            assert conn.execute("SELECT dpd > 0 FROM loans WHERE id = %s", (locked,)).fetchone() == (True,)
        assert _end_state(spread) == _end_state(alone)
