"""`loancrm demo generate`: a bulk-loaded portfolio the services read and close like their own (issue #20)."""

import json
import time
from datetime import UTC, date, datetime, timedelta

import pytest

from loancrm.demo import national_id
from loancrm.generate import STATE_FILE, TRUTH_FILE, Generation, default_workers, generate
from loancrm.portfolio import Plan
from shared.settings import KernelSettings
from tests.scoring.api.conftest import install, trained  # noqa: F401 - a fixture, used below

CUSTOMERS, CHUNK = 480, 160
AS_OF = datetime.now(UTC).date() - timedelta(days=1)


@pytest.fixture(scope="module")
def generated(suite, trained, tmp_path_factory):  # noqa: ANN001, ANN201, F811
    install(suite, trained)
    out = tmp_path_factory.mktemp("generated")
    first = generate(CUSTOMERS, 11, as_of=AS_OF, out=out, chunk_size=CHUNK, kernel=suite.kernel, progress=False,
                     stop_after=1)
    # A stop after the chunk's rows were committed but before it was noted as done: the resumed run must find
    # them on file and write that chunk's rows nowhere a second time.
    state = json.loads((out / STATE_FILE).read_text())
    (out / STATE_FILE).write_text(json.dumps({**state, "done": 0, "offsets": [0, 0]}))
    rest = generate(CUSTOMERS, 11, as_of=AS_OF, out=out, chunk_size=CHUNK, kernel=suite.kernel, progress=False,
                    workers=2)
    return suite, out, first, rest


def _truth(out):  # noqa: ANN001, ANN202
    return [json.loads(line) for line in (out / TRUTH_FILE).read_text().splitlines()]


def _builder(suite, seed):  # noqa: ANN001, ANN202
    job = Generation(suite.kernel, Plan(seed=seed, customers=CUSTOMERS, chunk_size=CHUNK, as_of=AS_OF),
                     suite.kernel.var_dir / f"unused-{seed}")
    return job


