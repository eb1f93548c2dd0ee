"""Close of business: age every loan to the business date, reclassify, raise alerts, re-score, retry the outbox.

Idempotent per date (a finished date answers its report), resumable (loans are split into id-range chunks, each
committed together with its loans' writes and its own "done" mark), set-based (only loans that can have changed
are looked at; those whose DPD alone moves are aged by one UPDATE per chunk in SQL, and only the few that reach a
bucket, class, stage or rule threshold, or need judgement, are read into Python and written back in one statement
per chunk), and a failing loan is recorded and skipped rather than stopping the batch.

The business date moves one day at a time: a day starts only after the day before it closed (a catch-up range
closes each day in order), and a run is worked on by the one worker holding its lease, renewed by a heartbeat.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from contextlib import suppress
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import func, or_, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from services.monitoring.business_day import last_closed, set_business_date
from services.monitoring.cob.models import CobChunk, CobFailure, CobReport, CobRun, FailureRead, RunStatus
from services.monitoring.cob.service import Loans, age_loans, ageing_rules, candidates, is_postgres
from services.monitoring.errors import DomainError
from services.monitoring.loans.models import Loan, new_id, now
from services.monitoring.peers import Peers
from services.monitoring.rules.models import EarlyWarningRule
from services.monitoring.settings import MonitoringSettings
from shared.clients.identity import Credentials
from shared.db import Database

log = logging.getLogger(__name__)
Progress = Callable[[int, int], None]  # (chunks done, chunks in all)
Step = Callable[["CobContext"], Awaitable[dict[str, Any]]]


class ChunkQueue(Protocol):
    """Where chunks go to be aged by workers (`services.monitoring.cob.workers`)."""

    poll_seconds: float  # how often the run looks at its chunks while workers age them
    stall_seconds: float  # no chunk finished for this long: the run stops, stalled, for a resume to send again

    def send(self, day: date, numbers: list[int]) -> None: ...


@dataclass
class CobContext:
    database: Database
    settings: MonitoringSettings
    day: date
    peers: Peers | None
    # Who the steps call peers as: the batch's own client identity, or the caller who started the run.
    credentials: Credentials | None
    # Set: the chunks go to workers through this queue; None: aged in this process.
    queue: ChunkQueue | None = None
    # Test hook: called before a chunk commits; raising there is a crash in the middle of the chunk.
    before_commit: Callable[[int], None] | None = None


def _chunk_starts(session: Session, day: date, size: int) -> tuple[list[str], int]:
    """Split the id space into ranges of about `size` loans ageing can change, so that a chunk's work, not its
    count of current loans, is balanced. Loan ids are random hex (UUID4), so equal slices of the hex range hold
    about equal numbers of loans; the first range starts below every id and the last runs past every id, so the
    ranges cover every loan whatever its id."""
    count = session.execute(select(func.count()).select_from(Loan).where(candidates(day))).scalar_one()
    chunks = min(max(1, -(-count // size)), 16 ** 6)
    return [""] + sorted({f"{k * 16 ** 6 // chunks:06x}" for k in range(1, chunks)}), count


def _plan(session: Session, ctx: CobContext, day: date, triggered_by: str, owner: str,
          through: date | None) -> CobRun:
    """A new run for `day`, its chunks planned, its lease held by `owner`."""
    run = CobRun(business_date=day, chunk_size=ctx.settings.cob_chunk_size, triggered_by=triggered_by,
                 through=through, lease_owner=owner, heartbeat_at=now())
    starts, run.loans_total = _chunk_starts(session, day, run.chunk_size)
    session.add(run)
    session.add_all(CobChunk(business_date=day, number=n, first_id=first,
                             next_first_id=starts[n + 1] if n + 1 < len(starts) else None)
                    for n, first in enumerate(starts))
    run.chunks_total = len(starts)
    return run


def _latest_allowed(settings: MonitoringSettings) -> date:
    return datetime.now(UTC).date() + timedelta(days=settings.cob_days_ahead)


def _check_not_too_far(settings: MonitoringSettings, **dates: date | None) -> None:
    limit = _latest_allowed(settings)
    for field, value in dates.items():
        if value is not None and value > limit:
            raise DomainError(field, f"must not be after {limit.isoformat()}: today's date plus "
                                     f"LOANCRM_MONITORING_COB_DAYS_AHEAD ({settings.cob_days_ahead} days)")


def _check_new_day(session: Session, ctx: CobContext, through: date | None) -> None:
    """Only the day after the last closed one may start, never while another day is unfinished, and never past
    the real clock's date by more than the setting allows (before the first COB any such date may start)."""
    day = ctx.day
    _check_not_too_far(ctx.settings, business_date=day, through=through)
    if through is not None and through < day:
        raise DomainError("through", "must not be before business_date")
    closed = last_closed(session)
    # A run the business date has passed, or beyond the limit (both left from before these rules), can never be
    # resumed, so it blocks nothing.
    unfinished = session.execute(select(CobRun.business_date).where(
        CobRun.status == RunStatus.RUNNING, CobRun.business_date > (closed or date.min),
        CobRun.business_date <= _latest_allowed(ctx.settings)).order_by(CobRun.business_date).limit(1)).scalar()
    if unfinished is not None:
        raise DomainError("business_date", f"COB for {unfinished.isoformat()} is unfinished: resume it (start "
                                           "that date again) before any other day")
    if closed is None:
        return
    expected = closed + timedelta(days=1)
    if day <= closed:
        raise DomainError("business_date", f"must be after the last closed business date {closed.isoformat()}: "
                                           "the business date never moves back")
    if day > expected:
        raise DomainError("business_date", f"must be the next business day {expected.isoformat()}; to close "
                                           f"every day up to {day.isoformat()}, send business_date "
                                           f"{expected.isoformat()} with through {day.isoformat()}")


