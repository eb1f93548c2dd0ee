"""Steps that reach other services: the cost of a loan (monitoring's schedule) and the education task (customer)."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from services.scoring.applications.models import Application
from shared.clients.customer import CustomerClient
from shared.clients.monitoring import MonitoringClient, ScheduleQuote
from shared.errors import Problem

log = logging.getLogger("loancrm.scoring.disclosure")
EDUCATION_REASON = "credit education or counselling: high-risk applicant"
EDUCATION_DAYS = 14  # the officer reaches the customer before the first repayment falls due


async def quote(monitoring: MonitoringClient, application: Application, annual_rate: Decimal, on: date, *,
                token: str) -> ScheduleQuote:
    """What the approved loan costs by the product's own conventions (the schedule it will be booked with)."""
    return await monitoring.quote_schedule({
        "principal": str(application.approved_amount), "annual_rate": str(annual_rate),
        "term_months": application.term_months, "repayment_method": application.repayment_method,
        "disbursement_date": on.isoformat(), "product": application.product}, token=token)


async def offer_education(customer: CustomerClient, application: dict, *, token: str) -> str | None:
    """Open the customer's credit education task (once: the customer service answers the open one again). The
    application stands if the customer service cannot take it now; submitting again (same key) asks again."""
    try:
        task = await customer.open_task(
            application["customer_id"], token=token, idempotency_key=f"education-{application['id']}",
            reason=EDUCATION_REASON, officer=application["submitted_by"],
            due_at=datetime.now(UTC) + timedelta(days=EDUCATION_DAYS))
    except Problem as exc:
        log.warning("education task not opened for application %s: %s", application["id"], exc.detail)
        return None
    return task.id
