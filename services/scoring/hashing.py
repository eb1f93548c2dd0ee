"""HMAC-SHA256 of personal inputs before they are stored: comparable between scores, not readable."""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from services.scoring.settings import ScoringSettings

KEY_FILE = "scoring_hash.key"
PREFIX = "hmac-sha256:"


def load_hash_key(settings: ScoringSettings, var_dir: Path) -> bytes:
    """The configured key, else one generated once into var_dir (readable by the owner only)."""
    configured = settings.hash_key.get_secret_value()
    if configured:
        return configured.encode()
    path = var_dir / KEY_FILE
    var_dir.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_bytes().strip()
    with os.fdopen(fd, "w") as handle:
        handle.write(secrets.token_hex(32))
    return path.read_bytes().strip()


def hash_personal(key: bytes, inputs: Mapping[str, Any], personal: Iterable[str]) -> dict[str, Any]:
    personal = set(personal)
    return {
        name: (PREFIX + hmac.new(key, f"{name}={value}".encode(), hashlib.sha256).hexdigest()
               if name in personal and value is not None else value)
        for name, value in inputs.items()
    }


def is_hashed(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(PREFIX)