def _lease_lapsed_before(settings: MonitoringSettings) -> datetime:
    return now() - timedelta(seconds=settings.cob_lease_seconds)


def _open(ctx: CobContext, triggered_by: str, owner: str, through: date | None) -> CobRun:
    with ctx.database.session() as session:
        run = session.get(CobRun, ctx.day)
        if run is None:
            _check_new_day(session, ctx, through)
            run = _plan(session, ctx, ctx.day, triggered_by, owner, through)
            session.commit()
            return run
        if run.status == RunStatus.COMPLETED:
            return run
        if through is not None and through != run.through:
            raise DomainError("through", f"COB for {ctx.day.isoformat()} runs through "
                                         f"{(run.through or ctx.day).isoformat()}; resume it as it was started")
        _check_not_too_far(ctx.settings, business_date=ctx.day)
        closed = last_closed(session)
        if closed is not None and ctx.day <= closed:
            # Left from before the business date moved on: finishing it now would move the date back.
            raise DomainError("business_date", f"the business date has moved past it to {closed.isoformat()}; "
                                               "this run can no longer be finished")
        # Take the lease if nobody holds it or its holder stopped renewing it; one statement, so two takers
        # cannot both win.
        session.execute(update(CobRun).where(
            CobRun.business_date == ctx.day, CobRun.status == RunStatus.RUNNING,
            or_(CobRun.lease_owner.is_(None), CobRun.heartbeat_at.is_(None),
                CobRun.heartbeat_at < _lease_lapsed_before(ctx.settings)))
            .values(lease_owner=owner, heartbeat_at=now(), attempts=CobRun.attempts + 1))
        session.commit()
        return session.get(CobRun, ctx.day, populate_existing=True)


def _start(ctx: CobContext, triggered_by: str, owner: str, through: date | None = None) -> CobRun:
    try:
        return _open(ctx, triggered_by, owner, through)
    except IntegrityError:  # another request planned the same date at the same moment: answer that run
        return _open(ctx, triggered_by, owner, through)


