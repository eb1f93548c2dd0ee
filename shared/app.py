"""Builds a service's FastAPI app with what every LoanCRM process shares."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel

from shared.audit import AuditTrail
from shared.audit.views import audit_router
from shared.auth.dependencies import ScopeDefault, current_principal, scoped_principal, service_scopes
from shared.auth.tokens import Principal, TokenVerifier, http_jwks_source, http_revocation_source
from shared.db import Database
from shared.errors import Problem, install_problem_handlers, problem_response, problem_responses
from shared.files import secure_var_dir
from shared.idempotency import IdempotencyStore
from shared.logging import configure_logging
from shared.middleware import HardeningMiddleware, Metrics, RequestContextMiddleware
from shared.settings import KernelSettings, load_settings

ReadyCheck = Callable[[], Awaitable[None]]


class Liveness(BaseModel):
    status: str
    service: str


class Readiness(BaseModel):
    status: str
    service: str
    checks: dict[str, str]


class WhoAmI(BaseModel):
    sub: str
    roles: list[str]
    branch: str | None
    scopes: list[str]


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
    on_shutdown: Sequence[Callable[[], Awaitable[None]]] = (),
    idempotency: IdempotencyStore | None = None,
    default_scopes: ScopeDefault | None = None,
    audit: AuditTrail | None = None,
) -> FastAPI:
    checks = dict(ready_checks or {})
    if idempotency is not None:
        idempotency.configure(retention_hours=kernel.idempotency_retention_hours,
                              lease_seconds=kernel.idempotency_lease_seconds)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        for hook in on_shutdown:
            await hook()
        database.dispose()

    app = FastAPI(
        title=title,
        description=description,
        version="0.1.0",
        lifespan=lifespan,
        responses=problem_responses(401, 403, 413, 422),
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
    app.add_middleware(RequestContextMiddleware, metrics=metrics)
    # Added last, so it runs first: oversized headers are refused before anything else reads them.
    app.add_middleware(HardeningMiddleware, max_header_bytes=kernel.max_header_bytes,
                       max_body_bytes=kernel.max_body_bytes, hsts=kernel.hsts,
                       cacheable_paths=frozenset(p for p in ("/docs", "/redoc", "/docs/oauth2-redirect") if
                                                 kernel.docs_enabled))

    ops = APIRouter(tags=["operations"])

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
        if all(v == "ok" for v in results.values()):
            return JSONResponse(Readiness(status="ok", service=name, checks=results).model_dump())
        problem = Problem(503, "Service unavailable", "Not ready: " + ", ".join(
            f"{k} {v}" for k, v in results.items() if v != "ok"), extra={"checks": results})
        return problem_response(request, problem)

    if kernel.metrics_enabled:
        @ops.get("/metrics", summary="Prometheus metrics", response_class=Response)
        async def prometheus() -> Response:
            return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    secured = APIRouter(dependencies=[Depends(current_principal)])

    @secured.get("/whoami", response_model=WhoAmI, tags=["operations"],
                 summary="The identity this service verified from the access token")
    async def whoami(principal: Principal = Depends(current_principal)) -> WhoAmI:
        return WhoAmI(sub=principal.sub, roles=list(principal.roles), branch=principal.branch,
                      scopes=sorted(principal.scopes))

    app.include_router(ops)
    for router in public_routers:
        app.include_router(router)
    app.include_router(secured)
    # Every business route needs a verified token whose scopes allow it, even when the service is called directly;
    # a route needing another scope than its service's read/write says so with `needs(...)`.
    authorized = Depends(scoped_principal(default_scopes or service_scopes(name)))
    for router in [*routers, *([audit_router(audit)] if audit is not None else [])]:
        app.include_router(router, dependencies=[authorized])
    return app


def uvicorn_factory(name: str, create_app: Callable[[KernelSettings], FastAPI]) -> FastAPI:
    kernel = load_settings(KernelSettings)
    configure_logging(name, kernel.log_level)
    # Databases, keys and generated secrets this process writes are its own: 0600 files in a 0700 folder.
    secure_var_dir(kernel.var_dir)
    return create_app(kernel)
