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
from urllib.parse import urlsplit

import aiohttp
import httptools
import httpx
import uvloop

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


class _Exchange(asyncio.Protocol):
    """One kept-alive connection sending prepared GETs one at a time, answers parsed by httptools: a load client
    of a few tens of microseconds a request, where aiohttp's client spends ~140 (measured.md), CPU that on a
    two-core machine the measured processes would otherwise lose to the client."""

    def __init__(self) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.done: asyncio.Future[int] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.parser.feed_data(data)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.done is not None and not self.done.done():
            self.done.set_exception(exc or ConnectionError("closed by the server"))

    def on_message_complete(self) -> None:
        self.done.set_result(self.parser.get_status_code())  # type: ignore[union-attr]

    async def get(self, request: bytes) -> int:
        self.done = asyncio.get_running_loop().create_future()
        self.transport.write(request)  # type: ignore[union-attr]
        return await self.done


async def _load_raw(urls: Sequence[str], headers: dict[str, str], requests: int,
                    concurrency: int) -> tuple[list[float], float]:
    """As `_load`, each worker on a connection of its own through `_Exchange`."""
    latencies: list[float] = []
    prepared = []
    for url in urls:
        parts = urlsplit(url)
        head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        prepared.append((parts.hostname, parts.port,
                         f"GET {target} HTTP/1.1\r\nHost: {parts.netloc}\r\n{head}\r\n".encode()))
    turn = itertools.cycle(range(len(prepared)))
    loop = asyncio.get_running_loop()

    async def connect() -> dict[int, _Exchange]:
        return {i: (await loop.create_connection(_Exchange, host, port))[1] for i, (host, port, _) in
                enumerate(prepared)}

    async def worker(exchanges: dict[int, _Exchange], count: int) -> None:
        for _ in range(count):
            i = next(turn)
            started = time.perf_counter()
            status = await exchanges[i].get(prepared[i][2])
            assert status == 200, (urls[i], status)
            latencies.append(time.perf_counter() - started)

    pools = [await connect() for _ in range(concurrency)]
    for exchanges in pools:
        await worker(exchanges, 1)  # each connection used once before the clock starts
    latencies.clear()
    started = time.perf_counter()
    await asyncio.gather(*(worker(exchanges, requests // concurrency) for exchanges in pools))
    seconds = time.perf_counter() - started
    for exchanges in pools:
        for exchange in exchanges.values():
            exchange.transport.close()  # type: ignore[union-attr]
    return latencies, seconds


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


LOAD_CLIENTS = ("raw", "aiohttp")
LOAD_CLIENT_HELP = ("what sends the load: raw (a few tens of us a request, as wrk would be) or aiohttp's client "
                    "(~140 us, taken from the measured processes' two cores)")


def load_in_rounds(targets: dict[str, tuple[Sequence[str], dict[str, str]]], *, requests: int, rounds: int,
                   concurrency: int, pids: dict[str, int] | None = None,
                   client: str = "aiohttp") -> dict[str, dict[str, float]]:
    """Each target (its URLs, its headers) loaded at `concurrency`, the targets taking turns round after round, so
    a machine that slows down mid-run slows each alike; per target its latency percentiles and requests/s, and for
    a target named in `pids` the CPU that process spent a request (`cpu_us_per_request`). `client`: the load
    client, aiohttp's or `raw` (`_Exchange`, on uvloop)."""
    load = _load_raw if client == "raw" else _load
    pids = pids or {}
    samples: dict[str, list[float]] = {name: [] for name in targets}
    elapsed = dict.fromkeys(targets, 0.0)
    cpu = dict.fromkeys(pids, 0.0)
    for _ in range(rounds):
        for name, (urls, headers) in targets.items():
            before = cpu_seconds(pids[name]) if name in pids else 0.0
            latencies, seconds = (uvloop.run if client == "raw" else asyncio.run)(
                load(urls, headers, requests, concurrency))
            if name in pids:
                cpu[name] += cpu_seconds(pids[name]) - before
            samples[name] += latencies
            elapsed[name] += seconds
    return {name: {**percentiles(samples[name]), "rps": round(len(samples[name]) / elapsed[name], 1),
                   **({"cpu_us_per_request": round(1e6 * cpu[name] / len(samples[name]))} if name in pids else {})}
            for name in targets}
