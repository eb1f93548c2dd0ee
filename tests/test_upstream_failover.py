"""A replica that answers a bare 503 (something in front of it, or a server refusing work) is taken out and the
request goes to another; a 503 problem+json is the service's own answer and passes through, replica kept."""

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from fastapi.testclient import TestClient

from gateway.main import create_app
from gateway.settings import GatewaySettings
from shared.settings import KernelSettings


class _Stub:
    """A stand-in replica on a real port answering every request with one fixed answer."""

    def __init__(self, status: int, content_type: str, body: dict) -> None:
        payload = json.dumps(body).encode()

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                self.rfile.read(int(self.headers.get("content-length") or 0))
                self.send_response(status)
                self.send_header("content-type", content_type)
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = _answer

            def log_message(self, *_args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def stubs():
    made = {"refusing": _Stub(503, "text/plain", {}),
            "problem": _Stub(503, "application/problem+json", {"status": 503, "title": "Service unavailable"}),
            "healthy": _Stub(200, "application/json", {"sub": "admin"})}
    yield made
    for stub in made.values():
        stub.close()


def _gateway(suite, customer_urls: list[str]) -> TestClient:
    kernel = KernelSettings(**{**suite.kernel.model_dump(), "customer_urls": customer_urls})
    return TestClient(create_app(kernel, GatewaySettings()), base_url="http://gateway")


def _replicas(client: TestClient) -> dict[str, dict]:
    return {r["url"]: r for r in client.get("/health/ready").json()["upstreams"]["customer"]}


def test_a_bare_503_takes_the_replica_out_and_a_read_goes_to_another(suite, stubs):
    refusing, healthy = stubs["refusing"].url, stubs["healthy"].url
    with _gateway(suite, [refusing, healthy]) as gateway:
        answers = [gateway.get("/api/customer/whoami", headers=suite.headers("admin")) for _ in range(6)]
        assert [a.status_code for a in answers] == [200] * 6
        metrics = gateway.get("/metrics").text
        sent = dict(re.findall(r'loancrm_gateway_upstream_requests_total\{service="customer",upstream="([^"]+)"\} '
                               r'(\S+)', metrics))
        assert float(sent[refusing]) == 1 and float(sent[healthy]) == 6  # tried once, then left alone
        assert f'loancrm_gateway_upstream_up{{service="customer",upstream="{refusing}"}} 0.0' in metrics
        states = _replicas(gateway)  # readiness probes its /health/ready: a bare 503 again
        assert states[refusing]["state"] == "down" and "503" in states[refusing]["reason"]
        assert states[healthy]["state"] == "up"


def test_a_write_that_reached_a_refusing_replica_is_not_sent_again(suite, stubs):
    with _gateway(suite, [stubs["refusing"].url, stubs["healthy"].url]) as gateway:
        write = gateway.post("/api/customer/whoami", json={}, headers=suite.headers("admin"))
        # It may have acted: its own answer, never a second try elsewhere.
        assert write.status_code == 503
        assert _replicas(gateway)[stubs["refusing"].url]["state"] == "down"


def test_a_services_own_503_problem_passes_through_and_keeps_the_replica(suite, stubs):
    problem, healthy = stubs["problem"].url, stubs["healthy"].url
    with _gateway(suite, [problem, healthy]) as gateway:
        statuses = {gateway.get("/api/customer/whoami", headers=suite.headers("admin")).status_code
                    for _ in range(4)}
        assert statuses == {200, 503}
        metrics = gateway.get("/metrics").text
        assert f'loancrm_gateway_upstream_up{{service="customer",upstream="{problem}"}} 1.0' in metrics