async def start_run(ctx: CobContext, triggered_by: str, *, owner: str, through: date | None = None) -> CobRun:
    """Open the date's run (planning its chunks) or take over a stalled one; the run's `lease_owner` is `owner`
    when this caller is to work on it. A finished date answers its run; a date the business-date rules refuse
    raises DomainError."""
    return await asyncio.to_thread(_start, ctx, triggered_by, owner, through)


def _renew(database: Database, owner: str) -> bool:
    """Renew `owner`'s lease on whichever day it holds; False once it holds none (taken over, or finished)."""
    with database.session() as session:
        renewed = session.execute(update(CobRun).where(CobRun.lease_owner == owner, CobRun.status ==
                                                       RunStatus.RUNNING).values(heartbeat_at=now())).rowcount
        session.commit()
    return renewed > 0


def _release(database: Database, owner: str) -> None:
    """A worker that stops (crash, slice done) lets go at once, so its run shows stalled without waiting."""
    with database.session() as session:
        session.execute(update(CobRun).where(CobRun.lease_owner == owner).values(lease_owner=None))
        session.commit()


async def _heartbeat(ctx: CobContext, owner: str, lost: asyncio.Event) -> None:
    while True:
        await asyncio.sleep(ctx.settings.cob_heartbeat_seconds)
        try:
            renewed = await asyncio.to_thread(_renew, ctx.database, owner)
        except Exception:  # noqa: BLE001 - a busy or briefly unreachable database: try again at the next beat
            log.warning("COB lease for %s not renewed this beat", ctx.day.isoformat(), exc_info=True)
            continue
        if not renewed:
            lost.set()
            return


def _pending_chunks(ctx: CobContext) -> list[int]:
    with ctx.database.session() as session:
        return list(session.execute(select(CobChunk.number).where(
            CobChunk.business_date == ctx.day, CobChunk.done.is_(False)).order_by(CobChunk.number)).scalars())


def ageing_rules_of(ctx: CobContext) -> tuple[list[EarlyWarningRule], tuple[int, ...]]:
    with ctx.database.session() as session:
        return ageing_rules(session)


def age_chunk(ctx: CobContext, number: int, rules: list[EarlyWarningRule], thresholds: tuple[int, ...]) -> None:
    """Age one chunk in one transaction, committed with its "done" mark and the run's counters: a chunk that
    fails (or whose worker is killed) leaves nothing behind, and one run again once done is a no-op, so a
    redelivered chunk gives the state one delivery would."""
    day = ctx.day
    with ctx.database.session() as session:
        postgres = is_postgres(session)
        chunk_query = select(CobChunk).where(CobChunk.business_date == day, CobChunk.number == number)
        if postgres:
            chunk_query = chunk_query.with_for_update()
        else:
            # SQLite: take the write lock before reading, so a second worker waits and then sees the chunk done.
            session.execute(update(CobChunk).where(CobChunk.business_date == day, CobChunk.number == number)
                            .values(done=CobChunk.done))
        chunk = session.execute(chunk_query).scalar_one_or_none()
        if chunk is None or chunk.done:
            return  # another worker finished it while this one waited (or a message outlived its run)
        if postgres:
            # The chunk's statements are costed high enough to be JIT-compiled, which takes longer than running them.
            session.execute(text("SET LOCAL jit = off"))
        aged = age_loans(session, day, Loans(chunk.first_id, chunk.next_first_id), rules, thresholds)
        session.add_all(aged.failures)
        chunk.done, chunk.processed, chunk.changed, chunk.finished_at = True, aged.processed, aged.changed, now()
        session.add(chunk)
        session.execute(update(CobRun.__table__).where(CobRun.__table__.c.business_date == day).values(
            chunks_done=CobRun.__table__.c.chunks_done + 1,
            loans_processed=CobRun.__table__.c.loans_processed + aged.processed,
            loans_changed=CobRun.__table__.c.loans_changed + aged.changed,
            history_appended=CobRun.__table__.c.history_appended + aged.history,
            alerts_raised=CobRun.__table__.c.alerts_raised + aged.raised,
            failures=CobRun.__table__.c.failures + len(aged.failures)))
        if ctx.before_commit is not None:
            ctx.before_commit(number)
        session.commit()


