"""Builds a service's FastAPI app with what every LoanCRM process shares."""

from __future__ import annotations

import email.message
import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from decimal import Decimal
from functools import lru_cache
from typing import Any

import structlog
from fastapi import APIRouter, Depends, FastAPI, Request, params
from fastapi._compat import field_annotation_is_sequence
from fastapi.concurrency import run_in_threadpool
from fastapi.dependencies.models import Dependant
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, Field

from shared.audit import AuditTrail
from shared.audit.views import audit_router
from shared.auth.dependencies import ScopeDefault, current_principal, needed_scopes, scoped_principal, \
    service_scopes
from shared.auth.roles import SCOPE_DESCRIPTIONS
from shared.auth.tokens import Principal, TokenVerifier, http_jwks_source, http_revocation_source
from shared.bounds import CONTROL_REFUSED, boolean_for_number_at, control_character_at, has_decimal, has_integer, \
    loose_decimal_at, text_for_integer_at
from shared.db import Database
from shared.errors import PROBLEM_MEDIA_TYPE, Problem, field_problem, install_problem_handlers, problem_response, \
    problem_responses
from shared.files import secure_var_dir
from shared.idempotency import IdempotencyStore
from shared.logging import configure_logging, log_through_stdlib
from shared.middleware import KernelMiddleware, Metrics
from shared.settings import KernelSettings, load_settings

ReadyCheck = Callable[[], Awaitable[None]]
# The security scheme every OpenAPI document declares: the gateway's password flow gives a bearer JWT.
SECURITY_SCHEME = "OAuth2"
TOKEN_PATH = "/auth/token"


class Liveness(BaseModel):
    status: str
    service: str


class ReplicaState(BaseModel):
    url: str
    state: str = Field(description="up, down (no traffic until probed) or probing")
    in_flight: int
    served: int
    failures: int
    reason: str | None
    retry_in_seconds: float | None = Field(description="when a down replica is probed again")


class Readiness(BaseModel):
    status: str
    service: str
    checks: dict[str, str]
    # The gateway's: each routed service's replicas and their state.
    upstreams: dict[str, list[ReplicaState]] | None = None


class WhoAmI(BaseModel):
    sub: str
    roles: list[str]
    branch: str | None
    scopes: list[str]


# What a control character or a bidirectional control looks like in a JSON body's bytes: escaped (a raw C0 byte
# is no valid JSON), a raw DEL (which JSON allows), or C1 / U+202A-U+2069 in UTF-8. A body without any of these is
# not parsed again.
_MAYBE_CONTROL = (b"\\u", b"\x7f", b"\xc2", b"\xe2\x80", b"\xe2\x81")


@lru_cache(maxsize=64)
def read_as_json(content_type: str) -> bool:
    """Whether FastAPI reads a body of this Content-Type as JSON (application/json or */*+json, in any case, with
    any parameters): the body checks must look at exactly those. Judged apart from FastAPI, `application/JSON`
    went unchecked and `text/x-json` was parsed here (a 500 when not JSON)."""
    message = email.message.Message()
    message["content-type"] = content_type
    subtype = message.get_content_subtype()
    return message.get_content_maintype() == "application" and (subtype == "json" or subtype.endswith("+json"))


def checked_query(request: Request) -> None:
    """Refuses a query parameter given more than once where the route takes one value of it, naming it: FastAPI
    kept the last (`?limit=5&limit=500` listed 500), where a proxy in front may have checked the first. A
    parameter the route takes as a list may repeat."""
    if not request.scope.get("query_string"):
        return
    names = [name for name, _ in request.query_params.multi_items()]
    if len(names) == len(set(names)):
        return
    route = request.scope.get("route")
    single = _once_per(route.dependant, _single_valued) if isinstance(route, APIRoute) else frozenset()
    seen: set[str] = set()
    for name in names:
        if name in seen and name in single:
            raise field_problem(f"query.{name}", "is given more than once; it takes one value")
        seen.add(name)


def _single_valued(dependant: Dependant) -> frozenset[str]:
    """The query parameters a route and its dependencies read one value of (FastAPI's own test for a list)."""
    names: set[str] = set()
    pending = [dependant]
    while pending:
        current = pending.pop()
        names.update(field.alias for field in current.query_params
                     if not field_annotation_is_sequence(field.field_info.annotation))
        pending.extend(current.dependencies)
    return frozenset(names)


