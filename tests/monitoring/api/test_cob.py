"""Close of business: ageing through the stored loans, idempotency per date, resume after a crash, isolation.

COB dates only move forward, so each test works in a year of its own, later than the tests above it.
"""

import asyncio
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import httpx
import pytest
from sqlalchemy import update

from services.monitoring.cob import flows
from services.monitoring.cob.scheduled import NO_TOKEN, default_steps, run_cob_cli
from services.monitoring.loans.models import Loan
from tests.monitoring.api.helpers import (
    admin,
    alerts_of,
    assert_problem,
    cob,
    decide,
    loan_now,
    officer,
    peer_down,
    register,
    role,
    set_today,
    start_cob,
    wait_for_cob,
)
from tests.scoring.api.conftest import german_rows


def state(loan):
    return loan["dpd"], loan["bucket"], loan["classification"], loan["ifrs9_stage"]


def test_cob_ages_a_stored_loan_across_every_class_boundary(suite, borrowers):
    set_today(suite, date(2027, 1, 10))
    loan = register(suite, borrowers, disbursement_date="2027-01-10", term_months=36)  # first due 2027-02-10
    expected = [
        (date(2027, 2, 11), (1, "M1", "special_mention", 2)),
        (date(2027, 5, 11), (90, "M3", "special_mention", 2)),
        (date(2027, 5, 12), (91, "M4+", "substandard", 3)),
        (date(2027, 11, 7), (270, "M4+", "substandard", 3)),
        (date(2027, 11, 8), (271, "M4+", "doubtful", 3)),
        (date(2028, 2, 5), (360, "M4+", "doubtful", 3)),
        (date(2028, 2, 6), (361, "M4+", "loss", 3)),
    ]
    for day, want in expected:
        response = cob(suite, day)
        assert response.status_code == 200, response.text
        assert response.json()["status"] == "completed"
        assert state(loan_now(suite, loan["id"])) == want, day
    history = suite.direct["monitoring"].get(f"/loans/{loan['id']}/history",
                                             headers=suite.headers("admin")).json()["items"]
    classes = [(h["to_value"], h["effective_date"]) for h in history if h["field"] == "loan_class"]
    assert classes == [("normal", "2027-01-10"), ("special_mention", "2027-02-11"), ("substandard", "2027-05-12"),
                       ("doubtful", "2027-11-08"), ("loss", "2028-02-06")]
    assert all(h["cause"] == "cob_ageing" for h in history)
    rules = sorted(a["rule"] for a in alerts_of(suite, loan["id"]))
    assert rules == ["dpd_over_30", "dpd_over_90", "missed_payment", "non_performing"]
    business = suite.direct["monitoring"].get("/business-date", headers=suite.headers("admin")).json()
    assert business == {"business_date": "2028-02-06", "last_cob": "2028-02-06"}


def test_a_date_runs_once_and_earlier_dates_are_refused(suite, borrowers):
    set_today(suite, date(2029, 1, 10))
    loan = register(suite, borrowers, disbursement_date="2029-01-10")
    first = cob(suite, date(2029, 3, 1))
    again = cob(suite, date(2029, 3, 1))
    assert first.status_code == again.status_code == 200
    assert first.json() == again.json()
    assert len(alerts_of(suite, loan["id"])) == 1
    assert_problem(cob(suite, date(2029, 2, 1)), 422, "body.business_date")


def _ctx(suite, day, chunk_size=2, **extra):
    app = suite.services["monitoring"]
    settings = app.state.monitoring_settings.model_copy(update={"cob_chunk_size": chunk_size})
    return flows.CobContext(database=app.state.database, settings=settings, day=day, peers=None, credentials=None,
                            **extra)


def _crash(number):
    if number == 1:
        raise RuntimeError("power cut in chunk 1")


