"""Typed client of a service's event feed (`GET /events`, shared/event_feed.py), for the gateway's webhook relay."""

from __future__ import annotations

import httpx

from shared.clients.base import PeerUnavailable, ServiceClient
from shared.outbox import EventPage
from shared.settings import KernelSettings

# The services that record events in an outbox.
EVENT_SOURCES = ("scoring", "monitoring")


class EventFeedClient(ServiceClient):
    def __init__(self, service: str, kernel: KernelSettings, transport: httpx.AsyncBaseTransport | None = None) -> None:
        super().__init__(service, kernel.urls(service), timeout=kernel.peer_timeout_seconds, transport=transport)

    async def events(self, *, after: int, limit: int, token: str) -> EventPage:
        response = await self.request("GET", "/events", token=token, params={"after": after, "limit": limit})
        if response.status_code != 200:
            raise PeerUnavailable(self.service, f"its event feed answered {response.status_code}")
        return EventPage.model_validate(response.json())
