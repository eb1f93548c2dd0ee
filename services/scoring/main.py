"""Credit scoring: models served from ONNX, scores, grades, decisions and reasons."""

import httpx
from fastapi import FastAPI
from sqlalchemy import event

from services.scoring.api import ScoringState
from services.scoring.applications.views import router as applications_router
from services.scoring.db import audit, idempotency, outbox
from services.scoring.hashing import load_hash_key
from services.scoring.registry.flows import artifact_store
from services.scoring.registry.serving import ServingModels
from services.scoring.registry.views import router as registry_router
from services.scoring.scores.service import ScoringContext
from services.scoring.disclosure.views import router as disclosure_router
from services.scoring.scores.shadow import ShadowQueue
from services.scoring.scores.store import ScoreWriter
from services.scoring.scores.views import router as scores_router
from services.scoring.screening.views import router as screening_router
from services.scoring.settings import ScoringSettings
from services.scoring.stability.views import router as stability_router
from services.scoring.study.views import router as study_router
from shared.app import create_service_app, uvicorn_factory
from shared.auth.tokens import TokenVerifier
from shared.clients.customer import CustomerClient
from shared.clients.monitoring import MonitoringClient
from shared.db import Database
from shared.event_feed import event_feed_router
from shared.settings import KernelSettings, load_settings


def scoring_database(kernel: KernelSettings, settings: ScoringSettings) -> Database:
    """The kernel's Database, with the SQLite sync level of the settings (the kernel leaves SQLite at FULL)."""
    database = Database(kernel.database_url("scoring"))
    if not database.is_postgres:
        @event.listens_for(database.engine, "connect")
        def _synchronous(dbapi_connection, _record) -> None:  # noqa: ANN001
            cursor = dbapi_connection.cursor()
            cursor.execute(f"PRAGMA synchronous={settings.sqlite_synchronous}")
            cursor.close()
    return database


def create_app(
    kernel: KernelSettings | None = None,
    *,
    verifier: TokenVerifier | None = None,
    transports: dict[str, httpx.AsyncBaseTransport] | None = None,
    settings: ScoringSettings | None = None,
) -> FastAPI:
    """`transports` replaces the network for calls to peers (tests pass in-process ones)."""
    kernel = kernel or load_settings(KernelSettings)
    settings = settings or load_settings(ScoringSettings)
    transports = transports or {}
    database = scoring_database(kernel, settings)
    store = artifact_store(kernel)
    customer = CustomerClient(kernel.urls("customer"), timeout=kernel.peer_timeout_seconds,
                              transport=transports.get("customer"))
    monitoring = MonitoringClient(kernel, transports.get("monitoring"))
    context = ScoringContext(settings, load_hash_key(settings, kernel))
    writer = ScoreWriter(database, idempotency.table)
    shadow = ShadowQueue(writer, context)
    app = create_service_app(
        idempotency=idempotency,
        audit=audit,
        name="scoring",
        title="LoanCRM scoring service",
        description="Probability of default, points, grade and decision for applicants and borrowers.",
        kernel=kernel,
        database=database,
        routers=[registry_router, scores_router, stability_router, applications_router, screening_router,
                 disclosure_router, study_router,
                 event_feed_router(outbox)],
        verifier=verifier,
        on_shutdown=[shadow.aclose, writer.aclose, customer.aclose, monitoring.aclose],
    )
    app.state.scoring = ScoringState(
        database=database, store=store,
        serving=ServingModels(database, store, settings.champion_refresh_seconds),
        context=context, shadow=shadow, writer=writer, customer=customer, monitoring=monitoring,
    )
    return app


def app() -> FastAPI:
    """Factory for uvicorn (`--factory`)."""
    return uvicorn_factory("scoring", create_app)
