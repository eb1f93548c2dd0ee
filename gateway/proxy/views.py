from fastapi import APIRouter, Depends, Request

from gateway.limits.dependencies import limit_api_calls
from gateway.proxy.service import forward
from shared.auth.dependencies import needs
from shared.errors import problem_responses
from shared.middleware import max_body

router = APIRouter(tags=["routing"], dependencies=[Depends(limit_api_calls)])

_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]
# The largest body any service route accepts (a model bundle); each service applies its routes' own limits.
PROXY_MAX_BODY_BYTES = 64 * 1024 * 1024


@router.api_route(
    "/api/{service}/{path:path}",
    methods=_METHODS,
    summary="Forward to a LoanCRM service (customer, scoring, monitoring) with the caller's token",
    responses=problem_responses(404, 429, 503, 504),
    include_in_schema=False,
    openapi_extra=needs(),  # each service checks the scopes its routes need
)
@max_body(PROXY_MAX_BODY_BYTES)
async def route_to_service(service: str, path: str, request: Request):  # noqa: ANN201 - a streamed passthrough
    return await forward(request.app.state.upstreams, service, path, request, request.state.request_id)
