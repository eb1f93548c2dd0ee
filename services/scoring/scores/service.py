"""Scoring applicants with the champion (the challenger in shadow), applying the policy and storing each answer."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import func, insert
from sqlmodel import Session, select

from services.scoring.hashing import hash_personal, is_hashed
from services.scoring.policy.service import Treatment, treatment
from services.scoring.registry.serving import LoadedModel, Served
from services.scoring.scores.contract import CheckedRow
from services.scoring.scores.models import Score
from services.scoring.settings import ScoringSettings
from shared.ids import new_id, now
from services.scoring.training.bundle import score_rows
from shared.auth.scope import Visibility
from shared.errors import Problem
from shared.pagination import Page, PageRequest, keyset


@dataclass(frozen=True)
class Applicant:
    row: CheckedRow
    customer_id: str | None = None
    requested_amount: Decimal | None = None
    application_id: str | None = None
    branch: str | None = None  # who may read the score: see shared/auth/scope.py


@dataclass(frozen=True)
class ScoringContext:
    settings: ScoringSettings
    hash_key: bytes


def _reasons(model: LoadedModel, result: dict[str, Any]) -> list[dict[str, Any]]:
    unit = model.reason_unit
    points = result.get("points_per_feature") or {}
    return [{"feature": r["feature"], "impact": r["impact"], "unit": unit, "points": points.get(r["feature"])}
            for r in result["reasons"]]


def _held_for(treat: Treatment) -> list[dict[str, Any]]:
    """Each contract warning that turned an approval into a review, as a reason code of its own (first)."""
    return [{"feature": w.get("feature") or w["field"], "impact": 0.0, "unit": "input_contract", "points": None,
             "code": w["code"]} for w in treat.held_for]


def _rows(ctx: ScoringContext, model: LoadedModel, applicants: Sequence[Applicant], inputs: Sequence[dict[str, Any]],
          *, shadow: bool, actor: str, champion_ids: Sequence[str | None]) -> list[dict[str, Any]]:
    # One ONNX run for the whole batch; the shadow needs no reason codes.
    results = score_rows(model.bundle, [a.row.features for a in applicants], role=model.role,
                         top_k=0 if shadow else ctx.settings.top_reasons)
    created = now()
    rows = []
    for applicant, stored_inputs, result, champion_id in zip(applicants, inputs, results, champion_ids, strict=True):
        treat = treatment(ctx.settings, result["score"], applicant.requested_amount, applicant.row.warnings)
        rows.append({
            "id": new_id(), "customer_id": applicant.customer_id, "application_id": applicant.application_id,
            "branch": applicant.branch,
            "model_id": model.id, "model_version": model.label, "shadow": shadow,
            "champion_score_id": champion_id, "pd": result["pd"], "score": result["score"], "grade": treat.grade,
            "decision": treat.decision, "suggested_limit": treat.suggested_limit,
            "rate_adjustment_bps": treat.rate_adjustment_bps,
            "reasons": [] if shadow else [*_held_for(treat), *_reasons(model, result)],
            "warnings": applicant.row.warnings,
            "inputs": stored_inputs,
            "points_per_feature": result.get("points_per_feature"), "created_at": created, "created_by": actor,
        })
    return rows


def champion_rows(ctx: ScoringContext, served: Served, applicants: Sequence[Applicant],
                  actor: str) -> list[dict[str, Any]]:
    """The champion's score rows (personal inputs hashed), in the order given, ready to store; the challenger's
    shadow rows are `shadow_rows`, computed after the answer (see scores/shadow.py)."""
    inputs = [hash_personal(ctx.hash_key, a.row.features, ctx.settings.personal_fields) for a in applicants]
    return _rows(ctx, served.champion, applicants, inputs, shadow=False, actor=actor,
                 champion_ids=[None] * len(applicants))


def score_applicants(session: Session, ctx: ScoringContext, served: Served, applicants: Sequence[Applicant],
                     actor: str) -> list[dict[str, Any]]:
    """Score with the champion and store its rows in `session`'s transaction (a write that stores more than
    scores, such as an application). POST /scores stores through scores/store.py instead."""
    champion = champion_rows(ctx, served, applicants, actor)
    # A Core executemany: the ORM's bulk path costs as much again for a 10,000-row batch.
    session.execute(insert(Score.__table__), champion)
    return champion


def shadow_rows(ctx: ScoringContext, challenger: LoadedModel, applicants: Sequence[Applicant],
                champion: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The challenger's twin of each champion row (same inputs, caller and time), in one model run."""
    rows = _rows(ctx, challenger, applicants, [c["inputs"] for c in champion], shadow=True, actor="",
                 champion_ids=[c["id"] for c in champion])
    for row, twin in zip(rows, champion, strict=True):
        row["created_by"], row["created_at"] = twin["created_by"], twin["created_at"]
    return rows


def score_applicant(session: Session, ctx: ScoringContext, served: Served, applicant: Applicant,
                    actor: str) -> dict[str, Any]:
    return score_applicants(session, ctx, served, [applicant], actor)[0]


def get_score(session: Session, score_id: str, scope: Visibility) -> Score:
    """The score, or 404 when unknown or outside the caller's scope: its customer's branch, or for a partner the
    scores it asked for itself."""
    score = session.get(Score, score_id)
    if score is None or score.shadow or not scope.allows(score.branch, score.created_by):
        raise Problem(404, "Not found", f"No score {score_id!r}.")
    return score


def list_scores(session: Session, customer_id: str, paging: PageRequest, scope: Visibility,
                read: Callable[[list[Score]], list[Any]]) -> Page[Any]:
    """A customer's scores the caller may see, newest first: none, as for an unknown customer, when it may not
    see them."""
    query = select(Score).where(Score.customer_id == customer_id, Score.shadow == False,  # noqa: E712
                                scope.where(Score.branch, Score.created_by))
    return keyset(session, query, paging, Score.created_at, Score.id, descending=True, read=read)


def latest_inputs(session: Session, customer_ids: Sequence[str]) -> dict[str, tuple[str, dict[str, Any]]]:
    """Each customer's last champion score: (its id, its stored inputs without the hashed ones)."""
    if not customer_ids:
        return {}
    rank = func.row_number().over(partition_by=Score.customer_id,
                                  order_by=(Score.created_at.desc(), Score.id)).label("rank")
    ranked = (select(Score.id, Score.customer_id, Score.inputs, rank)
              .where(Score.customer_id.in_(set(customer_ids)), Score.shadow == False)  # noqa: E712
              .subquery())
    rows = session.execute(select(ranked.c.id, ranked.c.customer_id, ranked.c.inputs).where(ranked.c.rank == 1))
    return {row.customer_id: (row.id, {k: v for k, v in row.inputs.items() if not is_hashed(v)}) for row in rows}
