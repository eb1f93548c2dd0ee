"""One Idempotency-Key, many requests at once: every answer is the first one (or 409 with Retry-After while it
runs), never a 500, and the write happens once; on SQLite and PostgreSQL. Keys expire after their retention."""

from __future__ import annotations

import asyncio
import json
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import func, insert, select, update

from services.customer.db import idempotency as customer_keys
from services.monitoring.db import idempotency as monitoring_keys
from services.monitoring.repayments.models import Posting
from services.monitoring.transactions.models import AccountTransaction
from shared.clients.base import ServiceClient
from tests.customer.factory import person
from tests.monitoring.api.helpers import admin, borrowers, champion, loan_body, officer, register  # noqa: F401
from tests.scoring.api.conftest import german_rows

RACERS = 8


def race(send: Callable[[dict[str, str]], httpx.Response]) -> list[httpx.Response]:
    """RACERS threads released together, each sending the same request with one Idempotency-Key."""
    headers = {"Idempotency-Key": uuid.uuid4().hex}
    start = threading.Barrier(RACERS)
    answers: list[httpx.Response | None] = [None] * RACERS

    def one(i: int) -> None:
        start.wait()
        answers[i] = send(headers)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(RACERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return [*answers, send(headers)]  # type: ignore[list-item]  # and one retry after all finished


def assert_one_answer(answers: list[httpx.Response], status: int) -> dict[str, Any]:
    codes = [a.status_code for a in answers]
    assert set(codes) <= {status, 409}, codes
    assert codes[-1] == status, codes  # the retry after the race gets the first answer
    for busy in (a for a in answers if a.status_code == 409):
        assert busy.headers["Retry-After"] == "1"
        assert busy.headers["content-type"] == "application/problem+json"
    bodies = [a.json() for a in answers if a.status_code == status]
    assert all(body == bodies[0] for body in bodies), "every request got the first answer"
    assert answers[-1].headers.get("Idempotent-Replayed") == "true"
    return bodies[0]


def count(suite, service: str, statement) -> int:
    with suite.database(service).session() as session:
        return session.execute(statement).scalar_one()


def test_parallel_repayments_with_one_key_book_once(suite, borrowers):  # noqa: F811
    loan = register(suite, borrowers)
    headers = officer(suite)
    answers = race(lambda k: suite.direct["monitoring"].post(
        f"/loans/{loan['id']}/repayments", json={"amount": "500.00"}, headers={**headers, **k}))
    receipt = assert_one_answer(answers, 201)
    assert count(suite, "monitoring", select(func.count()).select_from(Posting).where(
        Posting.loan_id == loan["id"])) == 1
    assert receipt["amount"] == "500.00"


def test_parallel_loan_registrations_with_one_key_book_one_loan(suite, borrowers):  # noqa: F811
    body, bj = loan_body(borrowers.new_customer()), officer(suite)  # signed in before: racers would all make the user
    answers = race(lambda k: suite.direct["monitoring"].post("/loans", json=body, headers={**bj, **k}))
    loan = assert_one_answer(answers, 201)
    listed = suite.direct["monitoring"].get("/loans", params={"customer_id": body["customer_id"]},
                                            headers=officer(suite))
    assert [item["id"] for item in listed.json()["items"]] == [loan["id"]]


def test_parallel_feed_batches_with_one_key_store_the_rows_once(suite, borrowers):  # noqa: F811
    loan = register(suite, borrowers)
    rows = [{"account": "6222-9", "customer_id": loan["customer_id"], "booked_on": f"2026-01-{d:02d}",
             "amount": "100.00", "direction": "debit", "kind": "other"} for d in range(1, 11)]
    answers = race(lambda k: suite.direct["monitoring"].post("/transactions:batch", json={"rows": rows},
                                                             headers={**officer(suite), **k}))
    assert assert_one_answer(answers, 201)["accepted"] == 10
    assert count(suite, "monitoring", select(func.count()).select_from(AccountTransaction).where(
        AccountTransaction.customer_id == loan["customer_id"])) == 10


def test_parallel_customer_registrations_with_one_key_create_one_customer(suite):
    body = person()
    answers = race(lambda k: suite.direct["customer"].post("/customers", json=body, headers={**admin(suite), **k}))
    customer = assert_one_answer(answers, 201)
    found = suite.direct["customer"].get(f"/customers/{customer['id']}", headers=admin(suite))
    assert found.status_code == 200


def test_parallel_scores_with_one_key_answer_the_first_score(suite, champion):  # noqa: F811
    features = german_rows()[0]
    scorer = suite.headers("analyst.idem", ["risk_analyst"])
    answers = race(lambda k: suite.direct["scoring"].post("/scores", json={"features": features},
                                                          headers={**scorer, **k}))
    first = assert_one_answer(answers, 201)
    assert suite.direct["scoring"].get(f"/scores/{first['id']}", headers=scorer).status_code == 200


def _keys(service: str):
    return {"customer": customer_keys, "monitoring": monitoring_keys}[service]


def _plant(suite, service: str, owner: str, key: str, print_: str, *, lease_until: datetime) -> None:
    """A claim left behind by a request that is still running (or crashed) with this key."""
    table = _keys(service).table
    with suite.database(service).engine.begin() as conn:
        conn.execute(insert(table).values(owner=owner, key=key, fingerprint=print_, created_at=datetime.now(UTC),
                                          claimant=uuid.uuid4().hex, lease_until=lease_until))


def _fingerprint_of(suite, service: str, owner: str, key: str) -> str:
    table = _keys(service).table
    with suite.database(service).engine.connect() as conn:
        return conn.execute(select(table.c.fingerprint).where(table.c.owner == owner, table.c.key == key)).scalar_one()


def test_a_key_held_by_a_running_request_answers_409_and_a_crashed_ones_lease_runs_out(suite, borrowers):  # noqa: F811
    loan = register(suite, borrowers)
    path, body = f"/loans/{loan['id']}/repayments", {"amount": "300.00"}
    headers = officer(suite)
    # Learn this request's fingerprint from a real one, then plant claims for two fresh keys.
    probe = {"Idempotency-Key": uuid.uuid4().hex}
    assert suite.direct["monitoring"].post(path, json=body, headers={**headers, **probe}).status_code == 201
    print_ = _fingerprint_of(suite, "monitoring", "officer.bj001", probe["Idempotency-Key"])
    running, crashed = uuid.uuid4().hex, uuid.uuid4().hex
    now = datetime.now(UTC)
    _plant(suite, "monitoring", "officer.bj001", running, print_, lease_until=now + timedelta(minutes=5))
    _plant(suite, "monitoring", "officer.bj001", crashed, print_, lease_until=now - timedelta(seconds=1))

    busy = suite.direct["monitoring"].post(path, json=body, headers={**headers, "Idempotency-Key": running})
    assert busy.status_code == 409 and busy.headers["Retry-After"] == "1"
    taken_over = suite.direct["monitoring"].post(path, json=body, headers={**headers, "Idempotency-Key": crashed})
    assert taken_over.status_code == 201, taken_over.text
    again = suite.direct["monitoring"].post(path, json=body, headers={**headers, "Idempotency-Key": crashed})
    assert again.json() == taken_over.json() and again.headers["Idempotent-Replayed"] == "true"
    assert count(suite, "monitoring", select(func.count()).select_from(Posting).where(
        Posting.loan_id == loan["id"])) == 2


def test_a_failed_write_gives_its_key_back(suite, borrowers):  # noqa: F811
    loan = register(suite, borrowers)
    path, headers = f"/loans/{loan['id']}/repayments", {**officer(suite), "Idempotency-Key": uuid.uuid4().hex}
    refused = suite.direct["monitoring"].post(path, json={"amount": "300.00", "value_date": "2099-01-01"},
                                              headers=headers)
    assert refused.status_code == 422
    # The key is not burnt by the refusal: the same request is still refused (not 409), and nothing is stored.
    again = suite.direct["monitoring"].post(path, json={"amount": "300.00", "value_date": "2099-01-01"},
                                            headers=headers)
    assert again.status_code == 422
    table = monitoring_keys.table
    with suite.database("monitoring").engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(table).where(
            table.c.key == headers["Idempotency-Key"])).scalar_one() == 0