def test_a_crashed_run_resumes_where_it_stopped_without_duplicate_alerts(suite, borrowers):
    set_today(suite, date(2030, 1, 10))
    loans = [register(suite, borrowers, disbursement_date="2030-01-10") for _ in range(5)]
    day = date(2030, 2, 11)
    set_today(suite, day - timedelta(days=1))
    with pytest.raises(RuntimeError):
        asyncio.run(flows.run_cob(_ctx(suite, day, before_commit=_crash), triggered_by="test", steps=default_steps()))
    crashed = flows.report(suite.database("monitoring"), day, lease_seconds=60)
    # Nobody works on it any more: stalled (not running), until a start resumes it.
    assert crashed.status == "stalled" and crashed.chunks_done == 1 and crashed.chunks_total > 2
    sliced = asyncio.run(flows.run_cob(_ctx(suite, day), triggered_by="test", max_chunks=1))
    assert sliced.status == "stalled" and sliced.chunks_done == 2
    finished = asyncio.run(flows.run_cob(_ctx(suite, day), triggered_by="test", steps=default_steps()))
    assert finished.status == "completed" and finished.chunks_done == finished.chunks_total
    assert finished.attempts == 3 and finished.steps["rescore"] == {"status": "skipped", "reason": NO_TOKEN}
    for loan in loans:
        assert state(loan_now(suite, loan["id"])) == (1, "M1", "special_mention", 2)
        assert [a["rule"] for a in alerts_of(suite, loan["id"])] == ["missed_payment"]
        history = suite.direct["monitoring"].get(f"/loans/{loan['id']}/history",
                                                 headers=suite.headers("admin")).json()["items"]
        assert len([h for h in history if h["field"] == "bucket"]) == 2  # M0 at booking, M1 by COB, once


def test_a_loan_that_fails_is_reported_and_the_rest_are_aged(suite, borrowers):
    set_today(suite, date(2031, 1, 10))
    good, bad = (register(suite, borrowers, disbursement_date="2031-01-10") for _ in range(2))
    with suite.database("monitoring").session() as session:
        session.execute(update(Loan).where(Loan.id == bad["id"]).values(product="mystery"))
        session.commit()
    try:
        report = cob(suite, date(2031, 2, 11)).json()
    finally:
        with suite.database("monitoring").session() as session:
            session.execute(update(Loan).where(Loan.id == bad["id"]).values(product="personal_loan"))
            session.commit()
    assert report["status"] == "completed"
    assert [(f["loan_id"], f["step"]) for f in report["failures"]] == [(bad["id"], "ageing")]
    assert "mystery" in report["failures"][0]["error"]
    assert loan_now(suite, good["id"])["dpd"] == 1 and loan_now(suite, bad["id"])["dpd"] == 0


def test_cob_rescores_borrowers_and_warns_on_a_sharp_fall(suite, borrowers, champion):
    set_today(suite, date(2032, 1, 10))
    customer = borrowers.new_customer()
    scored = suite.direct["scoring"].post("/scores", json={"customer_id": customer, "features": german_rows()[0]},
                                          headers=admin(suite))
    assert scored.status_code == 201, scored.text
    baseline = scored.json()
    loan = register(suite, borrowers, customer_id=customer, disbursement_date="2032-01-10")
    first = cob(suite, date(2032, 1, 11)).json()
    assert first["steps"]["rescore"]["status"] == "done", first["steps"]["rescore"]
    assert first["steps"]["rescore"]["customers_due"] == 0  # the booking stored its baseline yesterday
    with suite.database("monitoring").session() as session:
        stored = session.get(Loan, loan["id"])
        assert (stored.last_score, stored.last_grade) == (baseline["points"], baseline["grade"])
        assert stored.last_pd == Decimal(str(baseline["pd"])).quantize(Decimal("0.000001"))
        # Say the borrower stood 80 points higher at booking: the re-score a month on (same inputs) falls sharply.
        session.execute(update(Loan).where(Loan.id == loan["id"]).values(last_score=baseline["points"] + 80))
        session.commit()
    month_on = cob(suite, date(2032, 2, 10)).json()
    assert month_on["steps"]["rescore"]["customers_scored"] >= 1, month_on["steps"]
    drops = [a for a in alerts_of(suite, loan["id"]) if a["rule"] == "score_drop"]
    assert len(drops) == 1 and drops[0]["evidence"]["from_points"] == baseline["points"] + 80
    assert drops[0]["evidence"]["to_points"] == baseline["points"]
    with peer_down(suite, "scoring"):
        down = cob(suite, date(2032, 3, 15)).json()
    assert down["status"] == "completed" and down["steps"]["rescore"]["status"] == "skipped"
    assert "scoring" in down["steps"]["rescore"]["reason"]


def _in_process(suite):
    """The suite's apps as the command line's network (gateway token endpoint and peers)."""
    return {"gateway": httpx.ASGITransport(suite.gateway),
            **{name: httpx.ASGITransport(app) for name, app in suite.services.items()}}


