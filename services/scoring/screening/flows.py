"""Fetching what screening needs from the peers, in parallel. A peer that cannot answer (down, slow, or refusing
the caller) leaves its facts out and says why: the checks then report `not_done` rather than pass. Before a
payout there is no waiting in review for a peer: its problem (503 when down) is the answer, nothing is paid."""

from __future__ import annotations

import asyncio

from fastapi.concurrency import run_in_threadpool

from services.scoring.api import ScoringState
from services.scoring.applications import service as applications
from services.scoring.applications.models import Application
from services.scoring.screening import service
from services.scoring.screening.service import Facts
from shared.auth.scope import EVERYTHING
from services.scoring.settings import ScoringSettings
from shared.clients.customer import CustomerClient
from shared.clients.monitoring import MonitoringClient
from shared.errors import Problem


async def gather_facts(customer: CustomerClient, monitoring: MonitoringClient, settings: ScoringSettings,
                       customer_id: str, *, token: str, before_payout: bool = False) -> Facts:
    identifiers, feed = await asyncio.gather(
        customer.shared_identifiers(customer_id, token=token),
        monitoring.screening_facts(customer_id, days=settings.screening_feed_days, token=token),
        return_exceptions=True)
    facts = Facts(identifiers=None, feed=None)
    # Monitoring first: before a payout, it is also the peer that books the loan.
    for name, answer in (("monitoring", feed), ("customer", identifiers)):
        if isinstance(answer, Problem) and before_payout:
            raise answer
        if isinstance(answer, Problem):
            facts.missing[name] = answer.detail or answer.title
        elif isinstance(answer, BaseException):
            raise answer
    if not isinstance(identifiers, BaseException):
        facts.identifiers = identifiers
    if not isinstance(feed, BaseException):
        facts.feed = feed
    return facts


async def screen_before_payout(state: ScoringState, application: Application, actor: str, *, token: str) -> None:
    """Screens an approved application again just before its payout: new hits are stored (committed, so they stay
    on the application) and the payout is refused with 409 naming them."""
    facts = await gather_facts(state.customer, state.monitoring, state.context.settings, application.customer_id,
                               token=token, before_payout=True)

    def screen() -> None:
        with state.database.session() as session:
            current = applications.get_application(session, application.id, EVERYTHING)  # the caller checked scope
            held = service.screen_disbursement(session, current, facts, state.context.settings, actor)
            session.commit()
            if held:
                applications.require_screened(session, current)

    await run_in_threadpool(screen)
