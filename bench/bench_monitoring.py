"""Close of business and repayment posting at portfolio scale on PostgreSQL, each beside a bare baseline.

    python -m bench monitoring [--loans 1000000] [--postings 2000] [--chunk-size 5000]

- COB over N generated loans (10% delinquent, ageing from the state yesterday's COB left: the loans' risk state,
  one open routine check per loan, yesterday's run record) beside a bare read of the same rows with a
  server-side cursor, in the same run;
- repayments posted one by one through the service layer (allocation, history, rules, one commit each) beside
  bare single-row INSERT + COMMITs of the same posting rows.
Works in a throwaway database it creates and drops (LOANCRM_TEST_POSTGRES_URL or the local default).
"""

from __future__ import annotations

import argparse
import asyncio
import time
from datetime import date, timedelta
from decimal import Decimal

import psycopg
from sqlalchemy.engine import make_url
from tqdm import tqdm

from bench.common import write_result
from loancrm import migrate
from services.monitoring.business_day import set_business_date
from services.monitoring.cob.flows import CobContext, run_cob
from services.monitoring.cob.scheduled import default_steps
from services.monitoring.loans.models import LoanCreate
from services.monitoring.loans.service import register_loan
from services.monitoring.repayments.models import RepaymentCreate
from services.monitoring.repayments.service import post_repayment
from services.monitoring.settings import MonitoringSettings
from shared.db import Database
from tests.support import throwaway_postgres_database

TODAY = date(2026, 6, 30)

# Yesterday's stored state, as yesterday's COB left it: 10% of loans overdue up to 400 days, the rest current.
_GENERATE = """
INSERT INTO loans (id, customer_id, product, principal, annual_rate, term_months, repayment_method,
                   disbursement_date, purpose, officer, branch, status, outstanding_principal, credit_balance,
                   oldest_unpaid_due, dpd, bucket, classification, ifrs9_stage, created_by, created_at, rounding,
                   day_count)
SELECT md5(i::text), 'cust' || (i % (%(n)s / 2 + 1)), 'personal_loan', 10000 + (i %% 90) * 1000, 0.0435, 36,
       'equal_instalment', %(today)s::date - (400 + i %% 300), 'bench', 'officer' || (i %% 50),
       'BR' || lpad((i %% 40)::text, 3, '0'), 'active', 5000 + (i %% 90) * 500, 0, due, dpd,
       CASE WHEN dpd = 0 THEN 'M0' WHEN dpd <= 30 THEN 'M1' WHEN dpd <= 60 THEN 'M2' WHEN dpd <= 90 THEN 'M3'
            ELSE 'M4+' END,
       CASE WHEN dpd = 0 THEN 'normal' WHEN dpd <= 90 THEN 'special_mention' WHEN dpd <= 270 THEN 'substandard'
            WHEN dpd <= 360 THEN 'doubtful' ELSE 'loss' END,
       CASE WHEN dpd > 90 THEN 3 WHEN dpd > 0 THEN 2 ELSE 1 END, 'bench', now(), 'half_up', 'actual/360'
FROM (SELECT i, due, GREATEST(0, (%(today)s::date - 1) - due) AS dpd
      FROM (SELECT i, CASE WHEN i %% 10 = 0 THEN %(today)s::date - (1 + i %% 400)
                           ELSE %(today)s::date + (1 + i %% 28) END AS due
            FROM generate_series(1, %(n)s) AS i) AS d) AS s
"""
# ...and what else yesterday's COB left: its run record, and one open routine post-loan check per loan.
_YESTERDAY = """
INSERT INTO check_tasks (id, loan_id, branch, officer, kind, due_date, status, created_at)
SELECT md5('check' || id), id, branch, officer, 'periodic', %(today)s::date + (abs(hashtext(id)) %% 180), 'open', now()
FROM loans;
INSERT INTO cob_runs (business_date, status, chunk_size, chunks_total, chunks_done, loans_processed, loans_changed,
                      history_appended, alerts_raised, failures, attempts, steps, triggered_by, started_at,
                      finished_at)
VALUES (%(today)s::date - 1, 'completed', 5000, 0, 0, 0, 0, 0, 0, 0, 1, '{}', 'bench', now(), now())
"""


