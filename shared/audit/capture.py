"""Filling every service's audit trail without its code asking: SQLAlchemy session events.

After each flush the inserted, updated and deleted ORM objects become entries (a digest of their columns before
and after); Core INSERT/UPDATE/DELETE statements run through a session (the batch paths: COB, checks, erasure)
become one entry per statement, with a digest of its parameters. Entries wait in the session until its commit, then
are chained in that same transaction just before it commits: the head lock is held only for the commit, and no
write commits without its rows. Paths that bypass the session (COPY, a raw DBAPI executemany) call `note` or
append to the trail themselves. Who and which request come from the request context the kernel's middleware
opens and `current_principal` fills in.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar, Token
from dataclasses import dataclass, replace
from typing import Any

from pydantic_core import to_json
from sqlalchemy import Connection, Engine, MetaData, Table, event, inspect
from sqlalchemy.orm import ORMExecuteState, Session, UOWTransaction
from sqlalchemy.sql.elements import TextClause

from shared.audit.trail import AuditTrail, Entry, append_and_commit, digest, digest_columns, digest_rows
from shared.logging import request_id_var

_PENDING = "audit_pending"
_SEEN = "audit_seen"  # (table, id) -> index in the pending list
SYSTEM = "system"  # the actor of work no signed-in caller asked for: scheduled jobs, background writers
# Actors the suite itself signs as (the operator's command line acts as "cli"): no user may take these names, or the
# trail could not tell a person from the machine.
RESERVED_ACTORS = frozenset({SYSTEM, "cli"})


@dataclass
class Actor:
    sub: str = SYSTEM
    roles: str = ""


_actor: ContextVar[Actor | None] = ContextVar("audit_actor", default=None)
_trails: dict[int, AuditTrail] = {}  # id(MetaData) -> its service's trail


def audit_trail(metadata: MetaData, service: str, *, exclude: Sequence[str] = ()) -> AuditTrail:
    """The trail of the service whose tables live in `metadata`; its writes are audited from then on. Call once,
    after (or, as db.py does, before) the service's tables are declared: tables are looked up when written."""
    trail = AuditTrail(metadata, service, exclude=exclude)
    _trails[id(metadata)] = trail
    return trail


def trail_of(table: Table) -> AuditTrail | None:
    trail = _trails.get(id(table.metadata))
    return trail if trail is not None and trail.audits(table.name) else None


# --- who is acting ---------------------------------------------------------------------------------------------

def open_request() -> Token[Actor | None]:
    """Called by the kernel's middleware for each request: an actor slot that `identify` fills in."""
    return _actor.set(Actor())


def close_request(token: Token[Actor | None]) -> None:
    _actor.reset(token)


def identify(sub: str, roles: Sequence[str]) -> None:
    # The slot is shared by the request's copies of the context (a sync route runs in a thread with one).
    actor = _actor.get()
    if actor is not None:
        actor.sub, actor.roles = sub, ",".join(roles)


@contextmanager
def acting_as(sub: str, roles: Sequence[str] = ()) -> Iterator[None]:
    """For a job or a command run outside a request: whom its writes are recorded as."""
    token = _actor.set(Actor(sub, ",".join(roles)))
    try:
        yield
    finally:
        _actor.reset(token)


def entry(action: str, entity: str, entity_id: str | None, before: str | None, after: str | None,
          detail: Any = None) -> Entry:
    actor = _actor.get() or Actor()
    return Entry(action=action, entity=entity, entity_id=entity_id, digest_before=before, digest_after=after,
                 actor=actor.sub, roles=actor.roles, request_id=request_id_var.get(),
                 detail=None if detail is None else to_json(detail, fallback=str).decode())


# --- recording -------------------------------------------------------------------------------------------------

def note(session: Session | Connection, table: Table, item: Entry) -> None:
    """Record `item` for `table`'s service: with the session's commit, or at once on a bare connection."""
    trail = trail_of(table)
    if trail is None:
        return
    if isinstance(session, Session):
        session.info.setdefault(_PENDING, []).append((trail, item))
    else:
        trail.append(session, [item])


def batch_entry(table: Table, action: str, rows: Sequence[dict[str, Any]],
                before: Sequence[dict[str, Any]] | None = None, *,
                columns: dict[str, list[Any]] | None = None) -> Entry:
    """One entry for a batch written past the ORM (an executemany, a COPY): a digest of all its rows, and for an
    update of what they held before. `columns`: the rows' values column by column, when the caller has them."""
    one = rows[0].get("id") if len(rows) == 1 else None
    after = digest_rows(rows) if columns is None else digest_columns(columns, len(rows))
    return entry(action, table.name, None if one is None else str(one),
                 None if before is None else digest_rows(before), after, {"rows": len(rows)})


def note_rows(session: Session | Connection, table: Table, action: str, rows: Sequence[dict[str, Any]],
              before: Sequence[dict[str, Any]] | None = None) -> None:
    note(session, table, batch_entry(table, action, rows, before))


