"""The customer's personal data: the masks responses show to roles without full view, and the normal forms the
keyed hashes are of. The sealing itself (AES-256-GCM, keyed hash, key files) is the kernel's: shared/pii.py."""

from __future__ import annotations

from services.customer.settings import CustomerSettings
from shared import pii
from shared.settings import KernelSettings

KEY_FILE = "customer-pii-keys.json"


def load_vault(settings: CustomerSettings, kernel: KernelSettings) -> pii.PiiVault:
    return pii.load_vault(settings, kernel, KEY_FILE)


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
