"""Credit scoring: models served from ONNX, scores, grades, decisions and reasons."""

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
        name="scoring",
        title="LoanCRM scoring service",
        description="Probability of default, points, grade and decision for applicants and borrowers.",
        kernel=kernel,
        database=Database(kernel.database_url("scoring")),
        verifier=verifier,
    )


def app() -> FastAPI:
    """Factory for uvicorn (`--factory`)."""
    return uvicorn_factory("scoring", create_app)
