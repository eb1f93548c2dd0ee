from typing import Annotated

from fastapi import APIRouter, Header, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from services.monitoring import api
from services.monitoring.alerts import service as alerts
from services.monitoring.business_day import business_date
from services.monitoring.collections import service
from services.monitoring.collections.flows import deliver_outbox
from services.monitoring.collections.models import (
    ActionCreate,
    ActionRead,
    CollectionAction,
    PreservationStepCreate,
    PreservationStepRead,
    QueueItem,
)
from services.monitoring.loans import service as loans
from shared.auth.scope import EVERYTHING
from shared.errors import problem_responses
from shared.pagination import Page, paged

router = APIRouter(tags=["collections"])


def _read(session, action: CollectionAction) -> ActionRead:  # noqa: ANN001
    return ActionRead.model_validate({**action.model_dump(), "contact_log": service.contact_log(session, action.id)})


@router.post("/loans/{loan_id}/collection-actions", status_code=201, response_model=ActionRead,
             summary="Record a collection action or a promise to pay; it is written to the customer's contact log "
                     "(queued and retried by COB if the customer service is down). Collector, loan officer, admin",
             responses=problem_responses(404, 409, 422, 428))
async def record_action(request: Request, loan_id: str, command: ActionCreate, principal: api.Collector,
                        idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None) -> ActionRead:
    def run(session):  # noqa: ANN001, ANN202
        action = service.record_action(session, loan_id, command, collector=principal.sub,
                                       scope=api.scope(principal),
                                       as_of=business_date(session, api.settings(request)))
        return 201, {"id": action.id}

    outcome = await run_in_threadpool(api.run_idempotent, request, principal, idempotency_key, required=False,
                                      command_name="record_action", payload=command.model_dump(mode="json"),
                                      command=run)
    action_id = outcome.body["id"]
    await deliver_outbox(api.database(request), request.app.state.peers, api.bearer(request), action_id)
    with api.database(request).session() as session:
        return _read(session, session.get(CollectionAction, action_id))


@router.get("/loans/{loan_id}/collection-actions", response_model=Page[ActionRead],
            summary="What collectors did on a loan", responses=problem_responses(404, 422))
def list_actions(request: Request, loan_id: str, principal: api.Reader, paging: paged() = None) -> Page[ActionRead]:
    with api.database(request).session() as session:
        loans.get_loan(session, loan_id, api.scope(principal))
        return service.actions(session, loan_id, paging, read=lambda rows: [_read(session, a) for a in rows])


@router.post("/collection-actions/{action_id}/preservation-steps", status_code=201,
             response_model=PreservationStepRead,
             summary="Record a step of an asset-preservation action: freeze request, preservation order, "
                     "enforcement or release, with its date, outcome and document reference (collector, loan "
                     "officer, admin)", responses=problem_responses(404, 409, 422))
def record_preservation_step(request: Request, action_id: str, command: PreservationStepCreate,
                             principal: api.Collector,
                             idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
                             ) -> JSONResponse:
    def run(session):  # noqa: ANN001, ANN202
        step = service.record_preservation_step(session, action_id, command, by=principal.sub,
                                                scope=api.scope(principal),
                                                as_of=business_date(session, api.settings(request)))
        return 201, PreservationStepRead.model_validate(step).model_dump(mode="json")

    return api.idempotent(request, principal, idempotency_key, required=False,
                          command_name="record_preservation_step", payload=command.model_dump(mode="json"),
                          command=run)


@router.get("/collection-actions/{action_id}/preservation-steps", response_model=Page[PreservationStepRead],
            summary="The steps of an asset-preservation action, in date order", responses=problem_responses(404, 422))
def list_preservation_steps(request: Request, action_id: str, principal: api.Reader,
                            paging: paged() = None) -> Page[PreservationStepRead]:
    with api.database(request).session() as session:
        return service.preservation_steps(session, action_id, api.scope(principal), paging)


@router.get("/collections/queue", response_model=Page[QueueItem],
            summary="The collections work queue: open alerts, worst first (branch-scoped for loan officers)",
            responses=problem_responses(422))
def work_queue(request: Request, principal: api.Collector, mine: bool = False,
               paging: paged(100) = None) -> Page[QueueItem]:
    with api.database(request).session() as session:
        return service.work_queue(session, paging, scope=api.scope(principal), owner=principal.sub if mine else None)


@router.get("/collections/queue/{item_id}", response_model=QueueItem,
            summary="One queue item (open or not) with its loan and owner: what the customer service checks before "
                    "revealing the borrower's contact details to a collector", responses=problem_responses(404))
def queue_item(request: Request, item_id: str, principal: api.Collector) -> QueueItem:
    with api.database(request).session() as session:
        alert = alerts.get_alert(session, item_id, api.scope(principal))
        return QueueItem.of(alert, loans.get_loan(session, alert.loan_id, EVERYTHING))
