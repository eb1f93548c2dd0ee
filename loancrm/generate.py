"""`loancrm demo generate --customers N --seed S`: a portfolio at scale, written straight into each service's
database by the services' bulk path (`shared.db.bulk_rows`, `bulk_write`: COPY on PostgreSQL, one executemany per
table and chunk on SQLite), one transaction per service and chunk, with its ground truth in files of its own.

Resumable: `generation.json` in the output folder names the plan and the chunks done (with the length of the
ground-truth files after each). A run that stopped continues at the first chunk not noted done; of each chunk, a
service whose first row is already on file is not written again (it committed before the stop). `--workers`
processes build and write chunks side by side (SQLite lets them take turns at its one writer).
"""

from __future__ import annotations

import importlib
import json
import multiprocessing
import os
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy import MetaData, event, select
from sqlalchemy.engine import make_url
from tqdm import tqdm

from loancrm.portfolio import ChunkBuilder, Plan
from shared.audit import acting_as
from shared.db import Database, bulk_rows, bulk_write
from shared.settings import KernelSettings, load_settings

ACTOR = "demo-generator"
STATE_FILE, TRUTH_FILE, BUREAU_FILE = "generation.json", "ground_truth.jsonl", "credit_bureau.jsonl"
_SERVICES = ("customer", "scoring", "monitoring")


class GenerationError(RuntimeError):
    """The output folder belongs to another plan, or the databases are not ready; the message says which."""


@dataclass
class Summary:
    plan: dict[str, Any]
    chunks_written: int = 0
    chunks_skipped: int = 0
    rows: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    out: str = ""


def _metadata(service: str) -> MetaData:
    importlib.import_module(f"services.{service}.tables")  # every table of the service, registered
    return importlib.import_module(f"services.{service}.db").metadata


class Producer:
    """Builds chunks and writes each service's rows of them; one per worker process (or the one in-process)."""

    def __init__(self, kernel: KernelSettings, plan: Plan) -> None:
        from loancrm.demo import german_applicants
        from services.customer.customers.pii import load_vault
        from services.customer.settings import CustomerSettings
        from services.monitoring.rules.service import rule_copies
        from services.monitoring.settings import MonitoringSettings
        from services.monitoring.transactions.service import load_vault as load_payer_vault
        from services.scoring.hashing import load_hash_key
        from services.scoring.registry.flows import artifact_store
        from services.scoring.registry.serving import ServingModels
        from services.scoring.scores.service import ScoringContext
        from services.scoring.settings import ScoringSettings

        self.databases = {name: Database(kernel.database_url(name)) for name in _SERVICES}
        for database in self.databases.values():
            if not database.is_postgres:
                # Workers take turns at SQLite's one writer: a chunk may wait for the others' commits.
                event.listen(database.engine, "connect", _patient)
        self.metadata = {name: _metadata(name) for name in _SERVICES}
        scoring = load_settings(ScoringSettings)
        context = ScoringContext(scoring, load_hash_key(scoring, kernel))
        served = ServingModels(self.databases["scoring"], artifact_store(kernel), 3600).current()
        with self.databases["monitoring"].session() as session:
            rules = rule_copies(session)
            session.commit()  # the shipped rules, installed on first use
        monitoring = load_settings(MonitoringSettings)
        self.builder = ChunkBuilder(plan, load_vault(load_settings(CustomerSettings), kernel), served, context,
                                    german_applicants(), monitoring, rules, load_payer_vault(monitoring, kernel))

    def close(self) -> None:
        for database in self.databases.values():
            database.dispose()

    def _on_file(self, service: str, tables: dict[str, list[dict[str, Any]]]) -> bool:
        """Whether this chunk's rows of the service were committed before a stop (they all were, or none)."""
        first = next(((name, rows[0]) for name, rows in tables.items() if rows), None)
        if first is None:
            return True
        table = self.metadata[service].tables[first[0]]
        key = table.primary_key.columns.values()[0]
        with self.databases[service].session() as session:
            return session.execute(select(key).where(key == first[1][key.name])).first() is not None

    def _write(self, service: str, tables: dict[str, list[dict[str, Any]]]) -> None:
        database = self.databases[service]
        with acting_as(ACTOR, ("admin",)):
            # Made ready before the transaction: on SQLite the other workers wait for its one writer meanwhile.
            batches = [bulk_rows(self.metadata[service].tables[name], rows, database.engine.dialect)
                       for name, rows in tables.items() if rows]
            with database.session() as session:
                for batch in batches:
                    bulk_write(session, batch)
                session.commit()
        if not database.is_postgres:
            # Writers that never pause leave the WAL no moment to start over: at 150,000 customers it had grown to
            # 9 GB (and its index into each worker's memory). Each chunk folds it into the database and empties it.
            with database.engine.connect() as connection:
                connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")

    def produce(self, chunk: int) -> tuple[int, dict[str, int], list[dict[str, Any]], list[dict[str, Any]]]:
        """Build the chunk and write what is not on file yet; returns its row counts and ground truth."""
        rows = self.builder.build(chunk)
        written: dict[str, int] = {}
        for service in _SERVICES:
            tables = getattr(rows, service)
            if self._on_file(service, tables):
                continue
            self._write(service, tables)
            for name, items in tables.items():
                written[name] = len(items)
        return chunk, written, rows.truth, rows.bureau


def _patient(dbapi_connection, _record) -> None:  # noqa: ANN001
    dbapi_connection.execute("PRAGMA busy_timeout=600000")
    # Random ids put each chunk's rows all over every index: a page cache of 64 MB (2 MB by default) keeps more of
    # them in hand (about an eighth less CPU a chunk's write, measured), bounded however large the database grows.
    dbapi_connection.execute("PRAGMA cache_size=-65536")


