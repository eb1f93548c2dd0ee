"""Addresses an older version stored in clear are sealed when the customer service next starts, on both
databases: afterwards no address is readable in the table, and readers see it as their role allows."""

import time

from fastapi.testclient import TestClient
from sqlalchemy import text

from loancrm import migrate
from services.customer.customers.pii import load_vault
from services.customer.main import create_app
from services.customer.settings import CustomerSettings
from shared.settings import KernelSettings
from tests.customer.factory import insert_older_customer, older_customer_database, person

BEFORE_SEALED_ADDRESSES = "c8a8af2f3d8f"


def test_an_address_stored_in_clear_is_sealed_at_the_next_start(backend, tmp_path):
    with older_customer_database(backend, tmp_path, BEFORE_SEALED_ADDRESSES) as (url, engine):
        insert_older_customer(engine, "c1", address="88 Jianguo Rd, Chaoyang, Beijing")
        insert_older_customer(engine, "c2", address="88  JIANGUO rd, Chaoyang, Beijing")
        migrate.upgrade(url, "customer")
        kernel = KernelSettings(var_dir=tmp_path / "var", customer_database_url=url)
        with TestClient(create_app(kernel)):
            # In the background: a large table does not hold up the start.
            deadline = time.monotonic() + 60
            while _clear_addresses(engine) and time.monotonic() < deadline:
                time.sleep(0.05)
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT * FROM customers ORDER BY id")).mappings().all()
    assert "Jianguo" not in " ".join(str(v) for row in rows for v in row.values())
    assert [(row["address_clear"], row["address_masked"]) for row in rows] == [(None, "***, Beijing")] * 2
    vault = load_vault(CustomerSettings(), kernel)
    assert vault.open(rows[0]["address_enc"], kid=rows[0]["pii_kid"], row_id="c1", field="address") == (
        "88 Jianguo Rd, Chaoyang, Beijing")
    # One address however it is spelt: the two share a search hash, which is what shared-address checks match.
    assert rows[0]["address_hash"] == rows[1]["address_hash"] is not None


def _clear_addresses(engine):
    with engine.connect() as conn:
        return conn.execute(text("SELECT count(*) FROM customers WHERE address_clear IS NOT NULL")).scalar()


def test_until_it_is_sealed_a_clear_address_is_shown_as_the_readers_role_allows(suite, api, actors):
    officer = actors.officer("AS01")
    created = actors.register(officer, **person(branch="AS01", address="5 Hope Road, Estate 7, Shenzhen"))
    with suite.database("customer").engine.begin() as conn:  # as an older version left it
        conn.execute(text("UPDATE customers SET address_clear = '9 Old Street, Guangzhou', address_enc = NULL, "
                          "address_masked = NULL, address_hash = NULL WHERE id = :id"), {"id": created["id"]})
    url = f"/customers/{created['id']}"
    assert api.get(url, headers=officer).json()["address"] == "9 Old Street, Guangzhou"
    assert api.get(url, headers=actors.user("risk_analyst")).json()["address"] == "***, Guangzhou"
    revealed = api.post(f"{url}/reveal", json={"field": "address", "reason": "customer at the counter, new card"},
                        headers=officer)
    assert revealed.json()["value"] == "9 Old Street, Guangzhou", revealed.text