def test_an_interrupted_generation_continues_without_duplicates(generated):
    suite, out, first, rest = generated
    assert first.chunks_written == 1 and rest.chunks_written == CUSTOMERS // CHUNK
    assert rest.rows["customers"] == CUSTOMERS - CHUNK  # the first chunk was on file already
    admin = suite.headers("gen.admin", ["admin"])
    seen, cursor = set(), None
    while True:
        page = suite.client.get("/api/customer/customers", headers=admin,
                                params={"limit": 100, **({"cursor": cursor} if cursor else {})}).json()
        seen.update(c["external_id"] for c in page["items"] if (c["external_id"] or "").startswith("gen-11-"))
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == {f"gen-11-{g}" for g in range(CUSTOMERS)}
    # The ground truth holds each chunk once, exactly as an uninterrupted build of the plan gives it.
    job = _builder(suite, 11)
    try:
        expected = [line for chunk in range(CUSTOMERS // CHUNK) for line in job.producer.builder.build(chunk).truth]
    finally:
        job.close()
    assert _truth(out) == json.loads(json.dumps(expected, sort_keys=True))


def _comparable(rows):  # noqa: ANN001, ANN202
    # Ciphertexts carry a fresh nonce each time they are sealed: everything else is the seed's.
    return {table: [{k: v for k, v in row.items() if not k.endswith("_enc")} for row in items]
            for table, items in rows.items()}


def test_the_same_seed_builds_the_same_portfolio_and_another_seed_another(generated):
    suite = generated[0]
    one, again, other = _builder(suite, 3), _builder(suite, 3), _builder(suite, 4)
    try:
        a, b, c = one.producer.builder.build(1), again.producer.builder.build(1), other.producer.builder.build(1)
    finally:
        for job in (one, again, other):
            job.close()
    for service in ("customer", "scoring", "monitoring"):
        assert _comparable(getattr(a, service)) == _comparable(getattr(b, service))
        assert _comparable(getattr(a, service)) != _comparable(getattr(c, service))
    assert a.truth == b.truth and a.truth != c.truth


def test_the_alerts_on_the_way_are_those_every_rule_asked_every_day_raises(generated, monkeypatch):
    """The feed rules that read only the rows are not asked again on a day a loan's rows and payers are as the
    day before: the alerts (their days and evidence too) are the ones every rule asked every day raises."""
    import loancrm.hindsight

    job = _builder(generated[0], 11)
    try:
        quick = [job.producer.builder.build(chunk).monitoring for chunk in range(2)]
        monkeypatch.setattr(loancrm.hindsight, "ROWS_ONLY_FEED_KINDS", ())
        every = [job.producer.builder.build(chunk).monitoring for chunk in range(2)]
    finally:
        job.close()
    for mine, theirs in zip(quick, every, strict=True):
        assert mine["alerts"] == theirs["alerts"] and mine["alert_events"] == theirs["alert_events"]
    assert {"card_cash_out", "shared_payer"} <= {alert["rule"] for rows in quick for alert in rows["alerts"]}


def test_each_chunk_is_in_every_audit_trail_once_and_the_chains_verify(generated):
    from sqlalchemy import select

    from services.customer.db import audit as customer_audit
    from services.monitoring.db import audit as monitoring_audit
    from services.scoring.db import audit as scoring_audit
    from shared.audit import digest_rows

    suite = generated[0]
    for service, trail in (("customer", customer_audit), ("scoring", scoring_audit),
                           ("monitoring", monitoring_audit)):
        with suite.database(service).engine.connect() as connection:
            assert trail.verify(connection).broken is None, service
    with suite.database("monitoring").engine.connect() as connection:
        table = monitoring_audit.table
        entries = connection.execute(select(table).where(table.c.actor == "demo-generator",
                                                         table.c.entity == "loans")).all()
    job = _builder(suite, 11)
    try:
        loans = [job.producer.builder.build(chunk).monitoring["loans"] for chunk in range(CUSTOMERS // CHUNK)]
    finally:
        job.close()
    # One entry a chunk (the resumed run wrote none twice), its digest that of the chunk's rows.
    assert sorted(entry.digest_after for entry in entries) == sorted(digest_rows(rows) for rows in loans)
    assert sorted(json.loads(entry.detail)["rows"] for entry in entries) == sorted(len(rows) for rows in loans)


def test_every_role_reads_the_generated_portfolio(generated):
    suite, out, *_ = generated
    outcome = next(line for line in _truth(out) if line["kind"] == "loan_outcome" and line["dpd"] > 0)
    analyst = suite.headers("gen.analyst", ["risk_analyst"])
    loan = suite.client.get(f"/api/monitoring/loans/{outcome['loan_id']}", headers=analyst)
    assert loan.status_code == 200, loan.text
    loan = loan.json()
    assert loan["dpd"] == outcome["dpd"] and loan["status"] == "active"
    assert outcome["first_missed_due"] in [row["due_date"] for row in loan["schedule"]]
    officer = suite.headers("gen.officer", ["loan_officer"], loan["branch"])
    masked = suite.client.get(f"/api/customer/customers/{loan['customer_id']}", headers=analyst).json()
    full = suite.client.get(f"/api/customer/customers/{loan['customer_id']}", headers=officer).json()
    assert masked["pii_view"] == "masked" and masked["national_id"].startswith("****")
    assert full["pii_view"] == "full" and len(full["national_id"]) == 18 and full["phone"].startswith("15")
    assert masked["national_id"][-2:] == full["national_id"][-2:]
    scores = suite.client.get("/api/scoring/scores", headers=analyst, params={"customer_id": loan["customer_id"]})
    assert scores.status_code == 200, scores.text
    assert scores.json()["items"][0]["grade"] == outcome["grade"]
    applications = suite.client.get("/api/scoring/applications", headers=officer, params={"limit": 50})
    assert applications.status_code == 200 and applications.json()["items"]


def test_a_generated_customer_reads_like_a_registered_one(generated):
    suite, out, *_ = generated
    officer = suite.headers("demo.officer", ["loan_officer"], "BJ001")  # whose name generated BJ001 rows carry
    keyed = {**officer, "Idempotency-Key": "gen-alike"}
    registered = suite.client.post("/api/customer/customers", headers=keyed, json={
        "kind": "individual", "name": "Gao Lin", "date_of_birth": "1988-04-02",
        "national_id": national_id(date(1988, 4, 2), 11, "110101"),
        "phone": "13900007777", "email": "gao.lin@example.com", "address": "3-201 Jade Garden 1, Beijing",
        "monthly_income": "12000.00", "occupation": "engineer", "education": "bachelor",
        "marital_status": "married", "household_size": 3, "region": "Beijing", "branch": "BJ001",
        "acquisition_channel": "app", "external_id": "api-1"})
    assert registered.status_code == 201, registered.text
    generated_one = suite.client.get("/api/customer/customers/by-external-id/gen-11-0", headers=officer)
    assert generated_one.status_code == 200, generated_one.text
    mine, theirs = registered.json(), generated_one.json()
    assert mine.keys() == theirs.keys()
    for name in mine:
        assert type(mine[name]) is type(theirs[name]) or None in (mine[name], theirs[name]), name
    assert theirs["status"] == mine["status"] and theirs["pii_view"] == mine["pii_view"] == "full"


def test_close_of_business_runs_on_the_generated_book(generated):
    suite = generated[0]
    admin = suite.headers("gen.admin", ["admin"])
    day = (AS_OF + timedelta(days=1)).isoformat()
    run = suite.client.post("/api/monitoring/cob/runs", headers={**admin, "Idempotency-Key": f"gen-cob-{day}"},
                            json={"business_date": day})
    assert run.status_code in (200, 202), run.text
    deadline = time.monotonic() + 300
    while run.json()["status"] not in ("completed", "failed") and time.monotonic() < deadline:
        time.sleep(0.5)
        run = suite.client.get(f"/api/monitoring/cob/runs/{day}", headers=admin)
    assert run.json()["status"] == "completed", run.text


def test_the_planted_patterns_are_in_the_feed_the_ground_truth_names(generated):
    from sqlalchemy import text

    suite, out, *_ = generated
    truth = _truth(out)
    kinds = {line["kind"] for line in truth}
    assert {"shared_payer", "shared_identifier", "card_cash_out", "illegal_fundraising", "loan_outcome",
            "early_signs"} <= kinds
    payer = next(line for line in truth if line["kind"] == "shared_payer")
    with suite.database("monitoring").engine.connect() as connection:
        repaid = set(connection.execute(text(
            "SELECT DISTINCT customer_id FROM account_transactions WHERE payer_account_hash = :payer AND "
            "kind = 'repayment' AND housing_estate = :estate"),
            {"payer": payer["payer_account_hash"], "estate": payer["housing_estate"]})
            .scalars())
        fundraiser = next(line for line in truth if line["kind"] == "illegal_fundraising")
        inflows = connection.execute(text(
            "SELECT COUNT(DISTINCT counterparty_hash) FROM account_transactions WHERE customer_id = :customer AND "
            "direction = 'credit' AND kind = 'transfer'"), {"customer": fundraiser["customer_id"]}).scalar()
    assert repaid == set(payer["customers"]) and len(repaid) >= 3
    assert inflows == fundraiser["inflows"]
    bureau = [json.loads(line) for line in (out / "credit_bureau.jsonl").read_text().splitlines()]
    signs = {line["customer_id"] for line in truth if line["kind"] == "early_signs"}
    assert signs and signs == {line["customer_id"] for line in bureau}


def _review(suite, out, since, until):  # noqa: ANN001, ANN202
    from services.monitoring.rules.flows import run_review_cli

    return {r.code: r for r in run_review_cli(suite.kernel, since, until, truth=out / TRUTH_FILE)}


def test_the_shipped_rules_are_reviewed_on_the_planted_truth_with_the_lead_times_it_implies(generated):
    """The alerts the rules raised on the way, reviewed against the planted defaults and patterns: the figures are
    what the truth file and the loans' dates alone give (a default is the 91st day past the first missed due)."""
    from statistics import median

    from sqlalchemy import text

    suite, out, *_ = generated
    truth = _truth(out)
    since, until = AS_OF - timedelta(days=800), AS_OF
    defaults = {line["loan_id"]: date.fromisoformat(line["defaulted_on"]) for line in truth
                if line["kind"] == "loan_outcome" and line["defaulted_on"]}
    missed = {line["loan_id"]: date.fromisoformat(line["first_missed_due"]) for line in truth
              if line["kind"] == "loan_outcome"}
    assert defaults and all(day - missed[loan] == timedelta(days=91) for loan, day in defaults.items())
    reviews = _review(suite, out, since, until)

    with suite.database("monitoring").engine.connect() as connection:
        disbursed = {loan: date.fromisoformat(str(day)) for loan, day in connection.execute(text(
            "SELECT id, disbursement_date FROM loans"))}
        late = [(loan, date.fromisoformat(str(due))) for loan, due in connection.execute(text(
            "SELECT i.loan_id, i.due_date FROM instalments i JOIN postings p ON p.loan_id = i.loan_id "
            "AND p.external_id LIKE '%-' || CAST(i.number AS VARCHAR(8)) AND p.value_date > i.due_date"))]
    # A missed payment warns from the first day any instalment was overdue: a late one paid before, or the missed.
    first_overdue = dict(missed)
    for loan, due in late:
        first_overdue[loan] = min(due, first_overdue.get(loan, due))
    expected = {"missed_payment": sorted((day - first_overdue[loan]).days - 1 for loan, day in defaults.items()),
                "dpd_over_30": [60] * len(defaults), "dpd_over_90": [0] * len(defaults)}
    for code, leads in expected.items():
        review = reviews[code]
        assert review.defaults_from == "truth" and review.defaulted_loans == len(defaults), code
        assert review.warned_defaults == len(defaults) and review.default_recall == 1.0, code
        assert (review.lead_time.min_days, review.lead_time.median_days, review.lead_time.max_days) == (
            leads[0], median(leads), leads[-1]), code
    assert reviews["dpd_over_90"].default_precision == 1.0

    # The bureau's record: warned when reported while the loan was open, as many days before the default.
    reported = {line["loan_id"]: date.fromisoformat(sign["from"]) for line in truth if line["kind"] == "early_signs"
                for sign in line["signs"] if sign["sign"] == "overdue_elsewhere"}
    leads = sorted((day - reported[loan]).days for loan, day in defaults.items()
                   if disbursed[loan] <= reported[loan])
    bureau = reviews["bureau_overdue"]
    assert bureau.warned_defaults == len(leads) and all(121 <= lead <= 210 for lead in leads)
    assert bureau.lead_time.median_days == (median(leads) if leads else None)
    alerted = {loan for loan, day in reported.items() if disbursed[loan] <= day <= until}
    assert bureau.alerted_loans == len(alerted)
    assert bureau.alerted_then_defaulted == len(alerted & set(defaults))

    # Planted patterns, against the rule kind meant to find them.
    payer_loans = {loan for line in truth if line["kind"] == "shared_payer" for loan in line["loans"]}
    shared = reviews["shared_payer"]
    assert shared.planted_loans == len(payer_loans) and shared.planted_precision == 1.0
    assert shared.planted_found >= 0.75 * len(payer_loans)
    cash_out = {line["loan_id"] for line in truth if line["kind"] == "card_cash_out"}
    assert reviews["card_cash_out"].planted_loans == len(cash_out)
    assert reviews["card_cash_out"].planted_found == len(cash_out) and reviews["card_cash_out"].planted_precision == 1.0
    assert reviews["score_drop"].planted_loans is None


def test_the_collectors_queue_holds_only_what_is_still_to_work(generated):
    """Alerts of the past on a loan back in order were worked by their due date; the rest are open, and the first
    close of business raises none of them a second time."""
    from sqlalchemy import text

    from services.monitoring.alerts.models import TRANSITIONS, AlertStatus

    suite = generated[0]
    with suite.database("monitoring").engine.connect() as connection:
        rows = connection.execute(text(
            "SELECT a.id, a.status, a.created_on, a.closed_on, a.due_at, l.dpd, l.status AS loan_status "
            "FROM alerts a JOIN loans l ON l.id = a.loan_id")).mappings().all()
        events: dict[str, list[tuple[str, str]]] = {}
        for alert_id, before, after in connection.execute(text(
                "SELECT alert_id, from_status, to_status FROM alert_events ORDER BY at")):
            events.setdefault(alert_id, []).append((before, after))
        twice = connection.execute(text(
            "SELECT COUNT(*) FROM alerts GROUP BY loan_id, rule, trigger_key HAVING COUNT(*) > 1")).all()
    assert rows and not twice
    for row in rows:
        created = date.fromisoformat(str(row["created_on"]))
        recent = created >= AS_OF - timedelta(days=30)
        if row["loan_status"] == "active" and (row["dpd"] > 0 or recent):
            assert row["status"] == "open" and row["id"] not in events, dict(row)
        else:
            assert row["status"] == "resolved" and str(row["closed_on"]) == str(row["due_at"]), dict(row)
            # Worked forward as people work an alert: each step one the lifecycle allows, from open to resolved.
            path = events[row["id"]]
            assert path[0][0] == "open" and path[-1][1] == "resolved", path
            assert all(AlertStatus(after) in TRANSITIONS[AlertStatus(before)] for before, after in path), path
            assert all(step[1] == following[0] for step, following in zip(path, path[1:])), path


def test_the_screening_checks_are_reviewed_on_the_planted_truth(generated):
    """Every customer screened as an applicant is, against the planted rings: identifiers a ring shares (a device
    or payout account with one other, an address with two others: a family shares one), payers repaying three or
    more borrowers; no customer outside a planted pattern is stopped."""
    from sqlalchemy import text

    from loancrm.screening_review import run

    suite, out, *_ = generated
    truth = _truth(out)
    reviews = {r.check.value: r for r in run(suite.kernel, out / TRUTH_FILE, AS_OF, progress=False)}
    assert all(r.screened >= CUSTOMERS for r in reviews.values())  # the book, and who registered since
    shared = reviews["shared_identifiers"]
    groups = [line for line in truth if line["kind"] == "shared_identifier"]
    expected = {what: sum(len(g["customers"]) for g in groups if g["identifier"] == what) for what in
                ("device", "account")}
    expected["address"] = sum(len(g["customers"]) for g in groups if g["identifier"] == "address"
                              and len(g["customers"]) >= 3)
    assert {what: found.found for what, found in shared.by_variant.items()} == expected
    with suite.database("monitoring").engine.connect() as connection:
        repaid = set(connection.execute(text(
            "SELECT DISTINCT customer_id FROM account_transactions WHERE kind = 'repayment'")).scalars())
    ring = {c for line in truth if line["kind"] == "shared_payer" for c in line["customers"]}
    assert reviews["shared_payer"].planted_found == len(ring & repaid)
    # Screening reads the feed's last 90 days: a scheme wholly inside them is found, whenever in them it ran.
    since = AS_OF - timedelta(days=90)
    inside = [line for line in truth if line["kind"] == "illegal_fundraising"
              and date.fromisoformat(line["from_day"]) >= since]
    assert reviews["illegal_fundraising"].planted_found >= len(inside)
    assert reviews["card_cash_out"].planted_found >= 1
    for review in reviews.values():
        assert review.precision in (1.0, None), review


def test_the_generator_runs_a_worker_more_than_cores_only_where_every_database_is_postgresql(tmp_path):
    """On PostgreSQL a worker waits on the server's writes (1M customers: 20.4 min with two workers on two cores,
    19.6 with three); on SQLite the workers take turns at one writer, so one more would only wait."""
    postgres = {f"{name}_database_url": f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
                for name in ("customer", "scoring", "monitoring")}
    assert default_workers(KernelSettings(var_dir=tmp_path, **postgres), cores=2) == 3
    assert default_workers(KernelSettings(var_dir=tmp_path), cores=2) == 2
    mixed = {**postgres, "scoring_database_url": f"sqlite:///{tmp_path}/scoring.db"}
    assert default_workers(KernelSettings(var_dir=tmp_path, **mixed), cores=4) == 4
