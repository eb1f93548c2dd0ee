from sqlmodel import SQLModel

from shared.audit import audit_trail
from shared.db import new_registry
from shared.idempotency import IdempotencyStore, idempotency_table
from shared.outbox import Outbox, outbox_table


class ScoringTable(SQLModel, registry=new_registry()):
    """Base of the scoring service's own tables."""


metadata = ScoringTable.metadata
idempotency = IdempotencyStore(idempotency_table(metadata, "scoring"))
audit = audit_trail(metadata, "scoring")
outbox = Outbox(outbox_table(metadata, "scoring"))
