"""Gateway overhead: an authenticated call through the gateway vs straight to the service, and the cost of the
HTTP client behind it. Reports ratios against baselines measured in the same run.

    python -m bench gateway [--requests 2000] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport

from bench.common import percentiles, running_suite, write_result


async def _load(url: str, headers: dict[str, str], requests: int, concurrency: int) -> dict:
    latencies: list[float] = []
    async with aiohttp.ClientSession(headers=headers) as session:
        async def worker(count: int) -> None:
            for _ in range(count):
                started = time.perf_counter()
                async with session.get(url) as response:
                    await response.read()
                    assert response.status == 200, response.status
                latencies.append(time.perf_counter() - started)

        started = time.perf_counter()
        await asyncio.gather(*(worker(requests // concurrency) for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return {**percentiles(latencies), "rps": round(len(latencies) / elapsed, 1)}


async def _client_cost(url: str, headers: dict[str, str], requests: int) -> dict:
    """Sequential calls with each client the services could use to reach a peer."""
    results = {}
    clients = {
        "httpx_default": httpx.AsyncClient(headers=headers),
        "httpx_aiohttp_transport": httpx.AsyncClient(headers=headers, transport=AiohttpTransport()),
    }
    for name, client in clients.items():
        async with client:
            await client.get(url)
            samples = []
            for _ in range(requests):
                started = time.perf_counter()
                (await client.get(url)).raise_for_status()
                samples.append(time.perf_counter() - started)
        results[name] = percentiles(samples)
    return results


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="bench gateway")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args(argv)
    # The per-user rate limit is not what is measured here: lifted so that every request is served.
    limits = {"LOANCRM_GATEWAY_RATE_LIMIT_PER_MINUTE": str(10 * args.requests)}
    with tempfile.TemporaryDirectory() as scratch, running_suite(Path(scratch), limits) as suite:
        headers = {"Authorization": f"Bearer {suite['token']}"}
        ports = suite["ports"]
        direct_url = f"http://127.0.0.1:{ports['customer']}/whoami"
        targets = {
            "service /health/live (floor)": f"http://127.0.0.1:{ports['customer']}/health/live",
            "service /whoami (token verified)": direct_url,
            "gateway -> service /whoami": f"http://127.0.0.1:{ports['gateway']}/api/customer/whoami",
        }
        measured = {name: asyncio.run(_load(url, headers, args.requests, args.concurrency))
                    for name, url in targets.items()}
        clients = asyncio.run(_client_cost(direct_url, headers, min(args.requests, 500)))
    floor = measured["service /health/live (floor)"]
    direct = measured["service /whoami (token verified)"]
    routed = measured["gateway -> service /whoami"]
    ratios = {
        "token_check_p50_vs_floor": round(direct["p50_ms"] / floor["p50_ms"], 2),
        "gateway_p50_vs_direct": round(routed["p50_ms"] / direct["p50_ms"], 2),
        "gateway_throughput_vs_direct": round(routed["rps"] / direct["rps"], 2),
        "httpx_default_vs_aiohttp_transport_p50": round(
            clients["httpx_default"]["p50_ms"] / clients["httpx_aiohttp_transport"]["p50_ms"], 2),
    }
    print(f"{'target':40} {'p50 ms':>8} {'p99 ms':>8} {'req/s':>8}")
    for name, row in measured.items():
        print(f"{name:40} {row['p50_ms']:8.2f} {row['p99_ms']:8.2f} {row['rps']:8.0f}")
    for name, row in clients.items():
        print(f"client {name:33} {row['p50_ms']:8.2f} {row['p99_ms']:8.2f}")
    for name, value in ratios.items():
        print(f"{name:45} {value}")
    result = {"concurrency": args.concurrency, "requests": args.requests, "targets": measured,
              "clients_sequential": clients, "ratios": ratios}
    print(f"written to {write_result('gateway', result)}")
    return result


if __name__ == "__main__":
    main()
