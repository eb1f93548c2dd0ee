from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlmodel import Session

from services.monitoring import api
from services.monitoring.alerts import service
from services.monitoring.alerts.models import AlertAction, AlertEventRead, AlertRead, AlertStatus
from services.monitoring.business_day import business_date
from shared.errors import problem_responses
from shared.idempotency import OptionalIdempotencyKey
from shared.pagination import Page, paged

router = APIRouter(tags=["alerts"])


@router.get("/alerts", response_model=Page[AlertRead],
            summary="Alerts by customer, loan, status or owner (branch-scoped for loan officers)",
            description="A shared-payer alert's evidence names the payer's account in clear for admins, auditors "
                        "and the branch's loan officers; others see it masked (its last four characters), with "
                        "`payer_account_hash` to tell payers apart.",
            responses=problem_responses(422))
def list_alerts(
    request: Request,
    principal: api.Reader,
    customer_id: str | None = None,
    loan_id: str | None = None,
    status: AlertStatus | None = None,
    owner: str | None = None,
    paging: paged(100) = None,
) -> Page[AlertRead]:
    with api.database(request).session() as session:
        page = service.list_alerts(session, paging, principal=principal, vault=api.vault(request),
                                   customer_id=customer_id, loan_id=loan_id, status=status, owner=owner)
        session.commit()  # the audit trail's row of a payer shown in clear
        return page


@router.get("/alerts/{alert_id}/events", response_model=Page[AlertEventRead],
            summary="Who moved the alert through its lifecycle, when, and why", responses=problem_responses(404, 422))
def alert_events(request: Request, alert_id: str, principal: api.Reader,
                 paging: paged() = None) -> Page[AlertEventRead]:
    with api.database(request).session() as session:
        service.get_alert(session, alert_id, api.scope(principal))
        return service.events(session, alert_id, paging)


def _action(path: str, summary: str, command: Callable[..., object]) -> None:
    @router.post(f"/alerts/{{alert_id}}/{path}", response_model=AlertRead, summary=summary,
                 responses=problem_responses(404, 409), name=command.__name__)
    def move(request: Request, alert_id: str, action: AlertAction, principal: api.Collector,
             idempotency_key: OptionalIdempotencyKey = None) -> JSONResponse:
        def run(session: Session) -> tuple[int, Any]:
            alert = command(session, alert_id, actor=principal.sub, scope=api.scope(principal),
                            note=action.note, as_of=business_date(session, api.settings(request)))
            session.flush()
            return 200, AlertRead.model_validate(alert).model_dump(mode="json")

        return api.idempotent(request, principal, idempotency_key, required=False, command_name=command.__name__,
                              payload=action.model_dump(mode="json"), command=run)


_action("acknowledge", "Take an open alert: its owner becomes you (collector, loan officer, admin)",
        service.acknowledge_alert)
_action("start", "Mark an acknowledged alert in progress", service.start_alert)
_action("resolve", "Close an alert as dealt with", service.resolve_alert)
_action("dismiss", "Close an alert as a false positive", service.dismiss_alert)
