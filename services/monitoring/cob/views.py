from datetime import date

from fastapi import APIRouter, Request
from sqlalchemy import func, select

from services.monitoring import api
from services.monitoring.business_day import business_date
from services.monitoring.cob import flows
from services.monitoring.cob.models import BusinessDateRead, CobReport, CobRequest, CobRun, RunStatus
from services.monitoring.cob.scheduled import default_steps
from shared.errors import Problem, problem_responses

router = APIRouter(tags=["close of business"])


@router.post("/cob/runs", response_model=CobReport,
             summary="Run close of business for a date (admin); repeating a finished date returns its report",
             responses=problem_responses(422))
async def run_cob(request: Request, command: CobRequest, principal: api.Operator) -> CobReport:
    ctx = flows.CobContext(database=api.database(request), settings=api.settings(request), day=command.business_date,
                           peers=request.app.state.peers, token=api.bearer(request))
    with api.domain_errors():
        return await flows.run_cob(ctx, triggered_by=principal.sub, steps=default_steps())


@router.get("/cob/runs/{business_date}", response_model=CobReport, summary="The report of one date's COB",
            responses=problem_responses(404))
def get_run(request: Request, business_date: date, _: api.Reader) -> CobReport:
    found = flows.report(api.database(request), business_date)
    if found is None:
        raise Problem(404, "Not found", f"No COB run for {business_date.isoformat()}.")
    return found


@router.get("/business-date", response_model=BusinessDateRead, summary="The business date and the last finished COB",
            responses=problem_responses(401))
def get_business_date(request: Request, _: api.Reader) -> BusinessDateRead:
    with api.database(request).session() as session:
        last = session.execute(select(func.max(CobRun.business_date)).where(
            CobRun.status == RunStatus.COMPLETED)).scalar()
        return BusinessDateRead(business_date=business_date(session, api.settings(request)), last_cob=last)
