"""Close of business and repayment posting at portfolio scale on PostgreSQL, each beside a bare baseline.

    python -m bench monitoring [--loans 1000000] [--postings 2000] [--chunk-size 5000]

- COB over N generated loans (10% delinquent, ageing from the state yesterday's COB left: the loans' risk state,
  one open routine check per loan, yesterday's run record) beside a bare read of the same rows with a
  server-side cursor, in the same run;
- repayments posted one by one through the service layer (allocation, history, rules, one commit each) beside
  bare single-row INSERT + COMMITs of the same posting rows, the two alternating in blocks of 100.
Works in a throwaway database it creates and drops (LOANCRM_TEST_POSTGRES_URL or the local default).
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from datetime import date, timedelta
from decimal import Decimal

import psycopg
from psycopg import pq
from sqlalchemy import event
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
from services.monitoring.repayments.posting import Repayment, post_one
from services.monitoring.repayments.service import post_repayment
from services.monitoring.settings import MonitoringSettings
from shared.auth.scope import EVERYTHING
from shared.db import Database
from tests.support import throwaway_postgres_database

TODAY = date(2026, 6, 30)
TOLERANCE = MonitoringSettings.model_fields["overpayment_tolerance"].default

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


class _RoundTrips:
    """The round trips of the engine's connections: the messages after which libpq waits for the server (Sync
    of the extended protocol, which ends a statement or a whole pipeline, and Query of the simple one: COMMIT),
    counted in libpq's trace of every connection checked out meanwhile. Statements sent in one pipeline are one
    round trip; BEGIN, which psycopg sends before a transaction's first statement, is one."""

    def __init__(self, engine) -> None:  # noqa: ANN001
        self.engine = engine
        self.trace = tempfile.TemporaryFile("w+")  # noqa: SIM115 - read back and closed by stop()
        self.traced: list = []
        event.listen(engine, "checkout", self._checkout)

    def _checkout(self, dbapi_connection, *_args) -> None:  # noqa: ANN001, ANN002
        if all(dbapi_connection is not c for c in self.traced):
            dbapi_connection.pgconn.trace(self.trace.fileno())
            dbapi_connection.pgconn.set_trace_flags(pq.Trace.SUPPRESS_TIMESTAMPS)
            self.traced.append(dbapi_connection)

    def stop(self) -> None:
        event.remove(self.engine, "checkout", self._checkout)
        for connection in self.traced:
            connection.pgconn.untrace()
        self.trace.seek(0)
        self.count = sum(1 for line in self.trace if line.startswith("F\t") and line.split("\t")[2].strip() in (
            "Sync", "Query"))
        self.trace.close()

    def per(self, count: int) -> float:
        return round(self.count / count, 2)


POSTINGS_BLOCK = 100


def _insert_each(conn: psycopg.Connection, rows: list[tuple]) -> None:
    """The rows into postings_bare one by one, an INSERT and a COMMIT each."""
    columns = len(rows[0])
    for row in rows:
        conn.execute(f"INSERT INTO postings_bare VALUES ({', '.join(['%s'] * columns)})",
                     [psycopg.types.json.Jsonb(v) if isinstance(v, list) else v for v in row])
        conn.commit()


