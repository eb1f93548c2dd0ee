"""Typed clients for the peers the 360° view and the portrait read; every failure becomes an explicit marker."""

from __future__ import annotations

from collections.abc import Awaitable
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal, TypeVar

import httpx
from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError

from shared.clients.base import ServiceClient
from shared.errors import Problem
from shared.settings import KernelSettings

T = TypeVar("T")
# The overview waits for peers at most this long, whatever the kernel's general peer timeout.
OVERVIEW_TIMEOUT_SECONDS = 1.5


class Unavailable(BaseModel):
    """A peer did not answer usefully; the rest of the view still does."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"status": "unavailable", "reason": "The scoring service is unavailable: connection refused."}]})

    status: Literal["unavailable"] = "unavailable"
    reason: str


class Score(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: str
    customer_id: str
    model_version: str
    pd: float
    points: float
    grade: str
    decision: str
    reasons: list[Any] = []
    created_at: datetime


class Loan(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: str
    customer_id: str
    product: str
    principal: Decimal
    outstanding_principal: Decimal | None = None
    dpd: int
    bucket: str
    classification: str
    status: str
    disbursement_date: date | None = None


class Alert(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: str
    loan_id: str | None = None
    customer_id: str
    rule: str
    severity: str
    status: str
    due_at: date | None = None
    created_at: datetime | None = None


class PeerAnswer(Exception):
    """A peer answered, but not with what we asked for."""


async def _json(client: ServiceClient, path: str, token: str, params: dict[str, Any], shape: type[T]) -> T:
    response = await client.request("GET", path, token=token, params=params)
    if response.status_code != 200:
        raise PeerAnswer(f"the {client.service} service answered {response.status_code} to GET {path}")
    try:
        return TypeAdapter(shape).validate_python(response.json())
    except (ValueError, ValidationError) as exc:
        raise PeerAnswer(f"the {client.service} service answered GET {path} in an unexpected shape") from exc


class Peers:
    def __init__(self, kernel: KernelSettings, transports: dict[str, httpx.AsyncBaseTransport]) -> None:
        timeout = min(kernel.peer_timeout_seconds, OVERVIEW_TIMEOUT_SECONDS)
        self.scoring = ServiceClient("scoring", kernel.url("scoring"), timeout=timeout, retries=0,
                                     transport=transports.get("scoring"))
        self.monitoring = ServiceClient("monitoring", kernel.url("monitoring"), timeout=timeout, retries=0,
                                        transport=transports.get("monitoring"))

    async def aclose(self) -> None:
        await self.scoring.aclose()
        await self.monitoring.aclose()

    async def latest_score(self, token: str, customer_id: str) -> Score | None:
        scores = await _json(self.scoring, "/scores", token, {"customer_id": customer_id, "limit": 1}, list[Score])
        return scores[0] if scores else None

    async def loans(self, token: str, customer_id: str) -> list[Loan]:
        return await _json(self.monitoring, "/loans", token, {"customer_id": customer_id}, list[Loan])

    async def open_alerts(self, token: str, customer_id: str) -> list[Alert]:
        return await _json(self.monitoring, "/alerts", token, {"customer_id": customer_id, "status": "open"},
                           list[Alert])


async def or_unavailable(call: Awaitable[T]) -> T | Unavailable:
    """Down, timed out, 404, 5xx or nonsense all read as `unavailable` with the reason."""
    try:
        return await call
    except Problem as exc:  # PeerUnavailable / PeerTimeout from the base client
        return Unavailable(reason=exc.detail or exc.title)
    except (PeerAnswer, httpx.HTTPError) as exc:
        return Unavailable(reason=str(exc) or type(exc).__name__)
