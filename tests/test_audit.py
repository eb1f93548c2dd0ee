"""The audit trail (README "Audit trail"): what a user does leaves a chained row naming them and their request;
auditors read it through the gateway; `loancrm audit verify` finds a changed or deleted row."""

from __future__ import annotations

import hashlib
import json
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from decimal import Decimal

import pytest
from pydantic_core import to_json
import sqlalchemy as sa
from sqlalchemy import delete, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from gateway.db import audit as gateway_audit
from loancrm import cli
from services.customer.db import audit as customer_audit
from services.monitoring.db import audit as monitoring_audit
from services.scoring.db import audit as scoring_audit
from tests.customer.factory import key, person
from services.scoring.registry.flows import ensure_default_champion
from shared.audit import digest, digest_rows
from shared.db import bulk_rows
from tests.monitoring.api.helpers import Borrowers, officer, register, role, set_today
from tests.scoring.api.conftest import german_rows

TRAILS = {"gateway": gateway_audit, "customer": customer_audit, "scoring": scoring_audit,
          "monitoring": monitoring_audit}


@pytest.fixture(scope="module")
def people(suite) -> Borrowers:
    return Borrowers(suite)


@pytest.fixture(scope="module")
def scorer(suite) -> None:
    ensure_default_champion(suite.kernel)
    suite.services["scoring"].state.scoring.serving.invalidate()


def audit_rows(suite, service: str, request_id: str, headers: dict[str, str] | None = None) -> list[dict]:
    """The trail rows of one request, as an auditor reads them through the gateway."""
    path = "/audit" if service == "gateway" else f"/api/{service}/audit"
    response = suite.client.get(path, params={"request_id": request_id},
                                headers=headers or role(suite, "auditor"))
    assert response.status_code == 200, response.text
    return response.json()["items"]


def rid() -> dict[str, str]:
    return {"X-Request-Id": f"test-{uuid.uuid4().hex}"}


def verify(suite, service: str):
    with suite.database(service).engine.connect() as connection:
        return TRAILS[service].verify(connection)


def test_a_repayment_is_recorded_with_its_poster_request_and_the_loan_before_and_after(suite, people):
    set_today(suite, date(2026, 2, 15))
    loan = register(suite, people)
    request = rid()
    paid = suite.client.post(f"/api/monitoring/loans/{loan['id']}/repayments",
                             json={"amount": loan["schedule"][0]["total"]},
                             headers={**officer(suite), **key(), **request})
    assert paid.status_code == 201, paid.text
    assert paid.headers["x-request-id"] == request["X-Request-Id"]
    rows = audit_rows(suite, "monitoring", request["X-Request-Id"])
    assert rows and {r["actor"] for r in rows} == {"officer.bj001"}
    assert all(r["roles"] == ["loan_officer"] for r in rows)
    changed = [r for r in rows if r["entity"] == "loans" and r["entity_id"] == loan["id"]]
    assert [r["action"] for r in changed] == ["update"]
    assert changed[0]["digest_before"] and changed[0]["digest_before"] != changed[0]["digest_after"]
    assert [r["entity_id"] for r in rows if r["entity"] == "postings" and r["action"] == "insert"
            and r["digest_before"] is None] == [paid.json()["id"]]
    assert verify(suite, "monitoring").broken is None


def test_a_customer_update_is_recorded_with_the_record_before_and_after(suite):
    officer_headers = officer(suite)
    created = suite.client.post("/api/customer/customers", json=person(), headers={**officer_headers, **key()})
    assert created.status_code == 201, created.text
    customer = created.json()
    request = rid()
    changed = suite.client.patch(f"/api/customer/customers/{customer['id']}", json={"monthly_income": "21000.00"},
                                 headers={**officer_headers, "If-Match": created.headers["etag"], **request})
    assert changed.status_code == 200, changed.text
    rows = audit_rows(suite, "customer", request["X-Request-Id"])
    update_rows = [r for r in rows if r["action"] == "update" and r["entity_id"] == customer["id"]]
    assert update_rows and all(r["actor"] == "officer.bj001" for r in update_rows)
    assert all(r["digest_before"] != r["digest_after"] for r in update_rows)
    # The answer shows the customer, so the update is a read of personal data too.
    reads = [r for r in rows if r["action"] == "read"]
    assert [json.loads(r["detail"])["full"] for r in reads] == [[customer["id"]]]


