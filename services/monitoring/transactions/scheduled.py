"""Batch work on the feed's accounts: `loancrm monitoring rotate-keys` (re-encrypt those sealed with an older key),
and sealing those an older version stored in clear, in the background from each start."""

from __future__ import annotations

from services.monitoring.settings import MonitoringSettings
from services.monitoring.transactions.service import load_vault, reseal_with_active_key, seal_accounts_held_in_clear
from shared.db import Database
from shared.pii import PiiVault, SealingAtStart, rotate_keys
from shared.settings import KernelSettings, load_settings


def account_sealing(database: Database, vault: PiiVault) -> SealingAtStart:
    """Until a row is sealed, the feed rules do not see its accounts (they match on the keyed hashes)."""
    return SealingAtStart(database, lambda session, stop: seal_accounts_held_in_clear(session, vault, stop=stop),
                          "feed accounts")


def run_rotate_keys_cli(*, kernel: KernelSettings | None = None, settings: MonitoringSettings | None = None) -> int:
    """After adding a new key to LOANCRM_MONITORING_PII_KEYS and making it LOANCRM_MONITORING_PII_ACTIVE_KID (keep
    the old one listed until this finishes): how many feed rows were re-encrypted. Safe to re-run; resumes."""
    kernel = kernel or load_settings(KernelSettings)
    vault = load_vault(settings or load_settings(MonitoringSettings), kernel)
    return rotate_keys(Database(kernel.database_url("monitoring")),
                       lambda session, progress: reseal_with_active_key(session, vault, progress=progress),
                       "feed row")
