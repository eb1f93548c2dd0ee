from sqlmodel import SQLModel

from shared.audit import audit_trail
from shared.db import new_registry
from shared.idempotency import IdempotencyStore, idempotency_table


class CustomerTable(SQLModel, registry=new_registry()):
    """Base of the customer service's own tables."""


metadata = CustomerTable.metadata
idempotency = IdempotencyStore(idempotency_table(metadata, "customer"))
# The access log is itself a record of reads; each of its rows comes with its own `read` audit row.
audit = audit_trail(metadata, "customer", exclude=("pii_access_log",))
