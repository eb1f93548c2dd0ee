"""`loancrm secrets generate DIR`: the keys a deployment mounts (docker-compose.yml reads them from DIR)."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from pathlib import Path

from shared.files import generated_once
from shared.pii import new_key as _key

# File name = the variable it sets, lower case, as `LOANCRM_SECRETS_DIR` reads it.
SECRETS: dict[str, Callable[[], str]] = {
    "loancrm_gateway_key_passphrase": lambda: secrets.token_urlsafe(32),
    "loancrm_customer_pii_keys": lambda: f"k1:{_key()}",
    "loancrm_customer_pii_hash_key": _key,
    "loancrm_scoring_hash_key": lambda: secrets.token_hex(32),
    # Monitoring's own keys for payers' account numbers (never the customer service's: each service holds only
    # the keys of the data it keeps).
    "loancrm_monitoring_pii_keys": lambda: f"k1:{_key()}",
    "loancrm_monitoring_pii_hash_key": _key,
    # The first admin's password, read by `loancrm migrate --bootstrap`; change it after the first sign-in.
    "loancrm_admin_password": lambda: secrets.token_urlsafe(18),
    # COB's own OAuth client (`loancrm client provision-batch` registers it with this secret).
    "loancrm_batch_client_secret": lambda: secrets.token_urlsafe(32),
}


def generate(folder: Path) -> dict[str, str]:
    """Make each missing secret file (0600 in a 0700 folder); an existing one is kept, never replaced, since
    replacing a key makes what it protected unreadable. Returns what happened to each file."""
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    folder.chmod(0o700)
    outcome = {}
    for name, make in SECRETS.items():
        existed = (folder / name).exists()
        generated_once(folder / name, make, allowed=True, variable=name.upper())
        outcome[name] = "kept" if existed else "created"
    return outcome
