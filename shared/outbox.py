"""The transactional outbox: a business command records the event it caused in the same transaction as its write.

So there is never an event without its write, nor a write without its event. Each emitting service declares its
own table (`<service>_outbox`, like its idempotency table) and serves it as a feed, `GET /events?after=<seq>`,
read by the gateway's webhook relay with a system token. `seq` only grows (SQLite AUTOINCREMENT, a PostgreSQL
sequence); it is the feed's cursor. Rows carry what the one scope rule (shared/auth/scope.py) needs to decide who
may see the event's object: its branch and its owner (the partner that submitted or referred it).

On PostgreSQL two transactions may commit their rows out of `seq` order; the relay therefore re-reads a settle
window behind its cursor and deduplicates (gateway/webhooks/service.py).
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache
from typing import Any

from pydantic import BaseModel, Field, field_validator
from pydantic_core import to_jsonable_python
from sqlalchemy import (JSON, BigInteger, Column, DateTime, Integer, MetaData, String, Table, bindparam, exists, insert,
                        select)
from sqlalchemy.sql.dml import Insert
from sqlmodel import Session

from shared.audit import note_rows
from shared.auth.scope import Visibility
from shared.ids import new_id
from shared.db import Step, insert_rows, run_together


class EventType:
    """The events LoanCRM publishes, by the service that records them."""

    APPLICATION_DECIDED = "application.decided"  # scoring: approved or declined, by the policy or a person
    LOAN_DISBURSED = "loan.disbursed"  # scoring: an approved application paid out as a monitoring loan
    REPAYMENT_POSTED = "repayment.posted"  # monitoring
    ALERT_RAISED = "alert.raised"  # monitoring
    ALERT_RESOLVED = "alert.resolved"  # monitoring: resolved, dismissed as a false positive, or by a correction

    ALL = (APPLICATION_DECIDED, LOAN_DISBURSED, REPAYMENT_POSTED, ALERT_RAISED, ALERT_RESOLVED)


def outbox_table(metadata: MetaData, service: str) -> Table:
    # Named per service so that services sharing one database never share this table.
    name = f"{service}_outbox"
    return Table(
        name,
        metadata,
        Column("seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
        Column("id", String(32), nullable=False, unique=True),
        Column("type", String(64), nullable=False),
        Column("occurred_at", DateTime(timezone=True), nullable=False),
        Column("subject_id", String(64), nullable=False),
        Column("branch", String(32), nullable=True),
        Column("customer_id", String(64), nullable=True),
        Column("owner", String(200), nullable=True),
        Column("payload", JSON, nullable=False),
        # AUTOINCREMENT: SQLite never reuses a sequence number, so the cursor only moves forward.
        sqlite_autoincrement=True,
    )


class OutboxEventRead(BaseModel):
    seq: int = Field(description="Position in this service's feed; pass the last one seen as `after`.")
    id: str
    type: str
    occurred_at: datetime
    subject_id: str
    branch: str | None
    customer_id: str | None
    owner: str | None
    payload: dict[str, Any]

    @field_validator("occurred_at")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        # SQLite gives DateTime(timezone=True) back naive; every stored time is UTC.
        return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


class EventPage(BaseModel):
    items: list[OutboxEventRead]
    next_cursor: str | None = Field(
        description="The `seq` to pass as `after` for the next page; null when this page was the last for now.")


class Outbox:
    def __init__(self, table: Table) -> None:
        self.table = table

    def record(self, session: Session, type_: str, subject_id: str, payload: dict[str, Any], *,
               branch: str | None, customer_id: str | None = None, owner: str | None = None) -> None:
        """Add the event to the caller's transaction: it commits (or rolls back) with the command's writes."""
        self.record_many(session, [dict(type=type_, subject_id=subject_id, payload=payload, branch=branch,
                                        customer_id=customer_id, owner=owner)])

    def rows(self, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The outbox rows of `events`, for `record_many` or a caller's own `run_together` (then `written`)."""
        at = datetime.now(UTC)
        # JSON as a receiver gets it: Decimals and dates as strings.
        return [{**e, "id": new_id(), "occurred_at": at, "payload": to_jsonable_python(e["payload"])}
                for e in events]

    def insert_step(self, rows: list[dict[str, Any]]) -> Step:
        return insert_rows(self.table, rows)

    def insert_step_if_subject(self, subject: Table, rows: list[dict[str, Any]]) -> Step:
        """The insert of `rows`, each written only if its subject's row (`subject.id`) exists by then: the events
        of rows an earlier step of the same `run_together` may have skipped (an insert ignoring conflicts)."""
        return Step(self._insert_if_subject(subject), [{"owner": None, **row} for row in rows])

    @cache  # noqa: B019 - one Outbox per service, kept for the process
    def _insert_if_subject(self, subject: Table) -> Insert:
        t, names = self.table, [c.name for c in self.table.c if c.name != "seq"]
        values = select(*(bindparam(name, type_=t.c[name].type) for name in names)).where(
            exists().where(subject.c.id == bindparam("subject_id", type_=t.c.subject_id.type)))
        return insert(t).from_select(names, values)

    def record_many(self, session: Session, events: list[dict[str, Any]]) -> None:
        """Events in one statement, noted in the audit trail (on PostgreSQL past SQLAlchemy's per-statement work)."""
        if not events:
            return
        rows = self.rows(events)
        run_together(session.connection(), [self.insert_step(rows)])
        self.written(session, rows)

    def written(self, session: Session, rows: list[dict[str, Any]]) -> None:
        """Rows written by the insert steps, in the audit trail (with the session's commit)."""
        note_rows(session, self.table, "insert", rows)

    def page(self, session: Session, *, after: int, limit: int, scope: Visibility) -> EventPage:
        t = self.table
        rows = session.execute(select(t).where(t.c.seq > after, scope.where(t.c.branch, t.c.owner))
                               .order_by(t.c.seq).limit(limit)).mappings().all()
        items = [OutboxEventRead.model_validate(dict(row)) for row in rows]
        return EventPage(items=items, next_cursor=str(items[-1].seq) if len(items) == limit else None)
