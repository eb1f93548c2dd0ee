"""Database engine and sessions for one service's own database."""

from __future__ import annotations

import hashlib
import logging
import operator
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import psycopg
from psycopg.rows import dict_row
from pydantic_core import to_json
from sqlalchemy import JSON, Column, Connection, Numeric, Table, any_, bindparam, event, insert, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect, Engine, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql import Executable
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import registry
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.dml import Insert, Update
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.types import TypeDecorator
from sqlmodel import Session, SQLModel, create_engine

from shared.audit import Entry, batch_entry, note

__all__ = ["BulkRows", "Database", "Money", "SQLModel", "Step", "among", "bulk_insert", "bulk_rows", "bulk_write",
           "insert_ignoring", "insert_rows", "money_column", "new_registry", "round_money", "run_together",
           "update_rows"]

log = logging.getLogger(__name__)
# How often a SQLite database's WAL is checkpointed (off the request path): the WAL holds at most what is written
# in that time.
CHECKPOINT_SECONDS = 1.0


def new_registry() -> registry:
    """A registry (and so a MetaData) of a service's own, so no service's tables leak into another's."""
    return registry()


CENT = Decimal("0.01")


class _SqliteCents(Numeric):
    """NUMERIC(18, 2) in the DDL, integer cents in the rows: SQLite's NUMERIC keeps a REAL (15 significant digits,
    so 99,999,999,999,999.99 came back a cent off), an INTEGER is exact. No float conversion either way."""

    def bind_processor(self, dialect: Dialect) -> None:
        return None

    def result_processor(self, dialect: Dialect, coltype: object) -> None:
        return None


class Money(TypeDecorator):
    """THE money column type of every service: NUMERIC(18, 2) on PostgreSQL, integer cents on SQLite, Decimal in
    Python on both. Arithmetic with it in SQL (sums, differences, times a rate or a day count) stays Money, so its
    result is read back in units on SQLite too; round with `round_money`, not round(x, 2)."""

    impl = Numeric(18, 2, asdecimal=True)
    cache_ok = True

    class comparator_factory(TypeDecorator.Comparator):
        def operate(self, op: Any, *other: Any, **kwargs: Any) -> ColumnElement[Any]:
            # cents * days / days would be an INTEGER division on SQLite: the dividend is made REAL first.
            if op is operator.truediv and not isinstance(self.expr, _RealOnSqlite):
                return _RealOnSqlite(self.expr).operate(op, *other, **kwargs)
            return super().operate(op, *other, **kwargs)

        def _adapt_expression(self, op: Any, other_comparator: Any) -> tuple[Any, Any]:
            if op in (operator.add, operator.sub, operator.mul, operator.truediv):
                return op, self.type
            return super()._adapt_expression(op, other_comparator)

    def coerce_compared_value(self, op: Any, value: Any) -> Any:
        # amount > 0 binds 0 as money (0 cents on SQLite); amount * 2 or amount / 7 bind a plain number.
        if op in (operator.mul, operator.truediv):
            return Numeric()
        return self

    def load_dialect_impl(self, dialect: Dialect) -> Any:
        return dialect.type_descriptor(_SqliteCents(18, 2) if dialect.name == "sqlite" else Numeric(18, 2))

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        if isinstance(value, float):  # a float is no money: refused before it can round a cent away
            raise TypeError("money must be a Decimal (or int/str), never a float")
        amount = Decimal(value).quantize(CENT, ROUND_HALF_UP)
        return int(amount.scaleb(2)) if dialect.name == "sqlite" else amount

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        if dialect.name != "sqlite":
            return Decimal(value).quantize(CENT, ROUND_HALF_UP)
        # An integer from a column; a float from SQL arithmetic (a rate, a division), rounded as PostgreSQL would.
        cents = Decimal(value) if isinstance(value, int) else Decimal(repr(value))
        return cents.scaleb(-2).quantize(CENT, ROUND_HALF_UP)


class _RealOnSqlite(ColumnElement[Decimal]):
    inherit_cache = True

    def __init__(self, expr: ColumnElement[Any]) -> None:
        self.expr = expr
        self.type = Money()

    @property
    def _from_objects(self) -> list[Any]:
        return self.expr._from_objects


@compiles(_RealOnSqlite)
def _plain(element: _RealOnSqlite, compiler: Any, **kw: Any) -> str:
    return compiler.process(element.expr, **kw)


