"""Routing through the gateway: token forwarded, request id carried, a peer down or slow named in a problem."""

import json
import socket
import threading
import time

import pytest
from structlog.testing import capture_logs

from gateway.main import create_app
from gateway.settings import GatewaySettings
from shared.settings import KernelSettings


@pytest.mark.parametrize("service", ["customer", "scoring", "monitoring"])
def test_a_token_reaches_each_service_through_the_gateway(suite, service):
    headers = {**suite.headers("admin"), "X-Request-ID": f"trace-{service}-1"}
    health = suite.client.get(f"/api/{service}/health/ready", headers=headers)
    assert health.status_code == 200 and health.json()["service"] == service
    assert health.headers["x-request-id"] == f"trace-{service}-1"
    who = suite.client.get(f"/api/{service}/whoami", headers=headers)
    assert who.status_code == 200 and who.json()["sub"] == "admin"


def test_the_gateway_refuses_before_forwarding_when_the_token_is_missing(suite):
    response = suite.client.get("/api/customer/health/live")
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"


def test_an_unknown_service_is_a_404_problem(suite):
    response = suite.client.get("/api/payments/anything", headers=suite.headers("admin"))
    assert response.status_code == 404 and "payments" in response.json()["detail"]


def test_a_request_id_is_generated_when_absent_and_query_strings_pass_through(suite):
    response = suite.client.get("/api/scoring/whoami?x=1&x=2", headers=suite.headers("admin"))
    assert response.status_code == 200 and len(response.headers["x-request-id"]) == 32


def test_errors_from_a_service_come_back_naming_the_public_path(suite):
    """Issue 17, Found 7: `instance` named the service's internal path (`/nothing-here`)."""
    response = suite.client.post("/api/customer/nothing-here", headers=suite.headers("admin"), json={"a": 1})
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["instance"] == "/api/customer/nothing-here"
    missing = suite.client.get("/api/monitoring/loans/x", headers=suite.headers("admin"))
    assert missing.status_code == 404 and missing.json()["instance"] == "/api/monitoring/loans/x"
    direct = suite.direct["monitoring"].get("/loans/x", headers=suite.headers("admin"))
    assert direct.json()["instance"] == "/loans/x"


