"""What the audit trail costs a request: one committed ORM write with and without its audit row, and one
personal-data read's audit row on an autocommit connection, on SQLite and PostgreSQL (in-process, one writer).

`python -m bench audit [--writes N]`. Prints microseconds per operation and the audited/unaudited ratio.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.common import write_result
from gateway.db import audit, metadata
from gateway.users.models import RevokedSession
from loancrm import migrate
from shared.audit import capture, digest, entry
from shared.db import Database
from tests.support import postgres_reachable, throwaway_postgres_database


def _writes(database: Database, n: int) -> float:
    started = time.perf_counter()
    for _ in range(n):
        with database.session() as session:
            session.add(RevokedSession(sid=uuid.uuid4().hex, username="bench", reason="bench",
                                       expires_at=datetime.now(UTC) + timedelta(hours=1)))
            session.commit()
    return (time.perf_counter() - started) / n * 1e6


def _reads(database: Database, n: int) -> float:
    engine = database.engine.execution_options(isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        started = time.perf_counter()
        for _ in range(n):
            audit.append(connection, [entry("read", "customers", uuid.uuid4().hex, None, None,
                                            {"via": "get_customer", "full": [], "masked": ["x"]})])
        return (time.perf_counter() - started) / n * 1e6


def _python_cost(n: int) -> float:
    """The in-process part of one audited write: the entry, the digest of a record's columns, the parameters."""
    state = {"sid": uuid.uuid4().hex, "username": "bench", "reason": "bench", "revoked_at": datetime.now(UTC),
             "expires_at": datetime.now(UTC), "amount": "12000.00", "count": 3, "flag": True}
    started = time.perf_counter()
    for _ in range(n):
        audit.raw_params(entry("update", "loans", "x", digest(state), digest(state)), "postgresql")
    return (time.perf_counter() - started) / n * 1e6


def _measure(url: str, n: int) -> dict[str, float]:
    migrate.upgrade(url, "gateway")
    database = Database(url)
    try:
        _writes(database, 50)  # warm up: connections, compiled statements
        audited = plain = 0.0
        rounds = max(1, n // 50)
        for _ in range(rounds):  # interleaved, so a change in the machine's load hits both alike
            audited += _writes(database, 50) / rounds
            capture._trails.pop(id(metadata))  # noqa: SLF001 - the same write with auditing off: the baseline
            try:
                plain += _writes(database, 50) / rounds
            finally:
                capture._trails[id(metadata)] = audit  # noqa: SLF001
        read = _reads(database, n)
        with database.engine.connect() as connection:
            assert audit.verify(connection).broken is None
    finally:
        database.dispose()
    return {"write_us": round(plain, 1), "audited_write_us": round(audited, 1),
            "audit_row_per_write_us": round(audited - plain, 1), "write_ratio": round(audited / plain, 3),
            "audited_read_row_us": round(read, 1)}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="bench audit")
    parser.add_argument("--writes", type=int, default=500)
    args = parser.parse_args(argv)
    result: dict[str, dict[str, float]] = {"python": {"entry_and_two_digests_us": round(_python_cost(20_000), 2)}}
    with tempfile.TemporaryDirectory() as tmp:
        result["sqlite"] = _measure(f"sqlite:///{Path(tmp) / 'gateway.db'}", args.writes)
    if postgres_reachable() is None:
        with throwaway_postgres_database() as url:
            result["postgresql"] = _measure(url, args.writes)
    for backend, figures in result.items():
        print(f"{backend}: {figures}")
    write_result("audit", result)
    return result
