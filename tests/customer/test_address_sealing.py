"""Addresses an older version stored in clear are sealed when the customer service next starts, on both
databases: afterwards no address is readable in the table, and readers see it as their role allows."""

from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from loancrm import migrate
from services.customer.customers.pii import load_vault
from services.customer.main import create_app
from services.customer.settings import CustomerSettings
from shared.settings import KernelSettings
from tests.support import database_urls

BEFORE_SEALED_ADDRESSES = "c8a8af2f3d8f"


def test_an_address_stored_in_clear_is_sealed_at_the_next_start(backend, tmp_path):
    with database_urls(backend, tmp_path) as urls:
        url = urls["customer"]
        migrate.upgrade(url, "customer", BEFORE_SEALED_ADDRESSES)
        engine = create_engine(url)
        try:
            with engine.begin() as conn:
                for row_id, address in (("c1", "88 Jianguo Rd, Chaoyang, Beijing"), ("c2", "88  JIANGUO rd, "
                                                                                         "Chaoyang, Beijing")):
                    conn.execute(text(
                        "INSERT INTO customers (id, kind, status, branch, kyc_status, created_by, version, "
                        "created_at, updated_at, address) VALUES (:id, 'individual', 'active', 'BJ001', 'pending', "
                        "'me', 1, :at, :at, :address)"), {"id": row_id, "at": "2026-11-23 09:00:00",
                                                          "address": address})
            migrate.upgrade(url, "customer")
            kernel = KernelSettings(var_dir=tmp_path / "var", customer_database_url=url)
            with TestClient(create_app(kernel)):
                pass
            with engine.connect() as conn:
                rows = conn.execute(text("SELECT * FROM customers ORDER BY id")).mappings().all()
        finally:
            engine.dispose()
    assert "Jianguo" not in " ".join(str(v) for row in rows for v in row.values())
    assert [(row["address_clear"], row["address_masked"]) for row in rows] == [(None, "***, Beijing")] * 2
    vault = load_vault(CustomerSettings(), kernel)
    assert vault.open(rows[0]["address_enc"], kid=rows[0]["pii_kid"], row_id="c1", field="address") == (
        "88 Jianguo Rd, Chaoyang, Beijing")
    # One address however it is spelt: the two share a search hash, which is what shared-address checks match.
    assert rows[0]["address_hash"] == rows[1]["address_hash"] is not None
