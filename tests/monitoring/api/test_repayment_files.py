"""Bulk repayment files: one file posted as a job ends where posting its rows one by one ends, posts nothing twice,
reports its bad rows, and resumes after a crash."""

import json
import uuid
from datetime import date
from decimal import Decimal

import pytest

from services.monitoring.repayment_files import service as files_service
from tests.monitoring.api.helpers import admin, alerts_of, assert_problem, cob, officer, register, role, set_today

TODAY = date(2026, 4, 20)
SOURCE = "dd-bank"


@pytest.fixture
def twins(suite, borrowers):
    """Two portfolios alike loan for loan (same borrower, terms and dates), both overdue since February."""
    set_today(suite, TODAY)
    pairs = []
    for n in range(4):
        customer = borrowers.new_customer()
        pairs.append(tuple(register(suite, borrowers, customer_id=customer, principal=f"{12000 + 1000 * n}.00",
                                    external_id=f"CORE-{twin}-{uuid.uuid4().hex[:8]}-{n}")
                           for twin in ("bulk", "single")))
    return pairs


def file_rows(pairs):
    """(reference, bulk loan, single loan, amount, value date, by external id?) and the rows that must fail."""
    (a, a2), (b, b2), (c, c2), (d, d2) = pairs
    first = a["schedule"][0]["total"]
    good = [("R-1", a, a2, str(sum(Decimal(r["total"]) for r in a["schedule"][:2])), "", True),
            ("R-2", b, b2, "50.00", "", False),
            ("R-3", b, b2, "60.00", "", False),  # a second partial payment in a row: an alert
            ("R-4", c, c2, first, "2026-03-01", False),  # backdated: history is replayed
            ("R-5", d, d2, "100.00", "", True),
            ("R-6", d, d2, "25.50", TODAY.isoformat(), False)]
    run = uuid.uuid4().hex[:8]  # references are unique per source for good: each test's file has its own
    return [(f"{ref}-{run}", x, y, str(Decimal(amount).quantize(Decimal("0.01"))), vd, by_external)
            for ref, x, y, amount, vd, by_external in good]


def csv_of(rows, bad=True):
    lines = ["reference,loan_id,loan_external_id,amount,value_date,payer_account"]
    for ref, loan, _twin, amount, value_date, by_external in rows:
        ident = f",{loan['external_id']}" if by_external else f"{loan['id']},"
        lines.append(f"{ref},{ident},{amount},{value_date},DE89370400440532013000")
    if bad:
        lines += ["R-7,nosuchloan,,10.00,,",  # line 8: unknown loan
                  f"R-8,{rows[0][1]['id']},,12.345,,",  # line 9: three decimals
                  f"R-9,{rows[0][1]['id']},,10.00,2026-04-21,",  # line 10: after the business date
                  f"{rows[0][0]},{rows[1][1]['id']},,10.00,,"]  # line 11: a reference of this source used already
    return "\n".join(lines).encode()


def upload(suite, content, headers=None, key=None):
    return suite.direct["monitoring"].post(
        "/repayment-files", params={"source": SOURCE}, files={"file": ("2026-04-20.csv", content, "text/csv")},
        headers={**(headers or admin(suite)), "Idempotency-Key": key or uuid.uuid4().hex})


def post_one_by_one(suite, rows):
    for ref, _loan, twin, amount, value_date, _ in rows:
        body = {"amount": amount, "external_id": f"{SOURCE}:{ref}", **({"value_date": value_date} if value_date
                                                                          else {})}
        response = suite.direct["monitoring"].post(f"/loans/{twin['id']}/repayments", json=body, headers={
            **admin(suite), "Idempotency-Key": uuid.uuid4().hex})
        assert response.status_code == 201, response.text


