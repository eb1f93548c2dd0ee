"""Customer records: profiles, KYC, consents, interactions, portrait and segments."""

import httpx
from fastapi import FastAPI

from services.customer.access_log.views import router as access_log_router
from services.customer.campaigns.views import router as campaigns_router
from services.customer.complaints.views import router as complaints_router
from services.customer.consents.views import router as consents_router
from services.customer.customers.pii import load_vault
from services.customer.customers.scheduled import address_sealing
from services.customer.customers.views import router as customers_router
from services.customer.db import idempotency, audit
from services.customer.identity_links.views import router as identity_links_router
from services.customer.imports.views import router as imports_router
from services.customer.interactions.views import router as interactions_router
from services.customer.offers.views import router as offers_router
from services.customer.overview.sections import OVERVIEW_TIMEOUT_SECONDS
from services.customer.overview.views import router as overview_router
from services.customer.portrait.views import router as portrait_router
from services.customer.relationship.views import router as relationship_router
from services.customer.settings import CustomerSettings
from services.customer.surveys.views import router as surveys_router
from shared.audit.grouped import GroupCommit
from shared.limits import build_limiter
from shared.app import create_service_app, uvicorn_factory
from shared.auth.tokens import TokenVerifier
from shared.clients.identity import ServiceIdentity
from shared.clients.monitoring import MonitoringClient
from shared.clients.scoring import ScoringClient
from shared.db import Database
from shared.settings import KernelSettings, load_settings


def create_app(
    kernel: KernelSettings | None = None,
    *,
    verifier: TokenVerifier | None = None,
    transports: dict[str, httpx.AsyncBaseTransport] | None = None,
    settings: CustomerSettings | None = None,
) -> FastAPI:
    """`transports` replaces the network for calls to peers (tests pass in-process ones)."""
    kernel = kernel or load_settings(KernelSettings)
    settings = settings or load_settings(CustomerSettings)
    transports = transports or {}
    # The 360° view and the portrait degrade a slow peer to `unavailable` rather than wait or retry.
    timeout = min(kernel.peer_timeout_seconds, OVERVIEW_TIMEOUT_SECONDS)
    scoring = ScoringClient(kernel, transports.get("scoring"), timeout=timeout, retries=0)
    monitoring = MonitoringClient(kernel, transports.get("monitoring"), timeout=timeout, retries=0)
    # Guards that must not act on a guess (erasure, closure, reveal) wait the full peer timeout and retry.
    monitoring_guard = MonitoringClient(kernel, transports.get("monitoring"))
    # They ask it as this service (the suite's batch client), not as the caller: monitoring scopes a loan officer's
    # answer to their branch, and a loan booked at another branch still stops a closure.
    service_identity = ServiceIdentity(kernel, transports.get("gateway"))
    limiter = build_limiter(kernel.redis_url)
    database = Database(kernel.database_url("customer"))
    vault = load_vault(settings, kernel)
    sealing = address_sealing(database, vault)
    app = create_service_app(
        idempotency=idempotency,
        audit=audit,
        name="customer",
        title="LoanCRM customer service",
        description="The bank's record of each borrower and every contact with them.",
        kernel=kernel,
        database=database,
        verifier=verifier,
        routers=[imports_router, customers_router, consents_router, interactions_router, complaints_router,
                 surveys_router, portrait_router, overview_router, offers_router, campaigns_router, access_log_router,
                 relationship_router, identity_links_router],
        on_startup=[sealing.start],
        on_shutdown=[sealing.stop, scoring.aclose, monitoring.aclose, monitoring_guard.aclose, service_identity.aclose,
                     limiter.aclose],
    )
    app.state.settings = settings
    app.state.scoring = scoring
    app.state.monitoring = monitoring
    app.state.monitoring_guard = monitoring_guard
    app.state.service_identity = service_identity
    app.state.pii_vault = vault
    app.state.limiter = limiter
    app.state.read_log = GroupCommit(audit, database.engine)
    return app


def app() -> FastAPI:
    """Factory for uvicorn (`--factory`)."""
    return uvicorn_factory("customer", create_app)
