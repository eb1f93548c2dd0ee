"""The peers monitoring calls, through the clients each of them publishes: customer (existence, contact log,
portrait) and scoring (baseline and re-scoring)."""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from shared.clients.customer import CustomerClient
from shared.clients.scoring import ScoringClient
from shared.settings import KernelSettings


@dataclass
class Peers:
    customer: CustomerClient
    scoring: ScoringClient

    async def aclose(self) -> None:
        await self.customer.aclose()
        await self.scoring.aclose()


def connect(kernel: KernelSettings, transports: dict[str, httpx.AsyncBaseTransport] | None = None) -> Peers:
    """`transports` replaces the network per peer (tests pass in-process ones)."""
    transports = transports or {}
    return Peers(
        customer=CustomerClient(kernel.urls("customer"), timeout=kernel.peer_timeout_seconds,
                                transport=transports.get("customer")),
        scoring=ScoringClient(kernel, transport=transports.get("scoring")),
    )
