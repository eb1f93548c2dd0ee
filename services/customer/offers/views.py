from __future__ import annotations

from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool

from services.customer.offers import service
from services.customer.offers.models import OfferList, ProductRead
from services.customer.portrait.views import computed_portrait, peer_facts, require_visible
from services.customer.web import Reader
from shared.errors import problem_responses
from shared.pagination import Page, paged

router = APIRouter(tags=["offers"])


@router.get("/products", response_model=Page[ProductRead],
            summary="The product catalogue and who each is open to, by code", responses=problem_responses(401, 422))
def list_products(_: Reader, paging: paged() = None) -> Page[ProductRead]:
    return service.products(paging)


@router.get("/customers/{customer_id}/offers", response_model=OfferList,
            summary="Next best offers for a customer, each with its reasons",
            description="From the current portrait: eligibility by grade, segment and lifecycle; a high grade "
                        "earns a better rate, a higher limit and the fast lane, a low grade guarantees, lower limits "
                        "and credit-building products. A customer on credit hold (open delinquency, more than 30 "
                        "days past due in 12 months, a class below normal, or monitoring unknown: see the "
                        "portrait's `credit_hold`) gets no new credit, only rehabilitation and retention offers. "
                        "Rules: services/customer/offers/catalogue.py.",
            responses=problem_responses(404))
async def next_best_offers(request: Request, customer_id: str, principal: Reader,
                           limit: int = Query(3, ge=1, le=20)) -> OfferList:
    await run_in_threadpool(require_visible, request, principal, customer_id)
    facts = await peer_facts(request, principal, customer_id)
    portrait = await run_in_threadpool(computed_portrait, request, principal, customer_id, facts)
    return service.next_best_offers(portrait, limit)