def test_the_command_line_calls_peers_as_its_batch_client_beyond_a_tokens_life(suite, borrowers, champion,
                                                                               monkeypatch):
    """No user token anywhere: the CLI's COB gets tokens for the batch client `loancrm up` provisioned (the
    suite's bootstrap did), and renews them, so a run longer than a token's life re-scores, checks silence and
    delivers queued contacts."""
    monkeypatch.delenv("LOANCRM_API_TOKEN", raising=False)
    monkeypatch.setenv("LOANCRM_MONITORING_COB_DAYS_AHEAD", "36500")  # these tests live years ahead of the clock
    set_today(suite, date(2033, 1, 10))
    customer = borrowers.new_customer()
    scored = suite.direct["scoring"].post("/scores", json={"customer_id": customer, "features": german_rows()[0]},
                                          headers=admin(suite))
    assert scored.status_code == 201, scored.text
    loan = register(suite, borrowers, customer_id=customer, disbursement_date="2033-01-10")
    with peer_down(suite, "customer"):
        queued = suite.direct["monitoring"].post(f"/loans/{loan['id']}/collection-actions", json={
            "kind": "call", "channel": "phone", "outcome": "no answer"}, headers={
            **role(suite, "collector"), "Idempotency-Key": uuid.uuid4().hex})
    assert queued.status_code == 201 and queued.json()["contact_log"] == "queued"
    with suite.database("monitoring").session() as session:  # due for re-scoring a month on
        session.execute(update(Loan).where(Loan.id == loan["id"]).values(scored_on=date(2032, 12, 1)))
        session.commit()

    async def outlive_the_token(ctx):  # the first step takes a token and outlasts it
        await ctx.credentials.token()
        await asyncio.sleep(3)
        return {"status": "done"}

    set_today(suite, date(2033, 2, 10))
    gateway, settings = suite.gateway.state, suite.gateway.state.gateway_settings
    gateway.gateway_settings = settings.model_copy(update={"token_ttl_seconds": 2})  # while COB runs only
    try:
        report = run_cob_cli(suite.kernel, date(2033, 2, 11), progress=False, transports=_in_process(suite),
                             steps={"outlive_the_token": outlive_the_token, **default_steps()})
    finally:
        gateway.gateway_settings = settings
    assert report.status == "completed", report
    steps = report.steps
    assert steps["rescore"]["status"] == "done" and steps["rescore"]["customers_scored"] >= 1, steps
    with suite.database("monitoring").session() as session:
        assert session.get(Loan, loan["id"]).scored_on == date(2033, 2, 11)  # re-scored by this run
    assert steps["contact_silence"]["status"] == "done" and steps["contact_silence"]["customers_checked"] >= 1
    assert steps["contact_log_outbox"] == {"status": "done", "delivered": 1, "still_queued": 0, "last_error": None}
    [logged] = borrowers.contact_log(loan["customer_id"])
    assert logged["officer"] == "client:loancrm-batch"
    assert loan_now(suite, loan["id"])["dpd"] == 1
    caught_up = run_cob_cli(suite.kernel, date(2033, 2, 12), through=date(2033, 2, 14), progress=False,
                            transports=_in_process(suite))
    assert (caught_up.business_date, caught_up.status) == (date(2033, 2, 14), "completed")
    assert loan_now(suite, loan["id"])["dpd"] == 4


def test_close_of_business_started_through_the_api_calls_peers_as_the_batch_client(suite, borrowers):
    """An admin starts the run, but the peers see the batch client (its tokens renew), not the admin's sign-in,
    which may end while a long run goes on; where no batch client is provisioned, the caller's token is used."""
    def queue_a_call(loan):  # noqa: ANN001, ANN202 - the customer service down: the contact waits for COB
        with peer_down(suite, "customer"):
            queued = suite.direct["monitoring"].post(f"/loans/{loan['id']}/collection-actions", json={
                "kind": "call", "channel": "phone", "outcome": "no answer"}, headers={
                **role(suite, "collector"), "Idempotency-Key": uuid.uuid4().hex})
        assert queued.status_code == 201 and queued.json()["contact_log"] == "queued"

    set_today(suite, date(2034, 1, 10))
    loan = register(suite, borrowers, disbursement_date="2034-01-10")
    queue_a_call(loan)
    report = cob(suite, date(2034, 1, 11)).json()
    assert report["steps"]["contact_log_outbox"]["delivered"] == 1, report
    [logged] = borrowers.contact_log(loan["customer_id"])
    assert logged["officer"] == "client:loancrm-batch"

    state = suite.services["monitoring"].state
    kernel = state.kernel
    state.kernel = kernel.model_copy(update={"var_dir": kernel.var_dir / "elsewhere"})  # nothing provisioned
    try:
        other = register(suite, borrowers, disbursement_date="2034-01-11")
        queue_a_call(other)
        report = cob(suite, date(2034, 1, 12)).json()
    finally:
        state.kernel = kernel
    assert report["steps"]["contact_log_outbox"]["delivered"] == 1, report
    [logged] = borrowers.contact_log(other["customer_id"])
    assert logged["officer"] == "admin"


