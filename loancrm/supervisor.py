"""Runs the four processes of the suite on loopback and stops them together."""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable

import httpx

from gateway.openapi.service import API_DOCS_PATH
from shared.settings import SERVICES, KernelSettings

APPS = {
    "gateway": "gateway.main:app",
    "customer": "services.customer.main:app",
    "scoring": "services.scoring.main:app",
    "monitoring": "services.monitoring.main:app",
}


def uvicorn_options(kernel: KernelSettings, service: str) -> dict[str, object]:
    return {
        "host": kernel.host,
        "port": kernel.port(service),
        "log_config": None,
        "access_log": False,
        "proxy_headers": service == "gateway",
        # Answers name no server software (the gateway passed on the services' too: "uvicorn, uvicorn").
        "server_header": False,
        # Named, not left to "auto": without them (a missing wheel) every process is slower, so fail instead.
        "loop": "uvloop",
        "http": "httptools",
    }


def serve(kernel: KernelSettings, service: str) -> None:
    import uvicorn

    follow_supervisor()
    uvicorn.run(APPS[service], factory=True, **uvicorn_options(kernel, service))


def check_ports_free(kernel: KernelSettings) -> None:
    """Refuse to start on a port another process holds: its answers would pass for ours (another LoanCRM, say),
    and our process would die a moment later."""
    for name in SERVICES:
        port = kernel.port(name)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            try:
                probe.bind((kernel.host, port))
            except OSError as exc:
                raise RuntimeError(f"port {port} for the {name} service on {kernel.host} is taken "
                                   f"({exc.strerror}); stop what holds it or set LOANCRM_{name.upper()}_PORT") from None


def _probe(kernel: KernelSettings, name: str) -> str | None:
    """None when the service answers live; else why not, in words."""
    try:
        response = httpx.get(f"{kernel.url(name)}/health/live", timeout=1.0)
    except httpx.ConnectError:
        return "not listening yet"
    except httpx.HTTPError as exc:
        return f"{type(exc).__name__} on /health/live"
    return None if response.status_code == 200 else f"/health/live answered {response.status_code}"


def _wait_live(kernel: KernelSettings, processes: dict[str, subprocess.Popen], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    waiting = {name: "starting" for name in processes}
    while waiting:
        for name in sorted(waiting):
            if processes[name].poll() is not None:
                raise RuntimeError(f"{name} exited during start-up (code {processes[name].returncode}); "
                                   "its own message is above")
            reason = _probe(kernel, name)
            if reason is None:
                del waiting[name]
            else:
                waiting[name] = reason
        if waiting and time.monotonic() > deadline:
            late = "; ".join(f"{name} ({reason})" for name, reason in sorted(waiting.items()))
            raise RuntimeError(f"not live after {timeout:.0f}s: {late}. Raise LOANCRM_STARTUP_TIMEOUT_SECONDS "
                               "if this machine is slow")
        if waiting:
            time.sleep(0.2)


_PR_SET_PDEATHSIG = 1  # linux/prctl.h
# Set by `loancrm up` for the services it starts: the process each must not outlive.
SUPERVISOR_PID = "LOANCRM_SUPERVISOR_PID"


def spawn(command: list[str]) -> subprocess.Popen:
    """A process of the suite, told which process supervises it (`follow_supervisor`)."""
    return subprocess.Popen(command, env={**os.environ, SUPERVISOR_PID: str(os.getpid())})


def follow_supervisor() -> None:
    """In a service started by `loancrm up` (Linux): SIGTERM when the supervisor dies, even killed outright
    (kill -9, the OOM killer); otherwise the services lived on, holding their ports, and the next `loancrm up`
    found them in use. Armed in the service itself, not between fork and exec, where a thread could hold a lock."""
    supervisor = os.environ.get(SUPERVISOR_PID)
    if supervisor is None or not sys.platform.startswith("linux"):
        return
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != int(supervisor):  # it died before the signal was armed
        os.kill(os.getpid(), signal.SIGTERM)


def _stop(processes: dict[str, subprocess.Popen]) -> None:
    for process in processes.values():
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 10
    for process in processes.values():
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()


def _interrupt(*_args: object) -> None:
    raise KeyboardInterrupt


def run_all(kernel: KernelSettings, on_ready: Callable[[], None] | None = None) -> int:
    try:
        check_ports_free(kernel)
    except RuntimeError as exc:
        print(f"loancrm: {exc}", file=sys.stderr)
        return 1
    processes = {
        name: spawn([sys.executable, "-m", "loancrm", "serve", name]) for name in SERVICES
    }
    # Ctrl-C and SIGTERM (from a process manager) both stop the suite; SIGINT is set explicitly because a
    # parent that ignores it (a test runner, nohup) would otherwise pass that on to us.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        _wait_live(kernel, processes, kernel.startup_timeout_seconds)
        # The whole API's docs, every service included (the gateway's own /docs shows only its routes).
        docs = f" (API docs {kernel.url('gateway')}{API_DOCS_PATH})" if kernel.docs_enabled else ""
        print(f"LoanCRM is up: gateway {kernel.url('gateway')}{docs}. Ctrl-C stops.", flush=True)
        if on_ready is not None:
            on_ready()
        while True:
            for name, process in processes.items():
                if process.poll() is not None:
                    print(f"loancrm: {name} stopped (code {process.returncode}); stopping the suite", file=sys.stderr)
                    return 1
            time.sleep(0.5)
    except KeyboardInterrupt:
        print("loancrm: stopping", file=sys.stderr)
        return 0
    except RuntimeError as exc:
        print(f"loancrm: {exc}", file=sys.stderr)
        return 1
    finally:
        _stop(processes)
