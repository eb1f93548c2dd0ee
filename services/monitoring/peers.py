"""Typed clients for the peers monitoring calls: customer (existence, contact log) and scoring (re-scoring)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from shared.clients.base import PeerUnavailable, ServiceClient
from shared.settings import KernelSettings


def _unexpected(service: str, response: httpx.Response) -> PeerUnavailable:
    return PeerUnavailable(service, f"answered {response.status_code}")


class CustomerPeer(ServiceClient):
    def __init__(self, kernel: KernelSettings, transport: httpx.AsyncBaseTransport | None = None) -> None:
        super().__init__("customer", kernel.url("customer"), timeout=kernel.peer_timeout_seconds,
                         transport=transport)

    async def customer_exists(self, customer_id: str, token: str) -> bool:
        response = await self.request("GET", f"/customers/{customer_id}", token=token)
        if response.status_code == 404:
            return False
        if response.status_code != 200:
            raise _unexpected(self.service, response)
        return True

    async def record_interaction(self, customer_id: str, body: dict[str, Any], *, key: str, token: str) -> None:
        response = await self.request("POST", f"/customers/{customer_id}/interactions", token=token, json=body,
                                      idempotency_key=key)
        if response.status_code not in (200, 201):
            raise _unexpected(self.service, response)


class ScoringPeer(ServiceClient):
    def __init__(self, kernel: KernelSettings, transport: httpx.AsyncBaseTransport | None = None) -> None:
        super().__init__("scoring", kernel.url("scoring"), timeout=kernel.peer_timeout_seconds, transport=transport)

    async def score_batch(self, customer_ids: list[str], token: str) -> list[dict[str, Any]]:
        """New scores for these customers: rows with at least customer_id, points and grade."""
        response = await self.request("POST", "/scores:batch", token=token,
                                      json={"rows": [{"customer_id": c} for c in customer_ids]})
        if response.status_code not in (200, 201):
            raise _unexpected(self.service, response)
        body = response.json()
        return body.get("scores", body.get("rows", [])) if isinstance(body, dict) else body

    async def latest_score(self, customer_id: str, token: str) -> dict[str, Any] | None:
        response = await self.request("GET", "/scores", token=token, params={"customer_id": customer_id, "limit": 1})
        if response.status_code != 200:
            raise _unexpected(self.service, response)
        body = response.json()
        items = body.get("items", []) if isinstance(body, dict) else body
        return items[0] if items else None


@dataclass
class Peers:
    customer: CustomerPeer
    scoring: ScoringPeer

    async def aclose(self) -> None:
        await self.customer.aclose()
        await self.scoring.aclose()
