from __future__ import annotations

import asyncio
from typing import Annotated, Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from services.customer.complaints.models import ComplaintRead
from services.customer.complaints.service import open_complaints
from services.customer.consents.models import ConsentStatus
from services.customer.consents.service import current, history
from services.customer.customers.models import CustomerRead
from services.customer.customers.service import get_visible, present
from services.customer.interactions.models import InteractionRead
from services.customer.interactions.service import list_interactions
from services.customer.overview.sections import Unavailable, or_unavailable
from services.customer.portrait.models import PortraitRead
from services.customer.portrait.service import refresh_portrait
from services.customer.portrait.views import NO_LOANS, PeerFacts, may_see_loans, peer_facts, require_visible, \
    shown_portrait
from services.customer.web import Reader, database, vault
from shared.auth.dependencies import bearer_token
from shared.auth.tokens import Principal
from shared.clients.monitoring import AlertSummary, LoanSummary
from shared.clients.scoring import Score
from shared.errors import problem_responses
from shared.pagination import PageRequest

router = APIRouter(tags=["overview"])
RECENT_CONTACTS = 10


class ScoreSection(BaseModel):
    status: Literal["available"] = "available"
    latest: Score | None = Field(description="Null when the customer has never been scored.")


class LoansSection(BaseModel):
    status: Literal["available"] = "available"
    items: list[LoanSummary]


class AlertsSection(BaseModel):
    status: Literal["available"] = "available"
    items: list[AlertSummary]


class Overview(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "customer": CustomerRead.model_json_schema()["examples"][0],
        "consents": [{"purpose": "marketing", "allowed": True, "granted_at": "2026-11-20T10:00:00Z"}],
        "recent_interactions": [], "open_complaints": [],
        "portrait": PortraitRead.model_json_schema()["examples"][0],
        "score": {"status": "available", "latest": {
            "id": "s1", "customer_id": "3f2b9c0e8d7a4e1f9a6b5c4d3e2f1a0b", "application_id": None,
            "model_version": "scorecard-3", "pd": 0.04, "score": 642.3, "points": 642, "grade": "A",
            "decision": "approve", "suggested_limit": "20000.00", "rate_adjustment_bps": 0, "reasons": [],
            "warnings": [], "created_at": "2026-11-20T10:00:00Z"}},
        "loans": {"status": "unavailable", "reason": "The monitoring service is unavailable: connection refused."},
        "alerts": {"status": "unavailable", "reason": "The monitoring service is unavailable: connection refused."}}]})

    customer: CustomerRead
    consents: list[ConsentStatus]
    recent_interactions: list[InteractionRead]
    open_complaints: list[ComplaintRead]
    portrait: PortraitRead
    score: Annotated[ScoreSection | Unavailable, Field(discriminator="status")]
    loans: Annotated[LoansSection | Unavailable, Field(discriminator="status")]
    alerts: Annotated[AlertsSection | Unavailable, Field(discriminator="status")]


def _local_part(request: Request, principal: Principal, customer_id: str, facts: PeerFacts) -> dict[str, object]:
    with database(request).session() as session:
        customer = get_visible(session, principal, customer_id)
        profile = present(session, vault(request), principal, [customer], "overview")[0]
        contacts = list_interactions(session, principal, customer_id=customer_id, channel=None, officer=None,
                                     since=None, until=None, paging=PageRequest(cursor=None, limit=RECENT_CONTACTS))
        portrait = shown_portrait(principal, refresh_portrait(session, customer, *facts))
        session.commit()
        return {"customer": profile, "consents": current(history(session, customer_id)),
                "recent_interactions": contacts.items, "portrait": portrait,
                "open_complaints": open_complaints(session, customer_id)}


@router.get("/customers/{customer_id}/overview", response_model=Overview, summary="The 360° view of a customer",
            description="Profile (masked per role), consents, recent contacts, open complaints, portrait and "
                        "segments from this service; latest score from scoring, loans and open alerts from "
                        "monitoring, each fetched with a short timeout. A peer that fails turns only its section "
                        "into `{\"status\": \"unavailable\", \"reason\": ...}`.",
            responses=problem_responses(404))
async def get_overview(request: Request, customer_id: str, principal: Reader) -> Overview:
    await run_in_threadpool(require_visible, request, principal, customer_id)
    if may_see_loans(principal):
        facts, alerts = await asyncio.gather(
            peer_facts(request, principal, customer_id),
            or_unavailable("monitoring", request.app.state.monitoring.open_alerts_for_customer(
                customer_id, bearer_token(request))))
    else:
        facts, alerts = await peer_facts(request, principal, customer_id), NO_LOANS
    local = await run_in_threadpool(_local_part, request, principal, customer_id, facts)
    score, loans, _ = facts
    return Overview(
        **local,
        score=score if isinstance(score, Unavailable) else ScoreSection(latest=score),
        loans=loans if isinstance(loans, Unavailable) else LoansSection(items=loans),
        alerts=alerts if isinstance(alerts, Unavailable) else AlertsSection(items=alerts),
    )
