"""Client-supplied Idempotency-Key: a retried write returns the first answer instead of acting twice.

The key row is written in the same transaction as the business write, so either both persist or neither;
two concurrent requests with one key collide on the primary key and the loser replays the winner's answer.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Column, DateTime, Integer, MetaData, String, Table, Text, insert, select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from shared.db import Database
from shared.errors import FieldError, Problem, field_problem

MAX_KEY_LENGTH = 200


def idempotency_table(metadata: MetaData, service: str) -> Table:
    # Named per service so that services sharing one database never share (or collide on) this table.
    return Table(
        f"{service}_idempotency_keys",
        metadata,
        Column("owner", String(200), primary_key=True),
        Column("key", String(MAX_KEY_LENGTH), primary_key=True),
        Column("fingerprint", String(64), nullable=False),
        Column("status_code", Integer, nullable=False),
        Column("body", Text, nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False),
    )


def fingerprint(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def check_key(key: str | None, required: bool) -> str | None:
    if key is None or key == "":
        if required:
            raise Problem(
                428, "Precondition required", "This write needs an Idempotency-Key header so it can be retried safely.",
                errors=[FieldError(field="header.Idempotency-Key", message="required")],
            )
        return None
    if len(key) > MAX_KEY_LENGTH or not key.isprintable():
        raise field_problem("header.Idempotency-Key", f"must be printable and at most {MAX_KEY_LENGTH} characters")
    return key


@dataclass(frozen=True)
class Outcome:
    status_code: int
    body: Any
    replayed: bool


class IdempotencyStore:
    def __init__(self, table: Table) -> None:
        self.table = table

    def stored(self, connection: Session | Connection, owner: str, key: str, print_: str) -> Outcome | None:
        """The answer remembered for (owner, key), or None; 422 if the key was used for another request."""
        row = connection.execute(
            select(self.table.c.fingerprint, self.table.c.status_code, self.table.c.body).where(
                self.table.c.owner == owner, self.table.c.key == key
            )
        ).first()
        if row is None:
            return None
        if row.fingerprint != print_:
            raise Problem(
                422, "Idempotency key reused",
                "This Idempotency-Key was already used for a different request; use a new key.",
                errors=[FieldError(field="header.Idempotency-Key", message="reused with a different request")],
            )
        return Outcome(row.status_code, json.loads(row.body), replayed=True)

    def run_once(
        self,
        db: Database,
        *,
        owner: str,
        key: str | None,
        request_fingerprint: str,
        command: Callable[[Session], tuple[int, Any]],
    ) -> Outcome:
        """Run `command` (which must not commit) once per (owner, key) and commit it with the remembered answer."""
        with db.session() as session:
            if key is not None:
                stored = self.stored(session, owner, key, request_fingerprint)
                if stored is not None:
                    return stored
            status_code, body = command(session)
            if key is not None:
                session.execute(
                    insert(self.table).values(
                        owner=owner, key=key, fingerprint=request_fingerprint, status_code=status_code,
                        body=json.dumps(body, default=str), created_at=datetime.now(UTC),
                    )
                )
            try:
                session.commit()
            except IntegrityError:
                session.rollback()
                stored = self.stored(session, owner, key, request_fingerprint) if key is not None else None
                if stored is None:
                    raise Problem(409, "Conflict", "A concurrent write changed the same record; retry.") from None
                return stored
        return Outcome(status_code, body, replayed=False)
