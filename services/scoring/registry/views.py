from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from sqlmodel import Session

from services.scoring import api
from services.scoring.db import idempotency
from services.scoring.registry import service
from services.scoring.registry.models import (ModelRead, ModelState, ModelVersion, PromotionCommand,
                                              ReasonedCommand, TransitionRead)
from services.scoring.registry.store import sha256_of
from shared.auth.dependencies import needs
from shared.auth.tokens import Principal
from shared.errors import problem_responses
from shared.idempotency import OptionalIdempotencyKey, answer_once
from shared.middleware import max_body
from shared.pagination import Page, paged

# Bundles are a few hundred kilobytes; this bounds what one upload may make the service read into memory.
MAX_BUNDLE_BYTES = 50 * 1024 * 1024

router = APIRouter(prefix="/models", tags=["model registry"])
# Changing what answers scores is its own scope, beyond scoring:write.
MODELS = needs("scoring:models")


def model_read(session: Session, model: ModelVersion) -> ModelRead:
    return ModelRead(
        id=model.id, version_label=model.label, name=model.name, version=model.version, role=model.role,
        family=model.family, state=ModelState(model.state), artifact_sha256=model.artifact_sha256,
        onnx_sha256=model.onnx_sha256, data_sha256=model.data_sha256, features=model.schema_,
        metrics=model.metrics, note=model.note, created_at=model.created_at, created_by=model.created_by,
        transitions=[TransitionRead.model_validate(t) for t in service.transitions(session, model.id)],
    )


@router.post("", status_code=201, response_model=list[ModelRead],
             summary="Register a model bundle (zip from `loancrm scoring train --out`) as drafts (risk analyst, admin)",
             responses=problem_responses(409, 413, 422, 428),
             openapi_extra={**MODELS, "requestBody": {"required": True, "content": {
                 "application/zip": {"schema": {"type": "string", "format": "binary"}}}}})
@max_body(MAX_BUNDLE_BYTES)
async def register_model(
    request: Request,
    principal: api.ModelManager,
    name: Annotated[str, Query(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9._-]*$")],
    note: Annotated[str | None, Query(max_length=500)] = None,
    idempotency_key: OptionalIdempotencyKey = None,
) -> JSONResponse:
    data = await request.body()  # at most MAX_BUNDLE_BYTES: the kernel's body limit refuses more with a 413
    state = api.state(request)

    def run(session):  # noqa: ANN001, ANN202
        models = service.register_model(session, state.store, data, name=name, roles=None, actor=principal.sub,
                                        note=note)
        return 201, [model_read(session, m).model_dump(mode="json") for m in models]

    return await run_in_threadpool(
        answer_once, idempotency, state.database, owner=principal.sub, key=idempotency_key, required=False,
        payload=("register_model", name, note, sha256_of(data)), command=run)


@router.get("", response_model=Page[ModelRead], summary="Model versions, newest first (optionally by state)",
            responses=problem_responses(422))
def list_models(request: Request, _: api.ModelReader, state: ModelState | None = None,
                paging: paged() = None) -> Page[ModelRead]:
    with api.state(request).database.session() as session:
        return service.list_models(session, paging, lambda models: [model_read(session, m) for m in models], state)


@router.get("/{model_id}", response_model=ModelRead, summary="One model version with its history",
            responses=problem_responses(404))
def get_model(request: Request, model_id: str, _: api.ModelReader) -> ModelRead:
    with api.state(request).database.session() as session:
        return model_read(session, service.get_model(session, model_id))


@router.get("/{model_id}/card", response_model=dict, summary="The model card written at training",
            responses=problem_responses(404))
def get_card(request: Request, model_id: str, _: api.ModelReader) -> dict:
    with api.state(request).database.session() as session:
        return service.get_model(session, model_id).card


def _transition(request: Request, principal: Principal, key: str | None, payload: tuple[Any, ...],
                command: Callable[[Session], ModelVersion]) -> JSONResponse:
    """A model's move a client may retry: with an Idempotency-Key a retry gets the first answer."""
    state = api.state(request)

    def run(session: Session) -> tuple[int, Any]:
        model = command(session)
        session.flush()
        return 200, model_read(session, model).model_dump(mode="json")

    answer = answer_once(idempotency, state.database, owner=principal.sub, key=key, required=False,
                         payload=payload, command=run)
    state.serving.invalidate()
    return answer


@router.post("/{model_id}/validation", response_model=ModelRead, summary="Validate a draft (risk analyst, admin)",
             openapi_extra=MODELS,
             responses=problem_responses(404, 409))
def validate_model(request: Request, model_id: str, command: ReasonedCommand, principal: api.ModelManager,
                   idempotency_key: OptionalIdempotencyKey = None) -> JSONResponse:
    state = api.state(request)
    settings = state.context.settings
    return _transition(request, principal, idempotency_key, ("validate_model", model_id, command.reason),
                       lambda session: service.validate_model(
        session, state.store, service.get_model(session, model_id), actor=principal.sub, reason=command.reason,
        min_test_auc=settings.min_test_auc, max_parity_error=settings.max_parity_error))


@router.post("/{model_id}/promotion", response_model=ModelRead,
             openapi_extra=MODELS,
             summary="Make a validated model champion or challenger (risk analyst, admin); records who and why",
             responses=problem_responses(404, 409))
def promote_model(request: Request, model_id: str, command: PromotionCommand, principal: api.ModelManager,
                  idempotency_key: OptionalIdempotencyKey = None) -> JSONResponse:
    return _transition(request, principal, idempotency_key,
                       ("promote_model", model_id, command.model_dump(mode="json")),
                       lambda session: service.promote_model(
        session, service.get_model(session, model_id), command.target, actor=principal.sub, reason=command.reason))


@router.post("/{model_id}/retirement", response_model=ModelRead,
             openapi_extra=MODELS,
             summary="Retire a model that is not the champion (risk analyst, admin)",
             responses=problem_responses(404, 409))
def retire_model(request: Request, model_id: str, command: ReasonedCommand, principal: api.ModelManager,
                 idempotency_key: OptionalIdempotencyKey = None) -> JSONResponse:
    return _transition(request, principal, idempotency_key, ("retire_model", model_id, command.reason),
                       lambda session: service.retire_model(
        session, service.get_model(session, model_id), actor=principal.sub, reason=command.reason))


@router.post("/champion/rollback", response_model=ModelRead,
             openapi_extra=MODELS,
             summary="Restore the previous champion in one call (risk analyst, admin)",
             responses=problem_responses(409))
def rollback_champion(request: Request, command: ReasonedCommand, principal: api.ModelManager,
                      idempotency_key: OptionalIdempotencyKey = None) -> JSONResponse:
    return _transition(request, principal, idempotency_key, ("rollback_champion", command.reason),
                       lambda session: service.rollback_champion(
        session, actor=principal.sub, reason=command.reason))


@router.get("/champion/current", response_model=ModelRead, summary="The model answering scores now",
            responses=problem_responses(503))
def current_champion(request: Request, _: api.ModelReader) -> ModelRead:
    state = api.state(request)
    served = state.serving.current()
    with state.database.session() as session:
        return model_read(session, service.get_model(session, served.champion.model.id))
