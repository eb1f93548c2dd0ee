from __future__ import annotations

import asyncio
from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict
from sqlalchemy import Select, func
from sqlmodel import select
from starlette.concurrency import run_in_threadpool

from services.customer import scoping
from services.customer.customers.models import Customer
from services.customer.customers.service import get_visible
from services.customer.overview.sections import Unavailable, or_unavailable
from services.customer.portrait import service
from services.customer.portrait.models import ClusterProfile, PortraitRead, Segment, SegmentMember
from services.customer.web import Manager, BatchReader, Reader, database
from shared.pagination import Page, keyset, paged
from shared.auth.dependencies import bearer_token
from shared.auth.tokens import Principal
from shared.clients.monitoring import CustomerRisk, LoanSummary
from shared.clients.scoring import Score
from shared.errors import problem_responses

router = APIRouter(tags=["portrait and segments"])

# Asked instead of monitoring for a caller monitoring would refuse.
NO_LOANS = Unavailable(reason="Loans are not shown to this caller: its token has no monitoring:read scope.")
PeerFacts = tuple[Score | None | Unavailable, list[LoanSummary] | Unavailable, CustomerRisk | Unavailable]


def may_see_loans(principal: Principal) -> bool:
    """Loans are monitoring's: a caller whose token monitoring would refuse (partners are never issued
    monitoring:read) sees no loan figure here either, not even one stored by an earlier caller."""
    return "monitoring:read" in principal.scopes


def shown_portrait(principal: Principal, portrait: PortraitRead) -> PortraitRead:
    return portrait if may_see_loans(principal) else portrait.model_copy(update={"products_held": None})


async def peer_facts(request: Request, principal: Principal, customer_id: str) -> PeerFacts:
    state, token = request.app.state, bearer_token(request)
    if not may_see_loans(principal):
        return await or_unavailable("scoring", state.scoring.latest_score(customer_id, token=token)), NO_LOANS, NO_LOANS
    return await asyncio.gather(or_unavailable("scoring", state.scoring.latest_score(customer_id, token=token)),
                                or_unavailable("monitoring", state.monitoring.loans_for_customer(customer_id, token)),
                                or_unavailable("monitoring", state.monitoring.customer_risk(customer_id, token=token)))

def computed_portrait(request: Request, principal: Principal, customer_id: str, facts: PeerFacts) -> PortraitRead:
    with database(request).session() as session:
        customer = get_visible(session, principal, customer_id)
        portrait = service.refresh_portrait(session, customer, *facts)
        session.commit()
    return portrait

@router.get("/customers/{customer_id}/portrait", response_model=PortraitRead,
            summary="The customer's portrait: features, tier, lifecycle, retention risk, segments, cluster",
            description="Computed now from the contact log, complaints and surveys plus the latest score "
                        "(scoring) and loans (monitoring); a peer that does not answer leaves the last known "
                        "figures and `score_status: unavailable`. `high_risk` and `credit_hold` use monitoring's "
                        "delinquency and class (GET /customers/{id}/risk there). "
                        "Rules: services/customer/portrait/rules.py.",
            responses=problem_responses(404))
async def get_portrait(request: Request, customer_id: str, principal: BatchReader) -> PortraitRead:
    # Check the scope before asking any peer, so an unknown id costs no outbound calls.
    await run_in_threadpool(require_visible, request, principal, customer_id)
    facts = await peer_facts(request, principal, customer_id)
    portrait = await run_in_threadpool(computed_portrait, request, principal, customer_id, facts)
    return shown_portrait(principal, portrait)

def require_visible(request: Request, principal: Principal, customer_id: str) -> None:
    with database(request).session() as session:
        get_visible(session, principal, customer_id)

class SegmentCount(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"segment": "high_value", "customers": 1250}]})
    segment: Segment
    customers: int

class ClusterRead(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "cluster": 2, "label": "long-standing, many products, high income", "size": 4210,
        "centre": {"tenure_months": 61.2, "products_held": 2.8}}]})
    cluster: int
    label: str
    size: int
    centre: dict[str, float]

def _segment_query(principal: Principal, segment: Segment | None = None) -> Select:
    query = select(SegmentMember).join(Customer, Customer.id == SegmentMember.customer_id)
    scope = scoping.scope_filter(principal, Customer.branch, Customer.referred_by)
    if scope is not None:
        query = query.where(scope)
    return query if segment is None else query.where(SegmentMember.segment == segment.value)

@router.get("/segments", response_model=list[SegmentCount], summary="How many customers each segment holds",
            description="Counts over the stored portraits, within the caller's branch for loan officers.",
            responses=problem_responses(403))
def segment_counts(request: Request, principal: Manager) -> list[SegmentCount]:
    counted = _segment_query(principal).with_only_columns(SegmentMember.segment, func.count()) \
        .group_by(SegmentMember.segment)
    with database(request).session() as session:
        counts = {segment: count for segment, count in session.execute(counted).all()}
    return [SegmentCount(segment=s, customers=counts.get(s.value, 0)) for s in Segment]

@router.get("/segments/{segment}/members", response_model=Page[str], summary="Customer ids in a segment, paged",
            responses=problem_responses(422))
def segment_members(request: Request, segment: Segment, principal: Manager,
                    paging: paged(500, 5000) = None) -> Page[str]:
    query = _segment_query(principal, segment).with_only_columns(SegmentMember.customer_id)
    with database(request).session() as session:
        return keyset(session, query, paging, SegmentMember.customer_id, key=lambda customer_id: (customer_id,))

@router.get("/clusters", response_model=list[ClusterRead], summary="The data-driven clusters and their profiles",
            description="Refreshed by `run_refresh_cli` (k-means on standardised portrait features).",
            responses=problem_responses(401))
def list_clusters(request: Request, _: Reader) -> list[ClusterRead]:
    with database(request).session() as session:
        rows = session.exec(select(ClusterProfile).order_by(ClusterProfile.cluster)).all()
    return [ClusterRead(cluster=r.cluster, label=r.label, size=r.size, centre=r.centre["raw"]) for r in rows]
