from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response

from gateway.db import idempotency
from gateway.webhooks import service
from gateway.webhooks.models import (DeliveryRead, DeliveryStatus, SubscriptionCreate, SubscriptionCreated,
                                     SubscriptionRead)
from shared.auth.dependencies import current_principal, needs
from shared.auth.tokens import Principal
from shared.errors import problem_responses
from shared.idempotency import check_key, fingerprint
from shared.pagination import Page, paged

router = APIRouter(prefix="/webhooks", tags=["webhooks"])
# Any signed-in caller manages its own subscriptions; what each receives is decided per event by the scope rule.
Caller = Annotated[Principal, Depends(current_principal)]


@router.post("/subscriptions", status_code=201, response_model=SubscriptionCreated,
             responses=problem_responses(409, 422), openapi_extra=needs("webhooks:write"),
             summary="Subscribe the caller to events; the answer shows the signing secret once")
async def create_subscription(
    request: Request,
    command: SubscriptionCreate,
    principal: Caller,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> JSONResponse:
    key = check_key(idempotency_key, required=False)
    box = request.app.state.webhooks.box
    shown: list[str] = []

    def run(session):  # noqa: ANN001, ANN202
        subscription, secret = service.create_subscription(session, command, principal, box)
        shown.append(secret)
        # Stored for a replay without the secret: it is kept encrypted only.
        return 201, SubscriptionCreated.model_validate({**SubscriptionRead.model_validate(subscription).model_dump(),
                                                        "secret": None}).model_dump(mode="json")

    outcome = await run_in_threadpool(
        idempotency.run_once, request.app.state.database, owner=principal.sub, key=key,
        request_fingerprint=fingerprint("create_subscription", command.model_dump(mode="json")), command=run)
    body = outcome.body if outcome.replayed else {**outcome.body, "secret": shown[0]}
    return JSONResponse(body, status_code=outcome.status_code)


@router.get("/subscriptions", response_model=Page[SubscriptionRead], openapi_extra=needs("webhooks:read"),
            responses=problem_responses(422), summary="The caller's subscriptions (every one, for an admin)")
def list_subscriptions(request: Request, principal: Caller, paging: paged(50, 200) = None) -> Page[SubscriptionRead]:
    with request.app.state.database.session() as session:
        return service.list_subscriptions(session, principal, paging,
                                          lambda rows: [SubscriptionRead.model_validate(r) for r in rows])


@router.get("/subscriptions/{subscription_id}", response_model=SubscriptionRead,
            openapi_extra=needs("webhooks:read"), responses=problem_responses(404), summary="One subscription")
def get_subscription(request: Request, subscription_id: str, principal: Caller) -> SubscriptionRead:
    with request.app.state.database.session() as session:
        return SubscriptionRead.model_validate(service.get_subscription(session, subscription_id, principal))


@router.delete("/subscriptions/{subscription_id}", status_code=204, response_class=Response,
               openapi_extra=needs("webhooks:write"), responses=problem_responses(404),
               summary="Unsubscribe: nothing more is sent, and what was pending fails")
def delete_subscription(request: Request, subscription_id: str, principal: Caller) -> Response:
    with request.app.state.database.session() as session:
        service.delete_subscription(session, subscription_id, principal)
        session.commit()
    return Response(status_code=204)


@router.get("/deliveries", response_model=Page[DeliveryRead], openapi_extra=needs("webhooks:read"),
            responses=problem_responses(422),
            summary="The delivery log of the caller's subscriptions, oldest first: status, attempts, last answer, "
                    "next attempt")
def list_deliveries(request: Request, principal: Caller, status: DeliveryStatus | None = None,
                    subscription_id: Annotated[str | None, Query(max_length=32)] = None,
                    paging: paged(50, 200) = None) -> Page[DeliveryRead]:
    with request.app.state.database.session() as session:
        return service.list_deliveries(session, principal, paging,
                                       lambda rows: [DeliveryRead.model_validate(r) for r in rows],
                                       status=status, subscription_id=subscription_id)


@router.get("/deliveries/{delivery_id}", response_model=DeliveryRead, openapi_extra=needs("webhooks:read"),
            responses=problem_responses(404), summary="One delivery")
def get_delivery(request: Request, delivery_id: str, principal: Caller) -> DeliveryRead:
    with request.app.state.database.session() as session:
        return DeliveryRead.model_validate(service.get_delivery(session, delivery_id, principal))


@router.post("/deliveries/{delivery_id}/redeliver", response_model=DeliveryRead,
             openapi_extra=needs("webhooks:write"), responses=problem_responses(404, 409, 422),
             summary="Send a delivery again (same event id and body) with a fresh round of attempts, at the next "
                     "pass")
async def redeliver(
    request: Request,
    delivery_id: str,
    principal: Caller,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> JSONResponse:
    key = check_key(idempotency_key, required=False)

    def run(session):  # noqa: ANN001, ANN202
        return 200, DeliveryRead.model_validate(service.redeliver(session, delivery_id, principal)).model_dump(
            mode="json")

    outcome = await run_in_threadpool(
        idempotency.run_once, request.app.state.database, owner=principal.sub, key=key,
        request_fingerprint=fingerprint("redeliver", delivery_id), command=run)
    return JSONResponse(outcome.body, status_code=outcome.status_code)
