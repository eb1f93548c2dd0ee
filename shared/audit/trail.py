"""A service's audit trail: an append-only table where each row carries the hash of the one before.

`hash = sha256(prev_hash "\\n" seq "\\n" payload)`, the payload being the row's other columns as canonical JSON. The
chain head (last seq and hash) lives in a one-row table beside it: appending updates that row, so on PostgreSQL
its row lock keeps the chain linear under concurrent writers (a waiting writer re-reads the head once the first
commits), and verification can tell a deleted last row from an honest end. The hash is computed by the database
in the same statement (PostgreSQL's sha256(), a function the kernel gives every SQLite connection), so an append
is one statement even on an autocommit connection, and never a read-then-write.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import chain
from typing import Any

import psycopg
from pydantic_core import to_json
from sqlalchemy import BigInteger, Column, DateTime, Index, Integer, MetaData, String, Table, Text, select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

GENESIS = "0" * 64
ACTIONS = ("insert", "update", "delete", "read")
SQLITE_SHA256 = "loancrm_sha256"


def digest(value: Any) -> str:
    """The canonical digest of a state (a dict of column values, a list of rows...): keys sorted, JSON, sha256."""
    return hashlib.sha256(to_json(_sorted(value), bytes_mode="base64", fallback=str)).hexdigest()


def digest_rows(rows: Sequence[Any]) -> str:
    """The digest of a batch of rows written together. Rows with the same columns are digested as
    `{"columns": their names sorted, "rows": each row's values in that order}` (nested values with their keys
    sorted): canonical whatever order a row's keys come in, and no row is rebuilt with sorted keys (a bulk write's
    digest covers every row; this keeps it from costing more than the write). Other batches: `digest`."""
    first = rows[0].keys() if rows and isinstance(rows[0], dict) else None
    if first is None or not all(isinstance(row, dict) and row.keys() == first for row in rows):
        return digest(list(rows))
    return digest_columns({name: [row[name] for row in rows] for name in first}, len(rows))


def digest_columns(by_name: dict[str, list[Any]], count: int) -> str:
    """`digest_rows` of `count` rows given column by column (each column's values in row order): for a bulk
    write, which has gathered its columns already."""
    names = sorted(by_name, key=str)
    columns = [by_name[name] for name in names]
    # The types present, in one C pass: a column is gone through again only if it holds a nested value.
    nested = {kind for kind in set(map(type, chain.from_iterable(columns))) if issubclass(kind, _NESTED)}
    if nested:
        columns = [[_sorted(v) for v in column] if not nested.isdisjoint(map(type, column)) else column
                   for column in columns]
    canonical = {"columns": names, "rows": list(zip(*columns, strict=True)) if names else [[] for _ in range(count)]}
    return hashlib.sha256(to_json(canonical, bytes_mode="base64", fallback=str)).hexdigest()


_NESTED = (dict, list, tuple)


def _sorted(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _sorted(value[k]) for k in sorted(value, key=str)}
    if isinstance(value, list | tuple):
        if value and isinstance(value[0], dict):
            return _sorted_rows(value)
        return [_sorted(v) for v in value]
    return value


def _sorted_rows(rows: list[Any] | tuple[Any, ...]) -> list[Any]:
    """`_sorted` of a batch of rows, the keys sorted once for all rows with the first one's keys (a bulk write's
    digest covers every row: this keeps it from costing more than the write)."""
    first = rows[0].keys()
    keys = sorted(first, key=str)
    nested = (dict, list, tuple)
    return [{k: _sorted(row[k]) if isinstance(row[k], nested) else row[k] for k in keys}
            if isinstance(row, dict) and row.keys() == first else _sorted(row) for row in rows]


def chain_hash(prev_hash: str, seq: int, payload: str) -> str:
    return hashlib.sha256(f"{prev_hash}\n{seq}\n{payload}".encode()).hexdigest()


def _instant(at: datetime) -> str:
    at = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)  # SQLite gives UTC back naive
    return at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class Entry:
    """One audited act, before it is chained: who, what, on which record, and digests of its state."""

    action: str
    entity: str
    entity_id: str | None
    digest_before: str | None
    digest_after: str | None
    actor: str
    roles: str
    request_id: str | None
    detail: str | None = None  # canonical JSON: which customers a read showed, how many rows a batch wrote...
    at: datetime | None = None

    def payload(self, at: datetime) -> str:
        return to_json([_instant(at), self.actor, self.roles, self.request_id, self.action, self.entity,
                        self.entity_id, self.digest_before, self.digest_after, self.detail]).decode()


@dataclass(frozen=True)
class Broken:
    seq: int
    problem: str


@dataclass(frozen=True)
class Verdict:
    rows: int
    broken: Broken | None


class AuditTrail:
    def __init__(self, metadata: MetaData, service: str, *, exclude: Iterable[str] = ()) -> None:
        self.service = service
        name = f"{service}_audit"
        self.table = Table(
            name, metadata,
            Column("seq", BigInteger, primary_key=True, autoincrement=False),
            Column("at", DateTime(timezone=True), nullable=False),
            Column("actor", String(200), nullable=False),
            Column("roles", String(200), nullable=False),
            Column("request_id", String(128), nullable=True),
            Column("action", String(16), nullable=False),
            Column("entity", String(64), nullable=False),
            Column("entity_id", String(200), nullable=True),
            Column("digest_before", String(64), nullable=True),
            Column("digest_after", String(64), nullable=True),
            Column("detail", Text, nullable=True),
            Column("prev_hash", String(64), nullable=False),
            Column("hash", String(64), nullable=False),
            Index(f"ix_{name}_at", "at"),
            Index(f"ix_{name}_actor_seq", "actor", "seq"),
            Index(f"ix_{name}_entity", "entity", "entity_id"),
            Index(f"ix_{name}_request_id", "request_id"),
        )
        self.head = Table(
            f"{name}_head", metadata,
            Column("id", Integer, primary_key=True, autoincrement=False),
            Column("seq", BigInteger, nullable=False),
            Column("prev_hash", String(64), nullable=False),
            Column("hash", String(64), nullable=False),
        )
        # Not audited: the trail itself, and the idempotency claims (a retry's bookkeeping; the write it guards is).
        self.excluded = frozenset({self.table.name, self.head.name, f"{service}_idempotency_keys", *exclude})
        columns = ("seq, at, actor, roles, request_id, action, entity, entity_id, digest_before, digest_after, "
                   "detail, prev_hash, hash")
        values = ("%(at)s, %(actor)s, %(roles)s, %(request_id)s, %(action)s, %(entity)s, %(entity_id)s, "
                  "%(digest_before)s, %(digest_after)s, %(detail)s")
        # psycopg and sqlite3 placeholders; one statement per row, so it is atomic on an autocommit connection too.
        self._postgres_sql = (
            f"WITH h AS (UPDATE {self.head.name} SET seq = seq + 1, prev_hash = hash, hash = encode(sha256("
            f"convert_to(hash || chr(10) || (seq + 1)::text || chr(10) || %(payload)s, 'UTF8')), 'hex') "
            f"WHERE id = 1 RETURNING seq, prev_hash, hash) "
            f"INSERT INTO {name} ({columns}) SELECT h.seq, {values}, h.prev_hash, h.hash FROM h")
        # Many entries in one statement (PostgreSQL): the head locked, the hashes chained one after the other in
        # a recursive query, the head moved once. Without a head row seq comes out NULL and the insert fails.
        # Arrays in binary: the text format escapes each element (a payload is some 200 characters of JSON).
        arrays = ", ".join(f"%({n})b::{t}[]" for n, t in (
            ("at", "timestamptz"), *((n, "text") for n in ("actor", "roles", "request_id", "action", "entity",
                                                           "entity_id", "digest_before", "digest_after", "detail",
                                                           "payload"))))
        self.postgres_many_sql = (
            f"WITH RECURSIVE e AS (SELECT * FROM unnest({arrays}) WITH ORDINALITY AS e(at, actor, roles, request_id, "
            f"action, entity, entity_id, digest_before, digest_after, detail, payload, n)), "
            f"head AS (SELECT seq, hash FROM {self.head.name} WHERE id = 1 FOR UPDATE), "
            f"c (n, seq, prev_hash, hash) AS (SELECT 0::bigint, seq, NULL::text, hash::text FROM head UNION ALL "
            f"SELECT e.n, c.seq + 1, c.hash, encode(sha256(convert_to(c.hash || chr(10) || (c.seq + 1)::text || "
            f"chr(10) || e.payload, 'UTF8')), 'hex') FROM c JOIN e ON e.n = c.n + 1), "
            f"moved AS (UPDATE {self.head.name} SET seq = last.seq, prev_hash = last.prev_hash, hash = last.hash "
            f"FROM (SELECT seq, prev_hash, hash FROM c ORDER BY n DESC LIMIT 1) AS last "
            f"WHERE {self.head.name}.id = 1 AND last.prev_hash IS NOT NULL) "
            f"INSERT INTO {name} ({columns}) SELECT c.seq, {values.replace('%(', 'e.').replace(')s', '')}, "
            f"c.prev_hash, c.hash FROM e LEFT JOIN c ON c.n = e.n ORDER BY e.n")
        # On SQLite a trigger (migrations/steps.py) moves the head; the write lock makes the statement atomic.
        self._sqlite_sql = (
            f"INSERT INTO {name} ({columns}) SELECT seq + 1, {values.replace('%(', ':').replace(')s', '')}, "
            f"hash, {SQLITE_SHA256}(hash || char(10) || (seq + 1) || char(10) || :payload) "
            f"FROM {self.head.name} WHERE id = 1")

    def audits(self, table_name: str) -> bool:
        return table_name not in self.excluded

    # --- writing ---------------------------------------------------------------------------------------------

    def raw_statement(self, dialect_name: str) -> str:
        """The append, for the DBAPI cursor of a connection of this dialect: one execute per `raw_params`."""
        return self._postgres_sql if dialect_name == "postgresql" else self._sqlite_sql

    def raw_params(self, entry: Entry, dialect_name: str) -> dict[str, Any]:
        at = entry.at or datetime.now(UTC)
        # sqlite3 gets the text SQLAlchemy's DateTime stores there (its datetime adapter is deprecated).
        stored_at = at if dialect_name == "postgresql" else at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
        return {"at": stored_at, "actor": entry.actor, "roles": entry.roles, "request_id": entry.request_id,
                "action": entry.action, "entity": entry.entity, "entity_id": entry.entity_id,
                "digest_before": entry.digest_before, "digest_after": entry.digest_after, "detail": entry.detail,
                "payload": entry.payload(at)}

    def many_params(self, entries: Sequence[Entry]) -> dict[str, list[Any]]:
        """`raw_params` of each entry, column by column: the parameters of the PostgreSQL append of many."""
        rows = [self.raw_params(entry, "postgresql") for entry in entries]
        return {name: [row[name] for row in rows] for name in rows[0]}

    def append(self, connection: Connection, entries: Sequence[Entry]) -> None:
        """Chain `entries` in `connection`'s transaction (or, in autocommit, one committed statement each)."""
        cursor = self.send(connection, entries)
        if cursor is not None:
            self.check(cursor)

    def send(self, connection: Connection, entries: Sequence[Entry]) -> Any | None:
        """`append` without its check, for a psycopg pipeline, where the statement's row count is known only once
        the pipeline has synced: the cursor to `check` then (None for no entries)."""
        if not entries:
            return None
        dialect = connection.dialect.name
        sql = self.raw_statement(dialect)
        params = [self.raw_params(entry, dialect) for entry in entries]
        cursor = connection.connection.cursor()
        try:
            if len(params) == 1:
                cursor.execute(sql, params[0])
            else:
                cursor.executemany(sql, params)
        except BaseException:
            cursor.close()
            raise
        return cursor

    def check(self, cursor: Any) -> None:
        """Refuses an append that chained nothing (no head row), and closes its cursor."""
        try:
            if cursor.rowcount == 0:
                raise RuntimeError(f"{self.head.name} has no head row: run the service's migrations")
        finally:
            cursor.close()

    # --- reading and verifying -------------------------------------------------------------------------------

    def walk(self, connection: Connection, batch: int = 5000, after: int = 0) -> Iterator[Any]:
        """Every row after `after` in chain order, in batches (a long chain is never held in memory)."""
        while True:
            rows = connection.execute(select(self.table).where(self.table.c.seq > after)
                                      .order_by(self.table.c.seq).limit(batch)).all()
            yield from rows
            if len(rows) < batch:
                return
            after = rows[-1].seq

    def count(self, connection: Connection) -> int:
        head = connection.execute(select(self.head.c.seq).where(self.head.c.id == 1)).scalar()
        return int(head or 0)

    def verify(self, connection: Connection, progress: Any = None) -> Verdict:
        """Walks the chain from its start; the first broken link: a changed row (its hash no longer matches),
        a deleted one (a gap in seq, or a row whose prev_hash is not the hash before it), a cut-off end."""
        prev_hash, expected, n = GENESIS, 1, 0
        while True:
            for row in self.walk(connection, after=n):
                if row.seq != expected:
                    return Verdict(n, Broken(expected, f"row {expected} is missing (deleted?): the chain jumps from "
                                                       f"{expected - 1} to {row.seq}"))
                if row.prev_hash != prev_hash:
                    return Verdict(n, Broken(row.seq, f"row {row.seq} does not follow row {row.seq - 1}: its "
                                                      "prev_hash differs (a row before it changed or was deleted)"))
                entry = Entry(action=row.action, entity=row.entity, entity_id=row.entity_id,
                              digest_before=row.digest_before, digest_after=row.digest_after, actor=row.actor,
                              roles=row.roles, request_id=row.request_id, detail=row.detail)
                if chain_hash(prev_hash, row.seq, entry.payload(row.at)) != row.hash:
                    return Verdict(n, Broken(row.seq, f"row {row.seq} was changed: its hash does not match its "
                                                      "contents"))
                prev_hash, expected, n = row.hash, expected + 1, n + 1
                if progress is not None:
                    progress.update(1)
            head = connection.execute(select(self.head).where(self.head.c.id == 1)).first()
            if head is None or (head.seq == n and head.hash == prev_hash):
                break
            # A head ahead of the walk: rows appended while the chain was read (walk on to them), or deleted.
            if head.seq < n or connection.execute(select(self.table.c.seq).where(
                    self.table.c.seq > n).limit(1)).first() is None:
                return Verdict(n, Broken(n + 1, f"the chain ends at row {n} but its head says {head.seq}: the "
                                                "last rows were deleted"))
        return Verdict(n, None)


