"""`loancrm customers rotate-keys`: re-encrypt personal data still sealed with an older key."""

from __future__ import annotations

from services.customer.customers.pii import load_vault
from services.customer.customers.service import reseal_with_active_key
from services.customer.settings import CustomerSettings
from shared.db import Database
from shared.settings import KernelSettings, load_settings


def run_rotate_keys_cli(*, kernel: KernelSettings | None = None, settings: CustomerSettings | None = None) -> int:
    """After adding a new key to LOANCRM_CUSTOMER_PII_KEYS and making it LOANCRM_CUSTOMER_PII_ACTIVE_KID (keep the
    old one listed until this finishes): returns how many customers were re-encrypted. Safe to re-run."""
    kernel = kernel or load_settings(KernelSettings)
    vault = load_vault(settings or load_settings(CustomerSettings), kernel)
    database = Database(kernel.database_url("customer"))
    try:
        with database.session() as session:
            return reseal_with_active_key(session, vault)
    finally:
        database.dispose()
