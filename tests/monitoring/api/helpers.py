"""Helpers for the monitoring API tests: real borrowers, peers taken down for real, users, loans, business dates."""

from __future__ import annotations

import socket
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest

from services.monitoring.business_day import last_closed, set_business_date
from services.monitoring.peers import connect
from services.scoring.registry.flows import ensure_default_champion
from tests.customer.factory import key, person


class Borrowers:
    """Real customers, made through the real customer service, with the consent scoring by id needs."""

    def __init__(self, suite) -> None:  # noqa: ANN001
        self.suite = suite

    def new_customer(self, branch: str = "BJ001") -> str:
        direct = self.suite.direct["customer"]
        headers = admin(self.suite)
        response = direct.post("/customers", json=person(branch=branch), headers={**headers, **key()})
        assert response.status_code == 201, response.text
        customer_id = response.json()["id"]
        consent = direct.post(f"/customers/{customer_id}/consents", json={
            "purpose": "credit_bureau_query", "source": "branch_form"}, headers={**headers, **key()})
        assert consent.status_code == 201, consent.text
        return customer_id

    def contact_log(self, customer_id: str) -> list[dict[str, Any]]:
        response = self.suite.direct["customer"].get(f"/customers/{customer_id}/interactions",
                                                     headers=admin(self.suite))
        assert response.status_code == 200, response.text
        return response.json()["items"]


@pytest.fixture(scope="module")
def borrowers(suite) -> Borrowers:  # noqa: ANN001
    return Borrowers(suite)


@pytest.fixture(scope="module")
def champion(suite):  # noqa: ANN001, ANN201
    """The scoring service's default champion, trained once for this module's suite."""
    ensure_default_champion(suite.kernel)
    suite.services["scoring"].state.scoring.serving.invalidate()


def closed_port() -> int:
    """A port nothing listens on: a peer that is down for real."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def peer_down(suite, name: str) -> Iterator[None]:  # noqa: ANN001
    """Point monitoring's client of `name` (customer or scoring) at a closed port for the block."""
    app = suite.services["monitoring"]
    working = app.state.peers
    kernel = suite.kernel.model_copy(update={f"{name}_url": f"http://127.0.0.1:{closed_port()}"})
    # A plain socket transport: the connection is really refused.
    down = getattr(connect(kernel, {name: httpx.AsyncHTTPTransport()}), name)
    app.state.peers = replace(working, **{name: down})
    try:
        yield
    finally:
        app.state.peers = working


def set_today(suite, day: date) -> None:  # noqa: ANN001
    with suite.database("monitoring").session() as session:
        set_business_date(session, day)
        session.commit()


def officer(suite, branch: str = "BJ001") -> dict[str, str]:  # noqa: ANN001
    return suite.headers(f"officer.{branch.lower()}", ["loan_officer"], branch)


def role(suite, name: str) -> dict[str, str]:  # noqa: ANN001
    return suite.headers(f"{name.replace('_', '.')}.one", [name])


def loan_body(customer_id: str, **overrides: Any) -> dict[str, Any]:
    body = {"customer_id": customer_id, "product": "personal_loan", "principal": "12000.00", "annual_rate": "0.12",
            "term_months": 12, "repayment_method": "equal_instalment", "disbursement_date": "2026-01-15",
            "purpose": "working capital", "branch": "BJ001"}
    body.update(overrides)
    return body


def register(suite, borrowers: Borrowers, headers: dict[str, str] | None = None,  # noqa: ANN001
             **overrides: Any) -> dict[str, Any]:
    customer_id = overrides.pop("customer_id", None) or borrowers.new_customer(overrides.get("branch", "BJ001"))
    body = loan_body(customer_id, **overrides)
    response = suite.direct["monitoring"].post("/loans", json=body, headers={
        **(headers or officer(suite, body["branch"])), "Idempotency-Key": uuid.uuid4().hex})
    assert response.status_code == 201, response.text
    return response.json()


def money(value: str) -> Decimal:
    return Decimal(value)


def assert_problem(response: httpx.Response, status: int, field: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    if field is not None:
        assert field in [e["field"] for e in body.get("errors", [])], body
    return body


def admin(suite) -> dict[str, str]:  # noqa: ANN001
    return suite.headers("admin")


def start_cob(suite, day: date):  # noqa: ANN001, ANN201
    return suite.direct["monitoring"].post("/cob/runs", json={"business_date": day.isoformat()}, headers=admin(suite))


def wait_for_cob(suite, location: str, timeout: float = 120.0):  # noqa: ANN001, ANN201
    """Poll the run until it completes; returns the GET response with its report."""
    deadline = time.monotonic() + timeout
    while True:
        got = suite.direct["monitoring"].get(location, headers=admin(suite))
        assert got.status_code == 200, got.text
        if got.json()["status"] == "completed":
            return got
        assert time.monotonic() < deadline, f"COB still running after {timeout}s: {got.json()}"
        time.sleep(0.02)


def cob(suite, day: date):  # noqa: ANN001, ANN201
    """Close `day` as a client does: start the run, then follow its Location until it completes.

    These tests leap through the calendar to the days they look at: when the last closed day is further back than
    the eve of `day`, the stored business date is first set to that eve, as `set_today` does (COB itself accepts
    only the next day, or a catch-up range; test_cob.py closes ranges for real)."""
    with suite.database("monitoring").session() as session:
        closed = last_closed(session)
    if closed is not None and closed < day - timedelta(days=1):
        set_today(suite, day - timedelta(days=1))
    started = start_cob(suite, day)
    if started.status_code != 202:
        return started  # a problem, or a date already closed (200 with its report)
    return wait_for_cob(suite, started.headers["location"])


def loan_now(suite, loan_id: str) -> dict[str, Any]:  # noqa: ANN001
    return suite.direct["monitoring"].get(f"/loans/{loan_id}", headers=admin(suite)).json()


def alerts_of(suite, loan_id: str) -> list[dict[str, Any]]:  # noqa: ANN001
    return suite.direct["monitoring"].get("/alerts", params={"loan_id": loan_id}, headers=admin(suite)).json()["items"]


def decide(suite, request_id: str, headers: dict[str, str] | None = None,  # noqa: ANN001
           approve: bool = True) -> httpx.Response:
    """A checker (a risk analyst unless `headers` says who) decides a change request."""
    return suite.direct["monitoring"].post(f"/change-requests/{request_id}/decision", json={"approve": approve},
                                           headers=headers or role(suite, "risk_analyst"))


@pytest.fixture(scope="module")
def rows_by_grade(suite, champion):  # noqa: ANN001, ANN201
    """One German applicant per grade the default champion gives, from the first 300 rows."""
    from tests.scoring.api.conftest import german_rows

    rows = german_rows()[:300]
    scores = suite.direct["scoring"].post("/scores:batch", json={"rows": [{"features": r} for r in rows]},
                                          headers=admin(suite)).json()["scores"]
    found: dict[str, dict[str, Any]] = {}
    for row, score in zip(rows, scores, strict=True):
        found.setdefault(score["grade"], row)
    assert {"A", "E"} <= set(found), set(found)
    return found


def scored_borrower(suite, borrowers: Borrowers, features: dict[str, Any]) -> str:  # noqa: ANN001
    """A borrower the scoring service has scored on `features`: a loan booked for them carries that grade."""
    customer = borrowers.new_customer()
    scored = suite.direct["scoring"].post("/scores", json={"customer_id": customer, "features": features},
                                          headers=admin(suite))
    assert scored.status_code == 201, scored.text
    return customer
