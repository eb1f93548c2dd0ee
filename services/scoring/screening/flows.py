"""Fetching what screening needs from the peers, in parallel. A peer that cannot answer (down, slow, or refusing
the caller) leaves its facts out and says why: the checks then report `not_done` rather than pass. Before a
payout there is no waiting in review for a peer: its problem (503 when down) is the answer, nothing is paid."""

from __future__ import annotations

import asyncio

from services.scoring.screening.service import Facts
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