def _finish(ctx: CobContext, owner: str, steps: dict[str, Any]) -> CobRun | None:
    """Close the day and move the business date to it; in a catch-up range, plan the next day in the same
    transaction (so a crash between days leaves a stalled run, not a silently unfinished range). Returns it."""
    with ctx.database.session() as session:
        run = session.get(CobRun, ctx.day)
        if run.status != RunStatus.RUNNING or run.lease_owner != owner:
            return None  # another worker took the run over; it finishes it
        closed = last_closed(session)
        if closed is not None and ctx.day <= closed:
            raise DomainError("business_date", f"the business date has moved past it to {closed.isoformat()}")
        # The steps' alerts (broken promises, feeds, score drops, silence) are the run's as much as ageing's.
        raised = sum(int(r.get("alerts_raised", 0)) for r in steps.values() if isinstance(r, dict))
        run.status, run.finished_at, run.steps = RunStatus.COMPLETED, now(), steps
        run.alerts_raised, run.lease_owner = run.alerts_raised + raised, None
        session.add(run)
        set_business_date(session, ctx.day)
        following = None
        if run.through is not None and run.through > ctx.day:
            following = _plan(session, ctx, ctx.day + timedelta(days=1), run.triggered_by, owner, run.through)
        session.commit()
        return following


def _lapsed(run: CobRun, lease_seconds: float) -> bool:
    if run.lease_owner is None or run.heartbeat_at is None:
        return True
    beat = run.heartbeat_at if run.heartbeat_at.tzinfo else run.heartbeat_at.replace(tzinfo=UTC)
    return now() - beat > timedelta(seconds=lease_seconds)


def report(database: Database, day: date, *, lease_seconds: float) -> CobReport | None:
    """The day's run as a report: `stalled` when running without a live lease, `queued` for a later day of an
    unfinished catch-up range (`stalled` while the range's current day is); None when the day was never asked
    for."""
    with database.session() as session:
        # The range first, then the day: a range's day closing in between plans the next in the same commit, so
        # one of the two reads sees it (read the other way round, a day planned meanwhile showed as never asked).
        range_run = session.execute(select(CobRun).where(
            CobRun.status == RunStatus.RUNNING, CobRun.business_date < day, CobRun.through >= day)).scalar()
        run = session.get(CobRun, day)
        if run is None:
            if range_run is None:
                return None
            # Behind a stalled day the range waits for that day to be resumed: stalled too.
            waiting = RunStatus.STALLED if _lapsed(range_run, lease_seconds) else RunStatus.QUEUED
            return CobReport(business_date=day, status=waiting, chunk_size=range_run.chunk_size,
                             chunks_total=0, chunks_done=0, loans_total=0, loans_processed=0, loans_changed=0,
                             history_appended=0, alerts_raised=0, attempts=0, steps={}, failures=[],
                             started_at=None, finished_at=None, through=range_run.through)
        failures = session.execute(select(CobFailure).where(CobFailure.business_date == day)
                                   .order_by(CobFailure.recorded_at)).scalars()
        listed = [FailureRead.model_validate(f) for f in failures]
        status = RunStatus(run.status)
        if status == RunStatus.RUNNING and _lapsed(run, lease_seconds):
            status = RunStatus.STALLED
        return CobReport.model_validate({**run.model_dump(), "status": status, "failures": listed})


async def _age_here(ctx: CobContext, pending: list[int], done: int, total: int, progress: Progress | None,
                    lost: asyncio.Event) -> bool:
    """Age the chunks in this process, one after the other; False when the lease was lost first."""
    rules, thresholds = await asyncio.to_thread(ageing_rules_of, ctx)
    for number in pending:
        if lost.is_set():
            return False
        await asyncio.to_thread(age_chunk, ctx, number, rules, thresholds)
        done += 1
        if progress is not None:
            progress(done, total)
    return True