def _libpq(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _timed(action) -> tuple[float, object]:  # noqa: ANN001
    started = time.perf_counter()
    result = action()
    return time.perf_counter() - started, result


def generate_portfolio(url: str, loans: int) -> float:
    """Yesterday's state of `loans` loans in the monitoring database at `url` (its schema migrated); returns the
    seconds the loans took to insert."""
    def sql(template: str) -> str:
        return template.replace("%(n)s", str(loans)).replace("%(today)s", f"'{TODAY.isoformat()}'").replace("%%", "%")

    with psycopg.connect(_libpq(url)) as conn:
        seconds, _ = _timed(lambda: conn.execute(sql(_GENERATE)))
        for statement in sql(_YESTERDAY).split(";"):
            conn.execute(statement)
        conn.execute("ANALYZE loans")
        conn.execute("ANALYZE check_tasks")
    return seconds


def bare_read(url: str) -> float:
    def read() -> int:
        count = 0
        with psycopg.connect(_libpq(url)) as conn, conn.cursor(name="bare") as cursor:
            cursor.itersize = 10_000
            cursor.execute("SELECT * FROM loans")
            for _ in cursor:
                count += 1
        return count

    return _timed(read)[0]


def _cob(database: Database, settings: MonitoringSettings, day: date) -> tuple[float, dict]:
    ctx = CobContext(database=database, settings=settings, day=day, peers=None, credentials=None)
    with tqdm(desc=f"COB {day}", unit="chunk") as bar:
        def advance(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

        seconds, report = _timed(lambda: asyncio.run(run_cob(ctx, triggered_by="bench", steps=default_steps(),
                                                             progress=advance)))
    return seconds, report.model_dump(mode="json", exclude={"failures", "started_at", "finished_at"})


def _postings(database: Database, url: str, count: int) -> dict:
    """Post `count` repayments over a few booked loans, beside bare inserts of the very same rows."""
    day = TODAY + timedelta(days=2)
    with database.session() as session:
        booked = [register_loan(session, LoanCreate(
            customer_id=f"bench-{n}", product="personal_loan", principal=Decimal("500000.00"),
            annual_rate=Decimal("0.05"), term_months=360, repayment_method="equal_instalment",
            disbursement_date=date(2026, 1, 5), purpose="bench", branch="BR000"),
            registered_by="bench", as_of=day).id for n in range(20)]
        session.commit()

    def post_all() -> None:
        for n in tqdm(range(count), desc="postings", unit="posting"):
            with database.session() as session:
                post_repayment(session, booked[n % len(booked)], RepaymentCreate(amount=Decimal("10.00")),
                               branch=None, posted_by="bench", as_of=day)
                session.commit()

    posting_seconds, _ = _timed(post_all)
    with psycopg.connect(_libpq(url)) as conn:
        conn.execute("CREATE TABLE postings_bare (LIKE postings INCLUDING ALL)")
        conn.commit()
        rows = conn.execute("SELECT * FROM postings").fetchall()
        columns = len(rows[0])

        def insert_all() -> None:
            for row in rows:
                conn.execute(f"INSERT INTO postings_bare VALUES ({', '.join(['%s'] * columns)})",
                             [psycopg.types.json.Jsonb(v) if isinstance(v, list) else v for v in row])
                conn.commit()

        bare_seconds, _ = _timed(insert_all)
    return {"postings": count, "posting_s": round(posting_seconds, 3),
            "postings_per_s": round(count / posting_seconds, 1), "bare_insert_s": round(bare_seconds, 3),
            "bare_inserts_per_s": round(len(rows) / bare_seconds, 1),
            "posting_vs_bare_insert": round(posting_seconds / bare_seconds, 2)}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="bench monitoring")
    parser.add_argument("--loans", type=int, default=1_000_000)
    parser.add_argument("--postings", type=int, default=2000)
    parser.add_argument("--chunk-size", type=int, default=5000)
    args = parser.parse_args(argv)
    with throwaway_postgres_database() as url:
        migrate.upgrade(url, "monitoring")
        database = Database(url)
        try:
            with database.session() as session:
                set_business_date(session, TODAY - timedelta(days=1))
                session.commit()
            settings = MonitoringSettings(cob_chunk_size=args.chunk_size)
            generate_s = generate_portfolio(url, args.loans)
            read_s = bare_read(url)
            cob_s, report = _cob(database, settings, TODAY)
            rerun_s, _ = _cob(database, settings, TODAY)
            next_s, next_report = _cob(database, settings, TODAY + timedelta(days=1))
            postings = _postings(database, url, args.postings)
        finally:
            database.dispose()
    result = {
        "loans": args.loans, "chunk_size": args.chunk_size, "generate_s": round(generate_s, 3),
        "bare_read_s": round(read_s, 3), "cob_s": round(cob_s, 3), "cob_vs_bare_read": round(cob_s / read_s, 2),
        "cob_rerun_same_date_s": round(rerun_s, 3), "cob_next_day_s": round(next_s, 3),
        "cob_next_day_vs_bare_read": round(next_s / read_s, 2), "cob_report": report,
        "cob_next_day_report": next_report, **postings,
    }
    path = write_result("monitoring", result)
    print(f"{args.loans} loans: COB {cob_s:.2f}s = {result['cob_vs_bare_read']}x a bare read ({read_s:.2f}s); "
          f"next day {result['cob_next_day_vs_bare_read']}x; rerun of a closed date {rerun_s * 1000:.0f} ms")
    print(f"postings: {postings['postings_per_s']}/s through the service, {postings['bare_inserts_per_s']}/s bare "
          f"inserts ({postings['posting_vs_bare_insert']}x)")
    print(f"wrote {path}")
    return result


if __name__ == "__main__":
    main()
