"""The real thing: `loancrm up` starts four processes; a token from the gateway reaches each; Ctrl-C stops all."""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time

import httpx
import pytest

pytestmark = pytest.mark.e2e


def _free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    for sock in sockets:
        sock.bind(("127.0.0.1", 0))
    ports = [sock.getsockname()[1] for sock in sockets]
    for sock in sockets:
        sock.close()
    return ports


class _Output:
    """Collects a process's output lines in the background so its pipes never fill up."""

    def __init__(self, stream) -> None:  # noqa: ANN001
        self.lines: list[str] = []
        threading.Thread(target=self._read, args=(stream,), daemon=True).start()

    def _read(self, stream) -> None:  # noqa: ANN001
        for line in stream:
            self.lines.append(line)

    def wait_for(self, pattern: str, process: subprocess.Popen, timeout: float) -> re.Match:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines):
                if match := re.search(pattern, line):
                    return match
            if process.poll() is not None:
                break
            time.sleep(0.2)
        raise AssertionError(f"never saw {pattern!r}; output:\n{''.join(self.lines[-40:])}")


@pytest.fixture(scope="module")
def running(tmp_path_factory):
    ports = _free_ports(4)
    env = {**os.environ, "LOANCRM_VAR_DIR": str(tmp_path_factory.mktemp("var")), "LOANCRM_LOG_LEVEL": "INFO"}
    for name in list(env):
        if name.startswith("LOANCRM_") and name not in {"LOANCRM_VAR_DIR", "LOANCRM_LOG_LEVEL"}:
            del env[name]
    for name, port in zip(("GATEWAY", "CUSTOMER", "SCORING", "MONITORING"), ports, strict=True):
        env[f"LOANCRM_{name}_PORT"] = str(port)
    process = subprocess.Popen([sys.executable, "-m", "loancrm", "up"], env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    output = _Output(process.stdout)
    try:
        password = output.wait_for(r"one-time password: (\S+)", process, 300).group(1)
        output.wait_for(r"LoanCRM is up", process, 240)
        output.wait_for(r"Demo sign-ins", process, 400)
        yield {"ports": dict(zip(("gateway", "customer", "scoring", "monitoring"), ports, strict=True)),
               "password": password, "process": process, "output": output}
    finally:
        if process.poll() is None:
            process.kill()


def test_a_token_from_the_gateway_reaches_every_service(running):
    gateway = f"http://127.0.0.1:{running['ports']['gateway']}"
    token = httpx.post(f"{gateway}/auth/token", data={"username": "admin", "password": running["password"]}).json()
    headers = {"Authorization": f"Bearer {token['access_token']}", "X-Request-ID": "e2e-trace-1"}
    for service in ("customer", "scoring", "monitoring"):
        response = httpx.get(f"{gateway}/api/{service}/health/ready", headers=headers)
        assert response.status_code == 200 and response.json()["service"] == service
        who = httpx.get(f"http://127.0.0.1:{running['ports'][service]}/whoami", headers=headers)
        assert who.status_code == 200 and who.json()["sub"] == "admin"
    time.sleep(0.5)
    logged = [json.loads(line) for line in running["output"].lines if '"e2e-trace-1"' in line]
    assert {entry["service"] for entry in logged} >= {"gateway", "customer", "scoring", "monitoring"}


def test_the_first_run_seeds_a_demo_that_every_role_signs_in_to(running):
    gateway = f"http://127.0.0.1:{running['ports']['gateway']}"
    lines = "".join(running["output"].lines)
    sign_ins = dict(re.findall(r"^\s+[a-z_, ]+?\s+(demo\.[a-z.]+)\s+(\S+)", lines, re.MULTILINE))
    assert {"demo.officer", "demo.analyst", "demo.collector", "demo.auditor", "demo.committee",
            "demo.partner"} <= set(sign_ins), lines[-3000:]
    screens = {"demo.officer": "/api/customer/customers", "demo.analyst": "/api/monitoring/portfolio/figures",
               "demo.collector": "/api/monitoring/collections/queue", "demo.auditor": "/api/customer/customers"}
    for username, path in screens.items():
        token = httpx.post(f"{gateway}/auth/token", data={"username": username, "password": sign_ins[username]})
        assert token.status_code == 200, token.text
        screen = httpx.get(f"{gateway}{path}", headers={"Authorization": f"Bearer {token.json()['access_token']}"})
        assert screen.status_code == 200, (username, screen.text)
        body = screen.json()
        assert body.get("items", body) if isinstance(body, dict) else body, (username, body)


def test_the_docs_address_printed_at_start_shows_the_whole_api(running):
    address = running["output"].wait_for(r"API docs (\S+)\)", running["process"], 5).group(1)
    page = httpx.get(address)
    assert page.status_code == 200 and "/api/openapi.json" in page.text
    document = httpx.get(address.replace("/api/docs", "/api/openapi.json")).json()
    assert {"/api/customer/customers", "/api/scoring/scores", "/api/monitoring/loans"} <= set(document["paths"])


def test_a_direct_call_without_a_token_is_refused(running):
    for service in ("customer", "scoring", "monitoring"):
        response = httpx.get(f"http://127.0.0.1:{running['ports'][service]}/whoami")
        assert response.status_code == 401
        assert response.headers["content-type"] == "application/problem+json"


def test_ctrl_c_stops_every_process(running):
    process = running["process"]
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=30) == 0
    for port in running["ports"].values():
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"http://127.0.0.1:{port}/health/live", timeout=1)
