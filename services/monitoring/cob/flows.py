"""Close of business: age every loan to the business date, reclassify, raise alerts, re-score, retry the outbox.

Idempotent per date (a finished date answers its report), resumable (loans are split into id-range chunks, each
committed together with its loans' writes and its own "done" mark), set-based (only loans that can have changed
are read, only rows that did change are written, in one statement per chunk), and a failing loan is recorded and
skipped rather than stopping the batch.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import bindparam, insert, or_, select, text, update
from sqlmodel import Session

from services.monitoring.alerts.service import raise_alerts
from services.monitoring.business_day import business_date, set_business_date
from services.monitoring.classification.rules import ChangeCause, Ifrs9Stage, RiskState, diff_states
from services.monitoring.cob.models import CobChunk, CobFailure, CobReport, CobRun, FailureRead, RunStatus
from services.monitoring.delinquency import service as delinquency
from services.monitoring.delinquency.models import DelinquencyPause, RiskChange
from services.monitoring.errors import DomainError
from services.monitoring.loans.models import Loan, LoanStatus, new_id, now
from services.monitoring.peers import Peers
from services.monitoring.rules.engine import Facts
from services.monitoring.rules.models import RuleKind
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
        starts = [r[0] for r in session.execute(text(
            "SELECT id FROM (SELECT id, ROW_NUMBER() OVER (ORDER BY id) AS rn FROM loans WHERE status = :active) AS t "
            "WHERE (rn - 1) % :size = 0 ORDER BY id"), {"active": LoanStatus.ACTIVE.value, "size": run.chunk_size})]
        session.add(run)
        session.add_all(CobChunk(business_date=ctx.day, number=n, first_id=first,
                                 next_first_id=starts[n + 1] if n + 1 < len(starts) else None)
                        for n, first in enumerate(starts))
        run.chunks_total = len(starts)
        session.commit()
        return run


def _pending_chunks(ctx: CobContext) -> list[int]:
    with ctx.database.session() as session:
        return list(session.execute(select(CobChunk.number).where(
            CobChunk.business_date == ctx.day, CobChunk.done.is_(False)).order_by(CobChunk.number)).scalars())


def _age_chunk(ctx: CobContext, number: int) -> None:
    """Age one id range: read only loans that can change, write only those that did, all in one transaction."""
    day = ctx.day
    with ctx.database.session() as session:
        chunk_query = select(CobChunk).where(CobChunk.business_date == day, CobChunk.number == number)
        if _is_postgres(session):
            chunk_query = chunk_query.with_for_update()
        else:
            # SQLite: take the write lock before reading, so a second worker waits and then sees the chunk done.
            session.execute(update(CobChunk).where(CobChunk.business_date == day, CobChunk.number == number)
                            .values(done=CobChunk.done))
        chunk = session.execute(chunk_query).scalar_one()
        if chunk.done:
            return  # another worker finished it while this one waited
        query = select(*_AGEING_COLUMNS).where(
            LOANS.c.status == LoanStatus.ACTIVE.value, LOANS.c.id >= chunk.first_id,
            or_(LOANS.c.oldest_unpaid_due < day, LOANS.c.dpd != 0, LOANS.c.restructured_on.is_not(None)))
        if chunk.next_first_id is not None:
            query = query.where(LOANS.c.id < chunk.next_first_id)
        # The loans stay locked while their step runs, so a concurrent posting waits instead of being overwritten.
        rows = session.execute(query.with_for_update() if _is_postgres(session) else query).all()
        in_range = [DelinquencyPause.loan_id >= chunk.first_id]
        if chunk.next_first_id is not None:
            in_range.append(DelinquencyPause.loan_id < chunk.next_first_id)
        paused = delinquency.pauses_of(session, *in_range)
        rules = enabled_rules(session, kinds=[RuleKind.DPD_REACHED, RuleKind.CLASS_WORSENED])
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
        chunk.done, chunk.processed, chunk.changed, chunk.finished_at = True, len(rows), len(updates), now()
        session.add(chunk)
        session.execute(update(CobRun.__table__).where(CobRun.__table__.c.business_date == day).values(
            chunks_done=CobRun.__table__.c.chunks_done + 1,
            loans_processed=CobRun.__table__.c.loans_processed + len(rows),
            loans_changed=CobRun.__table__.c.loans_changed + len(updates),
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
) -> CobReport:
    """Close `ctx.day`: a finished date answers its report; an unfinished one continues where it stopped.

    `max_chunks` stops after that many chunks (an operator's way to run a slice; tests use it as a crash).
    """
    run = await asyncio.to_thread(_start, ctx, triggered_by)
    if run.status == RunStatus.RUNNING:
        pending = await asyncio.to_thread(_pending_chunks, ctx)
        done = run.chunks_total - len(pending)
        for count, number in enumerate(pending):
            if max_chunks is not None and count >= max_chunks:
                return report(ctx.database, ctx.day)  # type: ignore[return-value]
            await asyncio.to_thread(_age_chunk, ctx, number)
            done += 1
            if progress is not None:
                progress(done, run.chunks_total)
        results = {name: await step(ctx) for name, step in (steps or {}).items()}
        await asyncio.to_thread(_finish, ctx, results)
    return report(ctx.database, ctx.day)  # type: ignore[return-value]
