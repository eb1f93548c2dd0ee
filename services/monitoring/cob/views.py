import asyncio
import logging
import re
from datetime import date

from fastapi import APIRouter, Request, Response
from sqlalchemy import func, select

from services.monitoring import api
from services.monitoring.business_day import business_date
from services.monitoring.cob import flows
from services.monitoring.cob.models import BusinessDateRead, CobReport, CobRequest, CobRun, RunStatus
from services.monitoring.cob.scheduled import default_steps, run_identity
from services.monitoring.loans.models import new_id
from services.monitoring.cob.workers import chunk_queue
from shared.bounds import BusinessDate
from shared.errors import Problem, problem_responses

router = APIRouter(tags=["close of business"])
log = logging.getLogger(__name__)
# The gateway names the prefix it serves this service under (/api/monitoring); only a plain path is trusted.
_PREFIX = re.compile(r"(/[A-Za-z0-9._~-]+)*")


def _tasks(request: Request) -> set[asyncio.Task]:
    """The runs this process works on in the background (held so they are not collected mid-run)."""
    if not hasattr(request.app.state, "cob_tasks"):
        request.app.state.cob_tasks = set()
    return request.app.state.cob_tasks


def _location(request: Request, day: date) -> str:
    prefix = request.headers.get("x-forwarded-prefix", "")
    return f"{prefix if _PREFIX.fullmatch(prefix) else ''}/cob/runs/{day.isoformat()}"


async def _in_background(ctx: flows.CobContext, run: CobRun, triggered_by: str, owner: str) -> None:
    try:
        await flows.run_cob(ctx, triggered_by=triggered_by, steps=default_steps(), started=run, owner=owner)
    except Exception:  # noqa: BLE001 - the run is let go with its chunks done so far: stalled, and POST resumes it
        log.exception("COB for %s stopped; POST /cob/runs again resumes it", ctx.day.isoformat())
    finally:
        await ctx.credentials.aclose()


@router.post("/cob/runs", response_model=CobReport, status_code=202,
             summary="Start close of business for a date, or a catch-up range of dates (admin); it runs in the "
                     "background",
             description="Only the day after the last closed business date may start (or, with `through`, a range "
                         "from that day, each day closed in order); the business date never moves back, no day "
                         "starts while another is unfinished, and a date more than LOANCRM_MONITORING_COB_DAYS_AHEAD "
                         "days after today is refused. Answers 202 with the run, whose `Location` (the range's last "
                         "day, for a range) shows its progress and, once completed, its report. Starting a date "
                         "that is running answers that run (202); a finished date answers its report (200); a "
                         "`stalled` run (its worker stopped renewing its lease) is taken over and resumed.",
             responses={200: {"model": CobReport, "description": "The date is already closed: its report"},
                        **problem_responses(422)})
async def start_cob(request: Request, response: Response, command: CobRequest, principal: api.Operator) -> CobReport:
    day, owner = command.business_date, new_id()
    state = request.app.state
    credentials = run_identity(state.kernel, api.bearer(request), state.identity_transport)
    ctx = flows.CobContext(database=api.database(request), settings=api.settings(request), day=day,
                           peers=state.peers, credentials=credentials, queue=chunk_queue(state))
    try:
        with api.domain_errors():
            run = await flows.start_run(ctx, principal.sub, owner=owner, through=command.through)
    except BaseException:
        await credentials.aclose()
        raise
    response.headers["Location"] = _location(request, run.through or day)
    if run.status == RunStatus.COMPLETED:
        response.status_code = 200
    if run.status != RunStatus.COMPLETED and run.lease_owner == owner:
        tasks = _tasks(request)
        task = asyncio.create_task(_in_background(ctx, run, principal.sub, owner))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    else:
        await credentials.aclose()  # another run's, or a closed day's: nothing runs with these
    found = await asyncio.to_thread(flows.report, ctx.database, day, lease_seconds=ctx.settings.cob_lease_seconds)
    return found  # type: ignore[return-value]


@router.get("/cob/runs/{business_date}", response_model=CobReport,
            summary="One date's COB: its progress while running (or stalled, or queued in a catch-up range), its "
                    "report once completed",
            responses=problem_responses(404))
def get_run(request: Request, business_date: BusinessDate, _: api.Reader) -> CobReport:
    found = flows.report(api.database(request), business_date,
                         lease_seconds=api.settings(request).cob_lease_seconds)
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
