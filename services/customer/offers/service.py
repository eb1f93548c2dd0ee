"""Next best offers: the catalogue filtered by grade, segment and lifecycle, priced by grade, with reasons.
A customer on credit hold (the portrait's `credit_hold`) is offered no new credit: rehabilitation (the
credit-building savings plan) and retention (deposits) instead."""

from __future__ import annotations

from decimal import Decimal

from services.customer.offers.catalogue import BY_CODE, CATALOGUE, TERMS, UNSCORED_GRADE, Product, ProductKind
from services.customer.offers.models import Offer, OfferList, ProductRead
from services.customer.portrait.models import PortraitRead
from shared.pagination import Page, PageRequest, page_of

_CENT = Decimal("0.01")
_CREDIT = (ProductKind.LOAN, ProductKind.CARD)


def _listed(values: frozenset[str] | None) -> list[str] | None:
    return None if values is None else sorted(values)


def product_read(product: Product) -> ProductRead:
    return ProductRead(code=product.code, kind=product.kind, name=product.name, grades=_listed(product.grades),
                       segments=_listed(product.segments), lifecycles=_listed(product.lifecycles),
                       base_rate=product.base_rate, base_limit=product.base_limit,
                       credit_building=product.credit_building)


def products(paging: PageRequest) -> Page[ProductRead]:
    """A page of the catalogue by product code (a short list in code, paged like every other list)."""
    return page_of(CATALOGUE, paging, lambda item: (item.code,), str,
                   read=lambda items: [product_read(item) for item in items])


def eligible(product: Product, grade: str, segments: set[str], lifecycle: str) -> bool:
    if lifecycle == "lost":
        return False
    if grade == "E" and not product.credit_building:
        return False
    return ((product.grades is None or grade in product.grades)
            and (product.segments is None or bool(product.segments & segments))
            and (product.lifecycles is None or lifecycle in product.lifecycles))


def _offer(product: Product, grade: str, segments: set[str], graded: bool) -> Offer:
    terms = TERMS[grade]
    credit = product.kind in _CREDIT
    rate = product.base_rate
    if rate is not None and credit:
        rate = max(rate + terms.rate_change, Decimal("0")).quantize(_CENT)
    limit = (product.base_limit * terms.limit_factor).quantize(_CENT) if product.base_limit is not None else None
    reasons = [terms.reason if graded else "not yet scored: standard terms until graded"] if credit else []
    if product.segments:
        reasons.append("offered to the " + " / ".join(sorted(product.segments & segments)) + " segment")
    if product.credit_building:
        reasons.append("builds a credit record")
    if "retention_risk" in segments and product.kind == ProductKind.DEPOSIT:
        reasons.append("retention: a reason to stay")
    if not reasons:
        reasons.append("open to every customer")
    return Offer(rank=0, code=product.code, kind=product.kind, name=product.name, rate=rate,
                 limit=limit if credit else None, fast_lane=credit and terms.fast_lane,
                 requires_guarantee=credit and terms.guarantee, reasons=reasons)


def _held_offer(product: Product, hold: str) -> Offer:
    purpose = ("rehabilitation: rebuilds a repayment habit" if product.credit_building
               else "retention: keeps the relationship while credit is on hold")
    return Offer(rank=0, code=product.code, kind=product.kind, name=product.name, rate=product.base_rate,
                 limit=None, fast_lane=False, requires_guarantee=False,
                 reasons=[f"no new credit: {hold}", purpose])


def next_best_offers(portrait: PortraitRead, limit: int) -> OfferList:
    grade = portrait.latest_grade if portrait.latest_grade in TERMS else UNSCORED_GRADE
    segments = {s.value for s in portrait.segments}
    lifecycle = portrait.lifecycle_stage.value
    if portrait.credit_hold is not None:
        # Grades do not gate these: the savings plan is for anyone in arrears, whatever their score.
        fitting = [p for p in CATALOGUE if p.kind not in _CREDIT and lifecycle != "lost"
                   and (p.segments is None or bool(p.segments & segments))]
        fitting.sort(key=lambda p: (not p.credit_building, -p.priority, p.code))
        offers = [_held_offer(p, portrait.credit_hold).model_copy(update={"rank": i})
                  for i, p in enumerate(fitting[:limit], start=1)]
    else:
        fitting = [p for p in CATALOGUE if eligible(p, grade, segments, lifecycle)]
        # Segment-specific products first, then the catalogue's own priority.
        fitting.sort(key=lambda p: (p.segments is None, -p.priority, p.code))
        offers = [_offer(p, grade, segments, portrait.latest_grade is not None).model_copy(update={"rank": i})
                  for i, p in enumerate(fitting[:limit], start=1)]
    return OfferList(customer_id=portrait.customer_id, grade=portrait.latest_grade, segments=sorted(segments),
                     lifecycle_stage=portrait.lifecycle_stage.value, offers=offers)


def product(code: str) -> Product | None:
    return BY_CODE.get(code)
