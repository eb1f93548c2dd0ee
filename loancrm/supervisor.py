"""Runs the four processes of the suite on loopback and stops them together."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

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
    }


def serve(kernel: KernelSettings, service: str) -> None:
    import uvicorn

    uvicorn.run(APPS[service], factory=True, **uvicorn_options(kernel, service))


def _wait_live(kernel: KernelSettings, processes: dict[str, subprocess.Popen], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    pending = set(processes)
    while pending:
        for name in sorted(pending):
            if processes[name].poll() is not None:
                raise RuntimeError(f"{name} exited during start-up (code {processes[name].returncode})")
            try:
                if httpx.get(f"{kernel.url(name)}/health/live", timeout=1.0).status_code == 200:
                    pending.discard(name)
            except httpx.HTTPError:
                pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"not live after {timeout:.0f}s: {', '.join(sorted(pending))}")
        time.sleep(0.2)


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


def run_all(kernel: KernelSettings) -> int:
    processes = {
        name: subprocess.Popen([sys.executable, "-m", "loancrm", "serve", name]) for name in SERVICES
    }
    # Ctrl-C and SIGTERM (from a process manager) both stop the suite; SIGINT is set explicitly because a
    # parent that ignores it (a test runner, nohup) would otherwise pass that on to us.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        _wait_live(kernel, processes)
        # The whole API's docs, every service included (the gateway's own /docs shows only its routes).
        docs = f" (API docs {kernel.url('gateway')}{API_DOCS_PATH})" if kernel.docs_enabled else ""
        print(f"LoanCRM is up: gateway {kernel.url('gateway')}{docs}. Ctrl-C stops.", flush=True)
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
