"""Batch work on the customer table: `loancrm customers rotate-keys` (re-encrypt personal data still sealed with
an older key), and sealing the addresses an older version stored in clear, in the background from each start."""

from __future__ import annotations

import asyncio
import logging
import threading

from tqdm import tqdm

from services.customer.customers.pii import load_vault
from services.customer.customers.service import reseal_with_active_key, seal_addresses_held_in_clear
from services.customer.settings import CustomerSettings
from shared.db import Database
from shared.pii import PiiVault
from shared.settings import KernelSettings, load_settings

log = logging.getLogger("loancrm.customer")


def run_rotate_keys_cli(*, kernel: KernelSettings | None = None, settings: CustomerSettings | None = None) -> int:
    """After adding a new key to LOANCRM_CUSTOMER_PII_KEYS and making it LOANCRM_CUSTOMER_PII_ACTIVE_KID (keep the
    old one listed until this finishes): returns how many customers were re-encrypted, with a progress bar on
    stderr. Safe to re-run; a re-run after a stop resumes where it stopped."""
    kernel = kernel or load_settings(KernelSettings)
    vault = load_vault(settings or load_settings(CustomerSettings), kernel)
    database = Database(kernel.database_url("customer"))
    try:
        with database.session() as session, tqdm(desc="re-encrypting", unit="customer") as bar:
            def advance(done: int, total: int) -> None:
                bar.total = total
                bar.update(done - bar.n)

            return reseal_with_active_key(session, vault, progress=advance)
    finally:
        database.dispose()


class AddressSealing:
    """Seals the clear addresses in a worker thread, so a large table does not hold up the service's start (reads
    meanwhile show a clear address as the caller's role allows). Shutdown stops it after the batch in hand; the
    next start resumes."""

    def __init__(self, database: Database, vault: PiiVault) -> None:
        self.database, self.vault = database, vault
        self._stop = threading.Event()
        self._task: asyncio.Future[None] | None = None

    def _run(self) -> None:
        try:
            with self.database.session() as session:
                sealed = seal_addresses_held_in_clear(session, self.vault, stop=self._stop.is_set)
        except Exception:  # the next start tries again; the service keeps serving meanwhile
            log.exception("sealing addresses held in clear stopped")
            return
        if sealed:
            log.info("sealed %d addresses held in clear", sealed)

    async def start(self) -> None:
        self._task = asyncio.ensure_future(asyncio.to_thread(self._run))

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            await self._task
