"""Scoring API latency: POST /scores (one applicant, champion + shadow challenger, stored) through a real
uvicorn process, beside the same process's /health/live as the floor. Target: p50 within 2x the floor.

    python -m bench scoring_api [--requests 1000] [--concurrency 1 4]

Each concurrency is measured on its own: at 1 the ratio is one request's latency; at 4 (more clients than the
machine's two cores) the process is busy throughout, so the ratio follows CPU per request.

The floor and the POSTs are measured in alternating rounds of 50 requests, so that both see the same machine:
on these shared machines one minute's p50 can differ from the next by half, which measuring one after the other
turned into ratios from 4x to 7x for the same code.

Beside them, the same rounds against `bench/scoring_reference.py`: the least a POST /scores can cost here (the same
body through FastAPI, one run of the same ONNX graph, one SQLite commit) against that app's own /health/live. Its
ratio is the lower bound of the target on this stack and machine.

Each POST is answered only once the champion's score row is committed (SQLite by default, as `loancrm up` runs);
the challenger's shadow row is stored after the answer, in batches.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import httpx

from bench.common import free_ports, percentiles, running_suite, write_result
from services.scoring.registry.flows import DEFAULT_DATA, artifact_store, ensure_default_champion
from services.scoring.registry.models import ModelState
from services.scoring.registry.service import in_state
from shared.db import Database
from shared.settings import KernelSettings

_NUMERIC = {"duration_in_month", "credit_amount", "installment_rate_in_percentage_of_disposable_income",
            "present_residence_since", "age_in_years", "number_of_existing_credits_at_this_bank",
            "number_of_people_being_liable_to_provide_maintenance_for"}
ROUND = 50  # requests per target per round


def _applicants() -> list[dict]:
    with DEFAULT_DATA.open() as handle:
        return [{k: int(v) if k in _NUMERIC else v for k, v in row.items() if k != "creditability"}
                for row in csv.DictReader(handle)]


class _Target:
    """One endpoint, its own pooled client session, and the latencies measured on it so far."""

    def __init__(self, method: str, url: str, headers: dict[str, str], bodies: list[dict | None]) -> None:
        self.method, self.url, self.headers, self.bodies = method, url, headers, bodies
        self.latencies: list[float] = []
        self.busy = 0.0  # wall time spent in this target's rounds
        self.session: aiohttp.ClientSession | None = None
        self._next = 0

    async def round(self, requests: int, concurrency: int) -> None:
        session = self.session
        assert session is not None

        async def worker(count: int) -> None:
            for _ in range(count):
                body = self.bodies[self._next % len(self.bodies)]
                self._next += 1
                started = time.perf_counter()
                async with session.request(self.method, self.url, json=body) as response:
                    await response.read()
                    assert response.status in (200, 201), response.status
                self.latencies.append(time.perf_counter() - started)

        started = time.perf_counter()
        share, extra = divmod(requests, concurrency)
        await asyncio.gather(*(worker(share + (k < extra)) for k in range(concurrency)))
        self.busy += time.perf_counter() - started

    def summary(self) -> dict:
        return {**percentiles(self.latencies), "rps": round(len(self.latencies) / self.busy, 1)}


async def _interleaved(targets: dict[str, _Target], requests: int, concurrency: int) -> dict[str, dict]:
    for target in targets.values():
        target.session = aiohttp.ClientSession(headers=target.headers,
                                               connector=aiohttp.TCPConnector(limit=concurrency))
    try:
        for target in targets.values():  # warm-up: connections open, code paths hot
            await target.round(100, concurrency)
            target.latencies, target.busy = [], 0.0
        for _ in range(max(1, requests // ROUND)):
            for target in targets.values():
                await target.round(ROUND, concurrency)
    finally:
        for target in targets.values():
            await target.session.close()  # type: ignore[union-attr]
    return {name: target.summary() for name, target in targets.items()}


def _wait_for(url: str, headers: dict[str, str], body: dict | None, timeout: float = 30.0) -> None:
    """Until the process answers (the scoring service: until it hot-loads the champion installed after it started)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.post(url, json=body, headers=headers).status_code == 201:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{url} never answered 201")
        time.sleep(0.5)