@compiles(_RealOnSqlite, "sqlite")
def _real(element: _RealOnSqlite, compiler: Any, **kw: Any) -> str:
    return f"CAST({compiler.process(element.expr, **kw)} AS REAL)"


class round_money(FunctionElement):  # lower case: used like func.round
    """An amount rounded to the cent in SQL: round(x, 2) on PostgreSQL, round(x) of the cents on SQLite."""

    type = Money()
    inherit_cache = True


@compiles(round_money)
def _round_units(element: round_money, compiler: Any, **kw: Any) -> str:
    return f"round({compiler.process(element.clauses, **kw)}, 2)"


@compiles(round_money, "sqlite")
def _round_cents(element: round_money, compiler: Any, **kw: Any) -> str:
    return f"round({compiler.process(element.clauses, **kw)})"


def insert_ignoring(session: Session | str, table: Table) -> Insert:
    """INSERT … ON CONFLICT DO NOTHING on either backend (the session's, or the one named): for rows that must
    exist once, written concurrently."""
    name = session if isinstance(session, str) else session.get_bind().dialect.name
    dialect = postgresql if name == "postgresql" else sqlite
    return dialect.insert(table).on_conflict_do_nothing()


def money_column(nullable: bool = False, server_default: str | None = None) -> Column:
    return Column(Money(), nullable=nullable, server_default=server_default)


def _sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _sqlite_pragmas(dbapi_connection, _record) -> None:  # noqa: ANN001
    # What PostgreSQL has built in: the audit trail's hash chain is computed by the appending statement itself.
    dbapi_connection.create_function("loancrm_sha256", 1, _sha256_hex, deterministic=True)
    cursor = dbapi_connection.cursor()
    # WAL lets readers proceed during a write; the busy timeout turns lock contention into waiting, not errors.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=5000")
    # No checkpoint inside a commit: copying the WAL back and syncing the file took a request's commit from
    # ~0.1 ms to several ms, every few hundred writes. The Database's own thread checkpoints instead.
    cursor.execute("PRAGMA wal_autocheckpoint=0")
    cursor.close()


def _json_text(value: object) -> str:
    # JSON columns through pydantic-core's serialiser: the same JSON as json.dumps (compact, UTF-8 unescaped) in a
    # quarter of the time, which a stored score (four JSON columns) pays on every request.
    return to_json(value).decode()


def make_engine(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database:
            from pathlib import Path

            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False}, json_serializer=_json_text)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    # No pre-ping: it costs every request a round trip. A connection the server dropped fails its request with a
    # 503 (shared/errors.py), and SQLAlchemy then discards the whole pool, so the retry gets a fresh connection.
    return create_engine(url, pool_size=10, max_overflow=20, pool_recycle=1800, json_serializer=_json_text)


