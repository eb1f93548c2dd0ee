"""Typed client of the scoring service, for peers (monitoring's re-scoring, customer's 360° view)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

import httpx
from pydantic import BaseModel, Field

from shared.clients.base import PeerUnavailable, ServiceClient
from shared.errors import Problem
from shared.settings import KernelSettings


class ScoreRow(BaseModel):
    """One row to score: the applicant's features, a customer id (portrait fetched by scoring), or both."""

    customer_id: str | None = None
    features: dict[str, Any] = Field(default_factory=dict)
    requested_amount: Decimal | None = None


class Reason(BaseModel):
    feature: str
    impact: float
    unit: str
    points: float | None = None
    code: str | None = None  # unit "input_contract": the warning that sent an approval to review


class Score(BaseModel):
    id: str
    customer_id: str | None
    application_id: str | None
    model_version: str
    pd: float
    score: float
    points: int
    grade: str
    decision: Literal["approve", "review", "decline"]
    suggested_limit: Decimal
    rate_adjustment_bps: int
    reasons: list[Reason]
    warnings: list[dict[str, str]]
    created_at: datetime


class ScoringClient(ServiceClient):
    def __init__(self, kernel: KernelSettings, transport: httpx.AsyncBaseTransport | None = None, *,
                 timeout: float | None = None, retries: int = 2) -> None:
        """`timeout` defaults to the kernel's peer timeout; a caller that degrades instead may ask for less."""
        super().__init__("scoring", kernel.urls("scoring"), timeout=timeout or kernel.peer_timeout_seconds,
                         retries=retries, transport=transport)

    async def score_batch(self, rows: list[ScoreRow], *, token: str, idempotency_key: str | None = None) -> list[Score]:
        """Scores in the order of `rows` (at most 10,000). A 4xx problem (bad row, no consent) is raised as is."""
        response = await self.request("POST", "/scores:batch", token=token, idempotency_key=idempotency_key,
                                      json={"rows": [r.model_dump(mode="json", exclude_none=True) for r in rows]})
        _raise_for_problem(self.service, response)
        return [Score.model_validate(s) for s in response.json()["scores"]]

    async def latest_score(self, customer_id: str, *, token: str) -> Score | None:
        response = await self.request("GET", "/scores", token=token, params={"customer_id": customer_id, "limit": 1})
        _raise_for_problem(self.service, response)
        items = response.json()["items"]
        return Score.model_validate(items[0]) if items else None


def _raise_for_problem(service: str, response: httpx.Response) -> None:
    if response.status_code < 400:
        return
    if response.status_code >= 500:
        raise PeerUnavailable(service, f"answered {response.status_code}")
    body = response.json()
    raise Problem(response.status_code, body.get("title", "Error"), body.get("detail"), extra={"service": service})