def test_a_masked_read_is_recorded_as_a_read_of_whom_and_how(suite):
    created = suite.client.post("/api/customer/customers", json=person(), headers={**officer(suite), **key()})
    customer_id = created.json()["id"]
    request = rid()
    got = suite.client.get(f"/api/customer/customers/{customer_id}", headers={**role(suite, "risk_analyst"),
                                                                               **request})
    assert got.status_code == 200 and got.json()["pii_view"] == "masked", got.text
    (row,) = audit_rows(suite, "customer", request["X-Request-Id"])
    assert (row["action"], row["entity"], row["entity_id"], row["actor"]) == (
        "read", "customers", customer_id, "risk.analyst.one")
    assert json.loads(row["detail"]) == {"via": "get_customer", "full": [], "masked": [customer_id]}
    listed = suite.client.get("/api/customer/customers", params={"limit": 3}, headers={**officer(suite), **rid()})
    assert listed.status_code == 200
    listing = audit_rows(suite, "customer", listed.headers["x-request-id"])
    assert [r["action"] for r in listing] == ["read"]
    assert json.loads(listing[0]["detail"])["full"] == [c["id"] for c in listed.json()["items"]]


def test_a_score_is_recorded_with_its_caller(suite, scorer):
    request = rid()
    scored = suite.client.post("/api/scoring/scores", json={"features": german_rows()[0]},
                               headers={**officer(suite), **request})
    assert scored.status_code == 201, scored.text
    (row,) = [r for r in audit_rows(suite, "scoring", request["X-Request-Id"]) if r["entity"] == "scores"]
    assert (row["action"], row["entity_id"], row["actor"]) == ("insert", scored.json()["id"], "officer.bj001")
    assert row["digest_before"] is None and len(row["digest_after"]) == 64
    assert verify(suite, "scoring").broken is None


def test_auditors_and_admins_read_the_trail_and_a_loan_officer_may_not(suite):
    for path in ("/audit", "/api/customer/audit", "/api/scoring/audit", "/api/monitoring/audit"):
        assert suite.client.get(path, headers=role(suite, "auditor")).status_code == 200, path
        assert suite.client.get(path, headers=suite.headers("admin")).status_code == 200, path
        refused = suite.client.get(path, headers=officer(suite))
        assert refused.status_code == 403, (path, refused.text)


def test_the_trail_pages_newest_first_and_filters_by_actor(suite):
    auditor = role(suite, "auditor")
    for _ in range(3):
        suite.client.post("/api/customer/customers", json=person(), headers={**officer(suite), **key()})
    first = suite.client.get("/api/customer/audit", params={"actor": "officer.bj001", "limit": 2},
                             headers=auditor).json()
    assert len(first["items"]) == 2 and first["next_cursor"]
    second = suite.client.get("/api/customer/audit", params={"actor": "officer.bj001", "limit": 2,
                                                              "cursor": first["next_cursor"]}, headers=auditor).json()
    seqs = [r["seq"] for r in first["items"] + second["items"]]
    assert seqs == sorted(seqs, reverse=True) and len(set(seqs)) == len(seqs)
    assert {r["actor"] for r in first["items"] + second["items"]} == {"officer.bj001"}
    bad = suite.client.get("/api/customer/audit", params={"cursor": "bm9wZQ"}, headers=auditor)
    assert bad.status_code == 422


def test_concurrent_writers_keep_one_chain(suite):
    """Eight writers at once (on PostgreSQL really concurrent): every row lands on one unbroken chain."""
    officer_headers = officer(suite)
    before = verify(suite, "customer").rows

    def create(_: int) -> int:
        return suite.direct["customer"].post("/customers", json=person(),
                                             headers={**officer_headers, **key()}).status_code

    with ThreadPoolExecutor(8) as pool:
        assert set(pool.map(create, range(24))) == {201}
    verdict = verify(suite, "customer")
    assert verdict.broken is None and verdict.rows >= before + 24 * 2  # each: the insert and the read of it


def _row(suite, service: str, seq: int) -> dict:
    trail = TRAILS[service]
    with suite.database(service).engine.connect() as connection:
        return dict(connection.execute(select(trail.table).where(trail.table.c.seq == seq)).one()._mapping)