class _WalCheckpointer:
    """Checkpoints a SQLite database's WAL from a thread of its own, every `interval` seconds. PASSIVE never
    waits for or blocks readers and writers (SQLite runs it with the GIL released), and a WAL fully checkpointed is
    reused from its start by the next write, so the file stays bounded by what is written between two runs."""

    def __init__(self, engine: Engine, interval: float) -> None:
        self._engine = engine
        self._interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._stopped = False

    def start(self) -> None:
        with self._lock:
            if self._thread is None and not self._stopped:
                self._thread = threading.Thread(target=self._run, name="sqlite-checkpoint", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self.checkpoint()

    def checkpoint(self) -> None:
        try:
            with self._engine.connect() as conn:
                conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")
        except Exception:  # noqa: BLE001 - a missed checkpoint is retried on the next tick; the WAL just grows
            log.warning("sqlite WAL checkpoint failed", exc_info=True)

    def stop(self) -> None:
        with self._lock:
            thread, self._thread, self._stopped = self._thread, None, True
        if thread is not None:
            self._stop.set()
            thread.join()
            self.checkpoint()  # leave the database file complete behind us


class Database:
    def __init__(self, url: str, checkpoint_seconds: float = CHECKPOINT_SECONDS) -> None:
        self.url = url
        self.engine = make_engine(url)
        self._checkpointer: _WalCheckpointer | None = None
        if not self.is_postgres:
            self._checkpointer = _WalCheckpointer(self.engine, checkpoint_seconds)
            # Started by the first connection: a Database that is never used costs no thread.
            event.listen(self.engine, "connect", lambda *_: self._checkpointer.start())  # type: ignore[union-attr]

    @property
    def is_postgres(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    @contextmanager
    def session(self) -> Iterator[Session]:
        with Session(self.engine, expire_on_commit=False) as session:
            yield session

    def ping(self) -> None:
        with self.engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")

    def dispose(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.stop()
        self.engine.dispose()


@dataclass(frozen=True)
class BulkRows:
    """A bulk insert made ready before its transaction: the rows as the driver takes them (bound per column on
    SQLite, JSON as text for COPY on PostgreSQL) and their audit entry. Made outside the transaction, the digest
    and the conversions stay out of the time SQLite's one writer lock is held."""

    table: Table
    columns: tuple[str, ...]
    values: list[tuple[Any, ...]]
    audit: Entry


def bulk_rows(table: Table, rows: Sequence[dict[str, Any]], dialect: Dialect) -> BulkRows:
    """`rows` (complete column dicts, all with the same keys, at least one) made ready for `bulk_write`; the audit
    entry names whoever is acting now."""
    columns = tuple(rows[0])
    values, raw = [], {}
    for name in columns:
        # Column by column: a column with nothing to convert costs one list, which the audit digest reads too.
        column = raw[name] = [row[name] for row in rows]
        as_json = isinstance(table.c[name].type, JSON)
        if dialect.name == "postgresql":
            convert = _json_text if as_json else None
        else:
            # The columns' own bind processors (money to cents, dates to text...), as a compiled insert applies them.
            convert = table.c[name].type.dialect_impl(dialect).bind_processor(dialect)
        values.append(_converted(column, convert, as_json))
    return BulkRows(table, columns, list(zip(*values, strict=True)), batch_entry(table, "insert", rows, columns=raw))


def _converted(column: list[Any], convert: Any, as_json: bool) -> list[Any]:
    """A column's values through `convert` (none: as they are); JSON is serialised value by value."""
    if convert is None:
        return column
    return [None if v is None else convert(v) for v in column] if as_json else _each_once(column, convert)


def _each_once(column: list[Any], convert: Any) -> list[Any]:
    """`convert` of each value, worked out once per distinct value: a batch's dates, times and amounts repeat, and
    a processor is a function of the value. Keyed by type and time zone too (1 == Decimal("1.00"); 10:00 UTC ==
    11:00 +01:00, but their text differs)."""
    done: dict[Any, Any] = {}
    out = []
    for v in column:
        if v is None:
            out.append(None)
            continue
        key = (v.__class__, getattr(v, "tzinfo", None), v)
        found = done.get(key, done)
        if found is done:
            found = done[key] = convert(v)
        out.append(found)
    return out


def bulk_write(session: Session, batch: BulkRows) -> None:
    """`batch` into its table in the session's transaction, past the ORM: one COPY on PostgreSQL, several times
    faster than INSERTs; one driver executemany elsewhere (errors still raised as SQLAlchemy's). A unique clash
    fails the whole batch. Its audit entry is committed with the rows."""
    connection = session.connection()
    note(session, batch.table, batch.audit)
    names = ", ".join(batch.columns)
    if connection.dialect.name != "postgresql":
        connection.exec_driver_sql(
            f"INSERT INTO {batch.table.name} ({names}) VALUES ({', '.join('?' * len(batch.columns))})", batch.values)
        return
    with connection.connection.cursor() as cursor, cursor.copy(f"COPY {batch.table.name} ({names}) FROM STDIN") as copy:
        for values in batch.values:
            copy.write_row(values)


def bulk_insert(session: Session, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """Rows (complete column dicts, all with the same keys) into `table` in the session's transaction: `bulk_rows`
    then `bulk_write`."""
    if rows:
        bulk_write(session, bulk_rows(table, rows, session.get_bind().dialect))


def among(column: ColumnElement[Any], name: str, dialect_name: str) -> ColumnElement[bool]:
    """`column IN (the list bound as name)`: `= ANY(%(name)s)` on PostgreSQL, one parameter whatever the list's
    length, so the statement is compiled once and the server prepares it; an expanding IN elsewhere."""
    if dialect_name == "postgresql":
        return column == any_(bindparam(name))
    return column.in_(bindparam(name, expanding=True))


@dataclass(frozen=True)
class Step:
    """A statement of `run_together` with its parameters (a list: executemany); `rows`: it returns rows.
    The statement is compiled once per column set and kept: build it once (a module constant, a cached
    function's result), never per call. Inserts and updates by key of many rows: `insert_rows`, `update_rows`."""

    statement: Executable
    params: dict[str, Any] | list[dict[str, Any]]
    rows: bool = False
    # Set by insert_rows / update_rows: the table and its key columns (none for an insert).
    rows_of: tuple[Table, tuple[str, ...]] | None = None


@cache
def _insert(table: Table) -> Insert:
    return insert(table)


@cache
def _update_by(table: Table, keys: tuple[str, ...], names: tuple[str, ...]) -> Update:
    """UPDATE of `names` where the keys equal the row's (bound as b_<key>), for one row at a time."""
    return update(table).where(*(table.c[key] == bindparam(f"b_{key}") for key in keys)).values(
        {name: bindparam(name) for name in names})


def insert_rows(table: Table, rows: list[dict[str, Any]]) -> Step:
    """The insert of `rows` (dicts with the same keys). On PostgreSQL several go as ONE statement (INSERT ...
    SELECT over unnest of an array a column): the server plans and runs it once, where an executemany runs a
    statement per row."""
    return Step(_insert(table), rows, rows_of=(table, ()))


def update_rows(table: Table, keys: tuple[str, ...], rows: list[dict[str, Any]]) -> Step:
    """The update of each row's other columns where `keys` equal the row's (dicts with the same keys, each key
    once). On PostgreSQL several go as ONE statement (UPDATE ... FROM unnest of an array a column)."""
    named = {row[keys[0]] for row in rows} if len(keys) == 1 else {tuple(row[k] for k in keys) for row in rows}
    if len(named) != len(rows):
        raise ValueError(f"update_rows of {table.name}: a key appears twice")
    names = tuple(name for name in rows[0] if name not in keys) if rows else ()
    return Step(_update_by(table, keys, names), [{f"b_{k}" if k in keys else k: v for k, v in row.items()}
                                                 for row in rows], rows_of=(table, keys))


@dataclass(frozen=True)
class _Unnest:
    sql: str
    columns: tuple[str, ...]  # the parameters' keys, in the order of the arrays
    converts: tuple[tuple[Callable[[Any], Any] | None, bool], ...]  # each array's converter, and whether JSON


_unnests: dict[tuple[Table, tuple[str, ...], tuple[str, ...]], _Unnest] = {}


def _unnest(table: Table, keys: tuple[str, ...], names: tuple[str, ...], dialect: Dialect) -> _Unnest:
    """The one statement of `insert_rows` / `update_rows` for parameters `names` on PostgreSQL: one array a
    column, cast to the column's type (JSON goes as text, as COPY takes it); each value bound as a compiled
    statement binds it (Money's checks and rounding)."""
    found = _unnests.get((table, keys, names))
    if found is not None:
        return found
    quote = dialect.identifier_preparer.quote
    columns = [name[2:] if keys and name.startswith("b_") and name[2:] in keys else name for name in names]
    arrays, converts, values = [], [], {}
    for name in columns:
        kind = table.c[name].type
        as_json = isinstance(kind, JSON)
        # Arrays go in binary (psycopg's text form of an array costs microseconds an element), numeric in text (as
        # fast, and exact either way).
        placeholder = "%t" if isinstance(kind, Numeric | Money) else "%b"
        arrays.append(f"{placeholder}::{'TEXT' if as_json else kind.compile(dialect=dialect)}[]")
        converts.append((_json_text, True) if as_json else (kind.dialect_impl(dialect).bind_processor(dialect), False))
        values[name] = f"v.{quote(name)}::JSON" if as_json else f"v.{quote(name)}"
    source = f"unnest({', '.join(arrays)}) AS v({', '.join(quote(c) for c in columns)})"
    if not keys:
        sql = (f"INSERT INTO {quote(table.name)} ({', '.join(quote(c) for c in columns)}) "
               f"SELECT {', '.join(values.values())} FROM {source}")
    else:
        sets = ", ".join(f"{quote(c)} = {values[c]}" for c in columns if c not in keys)
        match = " AND ".join(f"t.{quote(k)} = v.{quote(k)}" for k in keys)
        sql = f"UPDATE {quote(table.name)} AS t SET {sets} FROM {source} WHERE {match}"
    _unnests[(table, keys, names)] = found = _Unnest(sql, tuple(names), tuple(converts))
    return found


def _unnest_params(unnest: _Unnest, rows: list[dict[str, Any]]) -> list[list[Any]]:
    return [_converted([row[name] for row in rows], convert, as_json)
            for name, (convert, as_json) in zip(unnest.columns, unnest.converts, strict=True)]


_Prepare = Callable[[dict[str, Any]], dict[str, Any]]
_compiled: dict[tuple[Any, tuple[str, ...]], tuple[str, _Prepare]] = {}


def _for_psycopg(statement: Any, dialect: Dialect, keys: tuple[str, ...]) -> tuple[str, _Prepare]:
    """The statement's SQL for psycopg, and what turns a row of values into its parameters as SQLAlchemy would
    bind them (Python-side column defaults of an insert, the columns' bind processors)."""
    found = _compiled.get((statement, keys))
    if found is not None:
        return found
    table = getattr(statement, "table", None)
    defaults = {c.name: c.default for c in table.c if c.default is not None and c.name not in keys} \
        if getattr(statement, "is_insert", False) else {}
    compiled = statement.compile(dialect=dialect, column_keys=[*keys, *defaults] if keys else None)
    processors = compiled._bind_processors  # noqa: SLF001 - what SQLAlchemy's own execution applies

    def prepare(values: dict[str, Any]) -> dict[str, Any]:
        if defaults:
            values = {**values, **{name: d.arg if d.is_scalar else d.arg(None) for name, d in defaults.items()}}
        params = compiled.construct_params(values)
        for name, process in processors.items():
            if name in params:
                params[name] = process(params[name])
        return params

    _compiled[(statement, keys)] = found = (compiled.string, prepare)
    return found


def run_together(connection: Connection, steps: Sequence[Step]) -> list[list[dict[str, Any]]]:
    """The steps in order, in the connection's transaction; for each, the rows it returned (as dicts, empty for
    one that returns none). On PostgreSQL they go in one round trip (psycopg's pipeline mode: the server runs
    them one after the other as usual, the client does not wait between them) and past SQLAlchemy's per-statement
    work, the many rows of an `insert_rows` or `update_rows` step as one statement; elsewhere (SQLite, in process)
    one after the other through SQLAlchemy. A step with an empty list of parameters is skipped. Errors are raised
    as SQLAlchemy's."""
    steps = [step for step in steps if step.params or isinstance(step.params, dict)]
    if connection.dialect.name != "postgresql":
        return [[dict(row._mapping) for row in result] if step.rows else []  # noqa: SLF001
                for step in steps for result in [connection.execute(step.statement, step.params)]]
    raw = connection.connection.dbapi_connection
    cursors, sql, params = [], "", None
    try:
        with raw.pipeline():
            for step in steps:
                # One row goes as one statement: an executemany that returns rows waits for them there.
                many = isinstance(step.params, list) and len(step.params) > 1
                first = step.params[0] if isinstance(step.params, list) else step.params
                cursor = raw.cursor(row_factory=dict_row)
                if many and step.rows_of is not None and not step.rows:
                    unnest = _unnest(*step.rows_of, tuple(first), connection.dialect)
                    sql, params = unnest.sql, _unnest_params(unnest, step.params)
                    cursor.execute(sql, params)
                    cursors.append(cursor)
                    continue
                sql, prepare = _for_psycopg(step.statement, connection.dialect,
                                            tuple(first) if getattr(step.statement, "is_dml", False) else ())
                if many:
                    params = [prepare(row) for row in step.params]
                    cursor.executemany(sql, params, returning=step.rows)
                else:
                    params = prepare(first)
                    cursor.execute(sql, params)
                cursors.append(cursor)
        found = []
        for step, cursor in zip(steps, cursors, strict=True):
            rows: list[dict[str, Any]] = []
            while step.rows:
                rows.extend(cursor.fetchall())
                if not cursor.nextset():
                    break
            found.append(rows)
            cursor.close()
        return found
    except psycopg.Error as exc:
        raise DBAPIError.instance(sql, params, exc, psycopg.Error) from exc
