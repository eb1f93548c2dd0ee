"""Client-supplied Idempotency-Key: a retried write returns the first answer instead of acting twice.

A keyed write first claims its key in a short transaction of its own (INSERT … ON CONFLICT DO NOTHING): the one
request that inserts the row runs the command; every other request with that key meanwhile gets 409 with
`Retry-After`, and afterwards the first answer. The answer is stored in the same transaction as the business
write, and only if that request still holds the claim, so either both persist or neither. A claim is a lease: a
claimant that crashed leaves a row whose lease runs out, and the next request with the key takes it over. Keys
are kept for `retention` after their first use, then forgotten (purged lazily, at most once per
`purge_every`); a key reused after that is a new request.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import Header
from fastapi.responses import JSONResponse

from sqlalchemy import Column, DateTime, Index, Integer, MetaData, String, Table, Text, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from shared.db import Database
from shared.errors import FieldError, Problem, field_problem, precondition_header, precondition_required

MAX_KEY_LENGTH = 200
DEFAULT_RETENTION = timedelta(hours=24)
DEFAULT_LEASE = timedelta(seconds=60)
PURGE_EVERY_SECONDS = 600.0
RETRY_AFTER_SECONDS = 1
_KEY_DOC = "A retry with the same key returns the first answer instead of acting twice."
# The Idempotency-Key parameter of a write: required (documented so; missing, a 428) or optional.
IdempotencyKey = precondition_header("Idempotency-Key", "Required. " + _KEY_DOC)
OptionalIdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key", description=_KEY_DOC)]


def idempotency_table(metadata: MetaData, service: str) -> Table:
    # Named per service so that services sharing one database never share (or collide on) this table.
    name = f"{service}_idempotency_keys"
    return Table(
        name,
        metadata,
        Column("owner", String(200), primary_key=True),
        Column("key", String(MAX_KEY_LENGTH), primary_key=True),
        Column("fingerprint", String(64), nullable=False),
        # Null while the first request still runs (its claim), the answer once it finished.
        Column("status_code", Integer, nullable=True),
        Column("body", Text, nullable=True),
        Column("created_at", DateTime(timezone=True), nullable=False),
        Column("claimant", String(32), nullable=True),
        Column("lease_until", DateTime(timezone=True), nullable=True),
        Index(f"ix_{name}_created_at", "created_at"),
    )


def fingerprint(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def check_key(key: str | None, required: bool) -> str | None:
    if key is None or key == "":
        if required:
            raise precondition_required("Idempotency-Key")
        return None
    if len(key) > MAX_KEY_LENGTH or not key.isprintable():
        raise field_problem("header.Idempotency-Key", f"must be printable and at most {MAX_KEY_LENGTH} characters")
    return key


def in_progress() -> Problem:
    return Problem(409, "Conflict", "A request with this Idempotency-Key is still being processed; retry shortly "
                                    "to get its answer.", headers={"Retry-After": str(RETRY_AFTER_SECONDS)})


def _conflict() -> Problem:
    return Problem(409, "Conflict", "A concurrent write changed the same record; retry.",
                   headers={"Retry-After": str(RETRY_AFTER_SECONDS)})


def _aware(value: datetime) -> datetime:
    # SQLite gives DateTime(timezone=True) back naive; every stored time is UTC.
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Outcome:
    status_code: int
    body: Any
    replayed: bool


class IdempotencyStore:
    def __init__(self, table: Table, *, retention: timedelta = DEFAULT_RETENTION,
                 lease: timedelta = DEFAULT_LEASE) -> None:
        self.table = table
        self.retention = retention
        self.lease = lease
        self._next_purge = 0.0
        self._purge_lock = threading.Lock()

    def configure(self, *, retention_hours: float, lease_seconds: float) -> None:
        self.retention = timedelta(hours=retention_hours)
        self.lease = timedelta(seconds=lease_seconds)

    def _where(self, owner: str, key: str) -> tuple[Any, ...]:
        return self.table.c.owner == owner, self.table.c.key == key

    def stored(self, connection: Session | Connection, owner: str, key: str, print_: str) -> Outcome | None:
        """The answer remembered for (owner, key), or None; 422 if the key was used for another request, 409 while
        the first request with it still runs. A key past its retention is no longer remembered."""
        row = connection.execute(
            select(self.table.c.fingerprint, self.table.c.status_code, self.table.c.body,
                   self.table.c.created_at).where(*self._where(owner, key))
        ).first()
        if row is None or _aware(row.created_at) < datetime.now(UTC) - self.retention:
            return None
        if row.fingerprint != print_:
            raise Problem(
                422, "Idempotency key reused",
                "This Idempotency-Key was already used for a different request; use a new key.",
                errors=[FieldError(field="header.Idempotency-Key", message="reused with a different request")],
            )
        if row.status_code is None:
            raise in_progress()
        return Outcome(row.status_code, json.loads(row.body), replayed=True)

    def forget_expired(self, connection: Session | Connection, owner: str, key: str) -> int:
        """Drop (owner, key) if past its retention, so it can be used afresh; the caller commits."""
        cutoff = datetime.now(UTC) - self.retention
        return connection.execute(delete(self.table).where(
            *self._where(owner, key), self.table.c.created_at < cutoff)).rowcount

    def purge(self, db: Database, now: datetime | None = None) -> int:
        """Forget every key past its retention; returns how many."""
        cutoff = (now or datetime.now(UTC)) - self.retention
        with db.engine.begin() as conn:
            return conn.execute(delete(self.table).where(self.table.c.created_at < cutoff)).rowcount

    def purge_due(self) -> bool:
        """Whether this process should purge now (at most once per PURGE_EVERY_SECONDS), claiming the turn."""
        with self._purge_lock:
            if time.monotonic() < self._next_purge:
                return False
            self._next_purge = time.monotonic() + PURGE_EVERY_SECONDS
            return True

    def _claim(self, db: Database, owner: str, key: str, print_: str, lease: timedelta) -> str | Outcome:
        """Claim (owner, key) for this request: its claimant token, or the first answer to replay. Raises 409 while
        another request holds a live claim, 422 when the key was used for another request."""
        dialect = postgresql if db.is_postgres else sqlite
        for _ in range(3):  # a claim released, expired or taken over between two statements: look again
            now, token = datetime.now(UTC), uuid.uuid4().hex
            with db.engine.begin() as conn:
                # RETURNING, not rowcount: psycopg reports -1 for an INSERT … ON CONFLICT here.
                claimed = conn.execute(dialect.insert(self.table).values(
                    owner=owner, key=key, fingerprint=print_, created_at=now, claimant=token,
                    lease_until=now + lease).on_conflict_do_nothing().returning(self.table.c.claimant)).first()
                if claimed is not None:
                    return token
                if self.forget_expired(conn, owner, key):
                    continue
                row = conn.execute(select(self.table.c.claimant, self.table.c.lease_until).where(
                    *self._where(owner, key))).first()
                if row is None:
                    continue
                try:
                    stored = self.stored(conn, owner, key, print_)
                except Problem as problem:
                    if problem.status != 409 or row.lease_until is None or _aware(row.lease_until) > now:
                        raise
                    # The first claimant's lease ran out (it crashed or hangs): this request takes the key over.
                    if conn.execute(update(self.table).where(
                            *self._where(owner, key), self.table.c.claimant == row.claimant,
                            self.table.c.status_code.is_(None)).values(
                            claimant=token, lease_until=now + lease)).rowcount == 1:
                        return token
                    continue
                if stored is not None:
                    return stored
        raise in_progress()

    def _release(self, db: Database, owner: str, key: str, token: str) -> None:
        """Give a claim back after the command failed, so a retry runs it afresh."""
        with db.engine.begin() as conn:
            conn.execute(delete(self.table).where(*self._where(owner, key), self.table.c.claimant == token,
                                                  self.table.c.status_code.is_(None)))

    def run_once(
        self,
        db: Database,
        *,
        owner: str,
        key: str | None,
        request_fingerprint: str,
        command: Callable[[Session], tuple[int, Any]],
        lease: timedelta | None = None,
    ) -> Outcome:
        """Run `command` once per (owner, key) and commit it with the remembered answer. `command` should not
        commit (then its writes and the answer commit together); one that must (a long import in batches) is
        protected by the claim alone. `lease` overrides the store's for commands known to run long."""
        if key is None:
            try:
                with db.session() as session:
                    status_code, body = command(session)
                    session.commit()
            except IntegrityError:
                raise _conflict() from None
            return Outcome(status_code, body, replayed=False)
        if self.purge_due():
            self.purge(db)
        claim = self._claim(db, owner, key, request_fingerprint, lease or self.lease)
        if isinstance(claim, Outcome):
            return claim
        try:
            with db.session() as session:
                status_code, body = command(session)
                answered = session.execute(update(self.table).where(
                    *self._where(owner, key), self.table.c.claimant == claim).values(
                    status_code=status_code, body=json.dumps(body, default=str), claimant=None,
                    lease_until=None)).rowcount
                if answered != 1:
                    # Our lease ran out and another request took the key over: it answers, this one must not.
                    session.rollback()
                    raise in_progress()
                session.commit()
        except IntegrityError:
            self._release(db, owner, key, claim)
            raise _conflict() from None
        except BaseException:
            self._release(db, owner, key, claim)
            raise
        return Outcome(status_code, body, replayed=False)


def answer_once(
    store: IdempotencyStore,
    db: Database,
    *,
    owner: str,
    key: str | None,
    required: bool,
    payload: tuple[Any, ...],
    command: Callable[[Session], tuple[int, Any]],
    lease: timedelta | None = None,
    headers: Callable[[Outcome], dict[str, str]] | None = None,
) -> JSONResponse:
    """The one wrapper of a write a client may retry: with an Idempotency-Key, a retry (even one concurrent with
    the first call) gets the first answer, marked `Idempotent-Replayed`; without one (where not required) the
    command simply runs. `payload` names the command and everything it acts on, so a key reused for another
    request is refused."""
    outcome = store.run_once(db, owner=owner, key=check_key(key, required=required),
                             request_fingerprint=fingerprint(*payload), command=command, lease=lease)
    extra = {"Idempotent-Replayed": "true"} if outcome.replayed else {}
    if headers is not None:
        extra.update(headers(outcome))
    return JSONResponse(outcome.body, status_code=outcome.status_code, headers=extra)