def _run(suite, service: str, statement) -> None:  # noqa: ANN001
    with suite.database(service).engine.begin() as connection:
        connection.execute(statement)


def test_verify_names_a_changed_row_and_a_deleted_one(suite, monkeypatch, capsys):
    for service, url in (("gateway", suite.kernel.gateway_database_url),
                         ("customer", suite.kernel.customer_database_url),
                         ("scoring", suite.kernel.scoring_database_url),
                         ("monitoring", suite.kernel.monitoring_database_url)):
        monkeypatch.setenv(f"LOANCRM_{service.upper()}_DATABASE_URL", url)
    monkeypatch.setenv("LOANCRM_VAR_DIR", str(suite.kernel.var_dir))
    for _ in range(3):  # rows enough for a first, a middle and a last, whichever tests ran on this suite before
        suite.client.post("/api/customer/customers", json=person(), headers={**officer(suite), **key()})
    table = customer_audit.table
    assert cli.main(["audit", "verify"]) == 0
    out = capsys.readouterr().out
    assert "customer: ok:" in out and "gateway: ok:" in out
    total = verify(suite, "customer").rows
    assert total >= 3
    middle = _row(suite, "customer", 2)

    _run(suite, "customer", update(table).where(table.c.seq == 2).values(actor="someone.else"))
    assert cli.main(["audit", "verify", "--service", "customer"]) == 1
    assert "customer: broken at row 2: row 2 was changed" in capsys.readouterr().out
    _run(suite, "customer", update(table).where(table.c.seq == 2).values(actor=middle["actor"]))
    assert cli.main(["audit", "verify", "--service", "customer"]) == 0
    capsys.readouterr()

    _run(suite, "customer", delete(table).where(table.c.seq == 2))
    assert cli.main(["audit", "verify", "--service", "customer"]) == 1
    assert "broken at row 2: row 2 is missing" in capsys.readouterr().out
    _run(suite, "customer", insert(table).values(**middle))

    last = _row(suite, "customer", total)
    _run(suite, "customer", delete(table).where(table.c.seq == total))
    verdict = verify(suite, "customer")
    assert verdict.broken is not None and verdict.broken.seq == total and "deleted" in verdict.broken.problem
    _run(suite, "customer", insert(table).values(**last))
    assert verify(suite, "customer").broken is None


@pytest.mark.parametrize("service", ["gateway", "monitoring"])
def test_an_untampered_chain_verifies(suite, service):
    suite.headers(f"audited.{uuid.uuid4().hex[:6]}", ["collector"])  # a user created: a gateway write
    verdict = verify(suite, service)
    assert verdict.broken is None and (service != "gateway" or verdict.rows > 0)


def test_a_batch_digest_names_its_columns_once_and_each_rows_values_whatever_their_order():
    """A bulk write's digest: the column names sorted, then each row's values in that order (a JSON column's keys
    sorted too), however the rows were built; a batch whose rows differ in columns is digested row by row."""
    rows = [{"b": Decimal(f"{n}.50"), "a": {"y": [{"q": n, "p": None}] * (n % 3), "x": (n, "t")},
             "c": date(2026, 1, 1), "d": None if n % 2 else [n]} for n in range(20)]
    by_hand = {"columns": ["a", "b", "c", "d"],
               "rows": [[{"x": [n, "t"], "y": [{"p": None, "q": n}] * (n % 3)}, Decimal(f"{n}.50"), date(2026, 1, 1),
                         None if n % 2 else [n]] for n in range(20)]}
    expected = hashlib.sha256(to_json(by_hand, bytes_mode="base64", fallback=str)).hexdigest()
    assert digest_rows(rows) == digest_rows([dict(reversed(row.items())) for row in rows]) == expected
    assert digest_rows([*rows, {"z": 1}]) == digest([*rows, {"z": 1}]) != expected
    # A bulk write digests the columns it gathered for the driver: the same digest.
    table = sa.Table("digested", sa.MetaData(), sa.Column("a", sa.JSON), sa.Column("b", sa.Numeric(12, 2)),
                     sa.Column("c", sa.Date), sa.Column("d", sa.JSON))
    for dialect in (postgresql.dialect(), sqlite.dialect()):
        assert bulk_rows(table, rows, dialect).audit.digest_after == expected