def test_keys_expire_after_the_retention_and_are_purged(suite):
    headers = {**admin(suite), "Idempotency-Key": uuid.uuid4().hex}
    first = suite.direct["customer"].post("/customers", json=person(), headers=headers)
    assert first.status_code == 201
    # Within the retention, another request under the key is refused as a reuse.
    assert suite.direct["customer"].post("/customers", json=person(), headers=headers).status_code == 422
    table, database = customer_keys.table, suite.database("customer")
    old = datetime.now(UTC) - customer_keys.retention - timedelta(minutes=1)
    with database.engine.begin() as conn:
        conn.execute(update(table).where(table.c.key == headers["Idempotency-Key"]).values(created_at=old))
    # Past it, the key is forgotten: the same key is a new request.
    later = suite.direct["customer"].post("/customers", json=person(), headers=headers)
    assert later.status_code == 201 and later.json()["id"] != first.json()["id"]
    # The purge drops every key past the retention and keeps the others.
    stale = uuid.uuid4().hex
    with database.engine.begin() as conn:
        conn.execute(insert(table).values(owner="admin", key=stale, fingerprint="x", status_code=201,
                                          body=json.dumps({}), created_at=old))
    assert customer_keys.purge(database) >= 1
    with database.engine.connect() as conn:
        left = set(conn.execute(select(table.c.key).where(
            table.c.key.in_([stale, headers["Idempotency-Key"]]))).scalars())
    assert left == {headers["Idempotency-Key"]}


