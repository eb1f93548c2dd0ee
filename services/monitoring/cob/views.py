import asyncio
import logging
from datetime import date

from fastapi import APIRouter, Request, Response
from sqlalchemy import func, select

from services.monitoring import api
from services.monitoring.business_day import business_date
from services.monitoring.cob import flows
from services.monitoring.cob.models import BusinessDateRead, CobReport, CobRequest, CobRun, RunStatus
from services.monitoring.cob.scheduled import default_steps
from shared.errors import Problem, problem_responses

router = APIRouter(tags=["close of business"])
log = logging.getLogger(__name__)


def _running(request: Request) -> dict[date, asyncio.Task]:
    """The runs this process works on in the background, by date (a finished task is dropped on sight)."""
    if not hasattr(request.app.state, "cob_tasks"):
        request.app.state.cob_tasks = {}
    tasks: dict[date, asyncio.Task] = request.app.state.cob_tasks
    for day in [d for d, task in tasks.items() if task.done()]:
        del tasks[day]
    return tasks


async def _in_background(ctx: flows.CobContext, run: CobRun, triggered_by: str) -> None:
    try:
        await flows.run_cob(ctx, triggered_by=triggered_by, steps=default_steps(), started=run)
    except Exception:  # noqa: BLE001 - the run stays "running" with its chunks done so far; a new start resumes it
        log.exception("COB for %s stopped; POST /cob/runs again resumes it", ctx.day.isoformat())


@router.post("/cob/runs", response_model=CobReport, status_code=202,
             summary="Start close of business for a date (admin); it runs in the background",
             description="Answers 202 with the run, whose `Location` shows its progress and, once completed, its "
                         "report. Starting a date that is already running answers that run (202); a finished date "
                         "answers its report (200); a run stopped by a crash is resumed.",
             responses={200: {"model": CobReport, "description": "The date is already closed: its report"},
                        **problem_responses(422)})
async def start_cob(request: Request, response: Response, command: CobRequest, principal: api.Operator) -> CobReport:
    day = command.business_date
    response.headers["Location"] = f"/cob/runs/{day.isoformat()}"
    running = _running(request)
    if day not in running:
        ctx = flows.CobContext(database=api.database(request), settings=api.settings(request), day=day,
                               peers=request.app.state.peers, token=api.bearer(request))
        with api.domain_errors():
            run = await flows.start_run(ctx, principal.sub)
        if run.status == RunStatus.COMPLETED:
            response.status_code = 200
        elif day not in running:  # another request may have started it while this one planned
            running[day] = asyncio.create_task(_in_background(ctx, run, principal.sub))
    found = await asyncio.to_thread(flows.report, api.database(request), day)
    return found  # type: ignore[return-value]


@router.get("/cob/runs/{business_date}", response_model=CobReport,
            summary="One date's COB: its progress while running, its report once completed",
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
