"""Bringing each service's own database to the head of its own migration history."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

from shared.db import make_engine
from shared.settings import SERVICES, KernelSettings

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def alembic_config(service: str, url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS / service))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def _ensure_parent(url: str) -> None:
    # Creating the engine creates the SQLite file's folder; PostgreSQL databases must already exist.
    make_engine(url).dispose()


def upgrade(url: str, service: str, revision: str = "head") -> None:
    _ensure_parent(url)
    command.upgrade(alembic_config(service, url), revision)


def downgrade(url: str, service: str, revision: str = "base") -> None:
    command.downgrade(alembic_config(service, url), revision)


def upgrade_all(kernel: KernelSettings, services: tuple[str, ...] = SERVICES) -> None:
    for service in services:
        upgrade(kernel.database_url(service), service)


def make_revision(kernel: KernelSettings, service: str, message: str) -> None:
    """Autogenerate a revision from the service's tables against its current database (a developer's tool)."""
    url = kernel.database_url(service)
    upgrade(url, service)
    command.revision(alembic_config(service, url), message=message, autogenerate=True)