def page_rows(trail: AuditTrail, connection: Connection, *, actor: str | None = None, entity: str | None = None,
              entity_id: str | None = None, request_id: str | None = None, action: str | None = None,
              since: datetime | None = None, until: datetime | None = None, before_seq: int | None = None,
              limit: int = 100) -> list[Any]:
    """Rows newest first, filtered, starting below `before_seq`; one more than `limit` tells a next page exists."""
    c = trail.table.c
    query = select(trail.table)
    for column, value in ((c.actor, actor), (c.entity, entity), (c.entity_id, entity_id),
                          (c.request_id, request_id), (c.action, action)):
        if value is not None:
            query = query.where(column == value)
    if since is not None:
        query = query.where(c.at >= since)
    if until is not None:
        query = query.where(c.at < until)
    if before_seq is not None:
        query = query.where(c.seq < before_seq)
    return list(connection.execute(query.order_by(c.seq.desc()).limit(limit + 1)).all())


def append_and_commit(connection: Connection, chains: Sequence[tuple[AuditTrail, Sequence[Entry]]]) -> None:
    """`append` of each trail's entries (one statement a trail), then COMMIT, in one round trip (psycopg's
    pipeline) on a PostgreSQL connection in a transaction; the driver's own commit that follows finds nothing left
    to do. A missing head row fails the append, and so the commit, as `append` does. Errors are raised as
    SQLAlchemy's."""
    raw = connection.connection.dbapi_connection
    cursor = raw.cursor()
    try:
        with raw.pipeline():
            for trail, entries in chains:
                cursor.execute(trail.postgres_many_sql, trail.many_params(entries))
            cursor.execute("COMMIT", prepare=False)
    except psycopg.errors.NotNullViolation as exc:
        if exc.diag.column_name != "seq":
            raise DBAPIError.instance("COMMIT", None, exc, psycopg.Error) from exc
        raise RuntimeError(f"{exc.diag.table_name}_head has no head row: run the service's migrations") from None
    except psycopg.Error as exc:
        raise DBAPIError.instance("COMMIT", None, exc, psycopg.Error) from exc
    finally:
        cursor.close()
