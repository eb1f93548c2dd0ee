"""Close of business: age every loan to the business date, reclassify, raise alerts, re-score, retry the outbox.

Idempotent per date (a finished date answers its report), resumable (loans are split into id-range chunks, each
committed together with its loans' writes and its own "done" mark), set-based (only loans that can have changed
are looked at; those whose DPD alone moves are aged by one UPDATE per chunk in SQL, and only the few that reach a
bucket, class, stage or rule threshold, or need judgement, are read into Python and written back in one statement
per chunk), and a failing loan is recorded and skipped rather than stopping the batch.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import ColumnElement, and_, bindparam, func, insert, or_, select, text, update
from sqlmodel import Session

from services.monitoring.alerts.service import raise_alerts
from services.monitoring.business_day import business_date, set_business_date
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
                   LOANS.c.restructured_on)
_SET_STATE = (update(LOANS).where(LOANS.c.id == bindparam("b_id"))
              .values(dpd=bindparam("b_dpd"), bucket=bindparam("b_bucket"),
                      classification=bindparam("b_class"), ifrs9_stage=bindparam("b_stage")))

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
    loan not overdue carries no days past due. Both conditions are indexed."""
    return and_(LOANS.c.status == LoanStatus.ACTIVE.value, or_(
        LOANS.c.oldest_unpaid_due < day, LOANS.c.restructured_on.is_not(None)))


def _chunk_starts(session: Session, day: date, size: int) -> tuple[list[str], int]:
    """Split the id space into ranges of about `size` loans ageing can change, so that a chunk's work, not its
    count of current loans, is balanced. Loan ids are random hex (UUID4), so equal slices of the hex range hold
    about equal numbers of loans; the first range starts below every id and the last runs past every id, so the
    ranges cover every loan whatever its id."""
    candidates = session.execute(select(func.count()).select_from(LOANS).where(_candidates(day))).scalar_one()
    chunks = min(max(1, -(-candidates // size)), 16 ** 6)
    return [""] + sorted({f"{k * 16 ** 6 // chunks:06x}" for k in range(1, chunks)}), candidates


def _start(ctx: CobContext, triggered_by: str) -> CobRun:
    with ctx.database.session() as session:
        run = session.get(CobRun, ctx.day)
        if run is not None:
            if run.status == RunStatus.RUNNING:
                run.attempts += 1
                session.add(run)
                session.commit()
            return run
        current = business_date(session, ctx.settings)
        if ctx.day < current:
            raise DomainError("business_date", f"must not be before the business date {current.isoformat()}")
        later = session.execute(select(CobRun.business_date).where(CobRun.business_date > ctx.day).limit(1)).first()
        if later is not None:
            raise DomainError("business_date", f"COB already ran for the later date {later[0].isoformat()}")
        run = CobRun(business_date=ctx.day, chunk_size=ctx.settings.cob_chunk_size, triggered_by=triggered_by)
        starts, run.loans_total = _chunk_starts(session, ctx.day, run.chunk_size)
        session.add(run)
        session.add_all(CobChunk(business_date=ctx.day, number=n, first_id=first,
                                 next_first_id=starts[n + 1] if n + 1 < len(starts) else None)
                        for n, first in enumerate(starts))
        run.chunks_total = len(starts)
        session.commit()
        return run


async def start_run(ctx: CobContext, triggered_by: str) -> CobRun:
    """Open the date's run (planning its chunks), or count one more attempt at a running one; a finished date
    answers its run. Raises DomainError for a date before the business date or after a later closed one."""
    return await asyncio.to_thread(_start, ctx, triggered_by)


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
            history += delinquency.history_rows(row.id, records, day, reference)
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


def _finish(ctx: CobContext, steps: dict[str, Any]) -> None:
    with ctx.database.session() as session:
        run = session.get(CobRun, ctx.day)
        run.status, run.finished_at, run.steps = RunStatus.COMPLETED, now(), steps
        session.add(run)
        set_business_date(session, ctx.day)
        session.commit()


def report(database: Database, day: date) -> CobReport | None:
    with database.session() as session:
        run = session.get(CobRun, day)
        if run is None:
            return None
        failures = session.execute(select(CobFailure).where(CobFailure.business_date == day)
                                   .order_by(CobFailure.recorded_at)).scalars()
        listed = [FailureRead.model_validate(f) for f in failures]
        return CobReport.model_validate({**run.model_dump(), "failures": listed})


async def run_cob(
    ctx: CobContext,
    *,
    triggered_by: str,
    steps: dict[str, Step] | None = None,
    progress: Progress | None = None,
    max_chunks: int | None = None,
    started: CobRun | None = None,
) -> CobReport:
    """Close `ctx.day`: a finished date answers its report; an unfinished one continues where it stopped.

    `max_chunks` stops after that many chunks (an operator's way to run a slice; tests use it as a crash).
    `started` is the run `start_run` already opened (or resumed) for this date.
    """
    run = started or await asyncio.to_thread(_start, ctx, triggered_by)
    if run.status == RunStatus.RUNNING:
        pending = await asyncio.to_thread(_pending_chunks, ctx)
        done = run.chunks_total - len(pending)
        rules, thresholds = await asyncio.to_thread(_ageing_rules, ctx)
        for count, number in enumerate(pending):
            if max_chunks is not None and count >= max_chunks:
                return report(ctx.database, ctx.day)  # type: ignore[return-value]
            await asyncio.to_thread(_age_chunk, ctx, number, rules, thresholds)
            done += 1
            if progress is not None:
                progress(done, run.chunks_total)
        results = {name: await step(ctx) for name, step in (steps or {}).items()}
        await asyncio.to_thread(_finish, ctx, results)
    return report(ctx.database, ctx.day)  # type: ignore[return-value]
