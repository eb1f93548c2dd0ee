"""`loancrm customers refresh-segments`: every portrait, segment and cluster recomputed in one batch."""

from __future__ import annotations

from typing import Any

from sqlmodel import select
from tqdm import tqdm

from services.customer.customers.models import Customer
from services.customer.overview.sections import Unavailable
from services.customer.portrait import clusters, service
from shared.db import Database
from shared.settings import KernelSettings, load_settings

_BATCH = 500
# The batch runs without a user's token, so peers are not asked; stored scores, product counts and risk stay.
_NOT_ASKED = Unavailable(reason="not asked in the batch refresh")


def refresh_segments(database: Database, *, k: int = 4, progress: bool = False) -> dict[str, Any]:
    with database.session() as session:
        ids = list(session.exec(select(Customer.id).order_by(Customer.id)).all())
    for start in tqdm(range(0, len(ids), _BATCH), disable=not progress, desc="portraits", unit="batch"):
        with database.session() as session:
            for customer in session.exec(select(Customer).where(Customer.id.in_(ids[start:start + _BATCH]))).all():
                service.refresh_portrait(session, customer, _NOT_ASKED, _NOT_ASKED, _NOT_ASKED)
            session.commit()
    with database.session() as session:
        profiles = clusters.refresh_clusters(session, k=k)
        session.commit()
    return {"customers": len(ids), "clusters": [{"cluster": p.cluster, "label": p.label, "size": p.size}
                                                for p in profiles]}


def run_refresh_cli(k: int = 4, *, kernel: KernelSettings | None = None, progress: bool = True) -> dict[str, Any]:
    """Entry point for the lead's `loancrm customers refresh-segments [--clusters K]`."""
    kernel = kernel or load_settings(KernelSettings)
    database = Database(kernel.database_url("customer"))
    try:
        return refresh_segments(database, k=k, progress=progress)
    finally:
        database.dispose()