def _champion_bundle(kernel: KernelSettings, path: Path) -> None:
    database = Database(kernel.database_url("scoring"))
    try:
        with database.session() as session:
            champion = in_state(session, ModelState.CHAMPION)
            assert champion is not None
            path.write_bytes(artifact_store(kernel).load(session, champion.artifact_sha256))
    finally:
        database.dispose()


def _reference(scratch: Path, kernel: KernelSettings) -> tuple[subprocess.Popen, str]:
    bundle = scratch / "reference-champion.zip"
    _champion_bundle(kernel, bundle)
    port = free_ports(1)[0]
    env = {**os.environ, "LOANCRM_BENCH_BUNDLE": str(bundle), "LOANCRM_BENCH_DB": str(scratch / "reference.db")}
    process = subprocess.Popen([sys.executable, "-m", "uvicorn", "--factory", "bench.scoring_reference:app",
                                "--port", str(port), "--log-level", "warning", "--no-access-log"], env=env)
    return process, f"http://127.0.0.1:{port}"


def _ratios(measured: dict[str, dict]) -> dict[str, float]:
    ratio = lambda a, b, q: round(measured[a][q] / measured[b][q], 2)  # noqa: E731
    return {"scores_p50_vs_floor": ratio("POST /scores", "/health/live (floor)", "p50_ms"),
            "scores_p99_vs_floor": ratio("POST /scores", "/health/live (floor)", "p99_ms"),
            "reference_p50_vs_its_floor": ratio("reference POST", "reference /health/live", "p50_ms")}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="bench scoring_api")
    parser.add_argument("--requests", type=int, default=1000, help="per target and concurrency")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4])
    args = parser.parse_args(argv)
    applicants = [{"features": a} for a in _applicants()]
    runs = {}
    with tempfile.TemporaryDirectory() as scratch, running_suite(Path(scratch)) as suite:
        kernel = KernelSettings(var_dir=Path(scratch))
        ensure_default_champion(kernel)
        headers = {"Authorization": f"Bearer {suite['token']}"}
        base = f"http://127.0.0.1:{suite['ports']['scoring']}"
        reference, reference_base = _reference(Path(scratch), kernel)
        try:
            _wait_for(f"{base}/scores", headers, applicants[0])
            _wait_for(f"{reference_base}/scores", {}, applicants[0])
            for concurrency in args.concurrency:
                targets = {
                    "/health/live (floor)": _Target("GET", f"{base}/health/live", headers, [None]),
                    "POST /scores": _Target("POST", f"{base}/scores", headers, applicants),
                    "reference /health/live": _Target("GET", f"{reference_base}/health/live", {}, [None]),
                    "reference POST": _Target("POST", f"{reference_base}/scores", {}, applicants),
                }
                measured = asyncio.run(_interleaved(targets, args.requests, concurrency))
                runs[str(concurrency)] = {"targets": measured, "ratios": _ratios(measured)}
                print(f"concurrency {concurrency}")
                print(f"{'target':32} {'p50 ms':>8} {'p99 ms':>8} {'req/s':>8}")
                for name, row in measured.items():
                    print(f"{name:32} {row['p50_ms']:8.2f} {row['p99_ms']:8.2f} {row['rps']:8.0f}")
                for name, value in runs[str(concurrency)]["ratios"].items():
                    print(f"{name:32} {value}")
        finally:
            reference.terminate()
            reference.wait(timeout=30)
    result = {"requests": args.requests, "by_concurrency": runs}
    print(f"written to {write_result('scoring_api', result)}")
    return result


if __name__ == "__main__":
    main()
