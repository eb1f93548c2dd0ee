"""Masks already stored in the old, longer format are rewritten by the migration (issue 14, Found 7)."""

from sqlalchemy import text

from loancrm import migrate
from tests.customer.factory import insert_older_customer, older_customer_database

OLD_HEAD = "9ff5c72893d0"


def test_the_migration_shortens_stored_masks_on_both_databases(backend, tmp_path):
    with older_customer_database(backend, tmp_path, OLD_HEAD) as (url, engine):
        insert_older_customer(engine, "c1", national_id_masked="110***********123X", phone_masked="138****5678",
                              email_masked="z***@example.com")
        migrate.upgrade(url, "customer")
        with engine.connect() as conn:
            masks = conn.execute(text("SELECT national_id_masked, phone_masked, email_masked FROM customers"))
            assert tuple(masks.one()) == ("****************3X", "138******78", "z***@example.com")
