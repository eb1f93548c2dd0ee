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
from typing import Any

from sqlalchemy import ColumnElement, and_, bindparam, func, insert, or_, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from services.monitoring.alerts.service import raise_alerts
from services.monitoring.business_day import last_closed, set_business_date
from services.monitoring.classification.rules import ChangeCause, Ifrs9Stage, RiskState, diff_states
from services.monitoring.cob.models import CobChunk, CobFailure, CobReport, CobRun, FailureRead, RunStatus
from services.monitoring.delinquency import service as delinquency
from services.monitoring.delinquency.models import DelinquencyPause, RiskChange
from services.monitoring.errors import DomainError
from services.monitoring.loans.models import Loan, LoanStatus, new_id, now
from services.monitoring.loans.products import POLICIES
from services.monitoring.peers import Peers
from services.monitoring.rules.engine import Facts
from services.monitoring.rules.models import EarlyWarningRule, RuleKind
from services.monitoring.rules.service import alert_drafts, enabled_rules
from services.monitoring.settings import MonitoringSettings
from shared.db import Database

LOANS = Loan.__table__
_AGEING_COLUMNS = (LOANS.c.id, LOANS.c.customer_id, LOANS.c.product, LOANS.c.oldest_unpaid_due, LOANS.c.dpd,
                   LOANS.c.bucket, LOANS.c.classification, LOANS.c.ifrs9_stage, LOANS.c.override_class,
                   LOANS.c.restructured_on, LOANS.c.hardship_on, LOANS.c.hardship_until)
_SET_STATE = (update(LOANS).where(LOANS.c.id == bindparam("b_id"))
              .values(dpd=bindparam("b_dpd"), bucket=bindparam("b_bucket"),
                      classification=bindparam("b_class"), ifrs9_stage=bindparam("b_stage")))

log = logging.getLogger(__name__)
Progress = Callable[[int, int], None]  # (chunks done, chunks in all)
Step = Callable[["CobContext"], Awaitable[dict[str, Any]]]


@dataclass
class CobContext:
    database: Database
    settings: MonitoringSettings
    day: date
    peers: Peers | None
    token: str | None
    # Test hook: called before a chunk commits; raising there is a crash in the middle of the chunk.
    before_commit: Callable[[int], None] | None = None


def _is_postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def _candidates(day: date) -> ColumnElement[bool]:
    """The loans ageing can change on `day`: overdue, or restructured (their observation period ends by date); the
    rest stay current. Every write that moves a loan's oldest unpaid due date reassesses the loan at once, so a
    loan not overdue carries no days past due. A loan in a hardship observation is one until the day it ends. All
    three conditions are indexed."""
    return and_(LOANS.c.status == LoanStatus.ACTIVE.value, or_(
        LOANS.c.oldest_unpaid_due < day, LOANS.c.restructured_on.is_not(None), LOANS.c.hardship_until >= day))


