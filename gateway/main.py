"""The gateway: the only public entry point. Issues tokens, verifies them, routes to the services."""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import APIRouter, FastAPI, Request

from gateway.db import idempotency, audit
from shared.limits import build_limiter
from gateway.openapi.service import aggregate
from gateway.proxy.service import ROUTED_SERVICES, Upstreams
from gateway.proxy.views import router as proxy_router
from gateway.settings import GatewaySettings
from gateway.tokens import service as token_service
from gateway.tokens.views import router as token_router
from gateway.users import service as users_service
from gateway.users.views import router as users_router
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
    transports: dict[str, httpx.AsyncBaseTransport] | None = None,
) -> FastAPI:
    kernel = kernel or load_settings(KernelSettings)
    gateway_settings = gateway_settings or load_settings(GatewaySettings)
    if gateway_settings.token_ttl_seconds > kernel.token_max_lifetime_seconds:
        # Every verifier would refuse such tokens: say so at start-up rather than at the first request.
        raise SettingsError(f"LOANCRM_GATEWAY_TOKEN_TTL_SECONDS: {gateway_settings.token_ttl_seconds} exceeds "
                            f"LOANCRM_TOKEN_MAX_LIFETIME_SECONDS ({kernel.token_max_lifetime_seconds})")
    database = Database(kernel.database_url("gateway"))
    configured = gateway_settings.key_passphrase.get_secret_value() if gateway_settings.key_passphrase else None
    keyring = token_service.KeyRing(token_service.resolve_passphrase(kernel.var_dir, configured))

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
        idempotency=idempotency,
        audit=audit,
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
    app.state.keyring = keyring
    app.state.upstreams = upstreams
    app.state.limiter = limiter
    return app


def app() -> FastAPI:
    """Factory for uvicorn (`--factory`)."""
    return uvicorn_factory("gateway", create_app)
