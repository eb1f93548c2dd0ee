"""Test harness: real databases (SQLite files or throwaway PostgreSQL databases) and the apps wired in-process.

Apps talk to each other over HTTP through httpx's ASGI transport, the same client code as in production
minus the sockets; the end-to-end tests start real processes.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psycopg
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.engine import make_url

from gateway.main import create_app as create_gateway
from gateway.settings import GatewaySettings, WebhookSettings
from gateway.users.models import UserCreate
from gateway.users.service import create_user
from loancrm import migrate
from loancrm.bootstrap import AdminSettings, bootstrap_gateway
from shared.app import verifier_limits
from shared.auth.tokens import TokenVerifier, http_jwks_source, http_revocation_source
from shared.db import Database
from shared.settings import SERVICES, KernelSettings

DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
ADMIN_PASSWORD = "suite-operator-secret-1"
PASSWORD = "a-long-test-password"


def postgres_admin_url() -> str:
    return os.environ.get("LOANCRM_TEST_POSTGRES_URL", DEFAULT_PG_URL)


def postgres_reachable() -> str | None:
    """None when reachable, else the reason."""
    url = make_url(postgres_admin_url())
    try:
        with psycopg.connect(_libpq(url), connect_timeout=3):
            return None
    except psycopg.Error as exc:
        return str(exc).strip().splitlines()[0]


def postgres_libpq_url() -> str:
    """The admin connection as libpq wants it, for tests that act on the server itself."""
    return _libpq(make_url(postgres_admin_url()))


def _libpq(url) -> str:  # noqa: ANN001
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


@contextmanager
def throwaway_postgres_database() -> Iterator[str]:
    """A database of the test's own, dropped afterwards; never touches data the tests did not make."""
    admin = make_url(postgres_admin_url())
    name = f"loancrm_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(_libpq(admin), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield admin.set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(_libpq(admin), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def database_urls(backend: str, tmp: Path) -> Iterator[dict[str, str]]:
    if backend == "sqlite":
        yield {service: f"sqlite:///{tmp / f'{service}.db'}" for service in SERVICES}
        return
    # One throwaway database per service, as in production where each service owns its database.
    with throwaway_postgres_database() as g, throwaway_postgres_database() as c, \
            throwaway_postgres_database() as s, throwaway_postgres_database() as m:
        yield {"gateway": g, "customer": c, "scoring": s, "monitoring": m}


@dataclass
class Suite:
    kernel: KernelSettings
    gateway: FastAPI
    services: dict[str, FastAPI]
    backend: str
    client: TestClient
    direct: dict[str, TestClient]
    _tokens: dict[str, str] = field(default_factory=dict)

    def database(self, service: str) -> Database:
        app = self.gateway if service == "gateway" else self.services[service]
        return app.state.database

    def add_user(self, username: str, roles: list[str], branch: str | None = None) -> None:
        with self.database("gateway").session() as session:
            create_user(session, UserCreate(username=username, password=PASSWORD, roles=roles, branch=branch), "tests")
            session.commit()

    def token(self, username: str, roles: list[str] | None = None, branch: str | None = None) -> str:
        """A real token from /auth/token, creating the user on first use."""
        if username not in self._tokens:
            password = ADMIN_PASSWORD if username == "admin" else PASSWORD
            if username != "admin":
                self.add_user(username, roles or ["loan_officer"], branch)
            response = self.client.post("/auth/token", data={"username": username, "password": password})
            assert response.status_code == 200, response.text
            self._tokens[username] = response.json()["access_token"]
        return self._tokens[username]

    def headers(self, username: str, roles: list[str] | None = None, branch: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(username, roles, branch)}"}

    def sign(self, claims: dict, *, kid: str | None = None, headers: dict | None = None) -> str:
        """A token signed with the gateway's real (decrypted) signing key: for forging claims in tests."""
        from jose import jwt

        from gateway.tokens.service import active_key

        with self.database("gateway").session() as session:
            key = active_key(session)
            signer = self.gateway.state.keyring.signer(session, key)
        return jwt.encode(claims, signer, algorithm="RS256",
                          headers={"kid": kid or key.kid, "typ": "at+jwt", **(headers or {})})


def service_app(
    service: str, kernel: KernelSettings, verifier: TokenVerifier, transports: dict[str, httpx.AsyncBaseTransport]
) -> FastAPI:
    if service == "customer":
        from services.customer.main import create_app
    elif service == "scoring":
        from services.scoring.main import create_app
    else:
        from services.monitoring.main import create_app
    return create_app(kernel, verifier=verifier, transports=transports)


