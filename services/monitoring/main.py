"""Post-loan monitoring: repayments, delinquency, classification, early warning, collections."""

import httpx
from fastapi import FastAPI

from services.monitoring.checks.views import router as checks_router
from services.monitoring.classification.views import router as classification_router
from services.monitoring.cob.views import router as cob_router
from services.monitoring.collateral.views import router as collateral_router
from services.monitoring.collections.views import router as collections_router
from services.monitoring.hardship.views import router as hardship_router
from services.monitoring.alerts.views import router as alerts_router
from services.monitoring.approvals.views import router as approvals_router

from services.monitoring.db import audit, idempotency, outbox
from services.monitoring.rules.views import router as rules_router
from services.monitoring.delinquency.views import router as delinquency_router
from services.monitoring.exposure.views import router as exposure_router
from services.monitoring.feeds.views import router as feeds_router
from services.monitoring.loans.views import router as loans_router
from services.monitoring.outcomes.views import router as outcomes_router
from services.monitoring.reminders.views import router as reminders_router
from services.monitoring.repayment_files.views import router as repayment_files_router
from services.monitoring.repayments.views import router as repayments_router
from services.monitoring.portfolio.views import router as portfolio_router
from services.monitoring.transactions.scheduled import account_sealing
from services.monitoring.transactions.service import load_vault
from services.monitoring.transactions.views import router as transactions_router
from services.monitoring.peers import connect
from services.monitoring.delinquency.service import use_staging
from services.monitoring.settings import MonitoringSettings
from shared.app import create_service_app, uvicorn_factory
from shared.auth.tokens import TokenVerifier
from shared.db import Database
from shared.event_feed import event_feed_router
from shared.settings import KernelSettings, load_settings


def create_app(
    kernel: KernelSettings | None = None,
    *,
    verifier: TokenVerifier | None = None,
    transports: dict[str, httpx.AsyncBaseTransport] | None = None,
) -> FastAPI:
    """`transports` replaces the network for calls to peers (tests pass in-process ones)."""
    kernel = kernel or load_settings(KernelSettings)
    peers = connect(kernel, transports)
    settings = load_settings(MonitoringSettings)
    database = Database(kernel.database_url("monitoring"))
    vault = load_vault(settings, kernel)
    sealing = account_sealing(database, vault)
    app = create_service_app(
        idempotency=idempotency,
        audit=audit,
        name="monitoring",
        title="LoanCRM monitoring service",
        description="Watches every loan after disbursement.",
        kernel=kernel,
        database=database,
        verifier=verifier,
        routers=[outcomes_router, loans_router, repayments_router, repayment_files_router, delinquency_router,
                 classification_router,
                 cob_router, alerts_router, rules_router, collections_router, reminders_router,
                 checks_router, portfolio_router, transactions_router, approvals_router, exposure_router, feeds_router,
                 hardship_router, collateral_router,
                 event_feed_router(outbox)],
        on_startup=[sealing.start],
        on_shutdown=[sealing.stop, lambda: app.state.peers.aclose()],
    )
    app.state.peers = peers
    app.state.identity_transport = (transports or {}).get("gateway")  # the token endpoint, in-process in tests
    app.state.monitoring_settings = settings
    app.state.pii_vault = vault
    use_staging(app.state.monitoring_settings.staging_rule())
    return app


def app() -> FastAPI:
    """Factory for uvicorn (`--factory`)."""
    return uvicorn_factory("monitoring", create_app)