def test_without_the_batch_clients_secret_the_command_line_ages_and_skips_peers(suite, borrowers, monkeypatch):
    monkeypatch.setenv("LOANCRM_MONITORING_COB_DAYS_AHEAD", "36500")
    kernel = suite.kernel.model_copy(update={"var_dir": suite.kernel.var_dir / "elsewhere"})  # nothing provisioned
    set_today(suite, date(2033, 3, 10))
    loan = register(suite, borrowers, disbursement_date="2033-03-10")
    set_today(suite, date(2033, 4, 10))
    report = run_cob_cli(kernel, date(2033, 4, 11), progress=False)
    assert report.status == "completed" and report.steps["rescore"] == {"status": "skipped", "reason": NO_TOKEN}
    assert loan_now(suite, loan["id"])["dpd"] == 1


def test_the_command_line_refuses_a_date_in_one_line(suite, monkeypatch, capsys):
    from loancrm.cli import main

    monkeypatch.setenv("LOANCRM_VAR_DIR", str(suite.kernel.var_dir))
    monkeypatch.setenv("LOANCRM_MONITORING_DATABASE_URL", suite.kernel.database_url("monitoring"))
    monkeypatch.setenv("LOANCRM_MONITORING_COB_DAYS_AHEAD", "36500")
    set_today(suite, date(2033, 6, 1))
    assert main(["monitoring", "cob", "--date", "2033-06-05"]) == 2
    assert capsys.readouterr().err.strip() == (
        "loancrm: --date: must be the next business day 2033-06-02; to close every day up to 2033-06-05, send "
        "business_date 2033-06-02 with through 2033-06-05")


def test_a_pause_stops_the_dpd_clock_for_its_days(suite, borrowers):
    set_today(suite, date(2034, 1, 10))
    loan = register(suite, borrowers, disbursement_date="2034-01-10")  # first due 2034-02-10
    cob(suite, date(2034, 2, 15))
    path = f"/loans/{loan['id']}/delinquency-pauses"
    bad = suite.direct["monitoring"].post(path, headers=officer(suite),
                                          json={"start": "2034-02-12", "end": "2034-02-11", "reason": "dispute"})
    assert_problem(bad, 422, "body.end")
    paused = suite.direct["monitoring"].post(path, headers=officer(suite),
                                             json={"start": "2034-02-12", "end": "2034-02-21", "reason": "dispute"})
    assert paused.status_code == 201, paused.text
    assert decide(suite, paused.json()["id"]).status_code == 200
    assert loan_now(suite, loan["id"])["dpd"] == 1  # only Feb 11 counts; Feb 12-15 are paused
    cob(suite, date(2034, 3, 1))
    assert loan_now(suite, loan["id"])["dpd"] == 19 - 10
    listed = suite.direct["monitoring"].get(path, headers=officer(suite)).json()["items"]
    assert [(p["start"], p["end"], p["reason"]) for p in listed] == [("2034-02-12", "2034-02-21", "dispute")]


def test_a_restructured_loan_stays_special_mention_for_a_year_then_may_cure(suite, borrowers):
    set_today(suite, date(2035, 1, 10))
    loan = register(suite, borrowers, disbursement_date="2035-01-10", first_due_date="2036-03-01")
    path = f"/loans/{loan['id']}/restructuring"
    restructured = suite.direct["monitoring"].post(path, json={"reason": "term extended"}, headers=officer(suite))
    assert restructured.status_code == 201, restructured.text
    assert decide(suite, restructured.json()["id"]).status_code == 200
    assert state(loan_now(suite, loan["id"])) == (0, "M0", "special_mention", 2)
    assert_problem(suite.direct["monitoring"].post(path, json={"reason": "again"}, headers=officer(suite)), 409)
    cob(suite, date(2036, 1, 9))
    assert loan_now(suite, loan["id"])["classification"] == "special_mention"
    cob(suite, date(2036, 1, 10))  # a year after the restructuring: judged on its days past due again
    assert loan_now(suite, loan["id"])["classification"] == "normal"
    causes = [(h["cause"], h["to_value"]) for h in suite.direct["monitoring"].get(
        f"/loans/{loan['id']}/history", headers=officer(suite)).json()["items"] if h["field"] == "loan_class"]
    assert causes == [("cob_ageing", "normal"), ("restructuring", "special_mention"), ("cob_ageing", "normal")]


