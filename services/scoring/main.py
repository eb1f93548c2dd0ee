"""Credit scoring: models served from ONNX, scores, grades, decisions and reasons."""

from fastapi import FastAPI

from shared.app import create_service_app
from shared.auth.tokens import TokenVerifier
from shared.db import Database
from shared.logging import configure_logging
from shared.settings import KernelSettings, load_settings


def create_app(kernel: KernelSettings | None = None, *, verifier: TokenVerifier | None = None) -> FastAPI:
    kernel = kernel or load_settings(KernelSettings)
    return create_service_app(
        name="scoring",
        title="LoanCRM scoring service",
        description="Probability of default, points, grade and decision for applicants and borrowers.",
        kernel=kernel,
        database=Database(kernel.database_url("scoring")),
        verifier=verifier,
    )


def app() -> FastAPI:
    """Factory for uvicorn (`--factory`)."""
    kernel = load_settings(KernelSettings)
    configure_logging("scoring", kernel.log_level)
    return create_app(kernel)
