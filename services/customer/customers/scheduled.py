"""Batch work on the customer table: `loancrm customers rotate-keys` (re-encrypt personal data still sealed with
an older key), and sealing the addresses an older version stored in clear, in the background from each start."""

from __future__ import annotations

from services.customer.customers.pii import load_vault
from services.customer.customers.service import reseal_with_active_key, seal_addresses_held_in_clear
from services.customer.settings import CustomerSettings
from shared.db import Database
from shared.pii import PiiVault, SealingAtStart, rotate_keys
from shared.settings import KernelSettings, load_settings


def run_rotate_keys_cli(*, kernel: KernelSettings | None = None, settings: CustomerSettings | None = None) -> int:
    """After adding a new key to LOANCRM_CUSTOMER_PII_KEYS and making it LOANCRM_CUSTOMER_PII_ACTIVE_KID (keep the
    old one listed until this finishes): returns how many customers were re-encrypted, with a progress bar on
    stderr. Safe to re-run; a re-run after a stop resumes where it stopped."""
    kernel = kernel or load_settings(KernelSettings)
    vault = load_vault(settings or load_settings(CustomerSettings), kernel)
    return rotate_keys(Database(kernel.database_url("customer")),
                       lambda session, progress: reseal_with_active_key(session, vault, progress=progress), "customer")


def address_sealing(database: Database, vault: PiiVault) -> SealingAtStart:
    """Seals the clear addresses in the background from each start (reads meanwhile show a clear address as the
    caller's role allows)."""
    return SealingAtStart(database, lambda session, stop: seal_addresses_held_in_clear(session, vault, stop=stop),
                          "addresses")
