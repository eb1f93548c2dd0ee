"""The gateway: the only public entry point. Issues tokens, verifies them, routes to the services."""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import APIRouter, FastAPI, Request

from gateway.db import metadata  # noqa: F401 - registers the idempotency table
from gateway.limits.service import build_limiter
from gateway.openapi.service import aggregate
from gateway.proxy.service import ROUTED_SERVICES, Upstreams
from gateway.proxy.views import router as proxy_router
from gateway.settings import GatewaySettings
from gateway.tokens import service as token_service
from gateway.tokens.views import router as token_router
from gateway.users.views import router as users_router
from shared.app import create_service_app, uvicorn_factory
from shared.auth.tokens import TokenVerifier
from shared.db import Database
from shared.settings import KernelSettings, load_settings


def create_app(
    kernel: KernelSettings | None = None,
    gateway_settings: GatewaySettings | None = None,
    *,
    transports: dict[str, httpx.AsyncBaseTransport] | None = None,
) -> FastAPI:
    kernel = kernel or load_settings(KernelSettings)
    gateway_settings = gateway_settings or load_settings(GatewaySettings)
    database = Database(kernel.database_url("gateway"))
    passphrase = gateway_settings.key_passphrase.get_secret_value() if gateway_settings.key_passphrase else None

    async def own_keys() -> dict[str, Any]:
        # The gateway verifies with its own key table directly: no HTTP round trip to itself.
        with database.session() as session:
            return token_service.jwks(session).model_dump()

    verifier = TokenVerifier(
        issuer=kernel.jwt_issuer, audience=kernel.jwt_audience, jwks_source=own_keys,
        cache_seconds=kernel.jwks_cache_seconds,
    )
    upstreams = Upstreams(
        {name: kernel.url(name) for name in ROUTED_SERVICES},
        timeout=gateway_settings.upstream_timeout_seconds,
        connect_timeout=gateway_settings.upstream_connect_timeout_seconds,
        transports=transports,
    )

    def peer_check(name: str):  # noqa: ANN202
        async def check() -> None:
            response = await upstreams.client(name).get("/health/live", timeout=kernel.peer_timeout_seconds)
            response.raise_for_status()

        return check

    limiter = build_limiter(kernel.redis_url)
    public = APIRouter()

    @public.get("/api/openapi.json", include_in_schema=False)
    async def aggregated_openapi(request: Request) -> dict[str, Any]:
        return await aggregate(request.app.openapi(), upstreams.clients)

    app = create_service_app(
        name="gateway",
        title="LoanCRM API gateway",
        description="Sign in at /auth/token; every service is reached under /api/{service}/. "
        "The whole API, every service included, is described at /api/openapi.json.",
        kernel=kernel,
        database=database,
        public_routers=[token_router, public],
        routers=[users_router, proxy_router],
        verifier=verifier,
        ready_checks={name: peer_check(name) for name in ROUTED_SERVICES},
        on_shutdown=[upstreams.aclose, limiter.aclose],
        # The gateway's own routes manage users: `users:admin` unless a route says otherwise.
        default_scopes=lambda _method: ("users:admin",),
    )
    app.state.gateway_settings = gateway_settings
    app.state.passphrase = passphrase
    app.state.upstreams = upstreams
    app.state.limiter = limiter
    return app


def app() -> FastAPI:
    """Factory for uvicorn (`--factory`)."""
    return uvicorn_factory("gateway", create_app)
