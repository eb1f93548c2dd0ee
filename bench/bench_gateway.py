"""Gateway overhead: the same calls through the gateway and straight to the service, side by side in one run, with
token verification and Redis-shared rate limits on, for each client the gateway can forward with.

Two calls: `/whoami` (the token check and little else, so the gateway's own cost shows most) and a risk analyst's
masked `GET /customers/{id}` (a real personal-data read, with whatever the service does for one). Rounds alternate
between the targets, so a machine that slows down mid-run slows each alike. Each client's gateway is a process of
its own, whose CPU time a request is reported too: on a machine shared with other work that figure moves less than
the ratios.

    python -m bench gateway [--requests 600] [--rounds 3] [--concurrency 8] [--redis-url redis://127.0.0.1:6379/0]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx
import redis

from bench.bench_customer import _register, _token
from bench.common import LOAD_CLIENT_HELP, LOAD_CLIENTS, free_ports, load_in_rounds, running_suite, write_result

# The client the gateway forwards with by default first; the others are what it was measured against.
CLIENTS = ("wire", "aiohttp", "httpx_aiohttp", "httpx")



@contextmanager
def _gateway(env: dict[str, str], client: str) -> Iterator[tuple[int, int]]:
    """One more gateway process beside the suite's, on the same databases, forwarding with `client`: its port
    and process id."""
    port = free_ports(1)[0]
    env = {**env, "LOANCRM_GATEWAY_PORT": str(port), "LOANCRM_GATEWAY_UPSTREAM_CLIENT": client}
    process = subprocess.Popen([sys.executable, "-m", "loancrm", "serve", "gateway"], env=env,
                               stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health/live", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError(f"the {client} gateway did not start") from None
                time.sleep(0.2)
        yield port, process.pid
    finally:
        process.terminate()
        process.wait(timeout=30)


def _check_redis(url: str) -> None:
    try:
        redis.Redis.from_url(url, socket_connect_timeout=1).ping()
    except redis.RedisError as exc:
        raise SystemExit(f"bench gateway measures with Redis-shared limits: {url} is unreachable ({exc})") from None


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="bench gateway")
    parser.add_argument("--requests", type=int, default=600, help="requests per target per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--redis-url", default=os.environ.get("LOANCRM_REDIS_URL", "redis://127.0.0.1:6379/0"))
    parser.add_argument("--load-client", choices=LOAD_CLIENTS, default="raw", help=LOAD_CLIENT_HELP)
    args = parser.parse_args(argv)
    _check_redis(args.redis_url)
    # The per-user rate limit is counted (in Redis) but lifted, so that every request is served.
    env = {"LOANCRM_GATEWAY_RATE_LIMIT_PER_MINUTE": str(100 * args.requests * args.rounds),
           "LOANCRM_REDIS_URL": args.redis_url}
    with tempfile.TemporaryDirectory() as scratch, running_suite(Path(scratch), env) as suite, ExitStack() as stack:
        ports = suite["ports"]
        # Each client's gateway is a process of its own (the suite's only sets up), so its CPU time can be read.
        gateways = {client: stack.enter_context(_gateway(suite["env"], client)) for client in CLIENTS}
        admin = {"Authorization": f"Bearer {suite['token']}"}
        gateway = f"http://127.0.0.1:{ports['gateway']}"
        analyst = {"Authorization": f"Bearer {_token(gateway, admin, 'risk_analyst')}"}
        customer_id = _register(gateway, admin, [7])[0]
        direct = f"http://127.0.0.1:{ports['customer']}"
        calls = {"whoami": ("/whoami", admin), "customer_read": (f"/customers/{customer_id}", analyst)}
        targets: dict[str, tuple[list[str], dict[str, str]]] = {
            "gateway /whoami (answers itself)": ([f"http://127.0.0.1:{ports['gateway']}/whoami"], admin)}
        for call, (path, headers) in calls.items():
            targets[f"{call} direct"] = ([direct + path], headers)
            for client, (port, _) in gateways.items():
                targets[f"{call} via gateway ({client})"] = ([f"http://127.0.0.1:{port}/api/customer{path}"], headers)
        pids = {f"{call} via gateway ({client})": pid for call in calls for client, (_, pid) in gateways.items()}
        measured = load_in_rounds(targets, requests=args.requests, rounds=args.rounds, concurrency=args.concurrency,
                                  pids=pids, client=args.load_client)
    ratios = {
        call: {client: {
            "gateway_throughput_vs_direct": round(measured[f"{call} via gateway ({client})"]["rps"]
                                                  / measured[f"{call} direct"]["rps"], 2),
            "gateway_p50_vs_direct": round(measured[f"{call} via gateway ({client})"]["p50_ms"]
                                           / measured[f"{call} direct"]["p50_ms"], 2),
            # What the gateway process itself spent a request: less sensitive to other load than the ratios.
            "gateway_cpu_us_per_request": measured[f"{call} via gateway ({client})"]["cpu_us_per_request"]}
            for client in CLIENTS}
        for call in calls}
    print(f"{'target':42} {'p50 ms':>8} {'p99 ms':>8} {'req/s':>8}")
    for name, row in measured.items():
        print(f"{name:42} {row['p50_ms']:8.2f} {row['p99_ms']:8.2f} {row['rps']:8.0f}")
    print(f"{'call, forwarding client':42} {'gateway_throughput_vs_direct':>29} {'gateway_p50_vs_direct':>22} "
          f"{'gateway_cpu_us_per_request':>27}")
    for call, by_client in ratios.items():
        for client, row in by_client.items():
            chosen = "  (the gateway's)" if client == CLIENTS[0] else ""
            print(f"{call + ', ' + client:42} {row['gateway_throughput_vs_direct']:29} "
                  f"{row['gateway_p50_vs_direct']:22} {row['gateway_cpu_us_per_request']:27}{chosen}")
    result = {"concurrency": args.concurrency, "requests_per_round": args.requests, "rounds": args.rounds,
              "load_client": args.load_client,
              "redis_limits": True, "targets": measured, "ratios": ratios}
    print(f"written to {write_result('gateway', result)}")
    return result


if __name__ == "__main__":
    main()
