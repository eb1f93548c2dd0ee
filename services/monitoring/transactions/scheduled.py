"""Sealing the payer accounts an older version stored in clear, in the background from each start."""

from __future__ import annotations

from services.monitoring.transactions.service import seal_payers_held_in_clear
from shared.db import Database
from shared.pii import PiiVault, SealingAtStart


def payer_sealing(database: Database, vault: PiiVault) -> SealingAtStart:
    """Until a row is sealed, the shared-payer check does not see its payer."""
    return SealingAtStart(database, lambda session, stop: seal_payers_held_in_clear(session, vault, stop=stop),
                          "payer accounts")