_producer: Producer | None = None  # a worker process's own


def _start_worker(kernel: KernelSettings, plan: Plan) -> None:
    global _producer
    _producer = Producer(kernel, plan)


def _produce(chunk: int) -> tuple[int, dict[str, int], list[dict[str, Any]], list[dict[str, Any]]]:
    assert _producer is not None
    return _producer.produce(chunk)


class Generation:
    def __init__(self, kernel: KernelSettings, plan: Plan, out: Path, workers: int = 1) -> None:
        self.kernel, self.plan, self.out, self.workers = kernel, plan, out, workers
        # In-process when there is one worker (and for what tests rebuild).
        self.producer = Producer(kernel, plan) if workers == 1 else None

    def close(self) -> None:
        if self.producer is not None:
            self.producer.close()

    # -- state -----------------------------------------------------------------------------------------------
    def _state(self) -> dict[str, Any]:
        path = self.out / STATE_FILE
        wanted = {**asdict(self.plan), "as_of": self.plan.as_of.isoformat()}
        if not path.exists():
            return {"plan": wanted, "done": 0, "offsets": [0, 0]}
        state = json.loads(path.read_text())
        if state["plan"] != wanted:
            raise GenerationError(f"{path} records another generation ({state['plan']}); use another --out folder "
                                  "(and fresh databases) for this one")
        return state

    def _save(self, state: dict[str, Any]) -> None:
        path = self.out / STATE_FILE
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps(state))
        os.replace(temporary, path)  # never half a state file

    def _append(self, state: dict[str, Any], truth: list[dict[str, Any]], bureau: list[dict[str, Any]]) -> None:
        for index, (name, lines) in enumerate(((TRUTH_FILE, truth), (BUREAU_FILE, bureau))):
            with (self.out / name).open("a", encoding="utf-8") as handle:
                handle.truncate(state["offsets"][index])  # what a stopped run wrote past the last chunk done
                handle.seek(state["offsets"][index])
                handle.writelines(json.dumps(line, sort_keys=True) + "\n" for line in lines)
                state["offsets"][index] = handle.tell()

    def _results(self, chunks: range) -> Iterator[tuple[int, dict[str, int], list[Any], list[Any]]]:
        """Each chunk's result, in chunk order: built and written in the worker processes, several at a time."""
        if self.producer is not None:
            yield from map(self.producer.produce, chunks)
            return
        with ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("fork"),
                                 initializer=_start_worker, initargs=(self.kernel, self.plan)) as pool:
            yield from pool.map(_produce, chunks)

    def run(self, progress: bool = True, stop_after: int | None = None) -> Summary:
        """Generate every chunk not done yet; `stop_after` chunks at most (tests interrupt a run with it).

        Chunks are noted done in order, with the ground truth; one written past the last noted (workers finish
        out of order, a stop can come between) is found on file when met again, and not written twice."""
        self.out.mkdir(parents=True, exist_ok=True)
        state = self._state()
        summary = Summary(plan=state["plan"], chunks_skipped=state["done"], out=str(self.out))
        started = time.perf_counter()
        first = state["done"]
        last = self.plan.chunks if stop_after is None else min(self.plan.chunks, first + stop_after)
        with tqdm(total=self.plan.customers, initial=min(self.plan.customers, first * self.plan.chunk_size),
                  unit="customer", desc="generating", disable=not progress, smoothing=0.1) as bar:
            for chunk, written, truth, bureau in self._results(range(first, last)):
                for name, count in written.items():
                    summary.rows[name] = summary.rows.get(name, 0) + count
                self._append(state, truth, bureau)
                state["done"] = chunk + 1
                self._save(state)
                summary.chunks_written += 1
                bar.update(len(self.plan.span(chunk)))
        summary.seconds = round(time.perf_counter() - started, 3)
        return summary


def prepare(kernel: KernelSettings) -> None:
    """What `loancrm up` does first: every schema at its head and a scoring champion to score with."""
    from loancrm import migrate
    from services.scoring.registry.flows import ensure_default_champion

    migrate.upgrade_all(kernel)
    ensure_default_champion(kernel)


def default_workers(kernel: KernelSettings, cores: int | None = None) -> int:
    """One worker a core; one more when every database is PostgreSQL. There a worker waits on the server's
    writes about 40% of its time (1M customers measured: 60% of a core each with two workers on two cores, and
    a third took the run from 20.4 to 19.6 minutes). SQLite has one writer that the workers take turns at, so a
    worker more only waits longer."""
    cores = cores or os.cpu_count() or 1
    postgres = all(make_url(kernel.database_url(name)).get_backend_name() == "postgresql" for name in _SERVICES)
    return cores + 1 if postgres else cores


def generate(customers: int, seed: int, *, as_of: date, out: Path | None = None, chunk_size: int = 2000,
             feed_months: int = 6, history_months: int = 24, kernel: KernelSettings | None = None,
             progress: bool = True, stop_after: int | None = None, workers: int | None = 1) -> Summary:
    """`workers` None: `default_workers`."""
    kernel = kernel or load_settings(KernelSettings)
    prepare(kernel)
    workers = workers or default_workers(kernel)
    plan = Plan(seed=seed, customers=customers, chunk_size=chunk_size, as_of=as_of, feed_months=feed_months,
                history_months=history_months)
    job = Generation(kernel, plan, out or kernel.var_dir / "generated", workers)
    try:
        return job.run(progress=progress, stop_after=stop_after)
    finally:
        job.close()
