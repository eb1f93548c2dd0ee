"""Bulk repayment files on PostgreSQL: one file posted as a job through the posting core, beside a bare COPY of
the very same posting rows, at two sizes (peak memory of each run shows whether it stays flat in the file's size).

    python -m bench repayment_files [--rows 1000000] [--small 100000] [--chunk-size 1000]

Each size runs in a process of its own, on a throwaway database it creates and drops: N loans of 12 monthly
instalments (one in ten a month behind), a CSV file of N rows (one per loan, half naming the loan by its external
id, one in ten of the late ones paying short), posted by `repayment_files.flows.run_file`; then the postings
written are copied out and COPYed into a bare table of the same shape.

Beside them, the floor: the writes a posting file cannot do without, each in its fastest set-based form on one
connection, as a bound on what share of the bare COPY any posting of these rows can reach on this schema: the COPY
of the postings, the COPY of their `repayment.posted` events, and one UPDATE each of the loans and the instalments
the job changed (set to the values it left, sent as one array a column). No reads, no allocation, no rules, no
history, no audit trail: a real posting does all of those besides.
"""

from __future__ import annotations

import argparse
import csv
import multiprocessing
import resource
import tempfile
import time
from datetime import date
from pathlib import Path

import psycopg
from sqlalchemy.engine import make_url
from tqdm import tqdm

from bench.common import write_result

TODAY = date(2026, 6, 30)
_LOANS = """
INSERT INTO loans (id, external_id, external_source, customer_id, product, principal, annual_rate, term_months,
                   repayment_method, disbursement_date, purpose, officer, branch, status, outstanding_principal,
                   credit_balance, oldest_unpaid_due, dpd, bucket, classification, ifrs9_stage, created_by,
                   created_at, penalty_daily_rate, rounding, day_count)
SELECT md5(i::text), 'EXT-' || i, 'bench', 'cust' || i, 'personal_loan', 12000, 0.12, 12, 'equal_instalment',
       due - 31, 'bench', 'bench', 'BR' || lpad((i % 40)::text, 3, '0'), 'active', 12000, 0, due,
       CASE WHEN late THEN 29 ELSE 0 END, CASE WHEN late THEN 'M1' ELSE 'M0' END,
       CASE WHEN late THEN 'special_mention' ELSE 'normal' END, CASE WHEN late THEN 2 ELSE 1 END, 'bench', now(),
       0, 'half_up', 'actual/360'
FROM (SELECT i, i % 10 = 0 AS late, CASE WHEN i % 10 = 0 THEN %(today)s::date - 30 ELSE %(today)s::date END AS due
      FROM generate_series(1, %(n)s) AS i) AS g;
INSERT INTO instalments (loan_id, number, due_date, principal, interest, principal_paid, interest_paid,
                         penalty_paid, interest_waived, penalty_waived)
SELECT l.id, k, (l.oldest_unpaid_due + make_interval(months => k - 1))::date, 1000, 100, 0, 0, 0, 0, 0
FROM loans l CROSS JOIN generate_series(1, 12) AS k;
ANALYZE loans;
ANALYZE instalments;
"""