def test_two_workers_closing_one_date_age_each_loan_once(suite, borrowers):
    set_today(suite, date(2037, 1, 10))
    loans = [register(suite, borrowers, disbursement_date="2037-01-10") for _ in range(4)]
    day = date(2037, 2, 11)
    set_today(suite, day - timedelta(days=1))
    asyncio.run(flows.run_cob(_ctx(suite, day), triggered_by="test", max_chunks=0))  # plan the chunks only

    def worker(_):
        return asyncio.run(flows.run_cob(_ctx(suite, day), triggered_by="test", steps=default_steps()))

    with ThreadPoolExecutor(max_workers=2) as pool:
        reports = list(pool.map(worker, range(2)))
    # One takes the lease and closes the date; the other answers the run the first is working on (or has closed).
    assert "completed" in {r.status for r in reports} <= {"completed", "running"}
    final = flows.report(suite.database("monitoring"), day, lease_seconds=60)
    assert final.status == "completed" and final.chunks_done == final.chunks_total
    for loan in loans:
        history = suite.direct["monitoring"].get(f"/loans/{loan['id']}/history", headers=officer(suite)).json()["items"]
        assert [h["to_value"] for h in history if h["field"] == "bucket"] == ["M0", "M1"]
        assert [a["rule"] for a in alerts_of(suite, loan["id"])] == ["missed_payment"]


def test_a_complaint_followed_by_silence_warns_once_a_check_period(suite, borrowers):
    set_today(suite, date(2040, 1, 10))
    silent, talking, content = (register(suite, borrowers, disbursement_date="2040-01-10") for _ in range(3))
    customer = suite.direct["customer"]
    for loan, days_ago in ((silent, 90), (talking, 2), (content, 90)):
        logged = customer.post(f"/customers/{loan['customer_id']}/interactions", headers={
            **admin(suite), "Idempotency-Key": uuid.uuid4().hex}, json={
            "channel": "phone", "direction": "outbound", "purpose": "post_loan_follow_up", "outcome": "reached",
            "occurred_at": (datetime.now(UTC) - timedelta(days=days_ago)).isoformat()})
        assert logged.status_code == 201, logged.text
    for loan in (silent, talking):
        complained = customer.post(f"/customers/{loan['customer_id']}/complaints", headers={
            **admin(suite), "Idempotency-Key": uuid.uuid4().hex}, json={
            "kind": "complaint", "channel": "phone", "category": "fees",
            "received_at": (datetime.now(UTC) - timedelta(days=80)).isoformat()})
        assert complained.status_code == 201, complained.text
    report = cob(suite, date(2040, 1, 11)).json()
    assert report["steps"]["contact_silence"]["status"] == "done", report["steps"]
    [alert] = [a for a in alerts_of(suite, silent["id"]) if a["rule"] == "complaint_silence"]
    assert alert["evidence"] == {"complaints_12m": 1, "days_since_last_contact": 90, "rule_version": 1}
    for quiet in (talking, content):
        assert [a for a in alerts_of(suite, quiet["id"]) if a["rule"] == "complaint_silence"] == []
    cob(suite, date(2040, 1, 12))  # checked yesterday: not read again until the period is over
    assert len([a for a in alerts_of(suite, silent["id"]) if a["rule"] == "complaint_silence"]) == 1
    with peer_down(suite, "customer"):
        down = cob(suite, date(2040, 3, 1)).json()
    assert down["status"] == "completed" and down["steps"]["contact_silence"]["status"] == "skipped"


