from sqlmodel import SQLModel

from shared.audit import audit_trail
from shared.db import insert_ignoring, new_registry
from shared.idempotency import IdempotencyStore, idempotency_table
from shared.outbox import Outbox, outbox_table


class MonitoringTable(SQLModel, registry=new_registry()):
    """Base of the monitoring service's own tables."""


metadata = MonitoringTable.metadata
idempotency = IdempotencyStore(idempotency_table(metadata, "monitoring"))
# The close-of-business runs and chunks are its leases and progress (renewed every few seconds), not business
# records; what a run changes (loans, risk changes) is audited.
audit = audit_trail(metadata, "monitoring", exclude=("cob_runs", "cob_chunks"))
outbox = Outbox(outbox_table(metadata, "monitoring"))
__all__ = ["MonitoringTable", "idempotency", "insert_ignoring", "metadata", "outbox"]