async def checked_body(request: Request) -> None:
    """Refuses a JSON body whose text holds a control character, that gives true/false for a number or text for
    a whole number, that writes a decimal loosely or names a field twice, naming the field (shared/bounds.py);
    and a body of another media type where the route reads JSON (415). The body is read once more for all of
    them; one that cannot hold a control character or a boolean skips those walks."""
    if request.method in ("GET", "HEAD", "DELETE"):
        return
    body_field = getattr(request.scope.get("route"), "body_field", None)
    content_type = request.headers.get("content-type", "")
    if not read_as_json(content_type):
        # A body of another type, or of none, failed as "not a valid dictionary".
        if body_field is not None and not isinstance(body_field.field_info, params.Form) and await request.body():
            raise Problem(415, "Unsupported media type", "This route reads a JSON body: send it as "
                                                         "Content-Type: application/json.")
        return
    body = await request.body()  # already read, and kept, by FastAPI for the route's own body
    # JSON between systems is UTF-8 (RFC 8259); the decoder also guessed UTF-16 and UTF-32, whose text of ASCII
    # holds NUL bytes (which UTF-8 JSON never does) or starts with a byte-order mark.
    if b"\x00" in body or body.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise field_problem("body", "must be JSON in UTF-8")
    control = any(mark in body for mark in _MAYBE_CONTROL)
    if body_field is None and not control:
        return
    # One reading for every check, keeping each number's digits (the route's own reading made them binary floats)
    # and each key named (its reading kept the last of two, where another reader may keep the first); strings,
    # keys and booleans read as the route's reading has them.
    twice: list[str] = []
    document = json.loads(body, parse_float=Decimal, object_pairs_hook=lambda pairs: _once(pairs, twice))
    if control:
        field = control_character_at(document)
        if field is not None:
            raise field_problem(field, CONTROL_REFUSED)
    if body_field is None:
        return
    annotation = body_field.field_info.annotation
    if b"true" in body or b"false" in body:
        field = boolean_for_number_at(annotation, document)
        if field is not None:
            raise field_problem(field, "must be a number, not true or false")
    if twice:
        raise field_problem(f"body.{twice[0]}", "is named twice in its object")
    if _once_per(annotation, has_integer):
        field = text_for_integer_at(annotation, document)
        if field is not None:
            raise field_problem(field, "must be a whole number, not text")
    if _once_per(annotation, has_decimal):
        found = loose_decimal_at(annotation, document)
        if found is not None:
            raise field_problem(*found)


def _once(pairs: list[tuple[str, Any]], twice: list[str]) -> dict[str, Any]:
    found = dict(pairs)
    if len(found) < len(pairs):
        seen: set[str] = set()
        twice.extend(key for key, _ in pairs if key in seen or seen.add(key))
    return found


_worked_out: dict[tuple[int, Callable[[Any], Any]], tuple[Any, Any]] = {}


def _once_per(subject: Any, work: Callable[[Any], Any]) -> Any:
    """`work(subject)`, worked out once per route's body annotation or dependant."""
    found = _worked_out.get((id(subject), work))
    if found is None or found[0] is not subject:
        found = _worked_out[(id(subject), work)] = (subject, work(subject))
    return found[1]


def verifier_limits(kernel: KernelSettings) -> dict[str, float]:
    """The token limits and revocation poll every verifier takes from the kernel settings."""
    return {"revocation_poll_seconds": kernel.revocation_poll_seconds,
            "max_lifetime_seconds": kernel.token_max_lifetime_seconds, "leeway_seconds": kernel.token_leeway_seconds}


def default_verifier(kernel: KernelSettings) -> TokenVerifier:
    return TokenVerifier(
        issuer=kernel.jwt_issuer,
        audience=kernel.jwt_audience,
        jwks_source=http_jwks_source(kernel.resolved_jwks_url(), timeout=kernel.peer_timeout_seconds),
        cache_seconds=kernel.jwks_cache_seconds,
        revocation_source=http_revocation_source(kernel.resolved_revocations_url(),
                                                 timeout=kernel.peer_timeout_seconds),
        **verifier_limits(kernel),  # type: ignore[arg-type]
    )


