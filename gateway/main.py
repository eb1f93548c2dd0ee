"""The gateway: the only public entry point. Issues tokens, verifies them, routes to the services."""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import APIRouter, FastAPI, Request
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse

from gateway.clients.views import router as clients_router
from gateway.db import audit, idempotency
from shared.limits import build_limiter
from gateway.openapi.service import API_DOCS_PATH, API_DOCUMENT_PATH, aggregate
from gateway.proxy.balancer import register_metrics
from gateway.proxy.service import ROUTED_SERVICES, GatewayApp, ServiceRoutes, Upstreams
from gateway.settings import GatewaySettings, WebhookSettings
from gateway.tokens import service as token_service
from gateway.tokens.views import router as token_router
from gateway.users import service as users_service
from gateway.users.views import router as users_router
from gateway.webhooks.flows import Webhooks
from gateway.webhooks.scheduled import Poller
from gateway.webhooks.views import router as webhooks_router
from shared.app import create_service_app, uvicorn_factory, verifier_limits
from shared.auth.tokens import TokenVerifier
from shared.db import Database
from shared.settings import KernelSettings, SettingsError, load_settings

# The gateway reads revocations from its own database: a query of a small indexed table, so it polls often.
OWN_REVOCATION_POLL_SECONDS = 1.0


def create_app(
    kernel: KernelSettings | None = None,
    gateway_settings: GatewaySettings | None = None,
    *,
    webhook_settings: WebhookSettings | None = None,
    transports: dict[str, httpx.AsyncBaseTransport] | None = None,
) -> FastAPI:
    kernel = kernel or load_settings(KernelSettings)
    gateway_settings = gateway_settings or load_settings(GatewaySettings)
    webhook_settings = webhook_settings or load_settings(WebhookSettings)
    if gateway_settings.token_ttl_seconds > kernel.token_max_lifetime_seconds:
        # Every verifier would refuse such tokens: say so at start-up rather than at the first request.
        raise SettingsError(f"LOANCRM_GATEWAY_TOKEN_TTL_SECONDS: {gateway_settings.token_ttl_seconds} exceeds "
                            f"LOANCRM_TOKEN_MAX_LIFETIME_SECONDS ({kernel.token_max_lifetime_seconds})")
    database = Database(kernel.database_url("gateway"))
    configured = gateway_settings.key_passphrase.get_secret_value() if gateway_settings.key_passphrase else None
    keyring = token_service.KeyRing(token_service.resolve_passphrase(kernel, configured))

    async def own_keys() -> dict[str, Any]:
        # The gateway verifies with its own tables directly: no HTTP round trip to itself.
        with database.session() as session:
            return token_service.jwks(session, kernel.token_max_lifetime_seconds).model_dump()

    async def own_revocations() -> dict[str, Any]:
        with database.session() as session:
            return {"revoked": [{"sid": r.sid, "until": r.expires_at.timestamp()}
                                for r in users_service.revoked_sessions(session)]}

    verifier = TokenVerifier(
        issuer=kernel.jwt_issuer, audience=kernel.jwt_audience, jwks_source=own_keys,
        cache_seconds=kernel.jwks_cache_seconds, revocation_source=own_revocations,
        **{**verifier_limits(kernel), "revocation_poll_seconds": OWN_REVOCATION_POLL_SECONDS},  # type: ignore[arg-type]
    )
    upstreams = Upstreams(
        {name: kernel.urls(name) for name in ROUTED_SERVICES},
        timeout=gateway_settings.upstream_timeout_seconds,
        connect_timeout=gateway_settings.upstream_connect_timeout_seconds,
        probe_timeout=kernel.peer_timeout_seconds,
        transports=transports,
        client=gateway_settings.upstream_client,
    )

    def peer_check(name: str):  # noqa: ANN202
        async def check() -> None:
            await upstreams.ready(name)  # ready while one replica is

        return check

    limiter = build_limiter(kernel.redis_url)
    webhooks = Webhooks(database=database, kernel=kernel, settings=webhook_settings, keyring=keyring,
                        transports=transports)
    poller = Poller(webhooks, webhook_settings.poll_seconds)
    public = APIRouter()

    @public.get(API_DOCUMENT_PATH, include_in_schema=False)
    async def aggregated_openapi(request: Request) -> dict[str, Any]:
        return await aggregate(request.app.openapi(), ROUTED_SERVICES, upstreams.get)

    if kernel.docs_enabled:
        # Both spellings: `/api/docs/` would otherwise be taken for a service named "docs" and need a token.
        @public.get(API_DOCS_PATH, include_in_schema=False)
        @public.get(API_DOCS_PATH + "/", include_in_schema=False)
        async def api_docs() -> HTMLResponse:
            return get_swagger_ui_html(openapi_url=API_DOCUMENT_PATH, title="LoanCRM API",
                                       swagger_ui_parameters={"persistAuthorization": True})

    app = create_service_app(
        idempotency=idempotency,
        audit=audit,
        name="gateway",
        title="LoanCRM API gateway",
        description="Sign in at /auth/token; every service is reached under /api/{service}/. "
        f"The whole API, every service included, is described at {API_DOCUMENT_PATH} (browse it at {API_DOCS_PATH}).",
        kernel=kernel,
        database=database,
        public_routers=[token_router, public],
        routers=[users_router, clients_router, webhooks_router],
        verifier=verifier,
        ready_checks={name: peer_check(name) for name in ROUTED_SERVICES},
        ready_report=lambda: {"upstreams": upstreams.report()},
        on_startup=[poller.start],
        on_shutdown=[upstreams.aclose, limiter.aclose, poller.stop],
        # The gateway's own routes manage users: `users:admin` unless a route says otherwise.
        default_scopes=lambda _method: ("users:admin",),
        app_class=GatewayApp,
    )
    register_metrics(app.state.metrics.registry, upstreams.pools)
    # Innermost of the middleware, so the kernel's (request id, limits, security headers) wrap the forwarding too.
    app.user_middleware.append(Middleware(ServiceRoutes, upstreams=upstreams))
    if gateway_settings.cors_origins:
        # Outermost, so a preflight is answered before anything asks for a token. Bearer tokens, no cookies:
        # credentials are not allowed, and only the listed origins get any CORS header.
        app.add_middleware(
            CORSMiddleware, allow_origins=gateway_settings.cors_origins,
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "Idempotency-Key", "If-Match", "X-Request-ID"],
            expose_headers=["ETag", "Location", "Retry-After", "X-Request-ID", "RateLimit-Limit",
                            "RateLimit-Remaining"],
            max_age=600,
        )
    app.state.gateway_settings = gateway_settings
    app.state.keyring = keyring
    app.state.upstreams = upstreams
    app.state.limiter = limiter
    app.state.webhooks = webhooks
    return app


def app() -> FastAPI:
    """Factory for uvicorn (`--factory`)."""
    return uvicorn_factory("gateway", create_app)
