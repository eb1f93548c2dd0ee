from __future__ import annotations

from fastapi import APIRouter, Request

from services.customer.access_log import service
from services.customer.access_log.models import PiiAccessRead
from services.customer.web import Auditor, database
from shared.pagination import Page, paged
from shared.auth.dependencies import needs
from shared.bounds import Timestamp
from shared.errors import problem_responses

router = APIRouter(prefix="/access-log", tags=["access log"])


@router.get("", response_model=Page[PiiAccessRead], summary="Who saw whose personal data (auditor, admin)",
            description="Every unmasked view and every erasure, newest first.", responses=problem_responses(422),
            openapi_extra=needs("audit:read"))
def list_access(request: Request, _: Auditor, customer_id: str | None = None, actor: str | None = None,
                since: Timestamp | None = None, until: Timestamp | None = None,
                paging: paged(100, 1000) = None) -> Page[PiiAccessRead]:
    with database(request).session() as session:
        return service.list_access(session, paging, customer_id=customer_id, actor=actor, since=since, until=until)