def test_cob_over_http_runs_in_the_background_and_shows_its_progress(suite, borrowers, monkeypatch):
    from services.monitoring.cob import views

    set_today(suite, date(2041, 1, 10))
    loans = [register(suite, borrowers, disbursement_date="2041-01-10") for _ in range(3)]
    release = threading.Event()

    async def hold(ctx):  # a step that waits for the test: the run stays "running" until released
        await asyncio.to_thread(release.wait, 60)
        return {"status": "done", "held": True}

    monkeypatch.setattr(views, "default_steps", lambda: {"hold": hold})
    day = date(2041, 2, 11)
    set_today(suite, day - timedelta(days=1))
    started = start_cob(suite, day)
    assert started.status_code == 202, started.text
    assert started.headers["location"] == "/cob/runs/2041-02-11"
    assert started.json()["business_date"] == "2041-02-11" and started.json()["status"] == "running"
    try:
        deadline = time.monotonic() + 60
        while True:  # ageing done, the held step not: the run shows its progress
            progress = suite.direct["monitoring"].get(started.headers["location"], headers=admin(suite)).json()
            if progress["chunks_done"] == progress["chunks_total"]:
                break
            assert time.monotonic() < deadline
            time.sleep(0.02)
        assert progress["status"] == "running" and progress["loans_total"] >= len(loans)
        assert progress["loans_processed"] == progress["loans_total"]
        again = start_cob(suite, day)  # a second start while it runs answers the running run
        assert again.status_code == 202 and again.json()["status"] == "running"
        assert again.json()["attempts"] == 1
    finally:
        release.set()
    finished = wait_for_cob(suite, started.headers["location"]).json()
    assert finished["status"] == "completed" and finished["steps"] == {"hold": {"status": "done", "held": True}}
    assert finished["attempts"] == 1 and finished["finished_at"] is not None
    for loan in loans:
        assert state(loan_now(suite, loan["id"])) == (1, "M1", "special_mention", 2)
    closed = start_cob(suite, day)  # a closed date answers its report at once
    assert closed.status_code == 200 and closed.json() == finished


def test_a_run_stopped_by_a_crash_is_resumed_by_the_next_start(suite, borrowers):
    set_today(suite, date(2042, 1, 10))
    loan = register(suite, borrowers, disbursement_date="2042-01-10")
    day = date(2042, 2, 11)
    set_today(suite, day - timedelta(days=1))
    with pytest.raises(RuntimeError):
        asyncio.run(flows.run_cob(_ctx(suite, day, before_commit=_crash), triggered_by="test"))
    resumed = start_cob(suite, day)
    assert resumed.status_code == 202 and resumed.json()["attempts"] == 2
    finished = wait_for_cob(suite, resumed.headers["location"]).json()
    assert finished["status"] == "completed" and finished["chunks_done"] == finished["chunks_total"]
    assert state(loan_now(suite, loan["id"])) == (1, "M1", "special_mention", 2)


def _business_date(suite):
    return suite.direct["monitoring"].get("/business-date", headers=admin(suite)).json()["business_date"]


def test_the_business_date_moves_one_day_at_a_time_or_through_a_catch_up_range(suite, borrowers):
    set_today(suite, date(2043, 1, 10))
    loan = register(suite, borrowers, disbursement_date="2042-12-10")  # first due 2043-01-10: 1 day late on the 11th
    # A typo that skips days, goes back, or leaps into the far future is refused and moves nothing.
    assert_problem(start_cob(suite, date(2043, 1, 20)), 422, "body.business_date")
    assert_problem(start_cob(suite, date(2043, 1, 10)), 422, "body.business_date")
    assert_problem(start_cob(suite, date(9999, 12, 31)), 422, "body.business_date")
    far = suite.direct["monitoring"].post("/cob/runs", headers=admin(suite),
                                          json={"business_date": "2043-01-11", "through": "9999-12-31"})
    assert_problem(far, 422, "body.through")
    assert _business_date(suite) == "2043-01-10"
    # A catch-up range through the gateway: each day closed in order; Location follows the range's last day there.
    started = suite.client.post("/api/monitoring/cob/runs", headers=admin(suite),
                                json={"business_date": "2043-01-11", "through": "2043-01-14"})
    assert started.status_code == 202, started.text
    assert started.headers["location"] == "/api/monitoring/cob/runs/2043-01-14"
    deadline = time.monotonic() + 120
    while (last := suite.client.get(started.headers["location"], headers=admin(suite))).json()["status"] != "completed":
        assert last.status_code == 200 and last.json()["status"] in {"queued", "running"}, last.text
        assert time.monotonic() < deadline
        time.sleep(0.02)
    for offset in range(11, 15):
        got = suite.direct["monitoring"].get(f"/cob/runs/2043-01-{offset}", headers=admin(suite)).json()
        assert got["status"] == "completed" and got["through"] == "2043-01-14"
    assert _business_date(suite) == "2043-01-14"
    assert loan_now(suite, loan["id"])["dpd"] == 4
    history = suite.direct["monitoring"].get(f"/loans/{loan['id']}/history", headers=admin(suite)).json()["items"]
    assert [(h["to_value"], h["effective_date"]) for h in history if h["field"] == "bucket"] == [
        ("M0", "2043-01-10"), ("M1", "2043-01-11")]
    assert cob(suite, date(2043, 1, 15)).json()["status"] == "completed"