def _libpq(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _write_file(url: str, path: Path, rows: int) -> None:
    with psycopg.connect(_libpq(url)) as conn, conn.cursor(name="loans") as cursor, \
            path.open("w", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(["reference", "loan_id", "loan_external_id", "amount", "value_date", "payer_account"])
        cursor.itersize = 10_000
        cursor.execute("SELECT id, external_id, dpd FROM loans ORDER BY external_id")
        for n, (loan_id, external_id, dpd) in enumerate(cursor):
            amount = "500.00" if dpd and n % 3 == 0 else "1100.00"
            out.writerow([f"DD-{n:08d}", loan_id if n % 2 else "", "" if n % 2 else external_id, amount,
                          TODAY.isoformat(), f"DE{n:020d}"])
    del rows


def _one_size(rows: int, chunk_size: int, queue: multiprocessing.Queue) -> None:
    try:
        queue.put(_measure(rows, chunk_size))
    except BaseException as exc:
        queue.put({"error": repr(exc)})
        raise


def _measure(rows: int, chunk_size: int) -> dict:
    from loancrm import migrate
    from services.monitoring.business_day import set_business_date
    from services.monitoring.repayment_files import flows
    from services.monitoring.settings import MonitoringSettings
    from services.monitoring.transactions.service import load_vault
    from shared.auth.scope import EVERYTHING
    from shared.db import Database
    from shared.settings import KernelSettings
    from tests.support import throwaway_postgres_database

    with throwaway_postgres_database() as url, tempfile.TemporaryDirectory() as folder:
        migrate.upgrade(url, "monitoring")
        with psycopg.connect(_libpq(url)) as conn:
            for statement in _LOANS.replace("%(n)s", str(rows)).replace(
                    "%(today)s", f"'{TODAY.isoformat()}'").split(";"):
                if statement.strip():
                    conn.execute(statement)
        path = Path(folder) / "direct-debit.csv"
        _write_file(url, path, rows)
        database = Database(url)
        try:
            with database.session() as session:
                set_business_date(session, TODAY)
                job = flows.accept_file(session, source="bench", filename=path.name, content=None, path=path,
                                  scope=EVERYTHING, by="bench")
                session.commit()
            settings = MonitoringSettings(repayment_file_chunk_size=chunk_size)
            vault = load_vault(settings, KernelSettings(var_dir=folder))
            rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            with tqdm(total=rows, desc=f"file of {rows}", unit="row") as bar:
                started = time.perf_counter()
                done = flows.run_file(database, settings, job.id, vault=vault,
                                      progress=lambda n, _total: bar.update(n - bar.n))
                seconds = time.perf_counter() - started
            peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        finally:
            database.dispose()
        with psycopg.connect(_libpq(url)) as conn:
            conn.execute("CREATE TABLE postings_bare (LIKE postings INCLUDING ALL)")
            data = bytearray()
            with conn.cursor().copy("COPY postings TO STDOUT") as copy:
                for block in copy:
                    data += block
            conn.commit()
            started = time.perf_counter()
            with conn.cursor().copy("COPY postings_bare FROM STDIN") as copy:
                for offset in range(0, len(data), 1 << 20):
                    copy.write(data[offset:offset + (1 << 20)])
            conn.commit()
            copy_s = time.perf_counter() - started
            copied = conn.execute("SELECT count(*) FROM postings_bare").fetchone()[0]
            floor = _floor(conn)
    return {"rows": rows, "posted": done.posted, "failed": done.failed, "duplicates": done.duplicates,
               "file_s": round(seconds, 3), "rows_per_s": round(rows / seconds, 1), "bare_copy_s": round(copy_s, 3),
               "bare_copy_rows": copied, "file_share_of_bare_copy": round(copy_s / seconds, 3),
               "peak_rss_mib": round(peak_kib / 1024, 1), "rss_before_run_mib": round(rss_before / 1024, 1),
               "floor_s": {name: round(value, 3) for name, value in floor.items()},
               "floor_share_of_bare_copy": round(copy_s / (copy_s + sum(floor.values())), 3)}


_FLOOR_LOANS = """UPDATE loans AS t SET outstanding_principal = v.op, credit_balance = v.cb, oldest_unpaid_due = v.due,
    status = v.status, dpd = v.dpd, bucket = v.bucket, classification = v.class, ifrs9_stage = v.stage
FROM unnest(%b::varchar[], %t::numeric[], %t::numeric[], %b::date[], %b::varchar[], %b::int[], %b::varchar[],
            %b::varchar[], %b::int[]) AS v(id, op, cb, due, status, dpd, bucket, class, stage)
WHERE t.id = v.id"""
_FLOOR_INSTALMENTS = """UPDATE instalments AS t SET principal_paid = v.pp, interest_paid = v.ip, penalty_paid = v.pen
FROM unnest(%b::varchar[], %b::int[], %t::numeric[], %t::numeric[], %t::numeric[]) AS v(loan_id, number, pp, ip, pen)
WHERE t.loan_id = v.loan_id AND t.number = v.number"""


def _floor(conn: psycopg.Connection) -> dict[str, float]:
    """The floor's writes besides the postings' COPY (timed by the caller), seconds each: the events COPYed into
    a bare copy of the outbox; the loans and instalments updated to the values the job left, in a transaction rolled
    back (the rows written are the same either way)."""
    conn.execute("CREATE TABLE outbox_bare (LIKE monitoring_outbox INCLUDING ALL)")
    names = "id, type, occurred_at, subject_id, branch, customer_id, owner, payload"
    events = bytearray()
    with conn.cursor().copy(f"COPY (SELECT {names} FROM monitoring_outbox WHERE type = 'repayment.posted') "
                            "TO STDOUT") as copy:
        for block in copy:
            events += block
    loans = list(zip(*conn.execute(
        "SELECT l.id, outstanding_principal, credit_balance, oldest_unpaid_due, status, dpd, bucket, classification, "
        "ifrs9_stage FROM loans l WHERE EXISTS (SELECT 1 FROM postings p WHERE p.loan_id = l.id)").fetchall(),
        strict=True))
    instalments = list(zip(*conn.execute(
        "SELECT loan_id, number, principal_paid, interest_paid, penalty_paid FROM instalments "
        "WHERE principal_paid > 0 OR interest_paid > 0 OR penalty_paid > 0").fetchall(), strict=True))
    conn.commit()
    seconds = {}
    started = time.perf_counter()
    with conn.cursor().copy(f"COPY outbox_bare ({names}) FROM STDIN") as copy:
        for offset in range(0, len(events), 1 << 20):
            copy.write(events[offset:offset + (1 << 20)])
    conn.commit()
    seconds["copy_events"] = time.perf_counter() - started
    for name, sql, arrays in (("update_loans", _FLOOR_LOANS, loans), ("update_instalments", _FLOOR_INSTALMENTS,
                                                                       instalments)):
        started = time.perf_counter()
        conn.execute(sql, [list(column) for column in arrays])
        seconds[name] = time.perf_counter() - started
        conn.rollback()
    return seconds


def _run(rows: int, chunk_size: int) -> dict:
    spawn = multiprocessing.get_context("spawn")
    queue = spawn.Queue()
    process = spawn.Process(target=_one_size, args=(rows, chunk_size, queue))
    process.start()
    result = queue.get()
    process.join()
    if "error" in result:
        raise RuntimeError(f"the run of {rows} rows failed: {result['error']}")
    return result


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="bench repayment_files")
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--small", type=int, default=5_000, help="the smaller size, for peak memory beside it")
    parser.add_argument("--chunk-size", type=int, default=1000)
    args = parser.parse_args(argv)
    sizes = [_run(n, args.chunk_size) for n in (args.small, args.rows)]
    with open("/proc/loadavg") as handle:  # noqa: PTH123
        load = handle.read().split()[:3]
    result = {"chunk_size": args.chunk_size, "sizes": sizes, "load_average": load}
    path = write_result("repayment_files", result)
    for size in sizes:
        print(f"{size['rows']} rows: {size['rows_per_s']}/s posted as one job ({size['file_s']}s); bare COPY of the "
              f"same posting rows {size['bare_copy_s']}s: {size['file_share_of_bare_copy']:.0%} of its speed; "
              f"peak RSS {size['peak_rss_mib']} MiB; the floor (the postings' COPY, their events' COPY, one set-based "
              f"UPDATE of the loans and one of the instalments: {size['floor_s']}) reaches "
              f"{size['floor_share_of_bare_copy']:.0%}")
    print(f"load average {' '.join(load)}; wrote {path}")
    return result


if __name__ == "__main__":
    main()
