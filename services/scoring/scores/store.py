"""Storing score rows on the request path, lean: no ORM session, the INSERT compiled once per table and run on a
pooled DBAPI connection, with SQLAlchemy's own bind processors (so what is stored is exactly what the ORM would
write, and every read through it is unchanged).

Measured per stored score (one row, in-process): an ORM Session ~320 us on SQLite, a Core insert on
`engine.begin()` ~200 us, this ~110 us (the raw sqlite3 INSERT + COMMIT alone is ~50 us). On PostgreSQL the
statements of a write go out in one pipeline (BEGIN, INSERT(s), COMMIT in one round trip instead of three).

SQLite lets one writer in at a time and makes the others sleep in its busy handler (1, 2, 5, 10 ms...), so this
process's score writes take turns on a lock instead. A small SQLite write (~50 us of SQLite work) is cheaper done
on the event loop than handed to the thread pool: the hop costs more than the write, and at concurrency 4 the
pool's threads wait for the GIL behind the loop (up to the 5 ms switch interval) each time SQLite gives it back.
`store_now` is that write, and it never waits: if this process's lock or another connection's write lock is held,
it stores nothing and says so, and the caller stores through `store` in a thread.

A write may carry the request's Idempotency-Key row (the kernel's table, same columns and meaning as
`shared.idempotency`, written already answered: a score has no side effect to guard, so no claim comes first):
both commit together or not at all, and a key already taken is reported, not raised, so the caller replays the
first answer (or 409 while the key's first request, e.g. another keyed write of this service, still runs).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Table, insert
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.pool import PoolProxiedConnection

from services.scoring.db import audit, idempotency
from services.scoring.scores.models import Score
from shared.audit import batch_entry
from shared.db import Database
from shared.idempotency import Outcome


_SQLITE_BUSY = {5, 6}  # SQLITE_BUSY, SQLITE_LOCKED (primary codes: the low byte of an extended one)


class _Insert:
    """One table's INSERT for one dialect, and its parameters from a row dict holding every column."""

    def __init__(self, table: Table, dialect: Dialect) -> None:
        compiled = insert(table).compile(dialect=dialect)
        self.sql = str(compiled)
        self._order = list(compiled.positiontup) if compiled.positional else None  # type: ignore[arg-type]
        self._columns = [(c.name, c.type.dialect_impl(dialect).bind_processor(dialect)) for c in table.columns]

    def params(self, row: Mapping[str, Any]) -> tuple[Any, ...] | dict[str, Any]:
        values = {name: row[name] if process is None else process(row[name]) for name, process in self._columns}
        return tuple(values[name] for name in self._order) if self._order is not None else values


@dataclass(frozen=True)
class KeyRow:
    """The Idempotency-Key row written with the scores: the answer a retry gets."""

    owner: str
    key: str
    fingerprint: str
    status_code: int
    body: str  # the answer's JSON text, as sent


