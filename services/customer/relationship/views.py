from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response
from sqlmodel import Session

from services.customer import scoping
from services.customer.customers.models import Customer
from services.customer.customers.service import get_changeable, get_visible
from services.customer.relationship import portfolio, service
from services.customer.relationship.models import ChurnModelReport, DisclosureAcknowledged, DocumentProvided, \
    FigureRow, HoldingRead, LookAlike, LoyaltyPoint, LoyaltySegment, LoyaltyTrend, ProductClosed, ProductOpened, \
    RelationshipFeatures, SharingEventRead
from services.customer.web import Manager, Reader, Writer, act_once, create_once, database
from shared.idempotency import IdempotencyKey, OptionalIdempotencyKey
from shared.auth.dependencies import needs, require_roles
from shared.auth.roles import Role
from shared.auth.tokens import Principal
from shared.bounds import BusinessDate
from shared.errors import problem_responses
from shared.pagination import Page, paged

router = APIRouter(tags=["relationship"])

# Who studies the book: point-in-time extracts, portfolio figures.
Analyst = Annotated[Principal, Depends(require_roles(Role.ADMIN, Role.RISK_ANALYST, Role.AUDITOR))]
# Who works with loyalty and cross-selling: the analysts, and relationship managers for their branch.
Relationship = Annotated[Principal, Depends(require_roles(Role.ADMIN, Role.LOAN_OFFICER, Role.RISK_ANALYST,
                                                          Role.AUDITOR))]
Modeller = Annotated[Principal, Depends(require_roles(Role.ADMIN, Role.RISK_ANALYST))]
AsOf = Annotated[BusinessDate, Query(description="Measures as of the end of this day (UTC): nothing dated later "
                                                 "is used.")]
SomeDay = Annotated[BusinessDate | None, Query(alias="as_of", description="Default today.")]
Window = Annotated[int, Query(ge=1, le=60, description="Months before `as_of` the counts cover.")]
From = Annotated[BusinessDate | None, Query(alias="from", description="First month; default 11 months before `to`.")]
To = Annotated[BusinessDate | None, Query(description="Last month; default today.")]


def _span(start: date | None, end: date | None) -> tuple[date, date]:
    end = end or date.today()
    return start or service.add_months(end, -11), end


def _scope(principal: Principal):  # noqa: ANN202
    return scoping.scope_filter(principal, Customer.branch, Customer.referred_by)


@router.get("/relationship/features", response_model=Page[RelationshipFeatures],
            summary="Point-in-time relationship measures of every customer, paged by customer id",
            description="Each measure is computed from the events (contacts, surveys, complaints, consents, "
                        "information shared, products) dated on or before `as_of`, never from the latest portrait. "
                        "Collection contacts are reported (`contacts_collection`) and never counted as "
                        "relationship. Customers without a relationship by `as_of` are left out. Definitions: "
                        "README \"Relationship measures\".", responses=problem_responses(422))
def relationship_features(request: Request, principal: Analyst, as_of: AsOf, window_months: Window = 12,
                          paging: paged(200, 1000) = None) -> Page[RelationshipFeatures]:
    after = paging.after(str)
    with database(request).session() as session:
        people = service.people_page(session, _scope(principal), as_of, after[0] if after else None, paging.limit)
        return paging.page(people, key=lambda person: [person.id],
                           read=lambda shown: service.features_of(session, shown, as_of, window_months))


@router.get("/customers/{customer_id}/relationship", response_model=RelationshipFeatures,
            summary="One customer's relationship measures as of a date", responses=problem_responses(404, 422))
def customer_relationship(request: Request, customer_id: str, principal: Analyst, as_of: AsOf,
                          window_months: Window = 12) -> RelationshipFeatures:
    with database(request).session() as session:
        get_visible(session, principal, customer_id)
        return service.features_of(session, [service.person(session, customer_id)], as_of, window_months)[0]


@router.get("/customers/{customer_id}/loyalty", response_model=LoyaltyTrend,
            summary="The customer's loyalty index at each month end", responses=problem_responses(404, 422))
def customer_loyalty(request: Request, customer_id: str, principal: Relationship, start: From = None,
                     end: To = None, step: Annotated[str, Query(pattern="^month$")] = "month",
                     window_months: Window = 12) -> LoyaltyTrend:
    start, end = _span(start, end)
    with database(request).session() as session:
        get_visible(session, principal, customer_id)
        trend = portfolio.loyalty_trend(session, service.person(session, customer_id), start, end, window_months)
    points = [LoyaltyPoint(as_of=f.as_of, loyalty_index=f.loyalty_index, loyalty_band=f.loyalty_band) for f in trend]
    slope = service.slope([(n, p.loyalty_index) for n, p in enumerate(points)])
    return LoyaltyTrend(customer_id=customer_id, points=points,
                        slope_per_month=None if slope is None else round(slope, 3))


@router.get("/relationship/loyalty-segments", response_model=list[LoyaltySegment],
            summary="Customers by loyalty band and credit risk", responses=problem_responses(422))
def loyalty_segments(request: Request, principal: Relationship, as_of: SomeDay = None) -> list[LoyaltySegment]:
    with database(request).session() as session:
        return portfolio.loyalty_segments(session, _scope(principal), as_of or date.today())


@router.get("/products/{product_code}/look-alikes", response_model=list[LookAlike],
            summary="Cross-sell prospects: customers without the product nearest to those who hold it",
            description="Nearest neighbours on standardised relationship measures (tenure, relationship contacts, "
                        "CSAT, information sharing, products held, income, loyalty).",
            responses=problem_responses(422))