def _state(state: Any, before: bool) -> dict[str, Any]:
    values: dict[str, Any] = {}
    loaded = state.dict
    for attr in state.mapper.column_attrs:
        key = attr.key
        if before:
            history = state.attrs[key].history
            if history.deleted:
                values[key] = history.deleted[0]
                continue
        if key in loaded:
            values[key] = loaded[key]
    return values


def _identity(state: Any) -> str | None:
    # A row inserted by this flush has its key assigned already, but not yet its identity.
    key = state.identity or state.mapper.primary_key_from_instance(state.obj())
    return str(key[0]) if len(key) == 1 else "/".join(str(part) for part in key)


def _after_flush(session: Session, _context: UOWTransaction) -> None:
    pending: list[tuple[AuditTrail, Entry]] | None = None
    for action, objects in (("insert", session.new), ("update", session.dirty), ("delete", session.deleted)):
        for obj in objects:
            state = inspect(obj)
            table = state.mapper.local_table
            trail = trail_of(table)  # type: ignore[arg-type]
            if trail is None:
                continue
            if action == "update" and not session.is_modified(obj, include_collections=False):
                continue
            if pending is None:
                pending = session.info.setdefault(_PENDING, [])
                seen = session.info.setdefault(_SEEN, {})
            record = (table.name, _identity(state))
            after = None if action == "delete" else digest(_state(state, before=False))
            if record in seen:
                # Flushed again in the same transaction: one row per record, its first before and its last after.
                index = seen[record]
                first = pending[index][1]
                pending[index] = (trail, replace(first, digest_after=after,
                                                 action="delete" if action == "delete" else first.action))
                continue
            before = None if action == "insert" else digest(_state(state, before=True))
            seen[record] = len(pending)
            pending.append((trail, entry(action, table.name, record[1], before, after)))


_TEXT_DML = re.compile(r"^\s*(INSERT\s+INTO|UPDATE|DELETE\s+FROM)\s+(\w+)", re.IGNORECASE)
_TEXT_ACTIONS = {"I": "insert", "U": "update", "D": "delete"}


def _statement_target(statement: Any) -> tuple[str, Table] | None:
    if isinstance(statement, TextClause):
        match = _TEXT_DML.match(statement.text)
        if match is None:
            return None
        # A text statement names its table: the one service whose metadata has it (none or two: not audited).
        found = [t.table.metadata.tables[name] for t in _trails.values()
                 if (name := match.group(2).lower()) in t.table.metadata.tables]
        return (_TEXT_ACTIONS[match.group(1)[0].upper()], found[0]) if len(found) == 1 else None
    if statement.is_dml and isinstance(getattr(statement, "table", None), Table):
        action = "insert" if statement.is_insert else "update" if statement.is_update else "delete"
        return action, statement.table
    return None


def _orm_execute(state: ORMExecuteState) -> None:
    statement = state.statement
    if not statement.is_dml and not isinstance(statement, TextClause):
        return
    target = _statement_target(statement)
    if target is None:
        return
    action, table = target
    trail = trail_of(table)
    if trail is None:
        return
    params = state.parameters
    rows = params if isinstance(params, list) else [params or {}]
    # The statement's own values (an UPDATE's SET, an INSERT's VALUES) and its WHERE, as SQL text and binds.
    compiled = statement.compile(dialect=state.session.get_bind().dialect)
    one = rows[0].get("id") if len(rows) == 1 else None
    item = entry(action, table.name, None if one is None else str(one), None,
                 digest([str(compiled), compiled.params, list(rows)]), {"statement": True, "rows": len(rows)})
    state.session.info.setdefault(_PENDING, []).append((trail, item))


def _before_commit(session: Session) -> None:
    if session._is_clean() and not session.info.get(_PENDING):  # noqa: SLF001 - nothing to flush or record
        return
    session.flush()
    pending = session.info.pop(_PENDING, None)
    session.info.pop(_SEEN, None)
    if not pending:
        return
    by_trail: dict[int, tuple[AuditTrail, list[Entry]]] = {}
    for trail, item in pending:
        by_trail.setdefault(id(trail), (trail, []))[1].append(item)
    connection = session.connection()
    # The session's own transaction ending (not a savepoint's, nor an outer one it joined): on PostgreSQL the
    # entries go with the COMMIT, one round trip.
    if (connection.dialect.name == "postgresql" and not session.in_nested_transaction()
            and isinstance(session.get_bind(), Engine)):
        append_and_commit(connection, list(by_trail.values()))
        return
    for trail, items in by_trail.values():
        trail.append(connection, items)


def _after_rollback(session: Session) -> None:
    session.info.pop(_PENDING, None)
    session.info.pop(_SEEN, None)


event.listen(Session, "after_flush", _after_flush)
event.listen(Session, "do_orm_execute", _orm_execute)
event.listen(Session, "before_commit", _before_commit)
event.listen(Session, "after_rollback", _after_rollback)
