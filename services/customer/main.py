"""Customer records: profiles, KYC, consents, interactions, portrait and segments."""

import httpx
from fastapi import FastAPI

from services.customer.access_log.views import router as access_log_router
from services.customer.campaigns.views import router as campaigns_router
from services.customer.complaints.views import router as complaints_router
from services.customer.consents.views import router as consents_router
from services.customer.customers.pii import load_vault
from services.customer.customers.views import router as customers_router
from services.customer.imports.views import router as imports_router
from services.customer.interactions.views import router as interactions_router
from services.customer.overview.peers import Peers
from services.customer.offers.views import router as offers_router
from services.customer.overview.views import router as overview_router
from services.customer.portrait.views import router as portrait_router
from services.customer.settings import CustomerSettings
from services.customer.surveys.views import router as surveys_router
from shared.app import create_service_app, uvicorn_factory
from shared.auth.tokens import TokenVerifier
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
    peers = Peers(kernel, transports or {})
    app = create_service_app(
        name="customer",
        title="LoanCRM customer service",
        description="The bank's record of each borrower and every contact with them.",
        kernel=kernel,
        database=Database(kernel.database_url("customer")),
        verifier=verifier,
        routers=[imports_router, customers_router, consents_router, interactions_router, complaints_router, surveys_router,
                 portrait_router, overview_router, offers_router, campaigns_router, access_log_router],
        on_shutdown=[peers.aclose],
    )
    app.state.settings = settings
    app.state.peers = peers
    app.state.pii_vault = load_vault(settings, kernel.var_dir)
    return app


def app() -> FastAPI:
    """Factory for uvicorn (`--factory`)."""
    return uvicorn_factory("customer", create_app)