def test_retention_and_lease_are_settings(suite):
    assert suite.kernel.idempotency_retention_hours == 24
    assert customer_keys.retention == timedelta(hours=suite.kernel.idempotency_retention_hours)
    assert customer_keys.lease == timedelta(seconds=suite.kernel.idempotency_lease_seconds)



def test_a_peer_client_waits_for_a_keys_first_request_and_gets_its_answer():
    answers = iter([(409, {"Retry-After": "0"}), (201, {"Idempotent-Replayed": "true"})])
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["Idempotency-Key"])
        status, headers = next(answers)
        return httpx.Response(status, headers=headers, json={})

    async def post() -> httpx.Response:
        client = ServiceClient("customer", "http://customer", transport=httpx.MockTransport(handler))
        try:
            return await client.request("POST", "/customers", token="t", json={}, idempotency_key="k-1")
        finally:
            await client.aclose()

    assert asyncio.run(post()).status_code == 201
    assert seen == ["k-1", "k-1"]


def test_parallel_consent_withdrawals_with_one_key_withdraw_once(suite):
    headers = admin(suite)
    customer = suite.direct["customer"].post("/customers", json=person(),
                                             headers={**headers, "Idempotency-Key": uuid.uuid4().hex}).json()
    path = f"/customers/{customer['id']}/consents"
    granted = suite.direct["customer"].post(path, json={"purpose": "marketing", "source": "branch_form"},
                                            headers={**headers, "Idempotency-Key": uuid.uuid4().hex})
    assert granted.status_code == 201, granted.text
    answers = race(lambda k: suite.direct["customer"].post(
        f"{path}/marketing/withdrawal", json={"source": "phone_recording"}, headers={**headers, **k}))
    withdrawn = assert_one_answer(answers, 200)
    history = suite.direct["customer"].get(path, headers=headers).json()["history"]
    assert [row["id"] for row in history if row.get("withdrawn_at")] == [withdrawn["id"]]


def test_a_complaint_answer_retried_with_its_key_gets_the_first_answer_not_a_conflict(suite):
    headers = admin(suite)
    customer = suite.direct["customer"].post("/customers", json=person(),
                                             headers={**headers, "Idempotency-Key": uuid.uuid4().hex}).json()
    complaint = suite.direct["customer"].post(
        f"/customers/{customer['id']}/complaints",
        json={"kind": "complaint", "channel": "phone", "category": "fees", "description": "Charged twice."},
        headers={**headers, "Idempotency-Key": uuid.uuid4().hex})
    assert complaint.status_code == 201, complaint.text
    answers = race(lambda k: suite.direct["customer"].post(
        f"/complaints/{complaint.json()['id']}/response",
        json={"status": "resolved", "response": "Fee refunded."}, headers={**headers, **k}))
    assert assert_one_answer(answers, 200)["status"] == "resolved"
