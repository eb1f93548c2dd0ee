from sqlmodel import SQLModel

from shared.db import new_registry
from shared.idempotency import IdempotencyStore, idempotency_table


class CustomerTable(SQLModel, registry=new_registry()):
    """Base of the customer service's own tables."""


metadata = CustomerTable.metadata
idempotency = IdempotencyStore(idempotency_table(metadata, "customer"))
