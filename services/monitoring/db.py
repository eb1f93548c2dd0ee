from sqlmodel import SQLModel

from shared.db import new_registry
from shared.idempotency import IdempotencyStore, idempotency_table


class MonitoringTable(SQLModel, registry=new_registry()):
    """Base of the monitoring service's own tables."""


metadata = MonitoringTable.metadata
idempotency = IdempotencyStore(idempotency_table(metadata, "monitoring"))
