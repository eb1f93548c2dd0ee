"""Two real replicas of the customer service (separate processes, one PostgreSQL database) behind a real gateway:
one is killed with SIGKILL under load, comes back, and the callers never notice.

PostgreSQL, not SQLite, for the shared database: it is what a deployment with replicas runs (docker-compose.yml),
and two processes writing one SQLite file would serialise on its lock (`database is locked` under the writers'
load), which would test SQLite's locking rather than the gateway's failover.
"""

import asyncio
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid

import httpx
import pytest

from gateway.settings import GatewaySettings
from loancrm.bootstrap import AdminSettings, bootstrap_gateway
from loancrm.migrate import upgrade
from shared.clients.customer import CustomerClient
from shared.settings import KernelSettings
from tests.conftest import require_postgres
from tests.customer.factory import person
from tests.support import throwaway_postgres_database
from tests.test_e2e import _free_ports

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]
ADMIN_PASSWORD = "replica-operator-secret-1"


class _Process:
    def __init__(self, service: str, env: dict[str, str], port: int) -> None:
        self.service, self.env, self.port = service, env, port
        self.url = f"http://127.0.0.1:{port}"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen([sys.executable, "-m", "loancrm", "serve", self.service], env=self.env,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"{self.service} on {self.port} exited"
            try:
                if httpx.get(f"{self.url}/health/live", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"{self.service} on {self.port} never came up")

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()


@pytest.fixture(scope="module")
def deployment(tmp_path_factory):
    require_postgres()
    var = tmp_path_factory.mktemp("var")
    gateway_port, port_a, port_b = _free_ports(3)
    with throwaway_postgres_database() as customer_db:
        env = {k: v for k, v in os.environ.items() if not k.startswith("LOANCRM_")}
        env.update({
            "LOANCRM_VAR_DIR": str(var), "LOANCRM_LOG_LEVEL": "WARNING", "LOANCRM_GATEWAY_PORT": str(gateway_port),
            "LOANCRM_CUSTOMER_DATABASE_URL": customer_db,
            "LOANCRM_CUSTOMER_URLS": f"http://127.0.0.1:{port_a},http://127.0.0.1:{port_b}",
            "LOANCRM_GATEWAY_RATE_LIMIT_PER_MINUTE": "1000000", "LOANCRM_WEBHOOKS_POLL_SECONDS": "0",
            # A claim left by the killed replica's request lapses soon, so its client's retry gets through.
            "LOANCRM_IDEMPOTENCY_LEASE_SECONDS": "2",
        })
        kernel = KernelSettings(var_dir=var, customer_database_url=customer_db, gateway_port=gateway_port)
        upgrade(kernel.database_url("gateway"), "gateway")
        upgrade(customer_db, "customer")
        bootstrap_gateway(kernel, GatewaySettings(), AdminSettings(password=ADMIN_PASSWORD))
        replicas = [_Process("customer", {**env, "LOANCRM_CUSTOMER_PORT": str(port)}, port)
                    for port in (port_a, port_b)]
        gateway = _Process("gateway", env, gateway_port)
        try:
            # One after the other: the first generates the personal-data keys into the shared var folder.
            for process in (gateway, *replicas):
                process.start()
            token = httpx.post(f"{gateway.url}/auth/token",
                               data={"username": "admin", "password": ADMIN_PASSWORD}).json()["access_token"]
            yield {"gateway": gateway, "replicas": replicas, "token": token}
        finally:
            for process in (*replicas, gateway):
                process.stop()


def _served(gateway: str) -> dict[str, float]:
    """Requests the gateway sent to each customer replica, from its metrics (reading them probes nothing)."""
    text = httpx.get(f"{gateway}/metrics").text
    return {url: float(n) for url, n in re.findall(
        r'loancrm_gateway_upstream_requests_total\{service="customer",upstream="([^"]+)"\} (\S+)', text)}


def _replicas(gateway: str) -> dict[str, dict]:
    body = httpx.get(f"{gateway}/health/ready").json()  # 503 here (scoring and monitoring are not running)
    return {replica["url"]: replica for replica in body["upstreams"]["customer"]}


class _Load:
    """Readers and writers through the gateway, in threads, until stopped; every answer is kept."""

    def __init__(self, gateway: str, token: str, ids: list[str]) -> None:
        self.gateway, self.ids = gateway, ids
        self.headers = {"Authorization": f"Bearer {token}"}
        self.reads: list[int] = []
        self.writes: list[tuple[str, dict, httpx.Response]] = []
        self.stopping = threading.Event()
        self.threads = [threading.Thread(target=self._read, args=(n,)) for n in range(3)] + \
            [threading.Thread(target=self._write) for _ in range(2)]

    def _read(self, offset: int) -> None:
        with httpx.Client(base_url=self.gateway, headers=self.headers, timeout=30) as client:
            n = offset
            while not self.stopping.is_set():
                n += 1
                self.reads.append(client.get(f"/api/customer/customers/{self.ids[n % len(self.ids)]}").status_code)

    def _write(self) -> None:
        with httpx.Client(base_url=self.gateway, headers=self.headers, timeout=30) as client:
            while not self.stopping.is_set():
                key, body = uuid.uuid4().hex, person()
                response = client.post("/api/customer/customers", json=body, headers={"Idempotency-Key": key})
                self.writes.append((key, body, response))

    def __enter__(self) -> "_Load":
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stopping.set()
        for thread in self.threads:
            thread.join(timeout=60)

    def wait_for(self, reads: int) -> None:
        deadline = time.monotonic() + 120
        target = len(self.reads) + reads
        while len(self.reads) < target:
            assert time.monotonic() < deadline, "the load stalled"
            time.sleep(0.05)


def _register(gateway: str, headers: dict[str, str]) -> str:
    response = httpx.post(f"{gateway}/api/customer/customers", json=person(),
                          headers={**headers, "Idempotency-Key": uuid.uuid4().hex})
    assert response.status_code == 201, response.text
    return response.json()["id"]


def test_a_replica_killed_under_load_costs_no_reader_an_error_and_gets_traffic_again_when_back(deployment):
    gateway, (doomed, survivor) = deployment["gateway"].url, deployment["replicas"]
    headers = {"Authorization": f"Bearer {deployment['token']}"}
    ids = [_register(gateway, headers) for _ in range(10)]
    before = _served(gateway)
    assert before[doomed.url] > 0 and before[survivor.url] > 0  # both take traffic

    with _Load(gateway, deployment["token"], ids) as load:
        load.wait_for(30)
        doomed.kill()
        load.wait_for(100)
        states = _replicas(gateway)
        assert states[doomed.url]["state"] in {"down", "probing"} and states[doomed.url]["reason"]
        assert states[survivor.url]["state"] == "up"
        # Down, it gets nothing more: everything goes to the survivor.
        sent = _served(gateway)
        load.wait_for(50)
        after = _served(gateway)
        assert after[doomed.url] == sent[doomed.url] and after[survivor.url] > sent[survivor.url]

        doomed.start()
        # Back, it is probed in again once its back-off ends (nothing but the load here calls readiness).
        back = _served(gateway)[doomed.url]
        deadline = time.monotonic() + 120
        while _served(gateway)[doomed.url] == back:
            assert time.monotonic() < deadline, "the restarted replica never got traffic again"
            time.sleep(0.2)
        load.wait_for(30)

    assert load.reads and set(load.reads) == {200}, sorted(set(load.reads))
    assert load.writes
    with httpx.Client(base_url=gateway, headers=headers, timeout=30) as client:
        for key, body, response in load.writes:
            if response.status_code == 201:
                continue
            # Only a write that reached the killed replica may fail, as a 502 problem saying to repeat it.
            assert response.status_code == 502, response.text
            assert response.headers["content-type"] == "application/problem+json"
            assert response.json()["service"] == "customer" and "Idempotency-Key" in response.json()["detail"]
            retry = _repeat(client, key, body)
            assert retry.status_code == 201, retry.text
            assert client.get(f"/api/customer/customers/{retry.json()['id']}").status_code == 200
    assert _replicas(gateway)[doomed.url]["state"] == "up"


def _repeat(client: httpx.Client, key: str, body: dict) -> httpx.Response:
    """The client's retry of a write with its Idempotency-Key, waiting out a claim the dead replica left."""
    deadline = time.monotonic() + 60
    while True:
        response = client.post("/api/customer/customers", json=body, headers={"Idempotency-Key": key})
        if response.status_code != 409 or "retry-after" not in response.headers or time.monotonic() > deadline:
            return response
        time.sleep(float(response.headers["retry-after"]))


def test_a_peer_client_given_several_urls_skips_one_that_is_down(deployment):
    dead = f"http://127.0.0.1:{_free_ports(1)[0]}"
    live = deployment["replicas"][1].url

    async def call() -> tuple[list[int], list[dict], int]:
        client, writer = CustomerClient([dead, live]), CustomerClient([dead, live])
        try:
            codes = [(await client.request("GET", "/whoami", token=deployment["token"])).status_code
                     for _ in range(4)]
            # A write without a key is not retried, except when it never connected: it reaches the live one.
            write = await writer.request("POST", "/whoami", token=deployment["token"], json={})
            return codes, client.replicas.report(), write.status_code
        finally:
            await client.aclose()
            await writer.aclose()

    codes, report, write = asyncio.run(call())
    assert codes == [200] * 4
    assert write == 405  # the live replica's own answer to a POST of /whoami
    states = {replica["url"]: replica for replica in report}
    assert states[dead]["state"] in {"down", "probing"} and states[dead]["failures"] == 1
    assert states[live]["state"] == "up"