def _settings(suite, **changes):
    state = suite.services["monitoring"].state
    state.monitoring_settings = state.monitoring_settings.model_copy(update=changes)


def test_a_dead_run_shows_stalled_blocks_later_dates_and_resumes_on_request(suite, borrowers):
    set_today(suite, date(2044, 1, 10))
    loan = register(suite, borrowers, disbursement_date="2044-01-10")
    day = date(2044, 2, 11)
    set_today(suite, day - timedelta(days=1))
    # A worker takes the run and dies without a word: its lease stays until it lapses.
    dead = asyncio.run(flows.start_run(_ctx(suite, day), "test", owner="dead-worker"))
    assert dead.lease_owner == "dead-worker"
    location = f"/cob/runs/{day.isoformat()}"
    assert suite.direct["monitoring"].get(location, headers=admin(suite)).json()["status"] == "running"
    later = assert_problem(start_cob(suite, day + timedelta(days=1)), 422, "body.business_date")
    assert "2044-02-11 is unfinished" in later["detail"]
    live = start_cob(suite, day)  # the lease is live: answered, not worked on twice
    assert live.status_code == 202 and live.json()["attempts"] == 1
    original = suite.services["monitoring"].state.monitoring_settings
    try:
        _settings(suite, cob_lease_seconds=0.05)
        time.sleep(0.1)
        assert suite.direct["monitoring"].get(location, headers=admin(suite)).json()["status"] == "stalled"
        resumed = start_cob(suite, day)
        assert resumed.status_code == 202 and resumed.json()["attempts"] == 2
        finished = wait_for_cob(suite, resumed.headers["location"]).json()
    finally:
        suite.services["monitoring"].state.monitoring_settings = original
    assert finished["status"] == "completed" and finished["heartbeat_at"] is not None
    assert state(loan_now(suite, loan["id"])) == (1, "M1", "special_mention", 2)
    assert _business_date(suite) == "2044-02-11"
    assert_problem(start_cob(suite, date(2044, 2, 10)), 422, "body.business_date")  # never back


def test_a_lease_is_renewed_while_the_run_works(suite, borrowers, monkeypatch):
    from services.monitoring.cob import views

    set_today(suite, date(2045, 1, 10))
    register(suite, borrowers, disbursement_date="2045-01-10")
    release = threading.Event()

    async def hold(ctx):  # a long step: without the heartbeat the run would look dead while it works
        await asyncio.to_thread(release.wait, 60)
        return {"status": "done"}

    monkeypatch.setattr(views, "default_steps", lambda: {"hold": hold})
    original = suite.services["monitoring"].state.monitoring_settings
    _settings(suite, cob_lease_seconds=0.5, cob_heartbeat_seconds=0.05)
    try:
        started = start_cob(suite, date(2045, 1, 11))
        assert started.status_code == 202, started.text
        time.sleep(1.0)
        got = suite.direct["monitoring"].get(started.headers["location"], headers=admin(suite)).json()
        assert got["status"] == "running" and got["attempts"] == 1
    finally:
        release.set()
        suite.services["monitoring"].state.monitoring_settings = original
    assert wait_for_cob(suite, started.headers["location"]).json()["status"] == "completed"


def _power_cut(number):
    raise RuntimeError(f"power cut in chunk {number}")


def test_a_run_left_behind_by_a_later_business_date_can_never_finish(suite, borrowers):
    set_today(suite, date(2046, 1, 10))
    loan = register(suite, borrowers, disbursement_date="2046-01-10")
    day = date(2046, 2, 11)
    set_today(suite, day - timedelta(days=1))
    with pytest.raises(RuntimeError):
        asyncio.run(flows.run_cob(_ctx(suite, day, chunk_size=100_000, before_commit=_power_cut),
                                  triggered_by="test"))
    set_today(suite, date(2046, 2, 12))  # as a run left from before these rules, or an operator's edit, would
    assert_problem(start_cob(suite, day), 422, "body.business_date")
    assert _business_date(suite) == "2046-02-12"
    assert loan_now(suite, loan["id"])["dpd"] == 0  # its unfinished ageing did not move the loan back either
    assert cob(suite, date(2046, 2, 13)).json()["status"] == "completed"  # and it blocks no later day