async def _age_on_queue(ctx: CobContext, queue: ChunkQueue, pending: list[int], done: int, total: int,
                        progress: Progress | None, lost: asyncio.Event) -> bool:
    """Send the chunks to the workers and follow them in the run's chunk records until each is done; False when
    the lease was lost, or no chunk finished for `stall_seconds` (the workers are down): the run is then left
    stalled and a resume sends the chunks still pending again (a chunk done twice is done once)."""
    await asyncio.to_thread(queue.send, ctx.day, pending)
    wanted, loop = set(pending), asyncio.get_running_loop()
    last_change = loop.time()
    while wanted:
        await asyncio.sleep(queue.poll_seconds)
        if lost.is_set():
            return False
        still = wanted & set(await asyncio.to_thread(_pending_chunks, ctx))
        if still != wanted:
            done += len(wanted) - len(still)
            wanted, last_change = still, loop.time()
            if progress is not None:
                progress(done, total)
        elif loop.time() - last_change > queue.stall_seconds:
            log.warning("COB for %s: no chunk finished in %.0f s (are workers running?); %d chunks pending, "
                        "left stalled", ctx.day.isoformat(), queue.stall_seconds, len(wanted))
            return False
    return True


async def _close_day(ctx: CobContext, run: CobRun, steps: dict[str, Step] | None, progress: Progress | None,
                     max_chunks: int | None, lost: asyncio.Event) -> dict[str, Any] | None:
    """Age the day's pending chunks (here, or on the workers) and run the steps; None when stopped first (slice
    done, lease lost, or workers stalled)."""
    pending = await asyncio.to_thread(_pending_chunks, ctx)
    done = run.chunks_total - len(pending)
    sliced = max_chunks is not None and len(pending) > max_chunks
    if sliced:
        pending = pending[:max_chunks]
    if ctx.queue is None:
        aged = await _age_here(ctx, pending, done, run.chunks_total, progress, lost)
    else:
        aged = await _age_on_queue(ctx, ctx.queue, pending, done, run.chunks_total, progress, lost)
    if not aged or sliced:
        return None
    results = {name: await step(ctx) for name, step in (steps or {}).items()}
    return None if lost.is_set() else results


async def run_cob(
    ctx: CobContext,
    *,
    triggered_by: str,
    steps: dict[str, Step] | None = None,
    progress: Progress | None = None,
    max_chunks: int | None = None,
    through: date | None = None,
    started: CobRun | None = None,
    owner: str | None = None,
) -> CobReport:
    """Close `ctx.day` (and, with `through`, every day after it up to that one, in order): a finished date
    answers its report; an unfinished one continues where it stopped. Returns the last day's report.

    `max_chunks` stops after that many chunks (an operator's way to run a slice; tests use it as a crash).
    `started` is the run `start_run` already opened (or took over) for `owner`. While working, the lease is
    renewed every `cob_heartbeat_seconds`; on leaving, however it leaves, it is let go.
    """
    owner = owner or new_id()
    run = started or await asyncio.to_thread(_start, ctx, triggered_by, owner, through)
    day = run.business_date
    lost = asyncio.Event()
    beat = asyncio.create_task(_heartbeat(ctx, owner, lost))
    try:
        while run is not None and run.status == RunStatus.RUNNING and run.lease_owner == owner:
            day = run.business_date
            day_ctx = replace(ctx, day=day)
            results = await _close_day(day_ctx, run, steps, progress, max_chunks, lost)
            if results is None:
                break
            run = await asyncio.to_thread(_finish, day_ctx, owner, results)
    finally:
        beat.cancel()
        with suppress(asyncio.CancelledError):
            await beat
        await asyncio.to_thread(_release, ctx.database, owner)
    return report(ctx.database, day, lease_seconds=ctx.settings.cob_lease_seconds)  # type: ignore[return-value]