class ScoreWriter:
    def __init__(self, database: Database, key_table: Table) -> None:
        self.database = database
        dialect = database.engine.dialect
        self._dialect = dialect
        self._scores = _Insert(Score.__table__, dialect)  # type: ignore[arg-type]
        self._keys = _Insert(key_table, dialect)
        self._postgres = database.is_postgres
        self._turn = nullcontext() if self._postgres else threading.Lock()
        self._now: PoolProxiedConnection | None = None  # store_now's own connection

    @property
    def can_store_now(self) -> bool:
        """Whether `store_now` may be tried (SQLite); PostgreSQL writes are network round trips, never inline."""
        return not self._postgres

    def store(self, rows: Sequence[Mapping[str, Any]], key: KeyRow | None = None, *, durable: bool = True) -> bool:
        """Insert and commit `rows` (and the key row). False, with nothing stored, when the key was already
        taken. `durable=False` (PostgreSQL) commits without waiting for the WAL flush: for shadow rows only,
        which are analytics and never an answer."""
        statements = self._statements(rows, key)
        if not statements:
            return True
        try:
            with self._turn:
                self._run(statements, durable)
        except IntegrityError:
            if key is None:
                raise
            return False
        return True

    def store_now(self, rows: Sequence[Mapping[str, Any]], key: KeyRow | None = None) -> bool | None:
        """`store` without waiting for anyone (SQLite only): None, with nothing stored, when another writer is in."""
        assert self.can_store_now, "PostgreSQL writes go through store() in a thread"
        if not self._turn.acquire(blocking=False):  # type: ignore[union-attr]
            return None
        try:
            return self._run_now(self._statements(rows, key), key is not None)
        finally:
            self._turn.release()  # type: ignore[union-attr]

    def _statements(self, rows: Sequence[Mapping[str, Any]], key: KeyRow | None) -> list[tuple[str, list[Any]]]:
        statements: list[tuple[str, list[Any]]] = []
        if rows:
            statements.append((self._scores.sql, [self._scores.params(r) for r in rows]))
            # Its audit row, chained in the same transaction (one per batch, a digest of all its rows).
            statements.append((audit.raw_statement(self._dialect.name), [audit.raw_params(
                batch_entry(Score.__table__, "insert", rows), self._dialect.name)]))  # type: ignore[arg-type]
        if key is not None:
            statements.append((self._keys.sql, [self._keys.params({
                "owner": key.owner, "key": key.key, "fingerprint": key.fingerprint, "status_code": key.status_code,
                "body": key.body, "created_at": datetime.now(UTC), "claimant": None, "lease_until": None})]))
        return statements

    def _run_now(self, statements: list[tuple[str, list[Any]]], keyed: bool) -> bool | None:
        # A connection of its own, kept: no pool checkout and return (~30 us), and SQLite's busy timeout at 0 on it
        # once, so a writer on another connection makes this fail at once (SQLITE_BUSY) instead of sleeping.
        if self._now is None:
            pooled = self.database.engine.raw_connection()
            pooled.cursor().execute("PRAGMA busy_timeout = 0")
            self._now = pooled
        pooled = self._now
        try:
            cursor = pooled.cursor()
            for sql, params in statements:
                self._execute(cursor, sql, params)
            pooled.commit()
        except self._dialect.loaded_dbapi.Error as exc:
            busy = isinstance(exc, self._dialect.loaded_dbapi.OperationalError) and \
                getattr(exc, "sqlite_errorcode", 0) & 0xFF in _SQLITE_BUSY
            taken = keyed and isinstance(exc, self._dialect.loaded_dbapi.IntegrityError)
            if not (busy or taken):
                self._now = None
                try:
                    self._failed(pooled, exc, statements[0][0])
                finally:
                    if pooled.is_valid:  # never back to the pool with its busy timeout at 0
                        pooled.invalidate(exc)
            pooled.rollback()
            return None if busy else False
        return True

    async def aclose(self) -> None:
        """At shutdown (after the shadow queue's last write)."""
        self.close()

    def close(self) -> None:
        """Let go of `store_now`'s connection (it never returns to the pool: its busy timeout is 0)."""
        with self._turn:
            if self._now is not None:
                self._now.invalidate()
                self._now = None

    def _run(self, statements: list[tuple[str, list[Any]]], durable: bool) -> None:
        pooled = self.database.engine.raw_connection()
        sql = statements[0][0]
        try:
            try:
                if self._postgres:
                    driver = pooled.driver_connection
                    with driver.pipeline():  # type: ignore[union-attr]
                        cursor = driver.cursor()  # type: ignore[union-attr]
                        if not durable:
                            cursor.execute("SET LOCAL synchronous_commit = off")
                        for sql, params in statements:
                            self._execute(cursor, sql, params)
                        driver.commit()  # type: ignore[union-attr]
                else:
                    cursor = pooled.cursor()
                    for sql, params in statements:
                        self._execute(cursor, sql, params)
                    pooled.commit()
            except self._dialect.loaded_dbapi.Error as exc:
                self._failed(pooled, exc, sql)
        finally:
            pooled.close()  # back to the pool, which rolls back whatever did not commit

    @staticmethod
    def _execute(cursor: Any, sql: str, params: list[Any]) -> None:
        if len(params) == 1:
            cursor.execute(sql, params[0])
        else:
            cursor.executemany(sql, params)

    def _failed(self, pooled: Any, exc: Exception, sql: str) -> None:
        """As SQLAlchemy would: a dropped connection leaves the pool, and the error is raised wrapped, so the
        kernel's handlers turn it into a 503 to retry (or the caller sees an IntegrityError)."""
        lost = self._dialect.is_disconnect(exc, pooled.dbapi_connection, None)
        if lost:
            # The whole pool, as SQLAlchemy's own execution path does: its other connections are as dead as this one.
            pooled.invalidate(exc)
            self.database.engine.dispose()
        else:
            try:
                pooled.rollback()
            except self._dialect.loaded_dbapi.Error:
                pooled.invalidate(exc)
                lost = True
        raise DBAPIError.instance(sql, None, exc, self._dialect.loaded_dbapi.Error, connection_invalidated=lost,
                                  dialect=self._dialect) from exc

    def stored(self, owner: str, key: str, fingerprint: str) -> Outcome | None:
        """The answer remembered for (owner, key); 422 if the key was used for another request, 409 while its first
        request runs. None when the key is past its retention: it is forgotten then, so a retry stores afresh."""
        with self.database.engine.begin() as conn:
            found = idempotency.stored(conn, owner, key, fingerprint)
            if found is None:
                idempotency.forget_expired(conn, owner, key)
            return found