def end_state(suite, loan_id):
    """What a banker sees of the loan, with the ids of its own postings named by their external ids."""
    direct, headers = suite.direct["monitoring"], admin(suite)
    loan = direct.get(f"/loans/{loan_id}", headers=headers).json()
    postings = direct.get(f"/loans/{loan_id}/postings", headers=headers).json()["items"]
    history = [direct.get(f"/loans/{loan_id}/history", params={"view": view}, headers=headers).json()["items"]
               for view in ("effective", "recorded")]
    alerts = alerts_of(suite, loan_id)
    checked = direct.get(f"/loans/{loan_id}/balance-check", headers=role(suite, "auditor")).json()
    text = json.dumps({
        "loan": {k: v for k, v in loan.items() if k not in {"id", "external_id", "customer_id", "created_at"}},
        "postings": [{k: v for k, v in p.items() if k not in {"loan_id", "created_at"}} for p in postings],
        "history": [[{k: v for k, v in h.items() if k != "recorded_at"} for h in view] for view in history],
        "alerts": sorted(({k: v for k, v in a.items() if k not in {"id", "loan_id", "created_at", "updated_at"}}
                          for a in alerts), key=json.dumps),
        "balances": {k: v for k, v in checked.items() if k != "loan_id"}}, sort_keys=True)
    for p in postings:
        text = text.replace(p["id"], p["external_id"] or p["id"])
    return json.loads(text)


def wait_done(suite, file_id):
    # The test client runs the upload's background work before it answers: the job is done when it returns.
    got = suite.direct["monitoring"].get(f"/repayment-files/{file_id}", headers=admin(suite))
    assert got.status_code == 200, got.text
    return got.json()


def posted(suite, lines):
    """A file of `lines` posted as a job: the job once done and its rows' errors."""
    job = wait_done(suite, upload(suite, "\n".join(lines).encode()).json()["id"])
    errors = suite.direct["monitoring"].get(f"/repayment-files/{job['id']}/errors", headers=admin(suite)).json()
    return job, errors["items"]


def test_a_file_posted_as_a_job_ends_where_posting_its_rows_one_by_one_ends(suite, twins):
    rows = file_rows(twins)
    accepted = upload(suite, csv_of(rows))
    assert accepted.status_code == 202, accepted.text
    job = wait_done(suite, accepted.json()["id"])
    assert (job["status"], job["rows_total"], job["rows_done"]) == ("completed", 10, 10)
    assert (job["posted"], job["duplicates"], job["failed"]) == (6, 0, 4)
    post_one_by_one(suite, rows)
    for bulk, single in twins:
        assert end_state(suite, bulk["id"]) == end_state(suite, single["id"])
    # The file did move the loans: a partial payment raised an alert, a backdated one kept its value date, a loan
    # paid up is current again.
    assert alerts_of(suite, twins[1][0]["id"]), "partial payments raise alerts"
    assert [p["value_date"] for p in end_state(suite, twins[2][0]["id"])["postings"]] == ["2026-03-01"]
    assert end_state(suite, twins[0][0]["id"])["loan"]["dpd"] < end_state(suite, twins[3][0]["id"])["loan"]["dpd"]


def test_the_report_names_each_bad_row_its_column_and_why(suite, twins):
    job = upload(suite, csv_of(file_rows(twins))).json()
    page = suite.direct["monitoring"].get(f"/repayment-files/{job['id']}/errors", params={"limit": 2},
                                          headers=admin(suite))
    assert page.status_code == 200, page.text
    first = page.json()
    rest = suite.direct["monitoring"].get(f"/repayment-files/{job['id']}/errors",
                                          params={"limit": 2, "cursor": first["next_cursor"]},
                                          headers=admin(suite)).json()
    errors = {e["line"]: e["field"] for e in first["items"] + rest["items"]}
    assert errors == {8: "loan_id", 9: "amount", 10: "value_date", 11: "reference"}, errors
    assert [e["reference"] for e in first["items"]] == ["R-7", "R-8"]
    assert all(e["message"] for e in first["items"])