def look_alikes(request: Request, product_code: str, principal: Relationship, as_of: SomeDay = None,
                limit: int = Query(20, ge=1, le=500)) -> list[LookAlike]:
    with database(request).session() as session:
        return portfolio.look_alikes(session, _scope(principal), product_code, as_of or date.today(), limit)


@router.get("/relationship/figures", response_model=list[FigureRow],
            summary="Churn and repeat-borrowing rates per month, overall, by segment and by loyalty band",
            description="Churn: no product held and no relationship contact for LOANCRM_CUSTOMER_CHURN_MONTHS "
                        "(default 6) months, or the record closed. At most 36 months.",
            responses=problem_responses(422))
def relationship_figures(request: Request, principal: Analyst, start: From = None, end: To = None
                         ) -> list[FigureRow]:
    start, end = _span(start, end)
    with database(request).session() as session:
        return portfolio.figures(session, _scope(principal), start, end, request.app.state.settings.churn_months)


@router.get("/relationship/figures.png", response_class=Response, summary="Churn rate by loyalty band, as a chart",
            responses={200: {"content": {"image/png": {}}}, **problem_responses(422)})
def relationship_chart(request: Request, principal: Analyst, start: From = None, end: To = None) -> Response:
    rows = relationship_figures(request, principal, start, end)
    return Response(portfolio.chart(rows), media_type="image/png")


@router.post("/relationship/churn-model", response_model=ChurnModelReport,
             summary="Train the churn-risk model on history and flag customers for retention",
             description="Logistic regression on the measures of four past quarter ends, outcome churn within the "
                         "next LOANCRM_CUSTOMER_CHURN_MONTHS months; the AUC is on a held-out quarter. Stores each "
                         "current customer's probability: the portrait's `retention_risk` (and so retention "
                         "campaigns) takes those at 0.5 or more.",
             responses=problem_responses(422), openapi_extra=needs("customer:read"))
def churn_model(request: Request, principal: Modeller, as_of: SomeDay = None) -> ChurnModelReport:
    with database(request).session() as session:
        report = portfolio.train_churn_model(session, as_of or date.today(), request.app.state.settings.churn_months)
        session.commit()
    return report


# --- information shared and products held --------------------------------------------------------------------

@router.post("/customers/{customer_id}/documents", status_code=201, response_model=SharingEventRead,
             summary="Record a document the customer provided", description="Needs an Idempotency-Key.",
             responses=problem_responses(403, 404, 409, 422, 428))
def document_provided(request: Request, customer_id: str, command: DocumentProvided, principal: Writer,
                      idempotency_key: IdempotencyKey) -> JSONResponse:
    def run(session: Session) -> SharingEventRead:
        return service.record_document(session, get_changeable(session, principal, customer_id), command,
                                       principal.sub)

    return create_once(request, principal, idempotency_key,
                       ("document_provided", customer_id, command.model_dump(mode="json")), run)


@router.post("/customers/{customer_id}/disclosures", status_code=201, response_model=SharingEventRead,
             summary="Record that the customer acknowledged a disclosure (rate, fees, risk assessment, ...)",
             description="Needs an Idempotency-Key.", responses=problem_responses(403, 404, 409, 422, 428))
def disclosure_acknowledged(request: Request, customer_id: str, command: DisclosureAcknowledged, principal: Writer,
                            idempotency_key: IdempotencyKey) -> JSONResponse:
    def run(session: Session) -> SharingEventRead:
        return service.acknowledge_disclosure(session, get_changeable(session, principal, customer_id), command,
                                              principal.sub)

    return create_once(request, principal, idempotency_key,
                       ("disclosure_acknowledged", customer_id, command.model_dump(mode="json")), run)


@router.get("/customers/{customer_id}/information-sharing", response_model=Page[SharingEventRead],
            summary="Profile updates, documents and disclosures, newest first", responses=problem_responses(404))
def information_shared(request: Request, customer_id: str, principal: Reader,
                       paging: paged(50, 500) = None) -> Page[SharingEventRead]:
    with database(request).session() as session:
        get_visible(session, principal, customer_id)
        return service.sharing_events(session, customer_id, paging)


@router.post("/customers/{customer_id}/products", status_code=201, response_model=HoldingRead,
             summary="Record a product the customer holds", description="Needs an Idempotency-Key.",
             responses=problem_responses(403, 404, 409, 422, 428))
def product_opened(request: Request, customer_id: str, command: ProductOpened, principal: Manager,
                   idempotency_key: IdempotencyKey) -> JSONResponse:
    def run(session: Session) -> HoldingRead:
        return service.open_product(session, get_changeable(session, principal, customer_id), command,
                                    principal.sub)

    return create_once(request, principal, idempotency_key,
                       ("product_opened", customer_id, command.model_dump(mode="json")), run)


@router.post("/customers/{customer_id}/products/{holding_id}/closure", response_model=HoldingRead,
             summary="Record that the customer closed a product", responses=problem_responses(403, 404, 409, 422))
def product_closed(request: Request, customer_id: str, holding_id: str, command: ProductClosed,
                   principal: Manager, idempotency_key: OptionalIdempotencyKey = None) -> JSONResponse:
    # Keyed, a retry after a lost answer gets the closure it made, not a 409 for a product already closed.
    return act_once(request, principal, idempotency_key,
                    ("close_product", customer_id, holding_id, command.model_dump(mode="json")),
                    lambda session: service.close_product(
                        session, get_changeable(session, principal, customer_id, active=False), holding_id, command))


@router.get("/customers/{customer_id}/products", response_model=list[HoldingRead],
            summary="Products the customer holds or held", responses=problem_responses(404))
def customer_products(request: Request, customer_id: str, principal: Reader) -> list[HoldingRead]:
    with database(request).session() as session:
        get_visible(session, principal, customer_id)
        return service.holdings(session, customer_id)