def test_aggregated_openapi_lists_every_service_under_its_prefix(suite):
    spec = suite.client.get("/api/openapi.json").json()
    for service in ("customer", "scoring", "monitoring"):
        assert f"/api/{service}/whoami" in spec["paths"]
    assert "/auth/token" in spec["paths"]
    assert "ProblemDetail" in spec["components"]["schemas"] and "MonitoringLoanSummary" in spec["components"]["schemas"]
    assert "x-unavailable-services" not in spec


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class _SilentServer:
    """Accepts connections and never answers: a peer that hangs."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.held: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.held.append(conn)

    def close(self) -> None:
        self.sock.close()
        for conn in self.held:
            conn.close()


@pytest.fixture
def gateway_with_bad_peers(suite):
    from fastapi.testclient import TestClient

    silent = _SilentServer()
    kernel = KernelSettings(
        **{**suite.kernel.model_dump(), "customer_url": f"http://127.0.0.1:{_closed_port()}",
           "scoring_url": f"http://127.0.0.1:{silent.port}", "monitoring_url": f"http://127.0.0.1:{_closed_port()}"}
    )
    app = create_app(kernel, GatewaySettings(upstream_timeout_seconds=0.5, upstream_connect_timeout_seconds=0.5))
    with TestClient(app, base_url="http://gateway") as client:
        yield client
    silent.close()


def test_a_peer_that_is_down_is_a_503_naming_it(suite, gateway_with_bad_peers):
    response = gateway_with_bad_peers.get("/api/customer/whoami", headers=suite.headers("admin"))
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["service"] == "customer" and "customer" in response.json()["detail"]


def test_a_peer_that_hangs_is_a_504_naming_it(suite, gateway_with_bad_peers):
    response = gateway_with_bad_peers.get("/api/scoring/whoami", headers=suite.headers("admin"))
    assert response.status_code == 504 and response.json()["service"] == "scoring"


def test_readiness_and_openapi_report_peers_that_are_down(suite, gateway_with_bad_peers):
    ready = gateway_with_bad_peers.get("/health/ready")
    assert ready.status_code == 503
    assert ready.json()["checks"]["database"] == "ok"
    assert ready.json()["checks"]["customer"].startswith("failed")
    spec = gateway_with_bad_peers.get("/api/openapi.json").json()
    assert set(spec["x-unavailable-services"]) == {"customer", "scoring", "monitoring"}


def test_metrics_count_requests_by_route_template(suite):
    suite.client.get("/api/customer/whoami", headers=suite.headers("admin"))
    text = suite.client.get("/metrics").text
    assert ('loancrm_http_requests_total{method="GET",route="/api/{service}/{path:path}",service="gateway",'
            'status="200"}') in text
    direct = suite.direct["customer"].get("/metrics").text
    assert 'route="/whoami",service="customer",status="200"' in direct


def _targets(suite):
    return [("gateway", suite.client, "/whoami"), *((s, suite.direct[s], "/whoami") for s in suite.direct),
            ("through-gateway", suite.client, "/api/customer/whoami")]


@pytest.mark.parametrize("authorized", [True, False])
def test_every_answer_of_every_service_carries_the_security_headers(suite, authorized):
    """Found 14: no Cache-Control, X-Content-Type-Options or frame headers on answers with personal data."""
    headers = suite.headers("admin") if authorized else {}
    for name, client, path in _targets(suite):
        response = client.get(path, headers=headers)
        assert response.status_code == (200 if authorized else 401), name
        assert response.headers["cache-control"] == "no-store", name
        assert response.headers["x-content-type-options"] == "nosniff", name
        assert response.headers["x-frame-options"] == "DENY", name
        assert "frame-ancestors 'none'" in response.headers["content-security-policy"], name
        assert "strict-transport-security" not in response.headers, name
        assert response.headers.get_list("x-frame-options") == ["DENY"], name  # not repeated by the proxy
        assert "server" not in response.headers, name


def test_hsts_is_sent_behind_tls(suite):
    response = suite.client.get("/api/monitoring/whoami", headers={**suite.headers("admin"),
                                                                   "X-Forwarded-Proto": "https"})
    assert response.headers["strict-transport-security"].startswith("max-age=")


def test_uvicorn_is_started_without_its_server_header(suite):
    import asyncio

    import httpx
    import uvicorn

    from loancrm.supervisor import uvicorn_options

    kernel = KernelSettings(**{**suite.kernel.model_dump(), "gateway_port": _closed_port()})
    server = uvicorn.Server(uvicorn.Config(suite.services["customer"], **uvicorn_options(kernel, "gateway")))

    async def run() -> httpx.Response:
        task = asyncio.create_task(server.serve())
        while not server.started:
            await asyncio.sleep(0.02)
        async with httpx.AsyncClient() as client:
            response = await client.get(f"http://127.0.0.1:{kernel.gateway_port}/health/live")
        server.should_exit = True
        await task
        return response

    response = asyncio.run(run())
    assert response.status_code == 200 and "server" not in response.headers


def test_through_the_gateway_each_header_comes_once_and_no_server_is_named(suite):
    """Issue 17, Found 7: through the gateway `date` came twice (the service's and the gateway's own server's), and
    `server` too. Over real sockets, as `loancrm up` serves: the in-process client shows neither server's headers."""
    import asyncio

    import httpx
    import uvicorn

    from loancrm.supervisor import uvicorn_options

    gateway_port, customer_port = _closed_port(), _closed_port()
    kernel = KernelSettings(**{**suite.kernel.model_dump(), "gateway_port": gateway_port,
                               "customer_port": customer_port, "customer_url": f"http://127.0.0.1:{customer_port}"})
    gateway = create_app(kernel, GatewaySettings())  # forwarding over a socket, with the production client
    servers = [uvicorn.Server(uvicorn.Config(gateway, **uvicorn_options(kernel, "gateway"))),
               # The suite's own service, so its start-up and shutdown are the suite's.
               uvicorn.Server(uvicorn.Config(suite.services["customer"], **uvicorn_options(kernel, "customer"),
                                             lifespan="off"))]

    async def run() -> list[httpx.Response]:
        tasks = [asyncio.create_task(server.serve()) for server in servers]
        while not all(server.started for server in servers):
            await asyncio.sleep(0.02)
        try:
            async with httpx.AsyncClient(headers=suite.headers("admin")) as client:
                gateway_url = f"http://127.0.0.1:{gateway_port}/api/customer"
                return [await client.get(f"{gateway_url}/whoami"),
                        await client.get(f"{gateway_url}/customers/nobody"),
                        await client.get(f"http://127.0.0.1:{customer_port}/whoami"),
                        # An encoded `?` stays in the id; a body reaches the service whole.
                        await client.get(f"{gateway_url}/customers/a%3Fb"),
                        await client.post(f"{gateway_url}/customers", json={"name": "x"},
                                          headers={"Idempotency-Key": "socket-test-1"})]
        finally:
            for server in servers:
                server.should_exit = True
            await asyncio.gather(*tasks)

    through, missing, direct, encoded, posted = asyncio.run(run())
    assert through.status_code == 200 and through.json()["sub"] == "admin"
    assert missing.status_code == 404 and missing.json()["instance"] == "/api/customer/customers/nobody"
    assert encoded.status_code == 404 and encoded.json()["instance"] == "/api/customer/customers/a%3Fb"
    assert posted.status_code == 422 and "body.national_id" in {e["field"] for e in posted.json()["errors"]}
    for response in (through, missing, direct, encoded, posted):
        assert len(response.headers.get_list("date")) == 1, response.headers.raw
        assert "server" not in response.headers
        assert all(len(response.headers.get_list(name)) == 1 for name in response.headers), response.headers.raw


def test_docs_and_metrics_can_be_switched_off(suite):
    """Found 14: /docs and /metrics (with failed sign-in counts) were public on every port."""
    from fastapi.testclient import TestClient

    kernel = KernelSettings(**{**suite.kernel.model_dump(), "docs_enabled": False, "metrics_enabled": False})
    with TestClient(create_app(kernel, GatewaySettings()), base_url="http://gateway") as client:
        for path in ("/docs", "/redoc", "/metrics"):
            assert client.get(path).status_code == 404, path
        assert client.get("/health/live").status_code == 200
    assert suite.client.get("/docs").status_code == 200  # on by default, for development


@pytest.mark.parametrize("size", [60 * 1024, 16 * 1024 * 1024])
def test_a_huge_authorization_header_is_refused_quickly_on_every_port(suite, size):
    """Found 13: a 60 KB token and a 16 MB Authorization header were parsed."""
    huge = {"Authorization": "Bearer " + "a" * size}
    for name, client, path in _targets(suite):
        started = time.perf_counter()
        response = client.get(path, headers=huge)
        assert response.status_code == 431, name
        assert response.headers["content-type"] == "application/problem+json"
        assert response.headers["x-content-type-options"] == "nosniff"
        assert time.perf_counter() - started < 2.0, name
    too_many = {f"x-filler-{i}": "y" * 1000 for i in range(20)}
    assert suite.direct["scoring"].get("/health/live", headers=too_many).status_code == 431


def test_a_request_with_two_authorization_headers_is_refused_on_every_port(suite):
    """Two bearer tokens on one request (a trusted caller's and another's): the gateway verified one and a service
    could verify the other. Each door refuses the request, naming the header, before reading either token."""
    admin = suite.headers("admin")["Authorization"]
    for first, second in ((admin, "Bearer not-a-token"), ("Bearer not-a-token", admin), (admin, admin)):
        for name, client, path in _targets(suite):
            response = client.get(path, headers=[("Authorization", first), ("Authorization", second)])
            assert response.status_code == 400, name
            assert response.headers["content-type"] == "application/problem+json"
            assert response.json()["errors"][0]["field"] == "header.Authorization", name
        assert suite.client.get("/whoami", headers={"Authorization": admin}).status_code == 200


def _schedule_preview(size: int) -> bytes:
    body = json.dumps({"principal": "10000.00", "padding": "x" * size})
    return body.encode()


@pytest.mark.parametrize("chunked", [False, True])
def test_a_json_body_over_a_megabyte_is_refused_with_413(suite, chunked):
    """Found 13: a 50 MB JSON body to schedule-preview answered 200."""
    body = _schedule_preview(2 * 1024 * 1024)
    content = iter([body[i:i + 65536] for i in range(0, len(body), 65536)]) if chunked else body
    headers = {**suite.headers("officer.limits", ["loan_officer"], "BJ001"), "Content-Type": "application/json"}
    response = suite.direct["monitoring"].post("/loans/schedule-preview", headers=headers, content=content)
    assert response.status_code == 413, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert "1048576" in response.json()["detail"]
    small = suite.direct["monitoring"].post("/loans/schedule-preview", headers=headers,
                                            content=_schedule_preview(10))
    assert small.status_code == 422  # read and validated as usual


def test_a_large_body_through_the_gateway_gets_the_services_413(suite):
    headers = {**suite.headers("officer.limits2", ["loan_officer"], "BJ001"), "Content-Type": "application/json"}
    response = suite.client.post("/api/monitoring/loans/schedule-preview", headers=headers,
                                 content=_schedule_preview(2 * 1024 * 1024))
    assert response.status_code == 413


def test_a_forwarded_request_writes_one_access_log_line_naming_its_caller(suite):
    with capture_logs() as logs:
        response = suite.client.get("/api/customer/whoami?x=1", headers=suite.headers("admin"))
    assert response.status_code == 200
    lines = [entry for entry in logs if entry["event"] == "request" and entry.get("path") == "/api/customer/whoami"]
    assert len(lines) == 1, logs
    assert lines[0]["method"] == "GET" and lines[0]["status"] == 200 and lines[0]["principal"] == "admin"
    with capture_logs() as logs:
        refused = suite.client.get("/api/customer/whoami")  # no token: still one line, naming no caller
    assert refused.status_code == 401
    assert [(e["status"], e["principal"]) for e in logs if e.get("path") == "/api/customer/whoami"] == [(401, None)]
