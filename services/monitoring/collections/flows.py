"""Sending queued contact-log entries to the customer service: after the action's commit, and again by COB."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from services.monitoring.collections import service
from services.monitoring.peers import Peers
from shared.db import Database
from shared.errors import Problem


def _pending(database: Database, action_id: str | None) -> list[tuple[str, str, dict[str, Any]]]:
    with database.session() as session:
        return [(m.id, m.customer_id, m.payload) for m in service.pending_messages(session, action_id)]


def _mark(database: Database, message_id: str, error: str | None) -> None:
    with database.session() as session:
        service.mark_attempt(session, message_id, error)
        session.commit()


async def deliver_outbox(database: Database, peers: Peers, token: str,
                         action_id: str | None = None) -> dict[str, Any]:
    """Try each undelivered entry once; the idempotency key makes a resend after a lost answer harmless. The
    customer service records the contact as made by the token's user: the collector right after the action,
    the batch user when COB resends (the action itself keeps its collector)."""
    delivered = failed = 0
    last_error = None
    for message_id, customer_id, payload in await asyncio.to_thread(_pending, database, action_id):
        error = None
        try:
            await peers.customer.log_interaction(
                customer_id, token=token, idempotency_key=f"monitoring-outbox-{message_id}",
                # `officer`: in entries queued before the contact log took it from the token.
                **{**{k: v for k, v in payload.items() if k != "officer"},
                   "occurred_at": datetime.fromisoformat(payload["occurred_at"])})
            delivered += 1
        except Problem as exc:
            error = last_error = exc.detail or exc.title
            failed += 1
        await asyncio.to_thread(_mark, database, message_id, error)
    return {"delivered": delivered, "still_queued": failed, "last_error": last_error}
