"""The steps COB runs after ageing, and the command-line entry point (`loancrm monitoring cob --date [--through]`)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Iterator
from datetime import date, timedelta
from typing import Any

import httpx
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session
from tqdm import tqdm

from services.monitoring.alerts.service import warn
from services.monitoring.collections.flows import deliver_outbox
from services.monitoring.collections.service import settle_promises
from services.monitoring.checks.service import schedule_periodic_checks, schedule_risk_reviews
from services.monitoring.cob.flows import CobContext, Step, run_cob, start_run
from services.monitoring.cob.models import CobReport, CobRun, RunStatus
from services.monitoring.collateral.scheduled import revaluations
from services.monitoring.loans.models import Loan, LoanStatus, new_id
from services.monitoring.loans.service import note_score, note_segments
from services.monitoring.peers import connect
from services.monitoring.reminders.scheduled import remind
from services.monitoring.rules.engine import Facts
from services.monitoring.rules.models import RuleKind
from services.monitoring.settings import MonitoringSettings
from services.monitoring.transactions.service import customers_with_feed, warn_on_feed
from shared.clients.customer import CustomerNotFound, Portrait
from shared.clients.identity import CallerToken, Credentials, batch_credentials
from shared.clients.scoring import Score, ScoreRow
from shared.db import Database
from shared.errors import Problem
from shared.settings import KernelSettings, load_settings

RESCORE_BATCH = 500
# Portraits read side by side: enough to hide latency without flooding the customer service.
PORTRAIT_CONCURRENCY = 16
FEED_BATCH = 500
NO_TOKEN = ("no identity to call peers with (the batch client's secret: LOANCRM_BATCH_CLIENT_SECRET, or "
            "`loancrm up` once to provision it)")


def skipped(reason: str) -> dict[str, Any]:
    return {"status": "skipped", "reason": reason}


def done(**figures: Any) -> dict[str, Any]:
    return {"status": "done", **figures}


def _batches(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _due_for_rescore(ctx: CobContext) -> list[str]:
    stale = ctx.day - timedelta(days=ctx.settings.rescore_every_days)
    with ctx.database.session() as session:
        # Only borrowers the scoring service has scored: re-scoring by id reuses their stored inputs, and one
        # never scored (no application features) would fail the whole batch.
        return list(session.execute(select(Loan.customer_id).distinct().where(
            Loan.status == LoanStatus.ACTIVE, Loan.scored_on <= stale)
            .order_by(Loan.customer_id)).scalars())


Visit = Callable[[Session, Loan], Facts | None]  # notes what COB learnt on a loan; the facts to warn on, if any


def _visit_borrowers(ctx: CobContext, visits: Iterable[tuple[str, Visit]], *kinds: RuleKind) -> int:
    """Apply each borrower's visit to their active loans, warning with these kinds' rules; returns alerts raised."""
    raised = 0
    with ctx.database.session() as session:
        for customer_id, visit in visits:
            loans = session.execute(select(Loan).where(Loan.customer_id == customer_id,
                                                       Loan.status == LoanStatus.ACTIVE)).scalars()
            for loan in loans:
                facts = visit(session, loan)
                if facts is not None:
                    raised += warn(session, facts, kinds=kinds)
                session.add(loan)
        session.commit()
    return raised


def _rescored(day: date, score: Score) -> Visit:
    """Keep the borrower's new score on the loan; a sharp fall from the last one is the score-drop rule's."""
    def visit(_: Session, loan: Loan) -> Facts:
        facts = Facts(loan.id, loan.customer_id, day, score={
            "previous_points": loan.last_score, "points": score.points,
            "previous_grade": loan.last_grade, "grade": score.grade})
        note_score(loan, score, day)
        return facts
    return visit


async def rescore(ctx: CobContext) -> dict[str, Any]:
    if ctx.peers is None or ctx.credentials is None:
        return skipped(NO_TOKEN)
    customers = await asyncio.to_thread(_due_for_rescore, ctx)
    scored = raised = 0
    for batch in _batches(customers, RESCORE_BATCH):
        try:
            scores = await ctx.peers.scoring.score_batch([ScoreRow(customer_id=c) for c in batch],
                                                         token=await ctx.credentials.token())
        except Problem as exc:
            return skipped(f"scoring service: {exc.detail}") | {"customers_scored": scored}
        visits = [(score.customer_id, _rescored(ctx.day, score)) for score in scores]
        raised += await asyncio.to_thread(_visit_borrowers, ctx, visits, RuleKind.SCORE_DROP)
        scored += len(scores)
    return done(customers_due=len(customers), customers_scored=scored, alerts_raised=raised)


def _due_for_contact_check(ctx: CobContext) -> list[str]:
    stale = ctx.day - timedelta(days=ctx.settings.contact_check_every_days)
    with ctx.database.session() as session:
        return list(session.execute(select(Loan.customer_id).distinct().where(
            Loan.status == LoanStatus.ACTIVE, or_(Loan.contacts_checked_on.is_(None),
                                                  Loan.contacts_checked_on <= stale))
            .order_by(Loan.customer_id)).scalars())


def _contacts_read(day: date, portrait: Portrait | None) -> Visit:
    """Note the check and the borrower's segments (portfolio figures read them); a complaint followed by silence
    is the complaint-silence rule's, falling survey scores the satisfaction rule's."""
    def visit(session: Session, loan: Loan) -> Facts | None:
        loan.contacts_checked_on = day
        if portrait is None:
            return None
        note_segments(session, loan, portrait.value_tier, portrait.segments)
        return Facts(loan.id, loan.customer_id, day, contact={
            "complaints_12m": portrait.complaints_12m, "days_since_last_contact": portrait.days_since_last_contact,
            "csat_trend": portrait.csat_trend, "nps_latest": portrait.nps_latest})
    return visit


async def contact_silence(ctx: CobContext) -> dict[str, Any]:
    if ctx.peers is None or ctx.credentials is None:
        return skipped(NO_TOKEN)
    customers = await asyncio.to_thread(_due_for_contact_check, ctx)
    limit = asyncio.Semaphore(PORTRAIT_CONCURRENCY)

    async def portrait(customer_id: str) -> Portrait | None:
        async with limit:
            try:
                return await ctx.peers.customer.get_portrait(customer_id, token=await ctx.credentials.token())
            except CustomerNotFound:
                return None  # gone from the customer service: nothing to read, checked all the same

    checked = raised = 0
    for batch in _batches(customers, RESCORE_BATCH):
        try:
            portraits = await asyncio.gather(*(portrait(c) for c in batch))
        except Problem as exc:
            return skipped(f"customer service: {exc.detail}") | {"customers_checked": checked}
        visits = [(c, _contacts_read(ctx.day, p)) for c, p in zip(batch, portraits, strict=True)]
        raised += await asyncio.to_thread(_visit_borrowers, ctx, visits, RuleKind.COMPLAINT_SILENCE,
                                          RuleKind.SATISFACTION_FALLING)
        checked += len(batch)
    return done(customers_checked=checked, alerts_raised=raised)


def _settle_promises(ctx: CobContext) -> dict[str, Any]:
    with ctx.database.session() as session:
        kept, broken, raised = settle_promises(session, ctx.day)
        session.commit()
    return done(kept=kept, broken=broken, alerts_raised=raised)


async def promises(ctx: CobContext) -> dict[str, Any]:
    return await asyncio.to_thread(_settle_promises, ctx)


async def outbox(ctx: CobContext) -> dict[str, Any]:
    if ctx.peers is None or ctx.credentials is None:
        return skipped(NO_TOKEN)
    try:
        result = await deliver_outbox(ctx.database, ctx.peers, await ctx.credentials.token())
    except Problem as exc:  # no token from the gateway
        return skipped(exc.detail or exc.title)
    if result["still_queued"]:
        return skipped(f"customer service: {result['last_error']}") | result
    return done(**result)


def _schedule_reviews(ctx: CobContext) -> dict[str, Any]:
    with ctx.database.session() as session:
        created = schedule_risk_reviews(session, ctx.day, ctx.settings.check_cadence)
        since = session.execute(select(func.max(CobRun.business_date)).where(
            CobRun.business_date < ctx.day, CobRun.status == RunStatus.COMPLETED)).scalar()
        periodic = schedule_periodic_checks(session, ctx.day, since=since, cadence=ctx.settings.check_cadence)
        session.commit()
    return done(reviews_scheduled=created, periodic_checks_scheduled=periodic)


async def check_tasks(ctx: CobContext) -> dict[str, Any]:
    return await asyncio.to_thread(_schedule_reviews, ctx)


def _feed_rules(ctx: CobContext) -> dict[str, Any]:
    with ctx.database.session() as session:
        customers = customers_with_feed(session, ctx.day)
    raised = 0
    for batch in _batches(customers, FEED_BATCH):
        with ctx.database.session() as session:
            # Closing the day says its feed is in: a salary gap runs to this day.
            raised += warn_on_feed(session, batch, ctx.day, known_until=ctx.day)
            session.commit()
    return done(customers_checked=len(customers), alerts_raised=raised)


async def feed_rules(ctx: CobContext) -> dict[str, Any]:
    return await asyncio.to_thread(_feed_rules, ctx)


def default_steps() -> dict[str, Step]:
    return {"check_tasks": check_tasks, "promises": promises, "feed_rules": feed_rules, "rescore": rescore,
            "contact_silence": contact_silence, "contact_log_outbox": outbox, "collateral_revaluations": revaluations,
            "reminders": remind}


def run_identity(kernel: KernelSettings, caller_token: str,
                 transport: httpx.AsyncBaseTransport | None = None) -> Credentials:
    """Who a run started through the API calls peers as: the batch client when one is provisioned (its tokens
    renew, so a run outlives the caller's sign-in), else the caller who started it."""
    return batch_credentials(kernel, transport) or CallerToken(caller_token)


def run_cob_cli(kernel: KernelSettings, business_date: date, *, through: date | None = None, progress: bool = True,
                max_chunks: int | None = None, steps: dict[str, Step] | None = None,
                transports: dict[str, httpx.AsyncBaseTransport] | None = None) -> CobReport:
    """Close `business_date` (through `through`, each day in order) from the command line, with a progress bar;
    peers are called as the batch client (its token renewed as it nears expiry), and with LOANCRM_COB_BROKER_URL
    set the chunks are aged by `loancrm worker`s. Returns the last day's report; raises DomainError for a date
    the business-date rules refuse. `transports` replaces the network per peer (tests pass in-process ones)."""
    from services.monitoring.cob.workers import queue_from_settings

    settings = load_settings(MonitoringSettings)
    database = Database(kernel.database_url("monitoring"))
    queue = queue_from_settings()

    async def main() -> CobReport:
        # aiohttp sessions belong to one event loop, so the clients are made inside this one.
        credentials = batch_credentials(kernel, (transports or {}).get("gateway"))
        peers = connect(kernel, transports) if credentials is not None else None
        ctx = CobContext(database=database, settings=settings, day=business_date, peers=peers,
                         credentials=credentials, queue=queue)
        owner = new_id()
        try:
            run = await start_run(ctx, "cli", owner=owner, through=through)  # a refused date stops before the bar
            with tqdm(desc=f"COB {business_date.isoformat()}", unit="chunk", disable=not progress) as bar:
                def advance(done_chunks: int, total: int) -> None:
                    bar.total = total
                    bar.update(done_chunks - bar.n)

                return await run_cob(ctx, triggered_by="cli", steps=default_steps() if steps is None else steps,
                                     progress=advance, max_chunks=max_chunks, started=run, owner=owner)
        finally:
            if peers is not None:
                await peers.aclose()
            if credentials is not None:
                await credentials.aclose()

    try:
        return asyncio.run(main())
    finally:
        database.dispose()
        if queue is not None:
            queue.close()