def _chunk_starts(session: Session, day: date, size: int) -> tuple[list[str], int]:
    """Split the id space into ranges of about `size` loans ageing can change, so that a chunk's work, not its
    count of current loans, is balanced. Loan ids are random hex (UUID4), so equal slices of the hex range hold
    about equal numbers of loans; the first range starts below every id and the last runs past every id, so the
    ranges cover every loan whatever its id."""
    candidates = session.execute(select(func.count()).select_from(LOANS).where(_candidates(day))).scalar_one()
    chunks = min(max(1, -(-candidates // size)), 16 ** 6)
    return [""] + sorted({f"{k * 16 ** 6 // chunks:06x}" for k in range(1, chunks)}), candidates


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


def _ageing_rules(ctx: CobContext) -> tuple[list[EarlyWarningRule], tuple[int, ...]]:
    """The rules COB warns with, and the DPD values at which a loan's state or a DPD rule can change."""
    with ctx.database.session() as session:
        rules = enabled_rules(session, kinds=[RuleKind.DPD_REACHED, RuleKind.CLASS_WORSENED])
    days = set(delinquency.state_thresholds())
    days.update(int(r.params["days"]) for r in rules if r.kind == RuleKind.DPD_REACHED)
    return rules, tuple(sorted(days))


def _quiet(session: Session, thresholds: tuple[int, ...]) -> tuple[str, str]:
    """SQL for a loan's DPD on :cob_day, and the condition that only its DPD moves today: a plain loan (no
    override, restructuring or pause) still overdue, whose DPD grows without reaching a threshold. Those loans
    are aged by one UPDATE; every other candidate goes through the rules in Python."""
    if _is_postgres(session):
        dpd = "(CAST(:cob_day AS DATE) - loans.oldest_unpaid_due)"
    else:
        dpd = "CAST(julianday(:cob_day) - julianday(loans.oldest_unpaid_due) AS INTEGER)"
    crossings = "".join(f" AND NOT (loans.dpd < {int(t)} AND {dpd} >= {int(t)})" for t in thresholds)
    products = ", ".join(f"'{p.value}'" for p in POLICIES)  # an unknown product fails in Python, and is reported
    condition = (
        f"loans.status = :cob_active AND loans.product IN ({products}) AND loans.oldest_unpaid_due < :cob_day"
        " AND loans.override_class IS NULL"
        f" AND loans.restructured_on IS NULL AND {dpd} > loans.dpd{crossings}"
        " AND NOT EXISTS (SELECT 1 FROM delinquency_pauses p WHERE p.loan_id = loans.id)")
    return dpd, condition


def _age_chunk(ctx: CobContext, number: int, rules: list[EarlyWarningRule], thresholds: tuple[int, ...]) -> None:
    """Age one id range in one transaction: loans whose DPD alone moves by one UPDATE in SQL; the few that can
    change bucket, class or stage, or warn, through the rules in Python; unchanged loans are not touched."""
    day = ctx.day
    with ctx.database.session() as session:
        postgres = _is_postgres(session)
        chunk_query = select(CobChunk).where(CobChunk.business_date == day, CobChunk.number == number)
        if postgres:
            chunk_query = chunk_query.with_for_update()
        else:
            # SQLite: take the write lock before reading, so a second worker waits and then sees the chunk done.
            session.execute(update(CobChunk).where(CobChunk.business_date == day, CobChunk.number == number)
                            .values(done=CobChunk.done))
        chunk = session.execute(chunk_query).scalar_one()
        if chunk.done:
            return  # another worker finished it while this one waited
        if postgres:
            # The chunk's statements are costed high enough to be JIT-compiled, which takes longer than running them.
            session.execute(text("SET LOCAL jit = off"))
        dpd_sql, quiet_sql = _quiet(session, thresholds)
        params = {"cob_day": day if postgres else day.isoformat(), "cob_active": LoanStatus.ACTIVE.value,
                  "cob_first": chunk.first_id, "cob_next": chunk.next_first_id}
        in_chunk = "loans.id >= :cob_first" + ("" if chunk.next_first_id is None else " AND loans.id < :cob_next")
        query = select(*_AGEING_COLUMNS).where(text(in_chunk), _candidates(day), text(f"({quiet_sql}) IS NOT TRUE"))
        # The loans stay locked while their step runs, so a concurrent posting waits instead of being overwritten.
        rows = session.execute(query.with_for_update() if postgres else query, params).all()
        aged = session.execute(text(f"UPDATE loans SET dpd = {dpd_sql} WHERE {in_chunk} AND {quiet_sql}"),
                               params).rowcount
        paused: dict[str, list] = {}
        if rows:
            in_range = [DelinquencyPause.loan_id >= chunk.first_id]
            if chunk.next_first_id is not None:
                in_range.append(DelinquencyPause.loan_id < chunk.next_first_id)
            paused = delinquency.pauses_of(session, *in_range)
        updates: list[dict[str, Any]] = []
        history: list[dict[str, Any]] = []
        drafts: list[dict[str, Any]] = []
        failures: list[CobFailure] = []
        reference = f"cob:{day.isoformat()}"
        for row in rows:
            try:
                before = RiskState(row.dpd, row.bucket, delinquency.to_class(row.classification),
                                   Ifrs9Stage(row.ifrs9_stage))
                # A row carries the Loan attributes `assess` reads; no ORM object is built per loan.
                dpd = delinquency.dpd_on(row.oldest_unpaid_due, day, paused.get(row.id, ()))
                after = delinquency.assess(row, dpd, day)
                if after == before:
                    continue
                records = diff_states(before, after, ChangeCause.COB_AGEING, day)
                facts = Facts(row.id, row.customer_id, day, before, after)
                loan_drafts = alert_drafts(rules, facts)
            except Exception as exc:  # noqa: BLE001 - one bad loan is reported and skipped, the batch goes on
                failures.append(CobFailure(business_date=day, loan_id=row.id, step="ageing",
                                           error=f"{type(exc).__name__}: {exc}"[:500]))
                continue
            updates.append({"b_id": row.id, "b_dpd": after.dpd, "b_bucket": after.bucket,
                            "b_class": delinquency.class_name(after.loan_class), "b_stage": int(after.stage)})
            history += delinquency.history_rows(row.id, records, day, reference, after.dpd)
            drafts += loan_drafts
        if updates:
            session.execute(_SET_STATE, updates)
        if history:
            session.execute(insert(RiskChange.__table__),
                            [{**h, "id": new_id(), "recorded_at": now()} for h in history])
        raised = raise_alerts(session, drafts)
        session.add_all(failures)
        processed, changed = len(rows) + aged, len(updates) + aged
        chunk.done, chunk.processed, chunk.changed, chunk.finished_at = True, processed, changed, now()
        session.add(chunk)
        session.execute(update(CobRun.__table__).where(CobRun.__table__.c.business_date == day).values(
            chunks_done=CobRun.__table__.c.chunks_done + 1,
            loans_processed=CobRun.__table__.c.loans_processed + processed,
            loans_changed=CobRun.__table__.c.loans_changed + changed,
            history_appended=CobRun.__table__.c.history_appended + len(history),
            alerts_raised=CobRun.__table__.c.alerts_raised + raised,
            failures=CobRun.__table__.c.failures + len(failures)))
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
        run = session.get(CobRun, day)
        if run is None:
            range_run = session.execute(select(CobRun).where(
                CobRun.status == RunStatus.RUNNING, CobRun.business_date < day, CobRun.through >= day)).scalar()
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


async def _close_day(ctx: CobContext, run: CobRun, steps: dict[str, Step] | None, progress: Progress | None,
                     max_chunks: int | None, lost: asyncio.Event) -> dict[str, Any] | None:
    """Age the day's pending chunks and run the steps; None when stopped first (slice done, or lease lost)."""
    pending = await asyncio.to_thread(_pending_chunks, ctx)
    done = run.chunks_total - len(pending)
    rules, thresholds = await asyncio.to_thread(_ageing_rules, ctx)
    for count, number in enumerate(pending):
        if (max_chunks is not None and count >= max_chunks) or lost.is_set():
            return None
        await asyncio.to_thread(_age_chunk, ctx, number, rules, thresholds)
        done += 1
        if progress is not None:
            progress(done, run.chunks_total)
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