def _postings(database: Database, url: str, count: int) -> dict:
    """Post `count` repayments over a few booked loans one by one (a transaction each) through the posting core,
    and as many through the ORM path single postings took before it; beside bare single-row INSERT + COMMITs of
    the very same posting rows."""
    day = TODAY + timedelta(days=2)
    with database.session() as session:
        set_business_date(session, day)
        booked = [register_loan(session, LoanCreate(
            customer_id=f"bench-{n}", product="personal_loan", principal=Decimal("500000.00"),
            annual_rate=Decimal("0.05"), term_months=360, repayment_method="equal_instalment",
            disbursement_date=date(2026, 1, 5), purpose="bench", branch="BR000"),
            registered_by="bench", as_of=day).id for n in range(40)]
        session.commit()

    def post_all(loans: list[str], post, times: int, bar: tqdm | None = None) -> None:  # noqa: ANN001
        for n in range(times):
            with database.session() as session:
                post(session, loans[n % len(loans)])
                session.commit()
            if bar is not None:
                bar.update(1)

    def core(session, loan_id: str) -> None:  # noqa: ANN001
        post_one(session, Repayment(loan_id, Decimal("10.00")), scope=EVERYTHING, posted_by="bench", as_of=day,
                 tolerance=TOLERANCE)

    def orm_path(session, loan_id: str) -> None:  # noqa: ANN001
        post_repayment(session, loan_id, RepaymentCreate(amount=Decimal("10.00")), scope=EVERYTHING,
                       posted_by="bench", as_of=day, tolerance=TOLERANCE)

    # Postings and the bare inserts of the same rows alternate in blocks, so that both meet the same machine: on a
    # shared one a commit's flush can take ten times longer from one minute to the next.
    core_s = bare_seconds = 0.0
    with psycopg.connect(_libpq(url)) as conn, tqdm(total=count, desc="postings", unit="posting") as bar:
        conn.execute("CREATE TABLE postings_bare (LIKE postings INCLUDING ALL)")
        conn.commit()
        for done in range(0, count, POSTINGS_BLOCK):
            block = min(POSTINGS_BLOCK, count - done)
            core_s += _timed(lambda: post_all(booked[:20], core, block, bar))[0]  # noqa: B023 - called at once
            rows = conn.execute("SELECT * FROM postings WHERE loan_id = ANY(%s) ORDER BY created_at DESC LIMIT %s",
                                [booked[:20], block]).fetchall()
            conn.commit()
            bare_seconds += _timed(lambda: _insert_each(conn, rows))[0]  # noqa: B023 - called at once
    orm_s, _ = _timed(lambda: post_all(booked[20:], orm_path, count))
    # Round trips counted after the timed runs (tracing costs time), on as many more postings each.
    traced = min(count, 200)
    core_trips = _RoundTrips(database.engine)
    post_all(booked[:20], core, traced)
    core_trips.stop()
    orm_trips = _RoundTrips(database.engine)
    post_all(booked[20:], orm_path, traced)
    orm_trips.stop()
    bare_rate = count / bare_seconds
    return {"postings": count, "posting_s": round(core_s, 3), "postings_per_s": round(count / core_s, 1),
            "round_trips_per_posting": core_trips.per(traced), "orm_path_postings_per_s": round(count / orm_s, 1),
            "orm_path_round_trips_per_posting": orm_trips.per(traced), "bare_insert_s": round(bare_seconds, 3),
            "bare_inserts_per_s": round(bare_rate, 1),
            "posting_share_of_bare_insert": round(count / core_s / bare_rate, 3),
            "orm_path_share_of_bare_insert": round(count / orm_s / bare_rate, 3)}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="bench monitoring")
    parser.add_argument("--loans", type=int, default=1_000_000)
    parser.add_argument("--postings", type=int, default=2000)
    parser.add_argument("--chunk-size", type=int, default=5000)
    parser.add_argument("--only", choices=("cob", "postings"), help="run one part only")
    args = parser.parse_args(argv)
    with throwaway_postgres_database() as url:
        migrate.upgrade(url, "monitoring")
        database = Database(url)
        try:
            with database.session() as session:
                set_business_date(session, TODAY - timedelta(days=1))
                session.commit()
            settings = MonitoringSettings(cob_chunk_size=args.chunk_size)
            result = {} if args.only == "postings" else _cob_part(database, settings, url, args)
            postings = {} if args.only == "cob" else _postings(database, url, args.postings)
        finally:
            database.dispose()
    result.update(postings)
    path = write_result("monitoring", result)
    if postings:
        _print_postings(postings)
    print(f"wrote {path}")
    return result


def _cob_part(database: Database, settings: MonitoringSettings, url: str, args: argparse.Namespace) -> dict:
    generate_s = generate_portfolio(url, args.loans)
    read_s = bare_read(url)
    cob_s, report = _cob(database, settings, TODAY)
    rerun_s, _ = _cob(database, settings, TODAY)
    next_s, next_report = _cob(database, settings, TODAY + timedelta(days=1))
    result = {
        "loans": args.loans, "chunk_size": args.chunk_size, "generate_s": round(generate_s, 3),
        "bare_read_s": round(read_s, 3), "cob_s": round(cob_s, 3), "cob_vs_bare_read": round(cob_s / read_s, 2),
        "cob_rerun_same_date_s": round(rerun_s, 3), "cob_next_day_s": round(next_s, 3),
        "cob_next_day_vs_bare_read": round(next_s / read_s, 2), "cob_report": report,
        "cob_next_day_report": next_report,
    }
    print(f"{args.loans} loans: COB {cob_s:.2f}s = {result['cob_vs_bare_read']}x a bare read ({read_s:.2f}s); "
          f"next day {result['cob_next_day_vs_bare_read']}x; rerun of a closed date {rerun_s * 1000:.0f} ms")
    return result


def _print_postings(postings: dict) -> None:
    print(f"postings: {postings['postings_per_s']}/s through the posting core "
          f"({postings['round_trips_per_posting']} round trips each), {postings['bare_inserts_per_s']}/s bare "
          f"insert+commit: {postings['posting_share_of_bare_insert']:.0%} of it; the ORM path of before "
          f"{postings['orm_path_postings_per_s']}/s ({postings['orm_path_round_trips_per_posting']} round trips), "
          f"{postings['orm_path_share_of_bare_insert']:.0%}")


if __name__ == "__main__":
    main()
