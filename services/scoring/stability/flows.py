"""The stability report for one model, as the endpoint and `loancrm scoring psi` both produce it."""

from __future__ import annotations

from typing import Any

from services.scoring.registry import service as registry
from services.scoring.registry.models import ModelState
from services.scoring.registry.store import ArtifactStore
from services.scoring.scores.service import ScoringContext
from services.scoring.stability.service import stability_report
from shared.db import Database
from shared.errors import Problem


def report_for(database: Database, store: ArtifactStore, context: ScoringContext, model_id: str | None,
               window: int | None) -> dict[str, Any]:
    """The champion's report unless a model id is given."""
    with database.session() as session:
        model = registry.get_model(session, model_id) if model_id else registry.in_state(session, ModelState.CHAMPION)
        if model is None:
            raise Problem(503, "Service unavailable", "No champion model is registered.")
        bundle = registry.load_model_bundle(session, store, model)
        return stability_report(session, bundle, model, window=window or context.settings.psi_window,
                                personal=context.settings.personal_fields, hash_key=context.hash_key)
