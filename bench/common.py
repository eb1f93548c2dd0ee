"""What the benchmarks share: latency statistics, result files, and a suite of real processes on loopback."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import aiohttp
import httpx

RESULTS = Path(__file__).resolve().parent / "results"


def percentiles(samples_s: list[float]) -> dict[str, float]:
    ordered = sorted(samples_s)
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000  # noqa: E731
    return {"p50_ms": round(pick(0.50), 3), "p99_ms": round(pick(0.99), 3),
            "mean_ms": round(statistics.fmean(ordered) * 1000, 3), "n": len(ordered)}


def write_result(name: str, result: dict) -> Path:
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps({"benchmark": name, "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S"), **result},
                               indent=2, default=str))
    return path


def free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    for sock in sockets:
        sock.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for sock in sockets:
        sock.close()
    return ports


@contextmanager
def running_suite(var_dir: Path, extra_env: dict[str, str] | None = None) -> Iterator[dict]:
    """`loancrm up --no-demo` in a scratch folder on free ports; yields the ports, an admin token and the
    environment the processes run with (to start another one beside them). No demo: its seeding would run through
    the services while they are measured."""
    ports = dict(zip(("gateway", "customer", "scoring", "monitoring"), free_ports(4), strict=True))
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOANCRM_")}
    env.update({"LOANCRM_VAR_DIR": str(var_dir), "LOANCRM_ADMIN_PASSWORD": "bench-operator-secret",
                "LOANCRM_LOG_LEVEL": "WARNING", **(extra_env or {})})
    env.update({f"LOANCRM_{name.upper()}_PORT": str(port) for name, port in ports.items()})
    process = subprocess.Popen([sys.executable, "-m", "loancrm", "up", "--no-demo"], env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, text=True)
    try:
        for line in process.stdout:  # type: ignore[union-attr]
            if "LoanCRM is up" in line:
                break
        else:
            raise RuntimeError("loancrm up exited before it was up")
        token = httpx.post(f"http://127.0.0.1:{ports['gateway']}/auth/token",
                           data={"username": "admin", "password": "bench-operator-secret"}).json()["access_token"]
        yield {"ports": ports, "token": token, "env": env}
    finally:
        process.terminate()
        process.wait(timeout=30)


async def _load(urls: Sequence[str], headers: dict[str, str], requests: int,
                concurrency: int) -> tuple[list[float], float]:
    """`requests` GETs from `concurrency` workers, taking `urls` in turn; each answer must be a 200."""
    latencies: list[float] = []
    turn = itertools.cycle(urls)
    async with aiohttp.ClientSession(headers=headers) as session:
        async def worker(count: int) -> None:
            for _ in range(count):
                url = next(turn)
                started = time.perf_counter()
                async with session.get(url) as response:
                    await response.read()
                    assert response.status == 200, (url, response.status)
                latencies.append(time.perf_counter() - started)

        await worker(concurrency)  # connections opened before the clock starts
        latencies.clear()
        started = time.perf_counter()
        await asyncio.gather(*(worker(requests // concurrency) for _ in range(concurrency)))
        return latencies, time.perf_counter() - started


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time the process has used so far (Linux's /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def load_in_rounds(targets: dict[str, tuple[Sequence[str], dict[str, str]]], *, requests: int, rounds: int,
                   concurrency: int, pids: dict[str, int] | None = None) -> dict[str, dict[str, float]]:
    """Each target (its URLs, its headers) loaded at `concurrency`, the targets taking turns round after round, so
    a machine that slows down mid-run slows each alike; per target its latency percentiles and requests/s, and for
    a target named in `pids` the CPU that process spent a request (`cpu_us_per_request`)."""
    pids = pids or {}
    samples: dict[str, list[float]] = {name: [] for name in targets}
    elapsed = dict.fromkeys(targets, 0.0)
    cpu = dict.fromkeys(pids, 0.0)
    for _ in range(rounds):
        for name, (urls, headers) in targets.items():
            before = cpu_seconds(pids[name]) if name in pids else 0.0
            latencies, seconds = asyncio.run(_load(urls, headers, requests, concurrency))
            if name in pids:
                cpu[name] += cpu_seconds(pids[name]) - before
            samples[name] += latencies
            elapsed[name] += seconds
    return {name: {**percentiles(samples[name]), "rps": round(len(samples[name]) / elapsed[name], 1),
                   **({"cpu_us_per_request": round(1e6 * cpu[name] / len(samples[name]))} if name in pids else {})}
            for name in targets}
