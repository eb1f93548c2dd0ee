from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel

from services.scoring import api
from services.scoring.db import idempotency
from services.scoring.registry.serving import Served
from services.scoring.scores import service
from services.scoring.scores.contract import CheckedRow, Contract, check_rows
from services.scoring.scores.flows import Previous, assemble
from services.scoring.scores.models import BatchRead, BatchRequest, ScoreInput, ScoreRead
from services.scoring.scores.store import KeyRow
from shared.auth.dependencies import bearer_token
from shared.auth.scope import visibility
from shared.auth.tokens import Principal
from shared.errors import field_problem, problem_responses
from shared.idempotency import check_key, fingerprint, in_progress
from shared.pagination import Page, paged

router = APIRouter(tags=["scores"])


def score_read(row: Any) -> ScoreRead:
    """From a stored Score or the dict just inserted."""
    data = row if isinstance(row, dict) else row.model_dump()
    return ScoreRead.model_validate({**data, "points": round(data["score"])})


@dataclass
class Assembled:
    served: Served | None
    features: list[dict[str, Any]]
    notes: list[list[dict[str, str]]]
    branches: list[str | None]  # each row's customer's branch; None for a row without a customer

    def check(self, state: api.ScoringState, prefixes: list[str]) -> tuple[Served, list[CheckedRow]]:
        """Against the served models' contract; the notes on how the features were assembled become warnings."""
        served = self.served or state.serving.current()
        rows = check_rows(Contract.of(served, state.context.settings.range_tolerance), self.features, prefixes)
        for row, notes in zip(rows, self.notes, strict=True):
            row.warnings.extend(notes)
        return served, rows


async def features_for(request: Request, inputs: list[ScoreInput]) -> Assembled:
    """Plain rows need no peer call, and so no extra hop to the thread pool for the models."""
    if all(item.customer_id is None for item in inputs):
        return Assembled(None, [dict(item.features) for item in inputs], [[] for _ in inputs], [None] * len(inputs))
    state = api.state(request)

    def served_and_previous() -> tuple[Served, Previous]:
        with state.database.session() as session:
            ids = [item.customer_id for item in inputs if item.customer_id is not None]
            return state.serving.current(), service.latest_inputs(session, ids)

    served, previous = await run_in_threadpool(served_and_previous)
    features, notes, branches = await assemble(state.customer, served, inputs, bearer_token(request), previous)
    return Assembled(served, features, notes, branches)


@dataclass
class Scored:
    """The champion's rows and the answer, before anything is stored."""

    served: Served
    applicants: list[service.Applicant]
    champion: list[dict[str, Any]]
    body: str  # the answer's JSON text, serialised once: sent, and remembered for a retry


def _scored(state: api.ScoringState, principal: Principal, inputs: list[ScoreInput], assembled: Assembled,
            prefixes: list[str], batch: bool) -> Scored:
    """CPU only (contract, models, policy, answer): no database work, once the served models are known."""
    served, rows = assembled.check(state, prefixes)
    # A score is seen where its customer is, or, without a customer, in the branch of whoever asked for it.
    applicants = [service.Applicant(row, item.customer_id, item.requested_amount, branch=branch or principal.branch)
                  for row, item, branch in zip(rows, inputs, assembled.branches, strict=True)]
    champion = service.champion_rows(state.context, served, applicants, principal.sub)
    scored = [score_read(r) for r in champion]
    answer = BatchRead(model_version=served.champion.label, count=len(scored), scores=scored) if batch else scored[0]
    return Scored(served, applicants, champion, answer.model_dump_json())


