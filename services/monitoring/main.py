"""Post-loan monitoring: repayments, delinquency, classification, early warning, collections."""

from fastapi import FastAPI

from shared.app import create_service_app
from shared.auth.tokens import TokenVerifier
from shared.db import Database
from shared.logging import configure_logging
from shared.settings import KernelSettings, load_settings


def create_app(kernel: KernelSettings | None = None, *, verifier: TokenVerifier | None = None) -> FastAPI:
    kernel = kernel or load_settings(KernelSettings)
    return create_service_app(
        name="monitoring",
        title="LoanCRM monitoring service",
        description="Watches every loan after disbursement.",
        kernel=kernel,
        database=Database(kernel.database_url("monitoring")),
        verifier=verifier,
    )


def app() -> FastAPI:
    """Factory for uvicorn (`--factory`)."""
    kernel = load_settings(KernelSettings)
    configure_logging("monitoring", kernel.log_level)
    return create_app(kernel)