@contextmanager
def running_suite(backend: str, tmp: Path, **kernel_overrides: object) -> Iterator[Suite]:
    # Revocations reach the services within a poll: short in tests, so a test can wait for one.
    kernel_overrides.setdefault("revocation_poll_seconds", 0.5)
    with database_urls(backend, tmp) as urls:
        kernel = KernelSettings(
            var_dir=tmp,
            gateway_database_url=urls["gateway"],
            customer_database_url=urls["customer"],
            scoring_database_url=urls["scoring"],
            monitoring_database_url=urls["monitoring"],
            **kernel_overrides,
        )
        migrate.upgrade_all(kernel)
        bootstrap_gateway(kernel, GatewaySettings(), AdminSettings(user="admin", password=ADMIN_PASSWORD))
        services: dict[str, FastAPI] = {}
        boxes: dict[str, list[FastAPI]] = {name: [] for name in SERVICES}
        # Every app reaches its peers in-process; the boxes are filled once all apps exist.
        peers = {name: _LazyASGI(box) for name, box in boxes.items()}  # the gateway's token endpoint too

        def verifier() -> TokenVerifier:
            jwks_client = httpx.AsyncClient(transport=_LazyASGI(boxes["gateway"]), base_url="http://gateway")
            return TokenVerifier(
                issuer=kernel.jwt_issuer, audience=kernel.jwt_audience,
                jwks_source=http_jwks_source("http://gateway/.well-known/jwks.json", client=jwks_client),
                revocation_source=http_revocation_source("http://gateway/auth/revocations", client=jwks_client),
                **verifier_limits(kernel),  # type: ignore[arg-type]
            )

        for name in ("customer", "scoring", "monitoring"):
            services[name] = service_app(name, kernel, verifier(), peers)
            boxes[name].append(services[name])
        # The tests close business days years ahead of the real clock.
        state = services["monitoring"].state
        state.monitoring_settings = state.monitoring_settings.model_copy(update={"cob_days_ahead": 36_500})
        # No background webhook task: the tests run passes themselves (gateway.webhooks.flows `run_once`).
        gateway = create_gateway(kernel, GatewaySettings(), transports=peers,
                                 webhook_settings=WebhookSettings(poll_seconds=0))
        boxes["gateway"].append(gateway)
        with ExitStack() as stack:
            client = stack.enter_context(TestClient(gateway, base_url="http://gateway"))
            direct = {name: stack.enter_context(TestClient(app, base_url=f"http://{name}"))
                      for name, app in services.items()}
            yield Suite(kernel=kernel, gateway=gateway, services=services, backend=backend, client=client,
                        direct=direct)


class _LazyASGI(httpx.AsyncBaseTransport):
    """ASGI transport to an app created after the client (the gateway is built last)."""

    def __init__(self, box: list[FastAPI]) -> None:
        self.box = box

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await httpx.ASGITransport(self.box[0]).handle_async_request(request)


def every_page(client: TestClient, url: str, headers: dict[str, str], *, limit: int) -> list[dict]:
    """Every item of a list, read by following each page's `next` link from `url` (which asks for `limit` a
    page) until the last page, whose `next_cursor` and `next` are null."""
    items: list[dict] = []
    while True:
        response = client.get(url, headers=headers)
        assert response.status_code == 200, (url, response.text)
        page = response.json()
        assert set(page) == {"items", "next_cursor", "next"} and len(page["items"]) <= limit, page
        items += page["items"]
        if page["next_cursor"] is None:
            assert page["next"] is None
            return items
        assert len(page["items"]) == limit and f"cursor={page['next_cursor']}" in page["next"]
        url = page["next"]


def until_refused(client: TestClient, path: str, headers: dict[str, str], bound: float, *,
                  since: float | None = None) -> float:
    """Polls `path` until it answers 401 for a revoked token; seconds waited. Fails when a request *sent* more than
    `bound` seconds after `since` (default: now) is still accepted: judged by when each request left, so a machine
    slow to answer one does not fail a revocation that had arrived in time."""
    started = time.monotonic()
    since = started if since is None else since
    while True:
        sent = time.monotonic()
        response = client.get(path, headers=headers)
        if response.status_code == 401:
            assert "revoked" in response.json()["detail"], response.text
            return time.monotonic() - started
        assert response.status_code == 200, response.text
        assert sent - since < bound, f"{path} still accepted a revoked token sent {sent - since:.1f} s after"
        time.sleep(0.05)
