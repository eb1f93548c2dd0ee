"""Settings from environment variables, with safe defaults.

All names start with ``LOANCRM_``; per-service ones carry the service name, e.g. ``LOANCRM_CUSTOMER_PORT``,
``LOANCRM_CUSTOMER_DATABASE_URL``, ``LOANCRM_CUSTOMER_URL``. A bad value stops start-up with one line naming
the variable.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, TypeVar

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

SERVICES = ("gateway", "customer", "scoring", "monitoring")
# The folder of secret files (one per variable) that load_settings reads besides the environment.
SECRETS_DIR_VARIABLE = "LOANCRM_SECRETS_DIR"
# Where `loancrm up` keeps the batch client's secret when none is configured (0600, like the other generated keys).
BATCH_SECRET_FILE = "batch_client_secret"



class SettingsError(Exception):
    """A setting is missing or malformed; the message names the environment variable."""


def _check_database_url(value: str) -> str:
    if value:
        try:
            url = make_url(value)
        except ArgumentError:
            raise ValueError("is not a database URL (e.g. postgresql+psycopg://user@host:5432/db)") from None
        if url.get_backend_name() not in {"sqlite", "postgresql"}:
            raise ValueError("must be a sqlite:/// or postgresql+psycopg:// URL")
    return value


class BatchSettings(BaseSettings):
    """Who batch runs call peers as. COB: its own OAuth client (`LOANCRM_BATCH_CLIENT_ID`, secret from
    `LOANCRM_BATCH_CLIENT_SECRET` or the file `loancrm_batch_client_secret` in LOANCRM_SECRETS_DIR, else the one
    `loancrm up` generated into var_dir). `LOANCRM_API_TOKEN`: a user's token the relationship study may read the book
    with instead of signing in (`--user`)."""

    model_config = SettingsConfigDict(env_prefix="LOANCRM_", extra="ignore")

    api_token: str | None = None
    batch_client_id: str = "loancrm-batch"
    batch_client_secret: SecretStr | None = None

    def client_secret(self, kernel: KernelSettings) -> str | None:
        """The configured secret, else the one generated at first start (None before any)."""
        if self.batch_client_secret is not None:
            return self.batch_client_secret.get_secret_value()
        generated = kernel.var_dir / BATCH_SECRET_FILE
        return generated.read_text().strip() if generated.exists() else None


class KernelSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LOANCRM_", extra="ignore")

    var_dir: Path = Path("var")
    log_level: str = "INFO"
    # FastAPI's native OpenTelemetry (through the global providers an operator's `opentelemetry-instrument` sets).
    # Off unless asked for: LoanCRM exports its own Prometheus metrics, and FastAPI looks the providers up again
    # on every request (about 5% of a read's CPU here) even when none is configured.
    opentelemetry: bool = False
    host: str = "127.0.0.1"

    gateway_port: int = Field(8000, ge=1, le=65535)
    customer_port: int = Field(8001, ge=1, le=65535)
    scoring_port: int = Field(8002, ge=1, le=65535)
    monitoring_port: int = Field(8003, ge=1, le=65535)

    # Empty means a SQLite file under var_dir: the embedded default.
    gateway_database_url: str = ""
    customer_database_url: str = ""
    scoring_database_url: str = ""
    monitoring_database_url: str = ""

    # Empty means http://host:port of that service on this machine.
    gateway_url: str = ""
    customer_url: str = ""
    scoring_url: str = ""
    monitoring_url: str = ""
    # Several replicas of a service, comma-separated (http://customer-1:8001,http://customer-2:8001): the gateway
    # and the peer clients balance across them and stop calling one that fails. Set, they win over *_URL.
    customer_urls: Annotated[list[str], NoDecode] = []
    scoring_urls: Annotated[list[str], NoDecode] = []
    monitoring_urls: Annotated[list[str], NoDecode] = []

    jwt_issuer: str = "loancrm-gateway"
    jwt_audience: str = "loancrm"
    # Empty means the gateway's own /.well-known/jwks.json.
    jwks_url: str = ""
    # How long a service trusts its cached copy of the gateway's public keys.
    jwks_cache_seconds: int = Field(300, ge=0)
    # Empty means the gateway's own /auth/revocations. Polled every this many seconds; a token whose user was
    # disabled or changed is refused within that time, and every token is refused once the list is three polls old.
    revocations_url: str = ""
    revocation_poll_seconds: float = Field(10.0, gt=0, le=10)
    # RFC 8725 limits every verifier applies: a token living longer than this (exp - iat), or issued further
    # than the leeway in the future, is refused; so is one longer than the size limit, before it is parsed.
    token_max_lifetime_seconds: int = Field(3600, ge=60, le=86400)
    token_leeway_seconds: int = Field(60, ge=0, le=300)
    # Request limits every process applies (a route may allow a larger body, e.g. a model upload).
    max_body_bytes: int = Field(1024 * 1024, ge=1024)
    max_header_bytes: int = Field(16 * 1024, ge=4096)
    # Browsable docs (/docs, /redoc) and Prometheus /metrics; off in production (docker-compose.yml).
    docs_enabled: bool = True
    metrics_enabled: bool = True
    # Send Strict-Transport-Security on every answer (also sent whenever the request came over HTTPS).
    hsts: bool = False
    peer_timeout_seconds: float = Field(2.0, gt=0)
    # How long `loancrm up` waits for each process to answer before naming the late ones and stopping.
    startup_timeout_seconds: float = Field(180.0, gt=0, le=3600)
    # Keys and secrets left unset are generated once into var_dir (the embedded default). A container whose
    # var_dir can be recreated sets this false: a missing secret then stops start-up, naming its variable.
    generate_secrets: bool = True
    # Empty means no Redis: counters and caches stay inside each process (the embedded default).
    redis_url: str = ""
    # How long a write's Idempotency-Key is remembered (a retry within it gets the first answer; after it the key
    # is forgotten and may be reused), and how long a request's claim on its key lasts before a retry may take
    # the key over (a claimant that crashed blocks its key no longer than this).
    idempotency_retention_hours: float = Field(24, gt=0, le=24 * 30)
    idempotency_lease_seconds: float = Field(60, gt=0, le=24 * 3600)

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: str) -> str:
        if value and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must start with redis://, rediss:// or unix://")
        return value

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        level = value.upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError("must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL")
        return level

    @field_validator("gateway_database_url", "customer_database_url", "scoring_database_url",
                     "monitoring_database_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        return _check_database_url(value)

    @field_validator("gateway_url", "customer_url", "scoring_url", "monitoring_url", "jwks_url", "revocations_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if value and not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    @field_validator("customer_urls", "scoring_urls", "monitoring_urls", mode="before")
    @classmethod
    def _http_urls(cls, value: object) -> object:
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        if isinstance(value, list):
            value = [cls._http_url(url) if isinstance(url, str) else url for url in value]
            if len(set(value)) != len(value):
                raise ValueError("lists a URL twice")
        return value

    def port(self, service: str) -> int:
        return getattr(self, f"{service}_port")

    def database_url(self, service: str) -> str:
        configured = getattr(self, f"{service}_database_url")
        return configured or f"sqlite:///{(self.var_dir / f'{service}.db').as_posix()}"

    def url(self, service: str) -> str:
        """One address of `service` (its first replica's when several are set)."""
        return self.urls(service)[0]

    def urls(self, service: str) -> list[str]:
        """Every replica of `service`: `LOANCRM_{SERVICE}_URLS`, else its one URL."""
        return (getattr(self, f"{service}_urls", None) or [getattr(self, f"{service}_url")
                                                            or f"http://{self.host}:{self.port(service)}"])

    def resolved_jwks_url(self) -> str:
        return self.jwks_url or f"{self.url('gateway')}/.well-known/jwks.json"

    def resolved_revocations_url(self) -> str:
        return self.revocations_url or f"{self.url('gateway')}/auth/revocations"


S = TypeVar("S", bound=BaseSettings)


def load_settings(cls: type[S] = KernelSettings) -> S:  # type: ignore[assignment]
    """Build settings, turning pydantic's report into one line naming the variable.

    Besides the environment, each variable may be a file of its name (lower case, e.g.
    `loancrm_customer_pii_keys`) in the folder `LOANCRM_SECRETS_DIR` names: how Docker and Kubernetes mount
    secrets, so that no key sits in the environment or the compose file."""
    secrets_dir = os.environ.get(SECRETS_DIR_VARIABLE) or None
    if secrets_dir and not Path(secrets_dir).is_dir():
        raise SettingsError(f"{SECRETS_DIR_VARIABLE}: {secrets_dir} is not a folder")
    try:
        return cls(_secrets_dir=secrets_dir)  # type: ignore[call-arg]
    except ValidationError as exc:
        prefix = cls.model_config.get("env_prefix", "")
        first = exc.errors()[0]
        field = str(first["loc"][0]) if first["loc"] else "?"
        raise SettingsError(f"{(prefix + field).upper()}: {first['msg']}") from None
