"""Personal data at rest, for every service that keeps some: AES-256-GCM with a key id per row (so keys rotate), a
keyed hash for exact matching without decrypting, the keys from settings or a key file made once (0600), and which
roles see it in clear. Masks that depend on the field stay with the service that owns it."""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import json
import logging
import os
import threading
from collections.abc import Callable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pydantic import field_validator
from pydantic_settings import BaseSettings
from sqlmodel import Session

from shared.auth.roles import Role
from shared.auth.scope import visibility
from shared.auth.tokens import Principal
from shared.db import Database
from shared.files import generated_once
from shared.settings import KernelSettings, SettingsError

log = logging.getLogger("loancrm.pii")
KEY_BYTES = 32  # AES-256-GCM
_NONCE_BYTES = 12
# Unmasked personal data: the whole bank for admins and auditors, its own branch for a loan officer.
FULL_VIEW_ROLES = (Role.ADMIN, Role.AUDITOR, Role.LOAN_OFFICER)


def decode_key(value: str) -> bytes:
    try:
        key = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError):
        raise ValueError("keys must be base64") from None
    if len(key) != KEY_BYTES:
        raise ValueError(f"each key must decode to {KEY_BYTES} bytes")
    return key


def new_key() -> str:
    return base64.urlsafe_b64encode(os.urandom(KEY_BYTES)).decode()


class PiiKeySettings(BaseSettings):
    """A service's personal-data keys (`<prefix>PII_KEYS`, `..._ACTIVE_KID`, `..._HASH_KEY`); a subclass sets the
    prefix. All empty means a key file generated once under the var dir."""

    # "kid:base64key,kid2:base64key"; empty means a key file generated under the var dir on first start.
    pii_keys: str = ""
    # The key new writes use; older kids stay listed so existing rows still decrypt until re-encrypted.
    pii_active_kid: str = ""
    # Key of the HMAC that makes sealed values searchable and comparable without decrypting.
    pii_hash_key: str = ""

    @field_validator("pii_keys")
    @classmethod
    def _keys(cls, value: str) -> str:
        for item in filter(None, (part.strip() for part in value.split(","))):
            kid, sep, key = item.partition(":")
            if not sep or not kid:
                raise ValueError('must be "kid:base64key,..."')
            decode_key(key)
        return value

    @field_validator("pii_hash_key")
    @classmethod
    def _hash_key(cls, value: str) -> str:
        if value:
            decode_key(value)
        return value

    def parsed_keys(self) -> dict[str, bytes]:
        pairs = (item.strip().partition(":") for item in self.pii_keys.split(",") if item.strip())
        return {kid: decode_key(key) for kid, _, key in pairs}

    @classmethod
    def variable(cls, field: str) -> str:
        return f"{cls.model_config['env_prefix']}{field}".upper()


class PiiVault:
    def __init__(self, keys: dict[str, bytes], active_kid: str, hash_key: bytes,
                 variable: str = "LOANCRM_CUSTOMER_PII_KEYS") -> None:
        """`variable`: the setting that lists the keys, named when one is missing."""
        if active_kid not in keys:
            raise SettingsError(f"{variable.removesuffix('_KEYS')}_ACTIVE_KID: {active_kid!r} is not among {variable}")
        self._ciphers = {kid: AESGCM(key) for kid, key in keys.items()}
        self.active_kid = active_kid
        self._hash_key = hash_key
        self._variable = variable

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
            raise LookupError(f"PII key {kid!r} is no longer configured; add it back to {self._variable}")
        try:
            return cipher.decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], f"{row_id}:{field}".encode()).decode()
        except InvalidTag:
            raise LookupError(f"{field} of {row_id} does not decrypt with key {kid!r}") from None

    def digest(self, value: str) -> str:
        return hmac.new(self._hash_key, value.encode(), hashlib.sha256).hexdigest()


def load_vault(settings: PiiKeySettings, kernel: KernelSettings, key_file: str) -> PiiVault:
    """The configured keys, else those of `key_file` under the var dir: generated once, readable by this user
    only, reused on every start (and refused where LOANCRM_GENERATE_SECRETS is false)."""
    variable = settings.variable("pii_keys")
    if settings.pii_keys:
        if not settings.pii_hash_key:
            raise SettingsError(f"{settings.variable('pii_hash_key')}: required when {variable} is set")
        keys = settings.parsed_keys()
        active = settings.pii_active_kid or next(iter(keys))
        return PiiVault(keys, active, decode_key(settings.pii_hash_key), variable)

    def make() -> str:
        return json.dumps({"kid": "local1", "key": new_key(), "hash_key": new_key()})

    stored = json.loads(generated_once(kernel.var_dir / key_file, make, allowed=kernel.generate_secrets,
                                       variable=variable))
    return PiiVault({stored["kid"]: decode_key(stored["key"])}, stored["kid"], decode_key(stored["hash_key"]),
                    variable)


def full_view_test(principal: Principal) -> Callable[[str | None], bool]:
    """Whether the caller sees a record of a branch's personal data in clear, decided once per request (a page
    asks it per row, and the roles do not change in between)."""
    seen = visibility(principal, among=FULL_VIEW_ROLES)
    return lambda branch: seen.allows(branch)


def mask_account(value: str) -> str:
    """An account number as staff recognise it, by its last four characters; a short one (a test's, a branch
    code's) shows nothing, since four would be most of it."""
    kept = value[-4:] if len(value) >= 8 else ""
    return "*" * (len(value) - len(kept)) + kept


class SealingAtStart:
    """Seals what an older version stored in clear, in a worker thread from each start, so a large table does not
    hold up the service's start. `seal(session, stop)` commits batch by batch until `stop()` and returns how many
    it sealed; shutdown stops it after the batch in hand, and the next start resumes."""

    def __init__(self, database: Database, seal: Callable[[Session, Callable[[], bool]], int], what: str) -> None:
        self.database, self._seal, self.what = database, seal, what
        self._stop = threading.Event()
        self._task: asyncio.Future[None] | None = None

    def _run(self) -> None:
        try:
            with self.database.session() as session:
                sealed = self._seal(session, self._stop.is_set)
        except Exception:  # the next start tries again; the service keeps serving meanwhile
            log.exception("sealing %s held in clear stopped", self.what)
            return
        if sealed:
            log.info("sealed %d %s held in clear", sealed, self.what)

    async def start(self) -> None:
        self._task = asyncio.ensure_future(asyncio.to_thread(self._run))

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            await self._task


def rotate_keys(database: Database, reseal: Callable[[Session, Callable[[int, int], None]], int], unit: str) -> int:
    """`loancrm ... rotate-keys`: `reseal(session, progress)` over `database` with a progress bar on stderr, after
    a new key was added and made active (the old one kept listed until this finishes); returns how many rows."""
    from tqdm import tqdm

    try:
        with database.session() as session, tqdm(desc="re-encrypting", unit=unit) as bar:
            def advance(done: int, total: int) -> None:
                bar.total = total
                bar.update(done - bar.n)

            return reseal(session, advance)
    finally:
        database.dispose()
