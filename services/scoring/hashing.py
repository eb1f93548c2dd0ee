"""HMAC-SHA256 of personal inputs before they are stored: comparable between scores, not readable."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable, Mapping
from typing import Any

from services.scoring.settings import ScoringSettings
from shared.files import generated_once
from shared.settings import KernelSettings

KEY_FILE = "scoring_hash.key"
PREFIX = "hmac-sha256:"


def load_hash_key(settings: ScoringSettings, kernel: KernelSettings) -> bytes:
    """The configured key, else one generated once into var_dir (readable by the owner only)."""
    configured = settings.hash_key.get_secret_value()
    if configured:
        return configured.encode()
    return generated_once(kernel.var_dir / KEY_FILE, lambda: secrets.token_hex(32), allowed=kernel.generate_secrets,
                          variable="LOANCRM_SCORING_HASH_KEY").encode()


def hash_personal(key: bytes, inputs: Mapping[str, Any], personal: Iterable[str]) -> dict[str, Any]:
    personal = set(personal)
    return {
        name: (PREFIX + hmac.new(key, f"{name}={value}".encode(), hashlib.sha256).hexdigest()
               if name in personal and value is not None else value)
        for name, value in inputs.items()
    }


def is_hashed(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(PREFIX)
