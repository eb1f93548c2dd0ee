"""Routing through the gateway: token forwarded, request id carried, a peer down or slow named in a problem."""

import socket
import threading

import pytest

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


def test_errors_from_a_service_come_back_unchanged(suite):
    response = suite.client.post("/api/customer/nothing-here", headers=suite.headers("admin"), json={"a": 1})
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["instance"] == "/nothing-here"


def test_aggregated_openapi_lists_every_service_under_its_prefix(suite):
    spec = suite.client.get("/api/openapi.json").json()
    for service in ("customer", "scoring", "monitoring"):
        assert f"/api/{service}/whoami" in spec["paths"]
    assert "/auth/token" in spec["paths"]
    assert "CustomerProblemDetail" in spec["components"]["schemas"]
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
