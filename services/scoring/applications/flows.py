"""Registering a disbursed application's loan with the monitoring service, exactly once."""

from __future__ import annotations

from typing import Any

from shared.clients.monitoring import LoanSummary, MonitoringClient
from shared.errors import Problem


async def register_loan_once(monitoring: MonitoringClient, body: dict[str, Any], *, key: str,
                             token: str) -> LoanSummary:
    """POST /loans with the application id as Idempotency-Key, so a retried disbursement registers once.

    Keys are per caller, so a retry by another officer may meet the loan already registered under this
    external id (409): then that loan is the answer."""
    try:
        return await monitoring.register_loan(body, token=token, idempotency_key=key)
    except Problem as exc:
        if exc.status == 409:
            found = await monitoring.loan_by_external_id(body["external_id"], token=token)
            if found is not None:
                return found
        if exc.status in (400, 403, 409, 422):
            raise Problem(exc.status, "Loan registration refused",
                          f"The monitoring service refused the loan: {exc.detail or exc.title}",
                          extra={"service": "monitoring"}) from exc
        raise
