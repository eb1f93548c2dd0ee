"""Customer records: profiles, KYC, consents, interactions, portrait and segments."""

from fastapi import FastAPI

from shared.app import create_service_app
from shared.auth.tokens import TokenVerifier
from shared.db import Database
from shared.logging import configure_logging
from shared.settings import KernelSettings, load_settings


def create_app(kernel: KernelSettings | None = None, *, verifier: TokenVerifier | None = None) -> FastAPI:
    kernel = kernel or load_settings(KernelSettings)
    return create_service_app(
        name="customer",
        title="LoanCRM customer service",
        description="The bank's record of each borrower and every contact with them.",
        kernel=kernel,
        database=Database(kernel.database_url("customer")),
        verifier=verifier,
    )


def app() -> FastAPI:
    """Factory for uvicorn (`--factory`)."""
    kernel = load_settings(KernelSettings)
    configure_logging("customer", kernel.log_level)
    return create_app(kernel)
