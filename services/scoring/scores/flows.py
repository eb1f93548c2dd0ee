"""Assembling what is scored: the caller's features, plus, for a customer, the relationship data from the
customer service's portrait (after checking the credit-bureau consent)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from services.scoring.registry.serving import Served
from services.scoring.scores.models import ScoreInput
from shared.clients.base import PeerTimeout, PeerUnavailable
from shared.clients.customer import ConsentPurpose, CustomerClient, CustomerNotFound, lending_refusal
from shared.errors import Problem, field_problem

# Customers fetched side by side for a batch: enough to hide latency without flooding the customer service.
PORTRAIT_CONCURRENCY = 16


def model_features(served: Served) -> dict[str, str]:
    """Feature name -> kind, over the champion and the challenger."""
    models = [served.champion] + ([served.challenger] if served.challenger else [])
    return {spec.name: spec.kind for model in models for spec in model.schema()}


def _as_feature(kind: str, value: Any) -> Any:
    # The portrait sends money as decimal strings; a numeric feature wants the number.
    if kind == "numeric" and isinstance(value, str):
        return float(value)
    return value


async def customer_features(peer: CustomerClient, customer_id: str, token: str,
                            wanted: dict[str, str]) -> tuple[dict[str, Any], str]:
    """The portrait's fields the served models use (tenure, contacts, satisfaction, complaints, ...), once the
    customer has consented to the credit-bureau query scoring stands for; and the customer's branch, which scopes
    who may read the score."""
    purpose = ConsentPurpose.CREDIT_BUREAU_QUERY
    try:
        consent = await peer.check_consent(customer_id, purpose, token=token)
        if not consent.allowed:
            raise Problem(403, "consent required",
                          f"Customer {customer_id!r} has not consented to {purpose}; scoring needs it.",
                          extra={"purpose": str(purpose)})
        fetched = await peer.get_portrait(customer_id, token=token)
    except CustomerNotFound as exc:
        raise field_problem("body.customer_id", f"no customer {customer_id!r} in the customer service") from exc
    except (PeerUnavailable, PeerTimeout):
        raise
    except Problem as exc:
        if exc.status in (401, 403) and exc.extra.get("service") == "customer":
            raise Problem(403, "Forbidden",
                          f"The customer service refused access to customer {customer_id!r}.") from exc
        if exc.status >= 500:  # never a 500 of ours: the peer misbehaved
            raise PeerUnavailable(peer.service, f"answered {exc.status}") from exc
        raise
    refusal = lending_refusal(fetched.status, fetched.kyc_status)
    if refusal:
        raise field_problem("body.customer_id", f"{refusal}; no credit decision is made for them")
    portrait = fetched.model_dump(mode="json")
    features = {name: _as_feature(wanted[name], value) for name, value in portrait.items() if name in wanted}
    return features, portrait["branch"]


Previous = dict[str, tuple[str, dict[str, Any]]]  # customer id -> (last score id, its stored inputs)
Rows = tuple[list[dict[str, Any]], list[list[dict[str, str]]], list[str | None]]


async def assemble(peer: CustomerClient, served: Served, inputs: Sequence[ScoreInput], token: str,
                   previous: Previous) -> Rows:
    """Feature dicts in input order, warnings and the customer's branch (None without a customer) per row. For
    a customer, the caller's features win over the portrait, which wins over the inputs of the customer's last
    score (what a re-scoring by id relies on)."""
    wanted = model_features(served)
    limit = asyncio.Semaphore(PORTRAIT_CONCURRENCY)

    async def one(item: ScoreInput) -> tuple[dict[str, Any], list[dict[str, str]], str | None]:
        if item.customer_id is None:
            return dict(item.features), [], None
        async with limit:
            fetched, branch = await customer_features(peer, item.customer_id, token, wanted)
        score_id, earlier = previous.get(item.customer_id, ("", {}))
        reused = sorted(earlier.keys() - fetched.keys() - item.features.keys())
        notes = [{"field": "body.features", "code": "previous_inputs",
                  "message": f"{', '.join(reused)} taken from score {score_id}"}] if reused else []
        return {**earlier, **fetched, **item.features}, notes, branch

    rows = await asyncio.gather(*(one(item) for item in inputs))
    return [row[0] for row in rows], [row[1] for row in rows], [row[2] for row in rows]
