"""Personal data at rest: AES-256-GCM with a key id per row (so keys rotate), a keyed hash for exact search,
and the masks responses show to roles without full view."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from services.customer.settings import PII_KEY_BYTES, CustomerSettings, decode_key
from shared.files import generated_once
from shared.settings import KernelSettings, SettingsError

KEY_FILE = "customer-pii-keys.json"
_NONCE_BYTES = 12


class PiiVault:
    def __init__(self, keys: dict[str, bytes], active_kid: str, hash_key: bytes) -> None:
        if active_kid not in keys:
            raise SettingsError(
                f"LOANCRM_CUSTOMER_PII_ACTIVE_KID: {active_kid!r} is not among LOANCRM_CUSTOMER_PII_KEYS")
        self._ciphers = {kid: AESGCM(key) for kid, key in keys.items()}
        self.active_kid = active_kid
        self._hash_key = hash_key

    def seal(self, value: str, *, row_id: str, field: str) -> str:
        # The row id and field name are bound in as associated data, so a ciphertext copied onto another row or
        # field fails to decrypt instead of leaking someone else's data.
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._ciphers[self.active_kid].encrypt(nonce, value.encode(), f"{row_id}:{field}".encode())
        return base64.b64encode(nonce + sealed).decode()

    def open(self, token: str, *, kid: str, row_id: str, field: str) -> str:
        raw = base64.b64decode(token)
        cipher = self._ciphers.get(kid)
        if cipher is None:
            raise LookupError(f"PII key {kid!r} is no longer configured; add it back to LOANCRM_CUSTOMER_PII_KEYS")
        try:
            return cipher.decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], f"{row_id}:{field}".encode()).decode()
        except InvalidTag:
            raise LookupError(f"{field} of {row_id} does not decrypt with key {kid!r}") from None

    def digest(self, value: str) -> str:
        return hmac.new(self._hash_key, value.encode(), hashlib.sha256).hexdigest()


def _b64(key: bytes) -> str:
    return base64.urlsafe_b64encode(key).decode()


def _key_file(var_dir: Path, *, generate: bool) -> dict[str, str]:
    """The embedded default: keys generated once, readable by this user only, reused on every start."""
    def make() -> str:
        return json.dumps({"kid": "local1", "key": _b64(os.urandom(PII_KEY_BYTES)),
                           "hash_key": _b64(os.urandom(PII_KEY_BYTES))})

    return json.loads(generated_once(var_dir / KEY_FILE, make, allowed=generate,
                                     variable="LOANCRM_CUSTOMER_PII_KEYS"))


def load_vault(settings: CustomerSettings, kernel: KernelSettings) -> PiiVault:
    if settings.pii_keys:
        if not settings.pii_hash_key:
            raise SettingsError("LOANCRM_CUSTOMER_PII_HASH_KEY: required when LOANCRM_CUSTOMER_PII_KEYS is set")
        keys = settings.parsed_keys()
        active = settings.pii_active_kid or next(iter(keys))
        return PiiVault(keys, active, decode_key(settings.pii_hash_key))
    stored = _key_file(kernel.var_dir, generate=kernel.generate_secrets)
    return PiiVault({stored["kid"]: decode_key(stored["key"])}, stored["kid"], decode_key(stored["hash_key"]))


def normalise_phone(value: str) -> str:
    digits = value.replace(" ", "").replace("-", "")
    return digits.removeprefix("+86")


# Masks keep as little as recognising a record needs. Three leading and four trailing ID digits beside the
# birth date left 91 candidates; now the region and birth date are hidden (and the birth date is shown as the
# year only), so two trailing characters leave tens of thousands. A phone keeps its 3-digit carrier prefix and
# two trailing digits: 10^6 candidates, not 10^4.
def mask_national_id(value: str) -> str:
    return "*" * (len(value) - 2) + value[-2:]


def mask_phone(value: str) -> str:
    return value[:3] + "*" * (len(value) - 5) + value[-2:]


def mask_email(value: str) -> str:
    local, _, domain = value.partition("@")
    return f"{local[:1]}***@{domain}"


def mask_address(value: str) -> str:
    """The last part after a comma (the town, as written in the West) and nothing of the street or house; an
    address written without commas (as in Chinese, town first) shows nothing."""
    parts = [part.strip() for part in value.replace("\uff0c", ",").split(",")]
    return f"***, {parts[-1]}" if len(parts) > 1 and parts[-1] else "***"


def normalised_address(value: str) -> str:
    """What two spellings of one address share (case and runs of spaces aside): the form its keyed hash is of."""
    return " ".join(value.lower().split())
