"""Masks already stored in the old, longer format are rewritten by the migration (issue 14, Found 7)."""

from sqlalchemy import create_engine, text

from loancrm import migrate
from tests.support import database_urls

OLD_HEAD = "9ff5c72893d0"


def test_the_migration_shortens_stored_masks_on_both_databases(backend, tmp_path):
    with database_urls(backend, tmp_path) as urls:
        url = urls["customer"]
        migrate.upgrade(url, "customer", OLD_HEAD)
        engine = create_engine(url)
        try:
            with engine.begin() as conn:
                conn.execute(text(
                    "INSERT INTO customers (id, kind, status, branch, kyc_status, created_by, version, created_at, "
                    "updated_at, national_id_masked, phone_masked, email_masked) VALUES ('c1', 'individual', "
                    "'active', 'BJ001', 'pending', 'me', 1, :at, :at, '110***********123X', '138****5678', "
                    "'z***@example.com')"), {"at": "2026-11-23 09:00:00"})
            migrate.upgrade(url, "customer")
            with engine.connect() as conn:
                masks = conn.execute(text("SELECT national_id_masked, phone_masked, email_masked FROM customers"))
                assert tuple(masks.one()) == ("****************3X", "138******78", "z***@example.com")
        finally:
            engine.dispose()
