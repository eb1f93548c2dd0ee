"""Scoring API latency: POST /scores (one applicant, champion + shadow challenger, stored) through a real
uvicorn process, beside the same process's /health/live as the floor. Target: p50 within 2x the floor.

    python -m bench scoring_api [--requests 1000] [--concurrency 1 4]

Each concurrency is measured on its own: at 1 the ratio is one request's latency; at 4 (more clients than the
machine's two cores) the process is busy throughout, so the ratio follows CPU per request.

Same client, same process, same run for both targets. Each POST is answered only once the champion's score row
is committed (SQLite by default, as `loancrm up` runs); the challenger's shadow row is stored after the answer,
in batches. A POST costs several times the floor's CPU, so other load on the machine stretches it more than the
floor: compare runs made on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import tempfile
import time
from pathlib import Path

import aiohttp
import httpx

from bench.common import percentiles, running_suite, write_result
from services.scoring.registry.flows import DEFAULT_DATA, ensure_default_champion
from shared.settings import KernelSettings

_NUMERIC = {"duration_in_month", "credit_amount", "installment_rate_in_percentage_of_disposable_income",
            "present_residence_since", "age_in_years", "number_of_existing_credits_at_this_bank",
            "number_of_people_being_liable_to_provide_maintenance_for"}


def _applicants() -> list[dict]:
    with DEFAULT_DATA.open() as handle:
        return [{k: int(v) if k in _NUMERIC else v for k, v in row.items() if k != "creditability"}
                for row in csv.DictReader(handle)]


async def _load(method: str, url: str, headers: dict[str, str], bodies: list[dict | None], requests: int,
                concurrency: int) -> dict:
    latencies: list[float] = []
    async with aiohttp.ClientSession(headers=headers) as session:
        async def worker(offset: int) -> None:
            for i in range(offset, requests, concurrency):
                started = time.perf_counter()
                async with session.request(method, url, json=bodies[i % len(bodies)]) as response:
                    await response.read()
                    assert response.status in (200, 201), response.status
                latencies.append(time.perf_counter() - started)

        started = time.perf_counter()
        await asyncio.gather(*(worker(k) for k in range(concurrency)))
        elapsed = time.perf_counter() - started
    return {**percentiles(latencies), "rps": round(len(latencies) / elapsed, 1)}


def _wait_for_champion(url: str, headers: dict[str, str], body: dict, timeout: float = 30.0) -> None:
    """The running process hot-loads the champion installed after it started."""
    deadline = time.monotonic() + timeout
    while httpx.post(url, json=body, headers=headers).status_code != 201:
        if time.monotonic() > deadline:
            raise RuntimeError("the scoring service never served the champion")
        time.sleep(0.5)


def _measure(base: str, headers: dict[str, str], applicants: list[dict], requests: int, concurrency: int) -> dict:
    asyncio.run(_load("POST", f"{base}/scores", headers, applicants, 100, concurrency))  # warm-up
    measured = {
        "scoring /health/live (floor)": asyncio.run(
            _load("GET", f"{base}/health/live", headers, [None], requests, concurrency)),
        "POST /scores": asyncio.run(_load("POST", f"{base}/scores", headers, applicants, requests, concurrency)),
    }
    floor, scored = measured["scoring /health/live (floor)"], measured["POST /scores"]
    ratios = {"scores_p50_vs_floor": round(scored["p50_ms"] / floor["p50_ms"], 2),
              "scores_p99_vs_floor": round(scored["p99_ms"] / floor["p99_ms"], 2)}
    print(f"concurrency {concurrency}")
    print(f"{'target':32} {'p50 ms':>8} {'p99 ms':>8} {'req/s':>8}")
    for name, row in measured.items():
        print(f"{name:32} {row['p50_ms']:8.2f} {row['p99_ms']:8.2f} {row['rps']:8.0f}")
    for name, value in ratios.items():
        print(f"{name:32} {value}")
    return {"targets": measured, "ratios": ratios}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="bench scoring_api")
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4])
    args = parser.parse_args(argv)
    applicants = [{"features": a} for a in _applicants()]
    with tempfile.TemporaryDirectory() as scratch, running_suite(Path(scratch)) as suite:
        ensure_default_champion(KernelSettings(var_dir=Path(scratch)))
        headers = {"Authorization": f"Bearer {suite['token']}"}
        base = f"http://127.0.0.1:{suite['ports']['scoring']}"
        _wait_for_champion(f"{base}/scores", headers, applicants[0])
        runs = {str(c): _measure(base, headers, applicants, args.requests, c) for c in args.concurrency}
    result = {"requests": args.requests, "by_concurrency": runs}
    print(f"written to {write_result('scoring_api', result)}")
    return result


if __name__ == "__main__":
    main()
