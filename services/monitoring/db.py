from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.dml import Insert
from sqlmodel import Session, SQLModel

from shared.audit import audit_trail
from shared.db import new_registry
from shared.idempotency import IdempotencyStore, idempotency_table


class MonitoringTable(SQLModel, registry=new_registry()):
    """Base of the monitoring service's own tables."""


metadata = MonitoringTable.metadata
idempotency = IdempotencyStore(idempotency_table(metadata, "monitoring"))
# The close-of-business runs and chunks are its leases and progress (renewed every few seconds), not business
# records; what a run changes (loans, risk changes) is audited.
audit = audit_trail(metadata, "monitoring", exclude=("cob_runs", "cob_chunks"))


def insert_ignoring(session: Session, table: Table) -> Insert:
    """INSERT … ON CONFLICT DO NOTHING on either backend: for rows that must exist once, written concurrently."""
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    return dialect.insert(table).on_conflict_do_nothing()