async def _stored_answer(state: api.ScoringState, principal: Principal, key: str | None, command_name: str,
                         command: BaseModel, scored: Scored, small: bool) -> Response:
    """Commit the champion's rows (with the Idempotency-Key row, if any) before answering; then the challenger
    shadows, off the request path. A small SQLite write is done right here when no other writer is in (see
    scores/store.py), anything else in the thread pool."""
    writer = state.writer
    key_row = None if key is None else KeyRow(principal.sub, key, fingerprint(command_name, command.model_dump(
        mode="json")), 201, scored.body)
    if key_row is not None and idempotency.purge_due():
        await run_in_threadpool(idempotency.purge, state.database)
    stored = writer.store_now(scored.champion, key_row) if small and writer.can_store_now else None
    if stored is None:
        stored = await run_in_threadpool(writer.store, scored.champion, key_row)
    if not stored:
        # The key was taken (a retry, or a concurrent twin that won): its answer, or 422 if for another request.
        assert key_row is not None
        first = await run_in_threadpool(writer.stored, key_row.owner, key_row.key, key_row.fingerprint)
        if first is None:  # the key had expired and is forgotten now: store under it afresh
            if not await run_in_threadpool(writer.store, scored.champion, key_row):
                raise in_progress()
        else:
            return JSONResponse(first.body, status_code=first.status_code, headers={"Idempotent-Replayed": "true"})
    state.shadow.put(scored.served.challenger, scored.applicants, scored.champion)
    return Response(scored.body, status_code=201, media_type="application/json")


@router.post("/scores", status_code=201, response_model=ScoreRead,
             summary="Score one applicant by features and/or customer id (loan officer, risk analyst, partner, admin)",
             responses=problem_responses(403, 409, 422, 428, 503))
async def score_applicant(
    request: Request,
    command: ScoreInput,
    principal: api.Scorer,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> Response:
    key = check_key(idempotency_key, required=False)
    if command.customer_id is None and not command.features:
        raise field_problem("body.features", "give the applicant's features, a customer_id, or both")
    state = api.state(request)
    assembled = await features_for(request, [command])
    if assembled.served is None:  # re-reading the registry is database work: in the thread pool
        assembled.served = state.serving.fresh() or await run_in_threadpool(state.serving.current)
    # One applicant is ~0.3 ms of CPU: scored on the event loop, as a thread would hold the GIL for it anyway.
    scored = _scored(state, principal, [command], assembled, ["body.features"], batch=False)
    return await _stored_answer(state, principal, key, "score_applicant", command, scored, small=True)


@router.post("/scores:batch", status_code=201, response_model=BatchRead,
             summary="Score up to 10,000 rows in one call, in one model run "
                     "(loan officer, risk analyst, partner, admin)",
             responses=problem_responses(403, 409, 422, 428, 503))
async def score_batch(
    request: Request,
    command: BatchRequest,
    principal: api.BatchScorer,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> Response:
    key = check_key(idempotency_key, required=False)
    state = api.state(request)
    limit = state.context.settings.max_batch_rows
    if len(command.rows) > limit:
        raise field_problem("body.rows", f"at most {limit} rows per call")
    for i, item in enumerate(command.rows):
        if item.customer_id is None and not item.features:
            raise field_problem(f"body.rows.{i}", "give the row's features, a customer_id, or both")
    assembled = await features_for(request, command.rows)
    prefixes = [f"body.rows.{i}.features" for i in range(len(command.rows))]
    # Up to 10,000 rows: scored in the thread pool, so the event loop keeps serving meanwhile.
    scored = await run_in_threadpool(_scored, state, principal, command.rows, assembled, prefixes, True)
    return await _stored_answer(state, principal, key, "score_batch", command, scored, small=False)


@router.get("/scores/{score_id}", response_model=ScoreRead, summary="One stored score",
            responses=problem_responses(404))
def get_score(request: Request, score_id: str, principal: api.ScoreReader) -> ScoreRead:
    with api.state(request).database.session() as session:
        return score_read(service.get_score(session, score_id, visibility(principal)))


@router.get("/scores", response_model=Page[ScoreRead], summary="A customer's scores, newest first",
            responses=problem_responses(422))
def list_scores(
    request: Request,
    principal: api.ScoreLister,
    customer_id: Annotated[str, Query(min_length=1, max_length=64)],
    paging: paged(20) = None,
) -> Page[ScoreRead]:
    with api.state(request).database.session() as session:
        return service.list_scores(session, customer_id, paging, visibility(principal),
                                   read=lambda scores: [score_read(s) for s in scores])
