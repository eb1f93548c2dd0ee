"""Each service's own migration history: up and down on SQLite and PostgreSQL, and in step with its tables."""

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect

from loancrm import migrate
from migrations.common import TABLE_MODULES, owned_objects_only, version_table
from shared.settings import SERVICES
from tests.support import database_urls


@pytest.fixture
def urls(backend, tmp_path):
    with database_urls(backend, tmp_path) as urls:
        yield urls


def _tables(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def _metadata(service):
    import importlib

    return importlib.import_module(TABLE_MODULES[service]).metadata


@pytest.mark.parametrize("service", SERVICES)
def test_upgrade_creates_the_services_tables_and_downgrade_removes_them(urls, service):
    url = urls[service]
    migrate.upgrade(url, service)
    tables = _tables(url)
    assert set(_metadata(service).tables) <= tables
    assert version_table(service) in tables
    migrate.downgrade(url, service, "base")
    assert _tables(url) == {version_table(service)}
    migrate.upgrade(url, service)
    assert set(_metadata(service).tables) <= _tables(url)


@pytest.mark.parametrize("service", SERVICES)
def test_migrations_match_the_tables_in_code(urls, service):
    url = urls[service]
    migrate.upgrade(url, service)
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(
                conn, opts={"compare_type": True, "include_object": owned_objects_only})
            diff = compare_metadata(context, _metadata(service))
    finally:
        engine.dispose()
    assert diff == [], f"{service}: tables and migrations differ; run `loancrm makemigration {service} ...`"


def test_services_sharing_one_database_keep_separate_histories(backend, tmp_path):
    with database_urls(backend, tmp_path) as urls:
        shared_url = urls["gateway"]
        for service in SERVICES:
            migrate.upgrade(shared_url, service)
        tables = _tables(shared_url)
        assert {version_table(s) for s in SERVICES} <= tables
        migrate.downgrade(shared_url, "gateway", "base")
        remaining = _tables(shared_url)
        assert "users" not in remaining and "signing_keys" not in remaining
        assert set(_metadata("monitoring").tables) <= remaining
