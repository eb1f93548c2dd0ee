from sqlmodel import SQLModel

from shared.audit import audit_trail
from shared.db import new_registry
from shared.idempotency import IdempotencyStore, idempotency_table


class GatewayTable(SQLModel, registry=new_registry()):
    """Base of the gateway's own tables."""


metadata = GatewayTable.metadata
idempotency = IdempotencyStore(idempotency_table(metadata, "gateway"))
audit = audit_trail(metadata, "gateway")
