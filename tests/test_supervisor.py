"""`loancrm up` starting the suite: which process is late and why, and a port someone else holds (issue #20,
Found 1)."""

import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from loancrm import supervisor
from shared.settings import SERVICES, KernelSettings


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _kernel(ports: dict[str, int]) -> KernelSettings:
    return KernelSettings(host="127.0.0.1", **{f"{name}_port": port for name, port in ports.items()})


class _Live(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - the stdlib's name
        self.send_response(200 if self.path == "/health/live" else 404)
        self.end_headers()

    def log_message(self, *_args):
        pass


@pytest.fixture
def live_servers():
    servers = {name: ThreadingHTTPServer(("127.0.0.1", 0), _Live) for name in SERVICES}
    for server in servers.values():
        threading.Thread(target=server.serve_forever, daemon=True).start()
    yield {name: server.server_address[1] for name, server in servers.items()}
    for server in servers.values():
        server.shutdown()
        server.server_close()


@pytest.fixture
def sleepers():
    """Stand-ins for the four processes: alive, doing nothing."""
    processes = {name: subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"]) for name in SERVICES}
    yield processes
    for process in processes.values():
        process.kill()
        process.wait()


def test_a_suite_that_came_up_just_in_time_is_up(live_servers, sleepers):
    # The last service answered on the last round: it was reported as "not live after 60s: " with no name.
    supervisor._wait_live(_kernel(live_servers), sleepers, timeout=0)


def test_the_late_service_is_named_with_the_reason(live_servers, sleepers):
    ports = {**live_servers, "scoring": _free_port()}
    with pytest.raises(RuntimeError) as late:
        supervisor._wait_live(_kernel(ports), sleepers, timeout=0.5)
    message = str(late.value)
    assert "scoring (not listening yet)" in message
    assert not any(name in message for name in ("gateway", "customer", "monitoring"))
    assert "LOANCRM_STARTUP_TIMEOUT_SECONDS" in message


def test_a_process_that_dies_during_start_up_is_named(live_servers, sleepers):
    sleepers["monitoring"].kill()
    sleepers["monitoring"].wait()
    ports = {**live_servers, "monitoring": _free_port()}
    with pytest.raises(RuntimeError, match="monitoring exited during start-up"):
        supervisor._wait_live(_kernel(ports), sleepers, timeout=5)


def test_a_port_in_use_is_a_clear_error_and_nothing_starts(capsys, monkeypatch):
    ports = {name: _free_port() for name in SERVICES}
    started = []
    monkeypatch.setattr(supervisor.subprocess, "Popen", lambda *a, **k: started.append(a))
    with socket.socket() as other:
        # Another process (here: another LoanCRM's gateway) listening on the gateway's port.
        other.bind(("127.0.0.1", ports["gateway"]))
        other.listen()
        assert supervisor.run_all(_kernel(ports)) == 1
    error = capsys.readouterr().err
    assert f"port {ports['gateway']} for the gateway service" in error and "LOANCRM_GATEWAY_PORT" in error
    assert "is up" not in error and not started


def _running(pid: int) -> bool:
    """Alive, not a zombie: an orphan's exit is reaped by whichever process adopted it, maybe never here."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rpartition(")")[2].split()[0] not in ("Z", "X")
    except FileNotFoundError:
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the parent-death signal is Linux's")
def test_a_service_does_not_outlive_a_supervisor_killed_outright():
    """A supervisor killed with SIGKILL (or by the OOM killer) cannot stop its services; they lived on, holding
    their ports, so the next `loancrm up` found them in use."""
    service = [sys.executable, "-c", "import time; from loancrm.supervisor import follow_supervisor; "
                                     "follow_supervisor(); print('armed', flush=True); time.sleep(120)"]
    up = subprocess.Popen([sys.executable, "-c", "import sys, time; from loancrm import supervisor; "
                                                 f"child = supervisor.spawn({service!r}); print(child.pid, "
                                                 "flush=True); time.sleep(120)"],
                          stdout=subprocess.PIPE, text=True)
    try:
        child = int(up.stdout.readline())
        assert up.stdout.readline().strip() == "armed"
        assert _running(child)
        up.kill()
        up.wait(timeout=10)
        deadline = time.monotonic() + 15
        while _running(child) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _running(child), "the service outlived its supervisor"
    finally:
        up.kill()
