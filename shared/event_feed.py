"""`GET /events`: a service's outbox as a feed, for the system identity only (the gateway's webhook relay)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from shared.auth.dependencies import needs, require_roles
from shared.auth.roles import Role
from shared.auth.scope import visibility
from shared.auth.tokens import Principal
from shared.outbox import EventPage, Outbox

MAX_PAGE = 500


def event_feed_router(outbox: Outbox) -> APIRouter:
    router = APIRouter(tags=["events"])

    @router.get("/events", response_model=EventPage, openapi_extra=needs("events:read"),
                summary="Events this service recorded after `after`, oldest first (system identity only)")
    def list_events(
        request: Request,
        principal: Annotated[Principal, Depends(require_roles(Role.SYSTEM))],
        after: Annotated[int, Query(ge=0, le=2**62, description="The last `seq` already read; 0 from the start")] = 0,
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 200,
    ) -> EventPage:
        with request.app.state.database.session() as session:
            return outbox.page(session, after=after, limit=limit, scope=visibility(principal))

    return router
