from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Query, Request

from services.monitoring import api
from services.monitoring.alerts import service
from services.monitoring.alerts.models import AlertAction, AlertEventRead, AlertRead, AlertStatus
from services.monitoring.business_day import business_date
from shared.bounds import Offset
from shared.errors import problem_responses

router = APIRouter(tags=["alerts"])


@router.get("/alerts", response_model=list[AlertRead],
            summary="Alerts by customer, loan, status or owner (branch-scoped for loan officers)",
            responses=problem_responses(422))
def list_alerts(
    request: Request,
    principal: api.Reader,
    customer_id: str | None = None,
    loan_id: str | None = None,
    status: AlertStatus | None = None,
    owner: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Offset = 0,
) -> list[AlertRead]:
    with api.database(request).session() as session:
        found = service.list_alerts(session, scope=api.scope(principal), customer_id=customer_id,
                                    loan_id=loan_id, status=status, owner=owner, limit=limit, offset=offset)
        return [AlertRead.model_validate(a) for a in found]


@router.get("/alerts/{alert_id}/events", response_model=list[AlertEventRead],
            summary="Who moved the alert through its lifecycle, when, and why", responses=problem_responses(404))
def alert_events(request: Request, alert_id: str, principal: api.Reader) -> list[AlertEventRead]:
    with api.database(request).session() as session:
        service.get_alert(session, alert_id, api.scope(principal))
        return [AlertEventRead.model_validate(e) for e in service.events(session, alert_id)]


def _action(path: str, summary: str, command: Callable[..., object]) -> None:
    @router.post(f"/alerts/{{alert_id}}/{path}", response_model=AlertRead, summary=summary,
                 responses=problem_responses(404, 409), name=command.__name__)
    def move(request: Request, alert_id: str, action: AlertAction, principal: api.Collector) -> AlertRead:
        with api.database(request).session() as session:
            alert = command(session, alert_id, actor=principal.sub, scope=api.scope(principal),
                            note=action.note, as_of=business_date(session, api.settings(request)))
            session.commit()
            return AlertRead.model_validate(alert)


_action("acknowledge", "Take an open alert: its owner becomes you (collector, loan officer, admin)",
        service.acknowledge_alert)
_action("start", "Mark an acknowledged alert in progress", service.start_alert)
_action("resolve", "Close an alert as dealt with", service.resolve_alert)
_action("dismiss", "Close an alert as a false positive", service.dismiss_alert)