def test_a_catch_up_range_stopped_on_a_day_resumes_from_that_day_through_its_end(suite, borrowers):
    set_today(suite, date(2047, 1, 10))
    loan = register(suite, borrowers, disbursement_date="2046-12-10")
    calls = []

    def dies_on_the_second_day(number):
        calls.append(number)
        if len(calls) == 2:
            raise RuntimeError("power cut on the second day")

    first = date(2047, 1, 11)
    with pytest.raises(RuntimeError):
        asyncio.run(flows.run_cob(_ctx(suite, first, chunk_size=100_000, before_commit=dies_on_the_second_day),
                                  triggered_by="test", through=date(2047, 1, 13)))
    runs = {d: suite.direct["monitoring"].get(f"/cob/runs/2047-01-{d}", headers=admin(suite)).json()["status"]
            for d in (11, 12, 13)}
    assert runs == {11: "completed", 12: "stalled", 13: "stalled"}
    assert_problem(start_cob(suite, date(2047, 1, 13)), 422, "body.business_date")
    resumed = start_cob(suite, date(2047, 1, 12))
    assert resumed.status_code == 202 and resumed.headers["location"] == "/cob/runs/2047-01-13"
    assert wait_for_cob(suite, resumed.headers["location"]).json()["through"] == "2047-01-13"
    assert _business_date(suite) == "2047-01-13" and loan_now(suite, loan["id"])["dpd"] == 3


def test_a_far_future_run_left_from_before_the_rules_blocks_nothing_and_never_resumes(suite, borrowers):
    from services.monitoring.cob.models import CobRun

    set_today(suite, date(2048, 1, 10))
    with suite.database("monitoring").session() as session:  # as an admin's typo once left it, crashed
        session.add(CobRun(business_date=date(9999, 12, 31), chunk_size=1, triggered_by="admin"))
        session.commit()
    try:
        assert_problem(start_cob(suite, date(9999, 12, 31)), 422, "body.business_date")
        assert cob(suite, date(2048, 1, 11)).json()["status"] == "completed"
        assert _business_date(suite) == "2048-01-11"
    finally:
        with suite.database("monitoring").session() as session:
            session.delete(session.get(CobRun, date(9999, 12, 31)))
            session.commit()


def test_a_posting_to_a_loan_whose_cob_is_behind_first_ages_it_to_the_business_date(suite, borrowers):
    """Inline COB: a repayment to a loan last aged three days ago first ages it to today (crossing 30 days past
    due: M2 and its alert, as that day's COB would have), then posts."""
    set_today(suite, date(2049, 1, 10))
    loan = register(suite, borrowers, disbursement_date="2049-01-10")  # first due 2049-02-10
    cob(suite, date(2049, 3, 10))
    assert state(loan_now(suite, loan["id"]))[:2] == (28, "M1")
    set_today(suite, date(2049, 3, 13))  # the business date moved on without this loan's COB: 31 days now
    owed = sum(Decimal(row["total"]) for row in loan["schedule"][:2])  # both instalments due by now
    paid = suite.direct["monitoring"].post(f"/loans/{loan['id']}/repayments", json={"amount": str(owed)},
                                           headers={**officer(suite), "Idempotency-Key": uuid.uuid4().hex})
    assert paid.status_code == 201, paid.text
    history = suite.direct["monitoring"].get(f"/loans/{loan['id']}/history", headers=officer(suite)).json()["items"]
    buckets = [(h["to_value"], h["effective_date"], h["cause"]) for h in history if h["field"] == "bucket"]
    assert buckets == [("M0", "2049-01-10", "cob_ageing"), ("M1", "2049-03-10", "cob_ageing"),
                       ("M2", "2049-03-13", "cob_ageing"), ("M0", "2049-03-13", "repayment")]
    assert "dpd_over_30" in {a["rule"] for a in alerts_of(suite, loan["id"])}
    assert state(loan_now(suite, loan["id"])) == (0, "M0", "normal", 1)