def operation_id(route: APIRoute) -> str:
    """Readable operationIds for generated clients: the route's feature tag, then its function
    (`repayments_post_repayment`), where FastAPI's default spells out path and method."""
    return _identifier(f"{route.tags[0] if route.tags else ''} {route.name}")


def _identifier(text: str) -> str:
    return re.sub(r"[^0-9a-zA-Z]+", "_", text).strip("_").lower()


def security_scheme(token_url: str) -> dict[str, Any]:
    # Both grants that give an access token: people sign in with a password, partner systems with their client.
    return {"type": "oauth2", "description": "A bearer JWT from the gateway's token endpoint.",
            "flows": {flow: {"tokenUrl": token_url, "scopes": dict(SCOPE_DESCRIPTIONS)}
                      for flow in ("password", "clientCredentials")}}


def _document(app: FastAPI, token_url: str, requirements: dict[tuple[str, str], tuple[str, ...]]) -> None:
    """Completes the app's OpenAPI: the security scheme, each secured operation's scopes (any one of them will
    do, so one requirement each), and error responses only as the problem+json they are answered with."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = build()
        schema.setdefault("components", {})["securitySchemes"] = {SECURITY_SCHEME: security_scheme(token_url)}
        for (path, method), scopes in requirements.items():
            operation = schema["paths"].get(path, {}).get(method.lower())
            if operation is not None:
                operation["security"] = [{SECURITY_SCHEME: [scope]} for scope in scopes] or [{SECURITY_SCHEME: []}]
        for operations in schema.get("paths", {}).values():
            for operation in operations.values():
                for status, response in operation.get("responses", {}).items():
                    content = response.get("content", {})
                    if status[0] in "45" and PROBLEM_MEDIA_TYPE in content:
                        content.pop("application/json", None)
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def create_service_app(
    *,
    name: str,
    title: str,
    description: str,
    kernel: KernelSettings,
    database: Database,
    routers: Sequence[APIRouter] = (),
    public_routers: Sequence[APIRouter] = (),
    verifier: TokenVerifier | None = None,
    ready_checks: dict[str, ReadyCheck] | None = None,
    ready_report: Callable[[], dict[str, Any]] | None = None,
    on_startup: Sequence[Callable[[], Awaitable[None]]] = (),
    on_shutdown: Sequence[Callable[[], Awaitable[None]]] = (),
    idempotency: IdempotencyStore | None = None,
    default_scopes: ScopeDefault | None = None,
    audit: AuditTrail | None = None,
    app_class: type[FastAPI] = FastAPI,
) -> FastAPI:
    checks = dict(ready_checks or {})
    if idempotency is not None:
        idempotency.configure(retention_hours=kernel.idempotency_retention_hours,
                              lease_seconds=kernel.idempotency_lease_seconds)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        for hook in on_startup:
            await hook()
        yield
        for hook in on_shutdown:
            await hook()
        database.dispose()

    if not structlog.is_configured():  # an app built without `uvicorn_factory` (an embedding caller, a test)
        log_through_stdlib(kernel.log_level)
    app = app_class(
        title=title,
        description=description,
        version="0.1.0",
        telemetry=None if kernel.opentelemetry else {"tracing": False, "metrics": False, "logs": False},
        lifespan=lifespan,
        responses=problem_responses(401, 403, 413, 422),
        generate_unique_id_function=operation_id,
        docs_url="/docs" if kernel.docs_enabled else None,
        redoc_url="/redoc" if kernel.docs_enabled else None,
    )
    app.state.service_name = name
    app.state.kernel = kernel
    app.state.database = database
    app.state.verifier = verifier or default_verifier(kernel)
    metrics = Metrics(name)
    app.state.metrics = metrics
    install_problem_handlers(app)
    app.add_middleware(KernelMiddleware, metrics=metrics, max_header_bytes=kernel.max_header_bytes,
                       max_body_bytes=kernel.max_body_bytes, hsts=kernel.hsts,
                       cacheable_paths=frozenset(p for p in ("/docs", "/redoc", "/docs/oauth2-redirect") if
                                                 kernel.docs_enabled))

    # The kernel's own routes are in every service: their operationIds name the service, to stay unique in the
    # gateway's merged document.
    ops = APIRouter(tags=["operations"], generate_unique_id_function=lambda route: f"{name}_{route.name}")

    @ops.get("/health/live", response_model=Liveness, summary="The process is up")
    async def live() -> Liveness:
        return Liveness(status="ok", service=name)

    @ops.get("/health/ready", response_model=Readiness, summary="The process can serve: database and peers reachable",
             responses=problem_responses(503))
    async def ready(request: Request) -> Response:
        results: dict[str, str] = {}
        try:
            await run_in_threadpool(database.ping)
            results["database"] = "ok"
        except Exception as exc:  # noqa: BLE001 - any driver error means not ready
            results["database"] = f"failed: {type(exc).__name__}"
        for check_name, check in checks.items():
            try:
                await check()
                results[check_name] = "ok"
            except Exception as exc:  # noqa: BLE001
                results[check_name] = f"failed: {exc}"
        report = ready_report() if ready_report is not None else {}
        if all(v == "ok" for v in results.values()):
            return JSONResponse(Readiness(status="ok", service=name, checks=results, **report).model_dump(
                exclude_unset=True))
        problem = Problem(503, "Service unavailable", "Not ready: " + ", ".join(
            f"{k} {v}" for k, v in results.items() if v != "ok"), extra={"checks": results, **report})
        return problem_response(request, problem)

    if kernel.metrics_enabled:
        @ops.get("/metrics", summary="Prometheus metrics", response_class=Response, responses={200: {
            "description": "The Prometheus text format", "content": {"text/plain": {"schema": {"type": "string"}}}}})
        async def prometheus() -> Response:
            return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    secured = APIRouter(dependencies=[Depends(current_principal)],
                        generate_unique_id_function=lambda route: f"{name}_{route.name}")

    @secured.get("/whoami", response_model=WhoAmI, tags=["operations"],
                 summary="The identity this service verified from the access token")
    async def whoami(principal: Principal = Depends(current_principal)) -> WhoAmI:
        return WhoAmI(sub=principal.sub, roles=list(principal.roles), branch=principal.branch,
                      scopes=sorted(principal.scopes))

    # Which routes need a token, and their scopes: for the OpenAPI document's security requirements.
    requirements: dict[tuple[str, str], tuple[str, ...]] = {}

    def include(router: APIRouter, scopes: ScopeDefault | None, **kwargs: Any) -> None:
        if any(isinstance(r, APIRoute) and r.endpoint.__module__.startswith("shared.") for r in router.routes):
            # A feature the kernel gives every service (the event feed): named after the service, so operationIds
            # stay unique in the gateway's merged document.
            kwargs["generate_unique_id_function"] = lambda route: f"{name}_{operation_id(route)}"
        app.include_router(router, **kwargs)
        if scopes is not None:
            requirements.update({(route.path_format, method): needed_scopes(route, scopes, method)
                                 for route in router.routes if isinstance(route, APIRoute) for method in route.methods})

    include(ops, None)
    for router in public_routers:
        include(router, None)
    include(secured, lambda _method: ())
    # Every business route needs a verified token whose scopes allow it, even when the service is called directly;
    # a route needing another scope than its service's read/write says so with `needs(...)`.
    scopes = default_scopes or service_scopes(name)
    scoped = scoped_principal(scopes)

    # One dependency, not two: each costs every request a pass of FastAPI's solver (shared/auth/dependencies.py).
    async def authorized_request(request: Request) -> Principal:
        principal = await scoped(request)
        checked_query(request)
        await checked_body(request)
        return principal

    for router in [*routers, *([audit_router(audit)] if audit is not None else [])]:
        include(router, scopes, dependencies=[Depends(authorized_request)])
    _document(app, TOKEN_PATH if name == "gateway" else kernel.url("gateway") + TOKEN_PATH, requirements)
    return app


def uvicorn_factory(name: str, create_app: Callable[[KernelSettings], FastAPI]) -> FastAPI:
    kernel = load_settings(KernelSettings)
    configure_logging(name, kernel.log_level)
    # Databases, keys and generated secrets this process writes are its own: 0600 files in a 0700 folder.
    secure_var_dir(kernel.var_dir)
    return create_app(kernel)
