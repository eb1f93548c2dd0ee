"""Keys rotate: rows sealed with the old key are re-encrypted under the new one and still read back."""

import base64
import json
import os

from fastapi.testclient import TestClient
from sqlalchemy import text

from services.customer.customers.pii import KEY_FILE
from services.customer.customers.scheduled import run_rotate_keys_cli
from services.customer.main import create_app
from services.customer.settings import CustomerSettings


def test_rotating_to_a_new_key_keeps_every_customer_readable(suite, actors, capsys):
    admin = actors.admin()
    created = [actors.register(admin, branch="RK01") for _ in range(2)]
    old = json.loads((suite.kernel.var_dir / KEY_FILE).read_text())
    new_key = base64.urlsafe_b64encode(os.urandom(32)).decode()
    settings = CustomerSettings(pii_keys=f"{old['kid']}:{old['key']},k2:{new_key}", pii_active_kid="k2",
                                pii_hash_key=old["hash_key"])

    rotated_count = run_rotate_keys_cli(kernel=suite.kernel, settings=settings)
    assert rotated_count >= 2
    # Long work shows its progress: the bar ends at every customer it re-encrypted.
    assert f"{rotated_count}/{rotated_count}" in capsys.readouterr().err
    assert run_rotate_keys_cli(kernel=suite.kernel, settings=settings) == 0
    with suite.database("customer").engine.connect() as conn:
        kids = set(conn.execute(text("SELECT DISTINCT pii_kid FROM customers WHERE pii_kid IS NOT NULL")).scalars())
    assert kids == {"k2"}

    rotated = create_app(suite.kernel, verifier=suite.services["customer"].state.verifier, transports={},
                         settings=settings)
    with TestClient(rotated, base_url="http://customer") as client:
        for customer in created:
            read = client.get(f"/customers/{customer['id']}", headers=admin).json()
            assert read["national_id"] == customer["national_id"] and read["phone"] == customer["phone"]
        found = client.post("/customers/lookup", json={"phone": created[0]["phone"]}, headers=admin).json()
        assert [c["id"] for c in found] == [created[0]["id"]]
