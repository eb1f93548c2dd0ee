"""Registry rules: register, validate, promote, retire, roll back. One champion, at most one challenger."""

from __future__ import annotations

import zipfile
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, select

from services.scoring.registry.models import ModelState, ModelTransition, ModelVersion, PromotionTarget
from services.scoring.registry.store import ArtifactStore
from services.scoring.training.bundle import BundleTooLarge, ModelBundle, load_bundle
from shared.errors import Problem
from shared.pagination import Page, PageRequest, keyset


def get_model(session: Session, model_id: str) -> ModelVersion:
    model = session.get(ModelVersion, model_id)
    if model is None:
        raise Problem(404, "Not found", f"No model version {model_id!r}.")
    return model


def list_models(session: Session, paging: PageRequest, read: Callable[[list[ModelVersion]], list[Any]],
                state: ModelState | None = None) -> Page[Any]:
    """Newest first: by registration time, then (one bundle registers several at once) by version."""
    query = select(ModelVersion)
    if state is not None:
        query = query.where(ModelVersion.state == state)
    return keyset(session, query, paging, ModelVersion.created_at, ModelVersion.version, ModelVersion.id,
                  descending=True, read=read)


def in_state(session: Session, state: ModelState) -> ModelVersion | None:
    return session.exec(select(ModelVersion).where(ModelVersion.state == state)).first()


def transitions(session: Session, model_id: str) -> list[ModelTransition]:
    return list(session.exec(select(ModelTransition).where(ModelTransition.model_id == model_id)
                             .order_by(ModelTransition.at)).all())


def _move(session: Session, model: ModelVersion, to: ModelState, actor: str, reason: str,
          replaced: ModelVersion | None = None) -> None:
    session.add(ModelTransition(model_id=model.id, from_state=model.state, to_state=to, actor=actor, reason=reason,
                                replaced_model_id=replaced.id if replaced else None))
    model.state = to
    session.add(model)
    # Flushed one by one so the partial unique indexes never see two champions at once.
    session.flush()


def register_model(session: Session, store: ArtifactStore, data: bytes, *, name: str, roles: Sequence[str] | None,
                   actor: str, note: str | None = None) -> list[ModelVersion]:
    """Store a bundle once and register each of its roles (default: all) as a draft version."""
    try:
        bundle = load_bundle(data)
    except BundleTooLarge as exc:
        raise Problem(413, "Payload too large", str(exc)) from None
    except (zipfile.BadZipFile, ValueError, KeyError, OSError) as exc:
        raise Problem(422, "Invalid model bundle", f"Not a model bundle: {exc}") from None
    # The scorecard first, so it gets the lower version number of the pair.
    wanted = sorted(roles or bundle.roles, key=lambda role: role != "scorecard")
    unknown = [r for r in wanted if r not in bundle.roles]
    if unknown:
        raise Problem(422, "Invalid model bundle", f"The bundle has no role(s) {unknown}; it has {bundle.roles}.")
    sha256 = store.put(session, data)
    session.flush()
    latest = session.exec(select(func.max(ModelVersion.version)).where(ModelVersion.name == name)).one() or 0
    created = []
    for offset, role in enumerate(wanted, start=1):
        meta = bundle.model_meta(role)
        model = ModelVersion(
            name=name, version=latest + offset, role=role, family=meta["family"], artifact_sha256=sha256,
            onnx_sha256=meta["onnx_sha256"], data_sha256=bundle.manifest["data_sha256"], schema_=meta["schema"],
            metrics={k: v for k, v in meta["metrics"].items() if k != "splits"}, card=bundle.manifest["card"],
            note=note, created_by=actor,
        )
        session.add(model)
        session.flush()
        session.add(ModelTransition(model_id=model.id, to_state=ModelState.DRAFT, actor=actor,
                                    reason=note or "registered"))
        created.append(model)
    session.flush()
    return created


def validate_model(session: Session, store: ArtifactStore, model: ModelVersion, *, actor: str, reason: str,
                   min_test_auc: float, max_parity_error: float) -> ModelVersion:
    """Draft -> validated once the artifact loads, matches its hashes and meets the quality floor."""
    if model.state != ModelState.DRAFT:
        raise Problem(409, "Conflict", f"Only a draft can be validated; this model is {model.state}.")
    bundle = load_model_bundle(session, store, model)
    if bundle.model_meta(model.role)["onnx_sha256"] != model.onnx_sha256:
        raise Problem(409, "Conflict", "The stored artifact does not hold this model's ONNX graph.")
    auc, parity = model.metrics.get("test_auc", 0.0), model.metrics.get("parity_max_abs_diff", 1.0)
    if auc < min_test_auc:
        raise Problem(409, "Conflict", f"Test AUC {auc:.3f} is below the floor {min_test_auc:.3f}.")
    if parity > max_parity_error:
        raise Problem(409, "Conflict", f"ONNX parity error {parity:.2e} exceeds {max_parity_error:.0e}.")
    _move(session, model, ModelState.VALIDATED, actor, reason)
    return model


def promote_model(session: Session, model: ModelVersion, target: PromotionTarget, *, actor: str,
                  reason: str) -> ModelVersion:
    allowed = {ModelState.VALIDATED} | ({ModelState.CHALLENGER} if target == PromotionTarget.CHAMPION else set())
    if model.state not in allowed:
        raise Problem(409, "Conflict", f"A {model.state} model cannot become {target}; validate it first.")
    state = ModelState(target.value)
    current = in_state(session, state)
    if current is not None:
        _move(session, current, ModelState.RETIRED, actor, f"replaced by {model.label}: {reason}")
    _move(session, model, state, actor, reason, replaced=current if state == ModelState.CHAMPION else None)
    return model


def retire_model(session: Session, model: ModelVersion, *, actor: str, reason: str) -> ModelVersion:
    if model.state == ModelState.CHAMPION:
        raise Problem(409, "Conflict", "The champion cannot be retired; promote another model or roll back.")
    if model.state == ModelState.RETIRED:
        raise Problem(409, "Conflict", "This model is already retired.")
    _move(session, model, ModelState.RETIRED, actor, reason)
    return model


def rollback_champion(session: Session, *, actor: str, reason: str) -> ModelVersion:
    """Put back the champion the current one replaced; the current one is retired."""
    current = in_state(session, ModelState.CHAMPION)
    if current is None:
        raise Problem(409, "Conflict", "There is no champion to roll back.")
    promotion = session.exec(
        select(ModelTransition).where(ModelTransition.model_id == current.id,
                                      ModelTransition.to_state == ModelState.CHAMPION)
        .order_by(ModelTransition.at.desc())).first()
    if promotion is None or promotion.replaced_model_id is None:
        raise Problem(409, "Conflict", f"{current.label} replaced no earlier champion; nothing to roll back to.")
    previous = get_model(session, promotion.replaced_model_id)
    _move(session, current, ModelState.RETIRED, actor, f"rolled back: {reason}")
    _move(session, previous, ModelState.CHAMPION, actor, f"rollback: {reason}", replaced=None)
    return previous


def load_model_bundle(session: Session, store: ArtifactStore, model: ModelVersion) -> ModelBundle:
    return load_bundle(store.load(session, model.artifact_sha256))
