"""The steps COB runs after ageing, and the command-line entry point (`loancrm monitoring cob --date`)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

from sqlalchemy import or_, select
from tqdm import tqdm

from services.monitoring.alerts.service import warn
from services.monitoring.collections.flows import deliver_outbox
from services.monitoring.collections.service import settle_promises
from services.monitoring.checks.service import schedule_risk_reviews
from services.monitoring.cob.flows import CobContext, Step, run_cob
from services.monitoring.cob.models import CobReport
from services.monitoring.loans.models import Loan, LoanStatus
from services.monitoring.peers import CustomerPeer, Peers, ScoringPeer
from services.monitoring.rules.engine import Facts
from services.monitoring.rules.models import RuleKind
from services.monitoring.settings import BatchSettings, MonitoringSettings
from shared.db import Database
from shared.errors import Problem
from shared.settings import KernelSettings, load_settings

RESCORE_BATCH = 500
NO_TOKEN = "no token to call peers with (set LOANCRM_API_TOKEN for batch runs)"


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
        return list(session.execute(select(Loan.customer_id).distinct().where(
            Loan.status == LoanStatus.ACTIVE, or_(Loan.scored_on.is_(None), Loan.scored_on <= stale))
            .order_by(Loan.customer_id)).scalars())


def _store_scores(ctx: CobContext, scores: list[dict[str, Any]]) -> int:
    """Keep each borrower's new score on their loans; a sharp fall raises the score-drop rule."""
    raised = 0
    with ctx.database.session() as session:
        for score in scores:
            points = score.get("points", score.get("score"))
            if points is None:
                continue
            loans = session.execute(select(Loan).where(Loan.customer_id == score["customer_id"],
                                                       Loan.status == LoanStatus.ACTIVE)).scalars()
            for loan in loans:
                facts = Facts(loan.id, loan.customer_id, ctx.day, score={
                    "previous_points": loan.last_score, "points": int(points),
                    "previous_grade": loan.last_grade, "grade": score.get("grade")})
                raised += warn(session, facts, kinds=[RuleKind.SCORE_DROP])
                loan.last_score, loan.last_grade, loan.scored_on = int(points), score.get("grade"), ctx.day
                session.add(loan)
        session.commit()
    return raised


async def rescore(ctx: CobContext) -> dict[str, Any]:
    if ctx.peers is None or not ctx.token:
        return skipped(NO_TOKEN)
    customers = await asyncio.to_thread(_due_for_rescore, ctx)
    scored = raised = 0
    for batch in _batches(customers, RESCORE_BATCH):
        try:
            scores = await ctx.peers.scoring.score_batch(batch, ctx.token)
        except Problem as exc:
            return skipped(f"scoring service: {exc.detail}") | {"customers_scored": scored}
        raised += await asyncio.to_thread(_store_scores, ctx, scores)
        scored += len(scores)
    return done(customers_due=len(customers), customers_scored=scored, alerts_raised=raised)


def _settle_promises(ctx: CobContext) -> dict[str, Any]:
    with ctx.database.session() as session:
        kept, broken = settle_promises(session, ctx.day)
        session.commit()
    return done(kept=kept, broken=broken)


async def promises(ctx: CobContext) -> dict[str, Any]:
    return await asyncio.to_thread(_settle_promises, ctx)


async def outbox(ctx: CobContext) -> dict[str, Any]:
    if ctx.peers is None or not ctx.token:
        return skipped(NO_TOKEN)
    result = await deliver_outbox(ctx.database, ctx.peers, ctx.token)
    if result["still_queued"]:
        return skipped(f"customer service: {result['last_error']}") | result
    return done(**result)


def _schedule_reviews(ctx: CobContext) -> dict[str, Any]:
    with ctx.database.session() as session:
        created = schedule_risk_reviews(session, ctx.day)
        session.commit()
    return done(reviews_scheduled=created)


async def check_tasks(ctx: CobContext) -> dict[str, Any]:
    return await asyncio.to_thread(_schedule_reviews, ctx)


def default_steps() -> dict[str, Step]:
    return {"check_tasks": check_tasks, "promises": promises, "rescore": rescore, "contact_log_outbox": outbox}


def run_cob_cli(kernel: KernelSettings, business_date: date, *, progress: bool = True,
                max_chunks: int | None = None) -> CobReport:
    """Close `business_date` from the command line, with a progress bar; peers are called with LOANCRM_API_TOKEN."""
    settings = load_settings(MonitoringSettings)
    token = load_settings(BatchSettings).api_token
    database = Database(kernel.database_url("monitoring"))

    async def main() -> CobReport:
        # aiohttp sessions belong to one event loop, so the clients are made inside this one.
        peers = Peers(CustomerPeer(kernel), ScoringPeer(kernel)) if token else None
        ctx = CobContext(database=database, settings=settings, day=business_date, peers=peers, token=token)
        with tqdm(desc=f"COB {business_date.isoformat()}", unit="chunk", disable=not progress) as bar:
            def advance(done_chunks: int, total: int) -> None:
                bar.total = total
                bar.update(done_chunks - bar.n)

            try:
                return await run_cob(ctx, triggered_by="cli", steps=default_steps(), progress=advance,
                                     max_chunks=max_chunks)
            finally:
                if peers is not None:
                    await peers.aclose()

    try:
        return asyncio.run(main())
    finally:
        database.dispose()
