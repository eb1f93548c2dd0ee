"""Customer records at volume on PostgreSQL: lookups by id, national ID and phone and a filtered page through a
real uvicorn process, each beside /health/live in the same run; the bulk import's rate beside a bare COPY; and, on
SQLite and on PostgreSQL, a risk analyst's masked read by id against the same service's `/whoami` (the token check
and little else: the floor of any call) at concurrency 8, in alternating rounds (`masked_read_vs_whoami`).

    python -m bench customer [--customers 1000000] [--requests 1000] [--import-rows 100000] [--only reads]

Works in a throwaway database it creates and drops (LOANCRM_TEST_POSTGRES_URL or the local default).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import psycopg
from sqlalchemy.engine import make_url
from tqdm import tqdm

from bench.common import LOAD_CLIENT_HELP, LOAD_CLIENTS, load_in_rounds, percentiles, running_suite, write_result
from loancrm import migrate
from services.customer.customers.pii import load_vault, mask_national_id, mask_phone
from services.customer.customers.validation import check_digit
from services.customer.imports.flows import run_import_cli
from services.customer.settings import CustomerSettings
from shared.pii import PiiVault
from shared.settings import KernelSettings

DEFAULT_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
BRANCHES = [f"BR{n:03d}" for n in range(50)]
_COLUMNS = ("id", "kind", "status", "name", "pii_kid", "national_id_enc", "national_id_hash", "phone_enc",
            "phone_hash", "date_of_birth", "monthly_income", "branch", "kyc_status", "version", "created_by",
            "created_at", "updated_at", "national_id_masked", "phone_masked")


def _libpq(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _person(n: int) -> dict[str, object]:
    """Customer number n, a pure function of n: the timed lookups rebuild the very identities that were stored
    (their resident ID embeds the birth date). Resident ID and phone are unique by construction, not by luck."""
    born = date(1960, 1, 1) + timedelta(days=n * 7919 % (35 * 365))
    first17 = f"{110000 + n // 1000 % 900000:06d}{born:%Y%m%d}{n % 1000:03d}"
    return {"name": f"Customer {n}", "date_of_birth": born.isoformat(), "national_id": first17 + check_digit(first17),
            "phone": f"13{n:09d}", "monthly_income": f"{3000 + n * 104729 % 57000}.00",
            "branch": BRANCHES[n * 31 % len(BRANCHES)]}


def _rows(vault: PiiVault, start: int, count: int) -> Iterator[tuple[object, ...]]:
    now = datetime.now(UTC)
    for n in range(start, start + count):
        p, row_id = _person(n), uuid.uuid4().hex
        created = now - timedelta(seconds=start + count - n)
        yield (row_id, "individual", "active", p["name"], vault.active_kid,
               vault.seal(p["national_id"], row_id=row_id, field="national_id"), vault.digest(p["national_id"]),
               vault.seal(p["phone"], row_id=row_id, field="phone"), vault.digest(p["phone"]),
               p["date_of_birth"], Decimal(p["monthly_income"]), p["branch"], "verified", 1, "bench", created, created,
               mask_national_id(p["national_id"]), mask_phone(p["phone"]))


def _copy(conn: psycopg.Connection, table: str, rows: Iterator[tuple[object, ...]]) -> int:
    written = 0
    with conn.cursor().copy(f"COPY {table} ({', '.join(_COLUMNS)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)
            written += 1
    return written


def _timed(client: httpx.Client, method: str, paths: list[tuple[str, dict | None]], found: int | None = None) -> dict:
    """Latency of each call; `found` checks (outside the timing) that each answer lists that many customers, so a
    lookup that silently matches nothing cannot pass for a fast one."""
    samples = []
    for path, body in paths:
        started = time.perf_counter()
        response = client.request(method, path, json=body)
        samples.append(time.perf_counter() - started)
        assert response.status_code == 200, (path, response.status_code, response.text[:200])
        if found is not None:
            answer = response.json()
            assert len(answer if isinstance(answer, list) else answer["items"]) == found, (path, body)
    return percentiles(samples)


def _token(gateway: str, admin: dict[str, str], role: str) -> str:
    username, password = f"bench.{role}", f"bench-{role}-password"
    httpx.post(f"{gateway}/auth/users", headers={**admin, "Idempotency-Key": f"bench-{role}"},
               json={"username": username, "password": password, "roles": [role]})
    return httpx.post(f"{gateway}/auth/token", data={"username": username, "password": password}).json()["access_token"]


def _register(gateway: str, admin: dict[str, str], numbers: range | list[int]) -> list[str]:
    """Customers `_person(n)` for each n, registered through the gateway; their ids."""
    ids = []
    for n in numbers:
        created = httpx.post(f"{gateway}/api/customer/customers", json=_person(n),
                             headers={**admin, "Idempotency-Key": f"bench-customer-{n}"})
        created.raise_for_status()
        ids.append(created.json()["id"])
    return ids


def _read_vs_whoami(suite: dict, args: argparse.Namespace, first: int) -> dict:
    """A risk analyst's masked `GET /customers/{id}` (its read audited, no access-log row: masked) over a few
    customers in turn, against `/whoami` with the same token straight to the same customer service."""
    gateway = f"http://127.0.0.1:{suite['ports']['gateway']}"
    customer = f"http://127.0.0.1:{suite['ports']['customer']}"
    admin = {"Authorization": f"Bearer {suite['token']}"}
    analyst = {"Authorization": f"Bearer {_token(gateway, admin, 'risk_analyst')}"}
    ids = _register(gateway, admin, range(first, first + 16))
    measured = load_in_rounds({"whoami": ([f"{customer}/whoami"], analyst),
                               "masked_read": ([f"{customer}/customers/{i}" for i in ids], analyst)},
                              requests=args.read_requests, rounds=args.rounds, concurrency=args.concurrency,
                              client=args.load_client)
    return {**measured, "masked_read_vs_whoami": round(measured["masked_read"]["rps"] / measured["whoami"]["rps"], 3),
            "p50_vs_whoami": round(measured["masked_read"]["p50_ms"] / measured["whoami"]["p50_ms"], 2)}


def _reads_on_sqlite(args: argparse.Namespace) -> dict:
    with tempfile.TemporaryDirectory(prefix="bench-customer-sqlite-") as scratch, \
            running_suite(Path(scratch)) as suite:
        return _read_vs_whoami(suite, args, 0)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="bench customer")
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=1000, help="timed calls per lookup kind")
    parser.add_argument("--import-rows", type=int, default=100_000)
    parser.add_argument("--postgres", default=None, help="admin URL (default LOANCRM_TEST_POSTGRES_URL or local)")
    parser.add_argument("--read-requests", type=int, default=2000,
                        help="masked reads (and /whoami calls) per round against /whoami")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--load-client", choices=LOAD_CLIENTS, default="raw", help=LOAD_CLIENT_HELP)
    parser.add_argument("--only", choices=("reads",), help="only the masked read against /whoami, on both databases")
    args = parser.parse_args(argv)
    admin_url = args.postgres or os.environ.get("LOANCRM_TEST_POSTGRES_URL", DEFAULT_ADMIN_URL)
    name = f"loancrm_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(_libpq(admin_url), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    try:
        return _run(args, url)
    finally:
        with psycopg.connect(_libpq(admin_url), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _run(args: argparse.Namespace, url: str) -> dict:
    var_dir = Path(tempfile.mkdtemp(prefix="bench-customer-"))
    kernel = KernelSettings(var_dir=var_dir, customer_database_url=url)
    vault = load_vault(CustomerSettings(), kernel)  # writes the key file the service will then reuse
    migrate.upgrade(url, "customer")
    results: dict[str, Any] = {}
    if args.only != "reads":
        results.update(_population(args, url, vault))
    # The per-user lookup limit is lifted so that every timed lookup is served (two per person, in one minute).
    env = {"LOANCRM_CUSTOMER_DATABASE_URL": url, "LOANCRM_CUSTOMER_LOOKUP_PER_MINUTE": "10000"}
    with running_suite(var_dir, env) as suite:
        if args.only != "reads":
            results.update(_lookups(args, suite, results.pop("ids")))
        # Past every generated and imported number: registered afresh, so no identity clashes.
        postgres = _read_vs_whoami(suite, args, args.customers + args.import_rows)
    results["masked_read_vs_whoami"] = {"sqlite": _reads_on_sqlite(args), "postgresql": postgres}
    if args.import_rows and args.only != "reads":
        results["import"] = _import_rates(args, url, kernel, vault, var_dir)
    _print(results)
    path = write_result("customer", results)
    print(f"written {path}")
    return results


def _population(args: argparse.Namespace, url: str, vault: PiiVault) -> dict[str, Any]:
    started = time.perf_counter()
    with psycopg.connect(_libpq(url)) as conn:
        _copy(conn, "customers", tqdm(_rows(vault, 0, args.customers), total=args.customers,
                                     desc="generating", unit="row"))
        conn.commit()
        conn.execute("ANALYZE customers")
        sample = conn.execute("SELECT id FROM customers TABLESAMPLE SYSTEM (1) LIMIT %s", (args.requests,)).fetchall()
        ids = [r[0] for r in sample] or [r[0] for r in conn.execute("SELECT id FROM customers LIMIT %s",
                                                                     (args.requests,))]
    return {"customers": args.customers, "generate_and_copy_seconds": round(time.perf_counter() - started, 1),
            "ids": ids}


def _lookups(args: argparse.Namespace, suite: dict, ids: list[str]) -> dict[str, Any]:
    rng = random.Random(7)
    people = [_person(rng.randrange(args.customers)) for _ in range(args.requests)]
    gateway = f"http://127.0.0.1:{suite['ports']['gateway']}"
    admin = {"Authorization": f"Bearer {suite['token']}"}
    customer = f"http://127.0.0.1:{suite['ports']['customer']}"
    results: dict[str, Any] = {}
    with httpx.Client(base_url=customer, timeout=30) as client:
        client.get("/health/live")
        results["health_live"] = _timed(client, "GET", [("/health/live", None)] * args.requests)
    # Two realistic readers: a risk analyst sees every branch masked (no access-log write); an auditor sees
    # every branch in full, so each read decrypts for display and appends a row to the PII access log.
    for role, key in (("risk_analyst", "masked"), ("auditor", "full_view")):
        token = _token(gateway, admin, role)
        with httpx.Client(base_url=customer, headers={"Authorization": f"Bearer {token}"}, timeout=30) as client:
            client.get("/health/live")
            results[key] = {
                "role": role,
                "by_id": _timed(client, "GET", [(f"/customers/{i}", None) for i in ids[:args.requests]]),
                "by_national_id": _timed(client, "POST", [("/customers/lookup", {"national_id": p["national_id"]})
                                                          for p in people], found=1),
                "by_phone": _timed(client, "POST", [("/customers/lookup", {"phone": p["phone"]}) for p in people],
                                   found=1),
                "filtered_page": _timed(client, "GET", [(f"/customers?branch={rng.choice(BRANCHES)}&limit=50",
                                                         None) for _ in range(args.requests)],
                                        found=50 if args.customers >= 5000 else None),
            }
    return results


def _import_rates(args: argparse.Namespace, url: str, kernel: KernelSettings, vault: PiiVault, var_dir: Path) -> dict:
    start = args.customers
    path = var_dir / "import.jsonl"
    with path.open("w") as out:
        for n in range(start, start + args.import_rows):
            out.write(json.dumps(_person(n)) + "\n")
    started = time.perf_counter()
    report = run_import_cli(path, kernel=kernel, progress=False)
    ours = time.perf_counter() - started
    assert report.created == args.import_rows, report.errors[:3]
    with psycopg.connect(_libpq(url)) as conn:
        conn.execute("CREATE TABLE customers_bare (LIKE customers INCLUDING ALL)")
        rows = list(_rows(vault, start + args.import_rows, args.import_rows))
        started = time.perf_counter()
        _copy(conn, "customers_bare", iter(rows))
        conn.commit()
        bare = time.perf_counter() - started
    return {"rows": args.import_rows, "import_rows_per_s": round(args.import_rows / ours),
            "bare_copy_rows_per_s": round(args.import_rows / bare), "slowdown_vs_bare": round(ours / bare, 1)}


def _print(results: dict[str, Any]) -> None:
    if "health_live" in results:
        _print_lookups(results)
    print(f"\n{'masked read by id vs /whoami, c=8':<36}{'whoami req/s':>14}{'read req/s':>12}{'ratio':>8}{'p50 x':>8}")
    for db, row in results["masked_read_vs_whoami"].items():
        print(f"{db:<36}{row['whoami']['rps']:>14,.0f}{row['masked_read']['rps']:>12,.0f}"
              f"{row['masked_read_vs_whoami']:>8.0%}{row['p50_vs_whoami']:>8.2f}")
    imp = results.get("import")
    if imp is None:
        return
    print(f"import: {imp['import_rows_per_s']:,} rows/s via the import flow vs {imp['bare_copy_rows_per_s']:,} rows/s "
          f"bare COPY ({imp['slowdown_vs_bare']}x)")


def _print_lookups(results: dict[str, Any]) -> None:
    live = results["health_live"]["p50_ms"]
    print(f"\ncustomers: {results['customers']:,}  (generated and copied in {results['generate_and_copy_seconds']} s)")
    print(f"{'call':<16}{'view':>10}{'p50 ms':>9}{'p99 ms':>9}{'p50 / live':>12}")
    print(f"{'health_live':<16}{'':>10}{live:>9.2f}{results['health_live']['p99_ms']:>9.2f}{1.0:>12.1f}")
    for view in ("masked", "full_view"):
        for key in ("by_id", "by_national_id", "by_phone", "filtered_page"):
            row = results[view][key]
            print(f"{key:<16}{view:>10}{row['p50_ms']:>9.2f}{row['p99_ms']:>9.2f}{row['p50_ms'] / live:>12.1f}")


if __name__ == "__main__":
    main()
