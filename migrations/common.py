"""Alembic environment shared by every service: each has its own history and version table."""

from __future__ import annotations

import importlib

from alembic import context
from sqlalchemy import create_engine, pool

TABLE_MODULES = {
    "gateway": "gateway.tables",
    "customer": "services.customer.tables",
    "scoring": "services.scoring.tables",
    "monitoring": "services.monitoring.tables",
}


def version_table(service: str) -> str:
    return f"alembic_version_{service}"


def owned_objects_only(obj, name, type_, reflected, compare_to) -> bool:  # noqa: ANN001, ARG001
    """Services may share one database: a table in it that this service's code does not define belongs to
    another service (or is a version table), so autogenerate must never propose dropping it."""
    return not (type_ == "table" and reflected and compare_to is None)


def run(service: str) -> None:
    metadata = importlib.import_module(TABLE_MODULES[service]).metadata
    config = context.config
    url = config.get_main_option("sqlalchemy.url")
    options = {
        "target_metadata": metadata,
        "version_table": version_table(service),
        # SQLite alters tables by copy-and-move; batch mode makes the same scripts work there and on PostgreSQL.
        "render_as_batch": True,
        "compare_type": True,
        "include_object": owned_objects_only,
    }
    if context.is_offline_mode():
        context.configure(url=url, literal_binds=True, **options)
        with context.begin_transaction():
            context.run_migrations()
        return
    connection = config.attributes.get("connection")
    if connection is not None:
        context.configure(connection=connection, **options)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = create_engine(url, poolclass=pool.NullPool)
    with engine.connect() as connection:
        context.configure(connection=connection, **options)
        with context.begin_transaction():
            context.run_migrations()