def test_a_row_the_csv_reader_cannot_read_is_that_rows_error_and_the_other_rows_post(suite, twins):
    """A row with a field past the CSV reader's size limit refused the whole file (422), the good rows with it.
    It is now that row's error, at the line it starts on (counting the lines a quoted field spans)."""
    rows = file_rows(twins)
    (ref1, loan1, _, amount1, _, _), (ref2, loan2, _, amount2, _, _) = rows[1], rows[4]
    content = "\n".join(["reference,loan_id,loan_external_id,amount,value_date,payer_account",
                         f"{ref1},{loan1['id']},,{amount1},,",
                         f"R-long-{ref1},{loan1['id']},,10.00,," + "9" * 200_000,  # line 3
                         f'"R-two\nlines-{ref1}",{loan1["id"]},,10.00,,',  # lines 4-5: a reference with a newline
                         f"{ref2},{loan2['id']},,{amount2},,"]).encode()  # line 6
    accepted = upload(suite, content)
    assert accepted.status_code == 202, accepted.text
    job = wait_done(suite, accepted.json()["id"])
    assert (job["status"], job["rows_total"], job["posted"], job["failed"]) == ("completed", 4, 2, 2), job
    errors = suite.direct["monitoring"].get(f"/repayment-files/{job['id']}/errors", headers=admin(suite)).json()
    by_line = {e["line"]: e for e in errors["items"]}
    assert sorted(by_line) == [3, 4], by_line
    assert "field larger than field limit" in by_line[3]["message"]
    assert by_line[4]["field"] == "reference"
    posted = suite.direct["monitoring"].get(f"/loans/{loan2['id']}/postings", headers=admin(suite)).json()["items"]
    assert [p["external_id"] for p in posted] == [f"{SOURCE}:{ref2}"]


def test_uploading_the_same_file_again_posts_nothing_new(suite, twins):
    content = csv_of(file_rows(twins), bad=False)
    first = wait_done(suite, upload(suite, content).json()["id"])
    before = [end_state(suite, bulk["id"]) for bulk, _ in twins]
    again = wait_done(suite, upload(suite, content).json()["id"])
    assert (first["posted"], again["posted"], again["duplicates"], again["failed"]) == (6, 0, 6, 0)
    assert [end_state(suite, bulk["id"]) for bulk, _ in twins] == before
    # A retry of the upload itself (same Idempotency-Key) answers the first job, and runs nothing.
    key = uuid.uuid4().hex
    assert upload(suite, content, key=key).json() == upload(suite, content, key=key).json()


