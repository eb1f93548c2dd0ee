"""The close-of-business step that queues the day's repayment reminders and sends them (a COB step; also callable
on its own by a scheduler): `remind(ctx)`."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlmodel import Session

from services.monitoring.cob.flows import CobContext
from services.monitoring.loans.models import Instalment
from services.monitoring.reminders import service
from services.monitoring.reminders.models import Reminder
from shared.clients.customer import ContactPlan, CustomerNotFound, DeliveryStatus
from shared.errors import Problem

NO_TOKEN = "no identity to call the customer service with (the batch client is not provisioned)"


def _queue(ctx: CobContext) -> tuple[int, list[str]]:
    with ctx.database.session() as session:
        queued = service.queue_reminders(session, ctx.day)
        session.commit()
        return queued, [r.id for r in service.queued(session, ctx.day)]


def _amount_due(session: Session, reminder: Reminder) -> Decimal:
    row = session.get(Instalment, (reminder.loan_id, reminder.instalment_number))
    return (row.principal - row.principal_paid) + (row.interest - row.interest_paid)


def _load(ctx: CobContext, reminder_id: str) -> tuple[Reminder, Decimal]:
    with ctx.database.session() as session:
        reminder = session.get(Reminder, reminder_id)
        session.expunge(reminder)
        return reminder, _amount_due(session, reminder)


def _settle(ctx: CobContext, reminder_id: str, *, reason: str | None = None, channel: str | None = None,
            interaction_id: str | None = None) -> None:
    with ctx.database.session() as session:
        reminder = session.get(Reminder, reminder_id)
        if reason is not None:
            service.mark_skipped(reminder, reason)
        else:
            service.mark_sent(reminder, channel, interaction_id)
        session.add(reminder)
        session.commit()


async def remind(ctx: CobContext) -> dict[str, Any]:
    """Queue the day's reminders, then send each queued one the customer's consents and weekly cap allow; a
    reminder not allowed is skipped with its reason. The customer service down leaves the rest queued for the
    next run (the contact is logged under the reminder's id, so a resend after a lost answer logs it once)."""
    queued, pending = await asyncio.to_thread(_queue, ctx)
    if ctx.peers is None or ctx.credentials is None:
        return {"status": "skipped", "reason": NO_TOKEN, "queued": queued}
    cap = ctx.settings.reminder_weekly_contact_cap
    plans: dict[str, ContactPlan | None] = {}
    sent_now: dict[str, int] = {}  # sent in this run, on top of what the plan counted
    sent = skipped = 0
    for reminder_id in pending:
        reminder, amount = await asyncio.to_thread(_load, ctx, reminder_id)
        try:
            if reminder.customer_id not in plans:
                try:
                    plans[reminder.customer_id] = await ctx.peers.customer.contact_plan(
                        reminder.customer_id, token=await ctx.credentials.token())
                except CustomerNotFound:
                    plans[reminder.customer_id] = None
            plan = plans[reminder.customer_id]
            reason = "the customer service has no such customer" if plan is None else service.why_not(
                reminder, plan, plan.contacts_last_7_days + sent_now.get(reminder.customer_id, 0), cap, ctx.day)
            if reason is not None:
                await asyncio.to_thread(_settle, ctx, reminder_id, reason=reason)
                skipped += 1
                continue
            channel = plan.reminder_channels[0]
            logged = await ctx.peers.customer.log_interaction(
                reminder.customer_id, token=await ctx.credentials.token(),
                idempotency_key=f"monitoring-reminder-{reminder.id}",
                channel=channel.value, direction="outbound", purpose="service", outcome="repayment_reminder",
                occurred_at=datetime.now(UTC), delivery_status=DeliveryStatus.SENT,
                notes=f"Reminder: instalment {reminder.instalment_number} of {amount} falls due on "
                      f"{reminder.due_date.isoformat()}.")
        except Problem as exc:
            return {"status": "skipped", "reason": f"customer service: {exc.detail or exc.title}", "queued": queued,
                    "sent": sent, "skipped": skipped}
        await asyncio.to_thread(_settle, ctx, reminder_id, channel=channel.value, interaction_id=logged.id)
        sent_now[reminder.customer_id] = sent_now.get(reminder.customer_id, 0) + 1
        sent += 1
    return {"status": "done", "queued": queued, "sent": sent, "skipped": skipped}
