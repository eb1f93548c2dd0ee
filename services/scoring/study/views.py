from typing import Annotated

from fastapi import APIRouter, Depends, Header, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response

from services.scoring import api
from services.scoring.db import idempotency
from services.scoring.study import flows, service
from services.scoring.study.charts import study_chart
from services.scoring.study.models import StudyRead, StudyRequest
from shared.auth.dependencies import require_roles
from shared.auth.roles import Role
from shared.auth.tokens import Principal
from shared.errors import problem_responses
from shared.idempotency import check_key, fingerprint
from shared.clients.identity import CallerToken

router = APIRouter(prefix="/studies", tags=["studies"])
Analyst = Annotated[Principal, Depends(require_roles(Role.ADMIN, Role.RISK_ANALYST))]
StudyReader = Annotated[Principal, Depends(require_roles(Role.ADMIN, Role.RISK_ANALYST, Role.AUDITOR))]


def _bearer(request: Request) -> str:
    return request.headers.get("authorization", "").partition(" ")[2].strip()


@router.post("/relationship", status_code=201, response_model=StudyRead,
             summary="Run the relationship study: does relationship lower default, with controls? (risk analyst, "
                     "admin)",
             description="Builds the point-in-time extract over HTTP (monitoring's loan outcomes, the customer "
                         "service's relationship features, as the caller sees them), fits the logistic regression "
                         "and keeps the report. 422 when the window has not closed or too few loans defaulted; 409 "
                         "when the fit separates. With `Idempotency-Key` a retry returns the first report.",
             responses=problem_responses(409, 422, 502, 503))
async def run_relationship_study(
    request: Request,
    command: StudyRequest,
    principal: Analyst,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> JSONResponse:
    key = check_key(idempotency_key, required=False)
    state = api.state(request)
    found = await flows.extract(state.customer, state.monitoring, as_of=command.as_of,
                                window_months=command.window_months,
                                credentials=CallerToken(_bearer(request)))

    def run(session):  # noqa: ANN001, ANN202
        report = service.run_study(found.table, as_of=command.as_of, window_months=command.window_months,
                                   extract=found.counts)
        return 201, service.keep_study(session, report, by=principal.sub).model_dump(mode="json")

    outcome = await run_in_threadpool(
        idempotency.run_once, state.database, owner=principal.sub, key=key,
        request_fingerprint=fingerprint("run_relationship_study", command.model_dump(mode="json")), command=run)
    return JSONResponse(outcome.body, status_code=outcome.status_code,
                        headers={"Idempotent-Replayed": "true"} if outcome.replayed else None)


@router.get("/relationship/{study_id}", response_model=StudyRead, summary="A relationship study's report",
            responses=problem_responses(404))
def get_relationship_study(request: Request, study_id: str, _: StudyReader) -> StudyRead:
    with api.state(request).database.session() as session:
        return service.study_read(service.get_study(session, study_id))


@router.get("/relationship/{study_id}/chart.png", response_class=Response,
            summary="A relationship study's chart: odds ratios with 95% CIs, default rate by band",
            responses={200: {"content": {"image/png": {}}}, **problem_responses(404)})
def relationship_study_chart(request: Request, study_id: str, _: StudyReader) -> Response:
    with api.state(request).database.session() as session:
        study = service.get_study(session, study_id)
    return Response(study_chart(study.report), media_type="image/png")
