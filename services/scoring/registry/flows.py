"""Multi-step registry work: register a training result, and make sure a fresh install has a champion."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from services.scoring.registry import service
from services.scoring.registry.models import ModelState, ModelVersion, PromotionTarget
from services.scoring.registry.store import ArtifactStore
from services.scoring.settings import ScoringSettings
from services.scoring.stability.service import score_reference
from services.scoring.training.bundle import bundle_bytes, load_bundle
from services.scoring.training.models import TrainResult
from shared.db import Database
from shared.settings import KernelSettings

log = logging.getLogger("loancrm.scoring.registry")

DEFAULT_DATA = Path(__file__).resolve().parents[1] / "data" / "german_credit.csv"
DEFAULT_NAME = "german-credit"


def artifact_store(kernel: KernelSettings) -> ArtifactStore:
    return ArtifactStore(kernel.var_dir / "models")


def reference_rows(data: str | Path | pd.DataFrame, target: str) -> list[dict[str, Any]]:
    """The training sample as raw rows (None for missing), to score for the PSI reference."""
    frame = data if isinstance(data, pd.DataFrame) else pd.read_csv(data)
    frame = frame.drop(columns=[target])
    return frame.astype(object).where(frame.notna(), None).to_dict("records")


def register_trained(database: Database, store: ArtifactStore, result: TrainResult, *, name: str, actor: str,
                     note: str | None = None, promote: bool = False,
                     reference: Sequence[Mapping[str, Any]] | None = None) -> list[ModelVersion]:
    """Register the scorecard and the challenger of one training run as drafts; with `promote`, validate
    them and make the scorecard champion and the other challenger (what a fresh install needs).
    `reference` (the training rows) gives each model the score distribution PSI compares against."""
    settings = ScoringSettings()
    data = bundle_bytes(result)
    with database.session() as session:
        models = service.register_model(session, store, data, name=name, roles=None, actor=actor, note=note)
        if reference:
            bundle = load_bundle(data)
            for model in models:
                model.reference = score_reference(bundle, model.role, reference)
                session.add(model)
        if promote:
            reason = note or "default model trained at first start"
            for model in models:
                service.validate_model(session, store, model, actor=actor, reason=reason,
                                       min_test_auc=settings.min_test_auc, max_parity_error=settings.max_parity_error)
                target = PromotionTarget.CHAMPION if model.role == "scorecard" else PromotionTarget.CHALLENGER
                service.promote_model(session, model, target, actor=actor, reason=reason)
        session.commit()
        return models


def ensure_default_champion(kernel: KernelSettings) -> ModelVersion | None:
    """Train on the shipped German credit data and install it when no champion exists; None if one did.

    Call after migrations (`loancrm up`). Takes a few seconds on first start, nothing afterwards.
    """
    database = Database(kernel.database_url("scoring"))
    try:
        with database.session() as session:
            if service.in_state(session, ModelState.CHAMPION) is not None:
                return None
        from services.scoring.training import train

        log.info("no champion model: training the default one on %s", DEFAULT_DATA.name)
        result = train(DEFAULT_DATA, "creditability", good="good", seed=0)
        models = register_trained(database, artifact_store(kernel), result, name=DEFAULT_NAME, actor="bootstrap",
                                  note="default model trained on the shipped German credit data", promote=True,
                                  reference=reference_rows(DEFAULT_DATA, "creditability"))
        return next(m for m in models if m.state == ModelState.CHAMPION)
    finally:
        database.dispose()
