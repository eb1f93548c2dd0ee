"""Helpers for the monitoring API tests: a stand-in customer/scoring peer, users per role, loans, business dates."""

from __future__ import annotations

import uuid
from datetime import date
from decimal import Decimal
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from services.monitoring.business_day import set_business_date
from services.monitoring.peers import CustomerPeer, Peers, ScoringPeer


class FakePeers:
    """The customer and scoring services as monitoring sees them, with switches to take them down.

    The real ones are built in parallel; this stand-in holds the contract monitoring relies on.
    """

    def __init__(self) -> None:
        self.customers: set[str] = set()
        self.interactions: list[dict[str, Any]] = []
        self.batches: list[list[str]] = []
        self.scores: dict[str, dict[str, Any]] = {}
        self.down: set[str] = set()
        self.app = FastAPI()

        @self.app.middleware("http")
        async def outage(request: Request, call_next):  # noqa: ANN001, ANN202
            service = request.headers.get("host", "").split(":")[0]
            if service in self.down:
                return JSONResponse({"title": "down"}, status_code=503)
            return await call_next(request)

        @self.app.get("/customers/{customer_id}")
        def customer(customer_id: str) -> JSONResponse:
            if customer_id not in self.customers:
                return JSONResponse({"title": "Not found"}, status_code=404)
            return JSONResponse({"id": customer_id})

        @self.app.post("/customers/{customer_id}/interactions")
        async def interaction(customer_id: str, request: Request) -> JSONResponse:
            self.interactions.append({"customer_id": customer_id, "key": request.headers.get("idempotency-key"),
                                      **(await request.json())})
            return JSONResponse({"id": uuid.uuid4().hex}, status_code=201)

        @self.app.get("/scores")
        def latest(customer_id: str) -> JSONResponse:
            return JSONResponse({"items": [self.scores[customer_id]] if customer_id in self.scores else []})

        @self.app.post("/scores:batch")
        async def batch(request: Request) -> JSONResponse:
            ids = [row["customer_id"] for row in (await request.json())["rows"]]
            self.batches.append(ids)
            return JSONResponse({"scores": [self.scores[c] for c in ids if c in self.scores]})

    def install(self, app: FastAPI, kernel) -> None:  # noqa: ANN001
        transport = httpx.ASGITransport(self.app)
        # The host names the service, so the stand-in knows which one a switch takes down.
        kernel = kernel.model_copy(update={"customer_url": "http://customer", "scoring_url": "http://scoring"})
        app.state.peers = Peers(customer=CustomerPeer(kernel, transport), scoring=ScoringPeer(kernel, transport))

    def new_customer(self) -> str:
        customer_id = uuid.uuid4().hex
        self.customers.add(customer_id)
        return customer_id


@pytest.fixture(scope="module")
def peers(suite) -> FakePeers:  # noqa: ANN001
    fake = FakePeers()
    fake.install(suite.services["monitoring"], suite.kernel)
    return fake


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
            "purpose": "working capital", "officer": "officer.bj001", "branch": "BJ001"}
    body.update(overrides)
    return body


def register(suite, peers: FakePeers, headers: dict[str, str] | None = None,  # noqa: ANN001
             **overrides: Any) -> dict[str, Any]:
    body = loan_body(overrides.pop("customer_id", None) or peers.new_customer(), **overrides)
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


def cob(suite, day: date):  # noqa: ANN001, ANN201
    return suite.direct["monitoring"].post("/cob/runs", json={"business_date": day.isoformat()}, headers=admin(suite))


def loan_now(suite, loan_id: str) -> dict[str, Any]:  # noqa: ANN001
    return suite.direct["monitoring"].get(f"/loans/{loan_id}", headers=admin(suite)).json()


def alerts_of(suite, loan_id: str) -> list[dict[str, Any]]:  # noqa: ANN001
    return suite.direct["monitoring"].get("/alerts", params={"loan_id": loan_id}, headers=admin(suite)).json()