def test_a_job_that_crashed_part_way_resumes_from_its_last_chunk(suite, twins, monkeypatch):
    rows = file_rows(twins)
    settings = suite.services["monitoring"].state.monitoring_settings
    monkeypatch.setattr(settings, "repayment_file_chunk_size", 2)
    real, calls = files_service.post_chunk, []

    def crash_on_the_third_chunk(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("the process died")
        return real(*args, **kwargs)

    monkeypatch.setattr(files_service, "post_chunk", crash_on_the_third_chunk)
    job = upload(suite, csv_of(rows)).json()
    stopped = wait_done(suite, job["id"])
    assert (stopped["status"], stopped["rows_done"]) == ("running", 4), stopped
    monkeypatch.setattr(files_service, "post_chunk", real)
    resumed = suite.direct["monitoring"].post(f"/repayment-files/{job['id']}/resume", headers=admin(suite))
    assert resumed.status_code == 202, resumed.text
    done = wait_done(suite, job["id"])
    assert (done["status"], done["rows_done"], done["posted"], done["failed"]) == ("completed", 10, 6, 4)
    post_one_by_one(suite, rows)
    for bulk, single in twins:
        assert end_state(suite, bulk["id"]) == end_state(suite, single["id"])


def test_a_bad_file_or_source_is_refused_whole_and_others_jobs_are_not_shown(suite, twins):
    assert_problem(upload(suite, b"amount,when\n1,2\n"), 422, "body.file")
    assert_problem(suite.direct["monitoring"].post(
        "/repayment-files", params={"source": "no spaces"}, files={"file": ("f.csv", b"reference,loan_id,amount\n")},
        headers={**admin(suite), "Idempotency-Key": uuid.uuid4().hex}), 422, "query.source")
    mine = upload(suite, csv_of(file_rows(twins), bad=False), headers=officer(suite)).json()
    other = officer(suite, "SH002")
    assert suite.direct["monitoring"].get(f"/repayment-files/{mine['id']}", headers=other).status_code == 404
    assert suite.direct["monitoring"].get(f"/repayment-files/{mine['id']}", headers=officer(suite)).status_code == 200


def test_a_file_first_ages_the_loans_whose_cob_is_behind_as_single_postings_do(suite, borrowers):
    """Inline COB in a file: loans last aged three days ago are aged to the business date first (crossing 30 days
    past due: M2 and its alert), the chunk's loans in one step, and end as posting to their twins one by one."""
    set_today(suite, date(2049, 1, 10))
    pairs = []
    for n in range(3):
        customer = borrowers.new_customer()
        pairs.append(tuple(register(suite, borrowers, customer_id=customer, disbursement_date="2049-01-10",
                                    external_id=f"LATE-{twin}-{uuid.uuid4().hex[:8]}-{n}")
                           for twin in ("bulk", "single")))
    cob(suite, date(2049, 3, 10))
    set_today(suite, date(2049, 3, 13))  # the business date moved on without these loans' COB: 31 days now
    run = uuid.uuid4().hex[:8]
    rows = [(f"LATE-{n}-{run}", bulk, single, bulk["schedule"][0]["total"], "", n % 2 == 0)
            for n, (bulk, single) in enumerate(pairs)]
    job = wait_done(suite, upload(suite, csv_of(rows, bad=False)).json()["id"])
    assert (job["posted"], job["failed"]) == (3, 0)
    post_one_by_one(suite, rows)
    for bulk, single in pairs:
        assert end_state(suite, bulk["id"]) == end_state(suite, single["id"])
        buckets = [(h["to_value"], h["effective_date"], h["cause"])
                   for h in end_state(suite, bulk["id"])["history"][0] if h["field"] == "bucket"]
        assert ("M2", "2049-03-13", "cob_ageing") in buckets
        assert "dpd_over_30" in {a["rule"] for a in alerts_of(suite, bulk["id"])}


def test_a_row_naming_another_branchs_loan_is_answered_as_an_unknown_external_id(suite, borrowers):
    """The pen test: a BJ001 officer's file naming an SZ004 loan's external id got `loan_id: No loan '<its internal
    id>'`, where an unknown external id gets `loan_external_id: no loan has this external id`. The lookup now sees
    only the uploader's branch: the two answers are the same, and nothing is posted to the foreign loan."""
    set_today(suite, TODAY)
    foreign = register(suite, borrowers, branch="SZ004", external_id=f"SZ-{uuid.uuid4().hex[:8]}")
    own = register(suite, borrowers, external_id=f"BJ-{uuid.uuid4().hex[:8]}")
    run = uuid.uuid4().hex[:8]
    content = "\n".join(["reference,loan_external_id,amount", f"F-{run},{foreign['external_id']},10.00",
                         f"U-{run},NO-SUCH-{run},10.00", f"O-{run},{own['external_id']},10.00"]).encode()
    job = wait_done(suite, upload(suite, content, headers=officer(suite)).json()["id"])
    assert (job["posted"], job["failed"]) == (1, 2), job
    errors = suite.direct["monitoring"].get(f"/repayment-files/{job['id']}/errors", headers=officer(suite))
    by_line = {e["line"]: e for e in errors.json()["items"]}
    assert sorted(by_line) == [2, 3], by_line
    answer = {k: v for k, v in by_line[2].items() if k not in {"line", "reference"}}
    assert answer == {k: v for k, v in by_line[3].items() if k not in {"line", "reference"}}
    assert answer["field"] == "loan_external_id" and answer["message"] == "no loan has this external id"
    assert foreign["id"] not in errors.text
    postings = suite.direct["monitoring"].get(f"/loans/{foreign['id']}/postings", headers=admin(suite)).json()
    assert postings["items"] == []


def test_a_row_beyond_what_settles_its_loan_is_that_rows_error_and_the_others_post(suite, twins):
    (a, _), (b, _) = twins[0], twins[1]
    tolerance = suite.services["monitoring"].state.monitoring_settings.overpayment_tolerance
    most = sum(Decimal(r["total"]) for r in a["schedule"]) + tolerance  # nothing paid, no penalty on the product
    run = uuid.uuid4().hex[:8]
    job, errors = posted(suite, ["reference,loan_id,amount", f"BIG-{run},{a['id']},{most + Decimal('0.01')}",
                                 f"HUGE-{run},{a['id']},50000000.00", f"OK-{run},{b['id']},50.00"])
    assert (job["posted"], job["failed"]) == (1, 2), job
    assert [(e["line"], e["field"]) for e in errors] == [(2, "amount"), (3, "amount")]
    assert str(most) in errors[0]["message"]
    direct = suite.direct["monitoring"]
    assert direct.get(f"/loans/{a['id']}/postings", headers=admin(suite)).json()["items"] == []
    assert [p["amount"] for p in direct.get(f"/loans/{b['id']}/postings", headers=admin(suite)).json()["items"]] == [
        "50.00"]


def test_a_rows_amount_is_read_as_the_api_reads_it(suite, borrowers):
    """The pen test: `1.230`, which `POST /loans/{id}/repayments` takes as 1.23, was a file row's error (three
    decimals written). A row's amount is now read by the API's money type: the same value posts, and `1.234` is
    refused in the API's words, naming the row's line and column."""
    set_today(suite, TODAY)
    loan = register(suite, borrowers)
    url, headers = f"/loans/{loan['id']}/repayments", {**admin(suite), "Idempotency-Key": uuid.uuid4().hex}
    by_api = suite.direct["monitoring"].post(url, json={"amount": "1.230"}, headers=headers)
    assert by_api.status_code == 201 and by_api.json()["amount"] == "1.23", by_api.text
    refused_by_api = assert_problem(suite.direct["monitoring"].post(url, json={"amount": "1.234"}, headers={
        **admin(suite), "Idempotency-Key": uuid.uuid4().hex}), 422, "body.amount")
    run = uuid.uuid4().hex[:8]
    job, errors = posted(suite, ["reference,loan_id,amount", f"Z-{run},{loan['id']},1.230",
                                 f"X-{run},{loan['id']},1.234"])
    assert (job["posted"], job["failed"]) == (1, 1), job
    assert [(e["line"], e["field"], e["reference"], e["message"]) for e in errors] == [
        (3, "amount", f"X-{run}", refused_by_api["errors"][0]["message"])]
    postings = suite.direct["monitoring"].get(f"/loans/{loan['id']}/postings", headers=admin(suite)).json()
    assert {p["external_id"]: p["amount"] for p in postings["items"]} == {None: "1.23", f"{SOURCE}:Z-{run}": "1.23"}


def test_a_rows_value_date_is_read_as_the_api_reads_it(suite, borrowers):
    """A file row's value date took ISO's basic form (`20260115`) and any year; it is now read by the API's date
    type: the extended form within the kernel's dates, else that row's error, in the API's words."""
    set_today(suite, TODAY)
    loan = register(suite, borrowers)
    refused_by_api = assert_problem(suite.direct["monitoring"].post(
        f"/loans/{loan['id']}/repayments", json={"amount": "10.00", "value_date": "20260115"},
        headers={**admin(suite), "Idempotency-Key": uuid.uuid4().hex}), 422, "body.value_date")
    run = uuid.uuid4().hex[:8]
    job, errors = posted(suite, ["reference,loan_id,amount,value_date", f"B-{run},{loan['id']},10.00,20260115",
                                 f"Y-{run},{loan['id']},10.00,1800-01-01", f"T-{run},{loan['id']},10.00,{TODAY}"])
    assert (job["posted"], job["failed"]) == (1, 2), job
    found = [(e["line"], e["field"], e["reference"]) for e in errors]
    assert found == [(2, "value_date", f"B-{run}"), (3, "value_date", f"Y-{run}")], errors
    assert errors[0]["message"] in refused_by_api["errors"][0]["message"], (errors, refused_by_api)
