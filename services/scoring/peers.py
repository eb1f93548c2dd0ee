"""Typed clients for the peers scoring calls: customer (consent, portrait) and monitoring (loan registration)."""

from __future__ import annotations

from typing import Any

import httpx

from shared.clients.base import PeerUnavailable, ServiceClient
from shared.errors import Problem, field_problem
from shared.settings import KernelSettings

CREDIT_BUREAU_PURPOSE = "credit_bureau_query"


def _unexpected(service: str, response: httpx.Response) -> PeerUnavailable:
    return PeerUnavailable(service, f"answered {response.status_code}")


def _not_found(customer_id: str) -> Problem:
    return field_problem("body.customer_id", f"no customer {customer_id!r} in the customer service")


class CustomerPeer(ServiceClient):
    def __init__(self, kernel: KernelSettings, transport: httpx.AsyncBaseTransport | None = None) -> None:
        super().__init__("customer", kernel.url("customer"), timeout=kernel.peer_timeout_seconds, transport=transport)

    async def require_consent(self, customer_id: str, token: str, purpose: str = CREDIT_BUREAU_PURPOSE) -> None:
        response = await self.request("GET", f"/customers/{customer_id}/consents/check", token=token,
                                      params={"purpose": purpose})
        if response.status_code == 404:
            raise _not_found(customer_id)
        if response.status_code in (401, 403):
            raise Problem(403, "Forbidden", f"The customer service refused access to customer {customer_id!r}.")
        if response.status_code != 200:
            raise _unexpected(self.service, response)
        if not response.json().get("allowed"):
            raise Problem(403, "consent required",
                          f"Customer {customer_id!r} has not consented to {purpose}; scoring needs it.",
                          extra={"purpose": purpose})

    async def portrait(self, customer_id: str, token: str) -> dict[str, Any]:
        response = await self.request("GET", f"/customers/{customer_id}/portrait", token=token)
        if response.status_code == 404:
            raise _not_found(customer_id)
        if response.status_code != 200:
            raise _unexpected(self.service, response)
        return response.json()


class MonitoringPeer(ServiceClient):
    def __init__(self, kernel: KernelSettings, transport: httpx.AsyncBaseTransport | None = None) -> None:
        super().__init__("monitoring", kernel.url("monitoring"), timeout=kernel.peer_timeout_seconds,
                         transport=transport)

    async def register_loan(self, body: dict[str, Any], *, key: str, token: str) -> dict[str, Any]:
        """POST /loans with the application id as Idempotency-Key, so a retried disbursement registers once.

        Keys are per caller, so a retry by another officer may meet the loan already registered under this
        external id (409): then that loan is the answer."""
        response = await self.request("POST", "/loans", token=token, json=body, idempotency_key=key)
        if response.status_code == 409:
            found = await self.request("GET", "/loans", token=token, params={"external_id": body["external_id"]})
            if found.status_code == 200 and found.json():
                return found.json()[0]
        if response.status_code in (400, 403, 409, 422):
            problem = response.json()
            raise Problem(response.status_code, "Loan registration refused",
                          f"The monitoring service refused the loan: {problem.get('detail') or problem.get('title')}",
                          extra={"service": "monitoring"})
        if response.status_code not in (200, 201):
            raise _unexpected(self.service, response)
        return response.json()
