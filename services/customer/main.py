"""Customer records: profiles, KYC, consents, interactions, portrait and segments."""

import httpx
from fastapi import FastAPI

from shared.app import create_service_app, uvicorn_factory
from shared.auth.tokens import TokenVerifier
from shared.db import Database
from shared.settings import KernelSettings, load_settings


def create_app(
    kernel: KernelSettings | None = None,
    *,
    verifier: TokenVerifier | None = None,
    transports: dict[str, httpx.AsyncBaseTransport] | None = None,
) -> FastAPI:
    """`transports` replaces the network for calls to peers (tests pass in-process ones)."""
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
    return uvicorn_factory("customer", create_app)
