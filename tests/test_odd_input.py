"""Odd input never ends in a server error, and a failed request leaves nothing behind for the next one."""

from __future__ import annotations

import json
import socket
import threading
import time
from datetime import date

import pytest
import uvicorn
from fastapi import APIRouter

from shared.app import create_service_app
from shared.db import Database
from shared.settings import KernelSettings
from tests.customer.factory import key, person
from tests.monitoring.api.helpers import borrowers, loan_body, officer, register  # noqa: F401

# A path parameter of every service (and of the gateway itself), with a control character in it.
CONTROL_PATHS = [
    "/api/monitoring/loans/ab%01cd",
    "/api/monitoring/loans/ab%00cd/repayments",
    "/api/customer/customers/x%00y",
    "/api/customer/customers/x%1fy/interactions",
    "/api/scoring/models/m%7fx",
    "/api/monitoring/alerts/a%0db/events",
]


@pytest.mark.parametrize("path", CONTROL_PATHS)
def test_a_control_character_in_a_path_parameter_is_a_404_problem(suite, path):
    response = suite.client.get(path, headers=suite.headers("admin"))
    assert response.status_code == 404, response.text
    assert response.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize(("path", "loan_id"), [("a%3Fb", "a?b"), ("a%23b", "a#b"), ("a%20b", "a b")])
def test_the_gateway_forwards_an_id_as_it_was_encoded(suite, path, loan_id):
    # Forwarded decoded, `a%3Fb` reached the service as the loan `a` with a query string `b`.
    response = suite.client.get(f"/api/monitoring/loans/{path}", headers=suite.headers("admin"))
    assert response.status_code == 404 and response.json()["detail"] == f"No loan {loan_id!r}."


@pytest.mark.parametrize("path", ["/api/monitoring/loans?customer_id=a%00b", "/api/monitoring/alerts?owner=%00",
                                  "/api/customer/customers?name_prefix=a%00", "/api/scoring/scores?customer_id=%00"])
def test_a_nul_in_a_query_parameter_is_a_422_naming_it(suite, path):
    response = suite.client.get(path, headers=suite.headers("admin"))
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"] == "query." + path.split("?")[1].split("=")[0]


@pytest.mark.parametrize("name", ["Zhang\x00San", "Zhang\x07San", "Zhang\x7fSan", "Zhang\x85San", "Zhang\u202eSan"],
                         ids=["nul", "bell", "del", "c1", "bidi_override"])
def test_a_control_character_in_a_text_is_a_422_naming_it_on_every_database(suite, name):
    """PostgreSQL cannot store a NUL and SQLite would: both refuse every control character alike, naming the field,
    in every service and in the gateway's own routes."""
    admin = {**suite.headers("admin"), **key()}
    for path, body, field in [
        ("/api/customer/customers", {**person(branch="BJ001"), "name": name}, "body.name"),
        ("/api/monitoring/loans", loan_body("c" * 32, purpose=name), "body.purpose"),
        ("/api/scoring/scores", {"features": {"purpose": name}}, "body.features.purpose"),
        ("/clients", {"client_id": "control-probe", "name": name}, "body.name"),
    ]:
        response = suite.client.post(path, json=body, headers=admin)
        assert response.status_code == 422, (path, response.text)
        assert [e["field"] for e in response.json()["errors"]] == [field], response.text


@pytest.mark.parametrize("odd", ["\x00", "\x07", "\u202e"], ids=["nul", "bell", "bidi_override"])
def test_a_control_character_in_an_uploaded_files_row_is_that_rows_error_on_every_database(suite, borrowers, odd):  # noqa: F811
    """No body check sees an uploaded file's rows: SQLite stored the text, PostgreSQL refused the whole file (or, for
    a repayment file run after its upload, never finished it). Now that row is refused naming its column and the
    file's other rows are taken, on both databases."""
    admin = suite.headers("admin")
    for name in ("people.csv", "people.jsonl"):
        good, bad = person(branch="UP1"), {**person(branch="UP1"), "name": f"Zhang{odd}San"}
        if name.endswith(".csv"):
            content = "\n".join([",".join(good), *(",".join(str(v) for v in row.values()) for row in (bad, good))])
        else:
            content = f"{json.dumps(bad)}\n{json.dumps(good)}"
        report = suite.client.post("/api/customer/customers/imports", headers={**admin, **key()},
                                   files={"file": (name, content, "text/csv")})
        assert report.status_code == 201, report.text
        assert (report.json()["created"], [e["field"] for e in report.json()["errors"]]) == (1, ["name"]), name

    loan = register(suite, borrowers, branch="UP1", disbursement_date=date.today().isoformat())
    analyst = suite.headers("analyst.upload", ["risk_analyst"])
    bureau = "customer_id,lender,amount_overdue,days_overdue,reported_date\n" + "".join(
        f"{loan['customer_id']},{lender},100.00,5,{date.today().isoformat()}\n" for lender in (f"Bank{odd}A", "Bank B"))
    feed = suite.client.post("/api/monitoring/feeds/bureau/imports", headers={**analyst, **key()},
                             files={"file": ("bureau.csv", bureau, "text/csv")})
    assert feed.status_code == 201 and feed.json()["accepted"] == 1, feed.text
    errors = suite.client.get(f"/api/monitoring/feeds/imports/{feed.json()['id']}/errors", headers=analyst).json()
    assert [(e["row"], e["field"]) for e in errors["items"]] == [(2, "lender")]

    run = key()["Idempotency-Key"][:8]
    repayments = f"reference,loan_id,amount\nR1-{run},{loan['id']}{odd},10.00\nR2-{run},{loan['id']},10.00\n"
    upload = suite.client.post("/api/monitoring/repayment-files", params={"source": "odd"},
                               headers={**officer(suite, "UP1"), **key()},
                               files={"file": ("repayments.csv", repayments, "text/csv")})
    assert upload.status_code == 202, upload.text
    done = suite.client.get(f"/api/monitoring/repayment-files/{upload.json()['id']}", headers=officer(suite, "UP1"))
    assert (done.json()["status"], done.json()["posted"], done.json()["failed"]) == ("completed", 1, 1), done.text
    errors = suite.client.get(f"/api/monitoring/repayment-files/{upload.json()['id']}/errors",
                              headers=officer(suite, "UP1")).json()
    assert [(e["line"], e["field"]) for e in errors["items"]] == [(2, "loan_id")]


@pytest.mark.parametrize(("name", "unreadable"), [
    ("people.csv", "x" * 200_000),  # a field past the CSV reader's limit
    ("people.jsonl", "[" * 100_000 + "]" * 100_000),  # JSON nested past what the decoder recurses into
    ("people.jsonl", '{"name": "Zhang San", "monthly_income": 1' + "0" * 5000 + "}"),  # an int past Python's digits
], ids=["long_csv_field", "nested_json", "long_number"])
def test_an_unreadable_line_of_a_customer_import_is_that_lines_error(suite, name, unreadable):
    """Each was a 500 for the whole file; the lines after it are imported."""
    good = person(branch="UP2")
    if name.endswith(".csv"):
        lines = [",".join(good), unreadable, ",".join(str(v) for v in good.values())]
    else:
        lines = [unreadable, json.dumps(good)]
    report = suite.client.post("/api/customer/customers/imports", headers={**suite.headers("admin"), **key()},
                               files={"file": (name, "\n".join(lines), "text/csv")})
    assert report.status_code == 201, report.text
    assert report.json()["created"] == 1, report.text
    assert [e["line"] for e in report.json()["errors"]] == [len(lines) - 1], report.text


@pytest.mark.parametrize("content_type", ["application/JSON", "Application/Json; charset=utf-8",
                                          "application/problem+JSON"])
def test_a_body_read_as_json_is_checked_whatever_the_case_of_its_content_type(suite, content_type):
    """FastAPI reads these as JSON; the body checks looked for a lowercase "json" and let 'Zhang\x00San' through."""
    body = json.dumps({**person(branch="BJ001"), "name": "Zhang\u0000San"})
    for client, url in ((suite.client, "/api/customer/customers"), (suite.direct["customer"], "/customers")):
        response = client.post(url, content=body, headers={**suite.headers("admin"), **key(),
                                                           "content-type": content_type})
        assert response.status_code == 422, response.text
        assert [e["field"] for e in response.json()["errors"]] == ["body.name"]


@pytest.mark.parametrize("content_type", ["text/x-json", "application/json-seq"])
def test_a_body_not_read_as_json_is_not_parsed_as_json_by_the_checks(suite, content_type):
    """Not JSON to FastAPI: a 415 for a route that reads JSON, and the checks never parse it (they did: a 500)."""
    response = suite.direct["customer"].post("/customers", content=b'{"name": "a\\u0000b", oops', headers={
        **suite.headers("admin"), **key(), "content-type": content_type})
    assert response.status_code == 415, response.text
    assert response.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize("form", [
    {"grant_type": "password", "username": "ad\x00min", "password": "x"},
    {"grant_type": "client_credentials", "client_id": "partner\x00", "client_secret": "x"},
    {"grant_type": "refresh_token", "refresh_token": "r\x07"},
], ids=["username", "client_id", "refresh_token"])
def test_a_control_character_in_a_sign_in_is_an_invalid_request_on_every_database(suite, form):
    """PostgreSQL answered a 422 "cannot be stored" where SQLite answered invalid credentials."""
    response = suite.client.post("/auth/token", data=form)
    assert (response.status_code, response.json()["error"]) == (400, "invalid_request"), response.text
    named = next(name for name, value in form.items() if not value.isprintable())
    assert named in response.json()["detail"]
    changed = suite.client.post("/auth/password", json={"username": "ad\x00min", "current_password": "x",
                                                        "new_password": "a-new-long-password"})
    assert changed.status_code == 422 and [e["field"] for e in changed.json()["errors"]] == ["body.username"]


@pytest.mark.parametrize("moment", ["9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+01:00", "0001-01-01T00:00:00Z"],
                         ids=["past_the_calendar_in_utc", "before_the_calendar_in_utc", "year_one"])
def test_a_moment_out_of_the_calendars_bounds_is_a_422_naming_it(suite, moment):
    """In UTC the first two fall off the calendar (a 500); year one was taken as a contact (a complaint due then)."""
    admin = suite.headers("admin")
    customer = suite.client.post("/api/customer/customers", json=person(branch="TS1"), headers={**admin, **key()})
    url = f"/api/customer/customers/{customer.json()['id']}"
    for path, body, field in [
        ("/interactions", {"channel": "phone", "direction": "outbound", "purpose": "service", "outcome": "reached",
                           "occurred_at": moment}, "body.occurred_at"),
        ("/complaints", {"kind": "complaint", "channel": "branch", "category": "fees", "received_at": moment},
         "body.received_at"),
        ("/consents", {"purpose": "marketing", "source": "app", "granted_at": moment}, "body.granted_at"),
    ]:
        response = suite.client.post(url + path, json=body, headers={**admin, **key()})
        assert response.status_code == 422, (path, response.text)
        assert [e["field"] for e in response.json()["errors"]] == [field]


def test_text_with_line_breaks_tabs_and_any_script_is_taken(suite):
    body = {**person(branch="BJ001"), "name": "张三 — Zhāng\tSān 😀", "employer": "A\nB\r\nC"}
    response = suite.client.post("/api/customer/customers", json=body, headers={**suite.headers("admin"), **key()})
    assert response.status_code == 201, response.text
    assert response.json()["name"] == body["name"]


@pytest.mark.parametrize("path", ["/api/monitoring/alerts", "/api/monitoring/loans"])
@pytest.mark.parametrize(("param", "value"), [("limit", 2**63), ("limit", 10**30), ("limit", 0),
                                              ("cursor", "x" * 5000), ("cursor", "\u00e9t\u00e9")])
def test_a_page_request_past_what_a_list_takes_is_a_422_naming_it(suite, path, param, value):
    response = suite.client.get(path, params={param: value}, headers=suite.headers("admin"))
    assert response.status_code == 422, response.text
    assert [e["field"] for e in response.json()["errors"]] == [f"query.{param}"]


@pytest.mark.parametrize("field", ["disbursement_date", "first_due_date"])
def test_a_schedule_dated_at_the_end_of_the_calendar_is_a_422_naming_the_date(suite, field):
    body = {"principal": "10000.00", "annual_rate": "0.0435", "term_months": 12,
            "repayment_method": "equal_instalment", "disbursement_date": "2026-01-15", field: "9999-12-31"}
    response = suite.client.post("/api/monitoring/loans/schedule-preview", json=body,
                                 headers=suite.headers("admin"))
    assert response.status_code == 422, response.text
    assert [e["field"] for e in response.json()["errors"]] == [f"body.{field}"]


def test_dates_at_the_bounds_still_schedule(suite):
    body = {"principal": "10000.00", "annual_rate": "0.0435", "term_months": 480,
            "repayment_method": "equal_principal", "disbursement_date": "2199-12-31"}
    response = suite.client.post("/api/monitoring/loans/schedule-preview", json=body,
                                 headers=suite.headers("admin"))
    assert response.status_code == 200, response.text
    assert response.json()["instalments"][-1]["due_date"] == "2239-12-31"


def _exchange(sock: socket.socket, path: str) -> bytes:
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: probe\r\n\r\n".encode())
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                  if line.lower().startswith(b"content-length"))
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return head


def test_a_server_error_keeps_the_connection_for_the_next_request(tmp_path):
    """An exception escaping the app after its 500 made uvicorn close the connection; the gateway's pool then
    handed that dead connection to the next caller, who got a 503 for nothing they did."""
    router = APIRouter()

    @router.get("/boom")
    def boom() -> dict:
        raise RuntimeError("an unforeseen failure")

    kernel = KernelSettings(var_dir=tmp_path)
    app = create_service_app(name="probe", title="probe", description="probe", kernel=kernel,
                             database=Database(f"sqlite:///{tmp_path / 'probe.db'}"), public_routers=[router])
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="critical", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.02)
        assert server.started
        # A closed connection reads as b"" at once; the long timeout only spares a loaded machine.
        with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
            assert _exchange(sock, "/boom").startswith(b"HTTP/1.1 500")
            time.sleep(0.2)  # what closing the connection takes, had the server done so
            assert _exchange(sock, "/health/live").startswith(b"HTTP/1.1 200")
    finally:
        server.should_exit = True
        thread.join(timeout=10)


_EMBEDDED_500 = """
from fastapi import APIRouter
from fastapi.testclient import TestClient
from shared.app import create_service_app
from shared.db import Database
from shared.settings import KernelSettings

router = APIRouter()

@router.get("/boom")
def boom() -> dict:
    national_id = "".join(["1101011990", "03077777"])  # a local that holds personal data
    raise RuntimeError(f"an unforeseen failure after {{len(national_id)}} characters")

kernel = KernelSettings(var_dir={var_dir!r})
app = create_service_app(name="probe", title="probe", description="probe", kernel=kernel,
                         database=Database("sqlite:///{var_dir}/probe.db"), public_routers=[router])
print(TestClient(app, raise_server_exceptions=False).get("/boom").status_code)
"""


def test_an_app_built_outside_a_services_start_up_logs_a_500_without_the_locals(tmp_path):
    """An app built without `uvicorn_factory` (an embedding caller, a test) left structlog unconfigured, and its
    default renderer logged a 500's traceback with every local of every frame: personal data in the log, and over
    5 s of rendering on a loaded machine. The kernel now routes structlog to the standard library's logging, as
    JSON with a plain traceback."""
    import subprocess
    import sys

    run = subprocess.run([sys.executable, "-c", _EMBEDDED_500.format(var_dir=str(tmp_path))], capture_output=True,
                         text=True, timeout=120)
    assert run.stdout.strip().splitlines()[-1] == "500", run.stderr
    logged = [json.loads(line) for line in run.stderr.splitlines() if line.startswith("{")]
    error = next(entry for entry in logged if entry["event"] == "unhandled error")
    assert "RuntimeError: an unforeseen failure after 18 characters" in error["exception"]
    assert "110101199003077777" not in run.stdout + run.stderr


@pytest.mark.parametrize("value", [True, False])
def test_true_or_false_for_a_number_is_a_422_naming_it_and_books_nothing(suite, value):
    """Found: pydantic's lax mode read `"term_months": true` as 1, and a one-month loan was booked."""
    officer = {**suite.headers("bool.officer", ["loan_officer"], branch="BJ001")}
    customer = suite.client.post("/api/customer/customers", json=person(branch="BJ001"),
                                 headers={**suite.headers("admin"), **key()}).json()["id"]
    response = suite.client.post("/api/monitoring/loans", json=loan_body(customer, term_months=value),
                                 headers={**officer, **key()})
    assert response.status_code == 422, response.text
    assert [e["field"] for e in response.json()["errors"]] == ["body.term_months"]
    listed = suite.client.get(f"/api/monitoring/loans?customer_id={customer}", headers=officer).json()
    assert listed["items"] == []
    booked = suite.client.post("/api/monitoring/loans", json=loan_body(customer), headers={**officer, **key()})
    assert booked.status_code == 201, booked.text


def test_a_boolean_is_told_from_a_number_through_nested_models_lists_maps_and_unions():
    from pydantic import BaseModel

    from shared.bounds import boolean_for_number_at

    class Line(BaseModel):
        number: int
        paid: bool = False

    class Command(BaseModel):
        lines: list[Line] = []
        weights: dict[str, float] = {}
        limit: int | None = None
        label: int | str | None = None
        flag: bool | int = False

    assert boolean_for_number_at(Command, {"lines": [{"number": 1, "paid": True}, {"number": True}]}) \
        == "body.lines.1.number"
    assert boolean_for_number_at(Command, {"weights": {"a": 0.5, "b": False}}) == "body.weights.b"
    assert boolean_for_number_at(Command, {"limit": True}) == "body.limit"
    # Where a text or a boolean is allowed too, true is not refused here (pydantic decides).
    assert boolean_for_number_at(Command, {"label": True, "flag": True, "lines": [{"number": 2, "paid": False}]}) \
        is None


@pytest.mark.parametrize(("amount", "why"), [
    ('"\u0665"', "digits"), ('"1_000"', "digits"), ('" 5 "', "digits"), ('"\uff15"', "digits"),
    ("99999999999999.99", "exactly"), ("1.0000000000000000001", "exactly"), ("0.30000000000000001", "exactly")],
    ids=["arabic_indic_five", "underscore", "spaces", "fullwidth_five", "past_a_float", "past_two_decimals",
         "a_float_rounds_it"])
def test_money_written_loosely_or_past_what_a_float_holds_is_a_422_naming_it_and_posts_nothing(
        suite, borrowers, amount, why):  # noqa: F811 - the fixture imported above
    """Found: "٥" (an Arabic-Indic five), "1_000" and " 5 " were posted as 5.00, 1000.00 and 5.00, and the JSON
    number 99999999999999.99 as 99999999999999.98 (the body was read with binary floats; so was
    1.0000000000000000001, as 1.00, where 1.001 is refused)."""
    loan = register(suite, borrowers)
    headers = {**officer(suite), **key(), "Content-Type": "application/json"}
    url = f"/api/monitoring/loans/{loan['id']}/repayments"
    response = suite.client.post(url, content=f'{{"amount": {amount}}}'.encode(), headers=headers)
    assert response.status_code == 422, response.text
    error = response.json()["errors"][0]
    assert error["field"] == "body.amount" and why in error["message"]
    postings = f"/api/monitoring/loans/{loan['id']}/postings"
    assert suite.client.get(postings, headers=officer(suite)).json()["items"] == []
    # A number a float holds as written is taken as it is, and so is an exponent.
    for exact, posted in (("10.5", "10.50"), ("1e1", "10.00")):
        done = suite.client.post(url, content=f'{{"amount": {exact}}}'.encode(), headers={**headers, **key()})
        assert done.status_code == 201 and done.json()["amount"] == posted, done.text


def test_a_file_row_or_import_line_with_loose_money_is_refused_by_the_money_types_themselves():
    """Rows of a repayment file or a customer import are validated by the same types, with no JSON body to look at."""
    from pydantic import TypeAdapter, ValidationError

    from services.customer.common import Money
    from services.monitoring.loans.models import Rate
    from shared.bounds import Amount, PositiveAmount

    for kind in (PositiveAmount, Amount, Money, Rate):
        adapter = TypeAdapter(kind)
        for loose in ("\u0665", "1_0", " 2 ", "2\n", "0x10", "\u0661.5"):
            with pytest.raises(ValidationError, match="digits 0-9"):
                adapter.validate_python(loose)
        assert adapter.validate_python("0.5") == adapter.validate_python(".5") == adapter.validate_python("5e-1")


def test_a_loose_decimal_is_found_through_nested_models_lists_maps_and_unions():
    from decimal import Decimal

    from pydantic import BaseModel

    from shared.bounds import loose_decimal_at

    class Line(BaseModel):
        amount: Decimal
        count: int = 0

    class Command(BaseModel):
        lines: list[Line] = []
        rates: dict[str, Decimal] = {}
        cap: Decimal | None = None
        note: str | None = None

    def found(text: str) -> tuple[str, str] | None:
        return loose_decimal_at(Command, json.loads(text, parse_float=Decimal))

    assert found('{"lines": [{"amount": "1.5"}, {"amount": "1_5"}]}')[0] == "body.lines.1.amount"
    assert found('{"rates": {"a": 0.25, "b": 0.1000000000000000055511151231257827}}')[0] == "body.rates.b"
    assert "string" in found('{"cap": 12345678901234567.5}')[1]
    # Text and counts elsewhere are not decimals; plain ones, exact numbers, ints and nulls pass.
    assert found('{"note": "\u0665", "lines": [{"amount": 7, "count": 3}], "cap": null, "rates": {"x": "-1.5e3"}}') \
        is None


def test_a_body_of_another_media_type_an_encoding_but_utf8_or_a_field_named_twice_is_refused_and_books_nothing(
        suite, borrowers):  # noqa: F811 - the fixture imported above
    """Found: text/plain was a 422 "not a valid dictionary", a UTF-16 body was read as JSON, and of a field named
    twice the last was taken silently (a reader in front could take the first)."""
    loan = register(suite, borrowers)
    url = f"/api/monitoring/loans/{loan['id']}/repayments"
    headers = {**officer(suite), **key()}
    for content_type in ("text/plain", "application/x-www-form-urlencoded", None):
        sent = {**headers, **key(), **({"Content-Type": content_type} if content_type else {})}
        refused = suite.client.post(url, content=b'{"amount": "5.00"}', headers=sent)
        assert refused.status_code == 415, refused.text
        assert refused.headers["content-type"] == "application/problem+json"
    as_json = {**headers, "Content-Type": "application/json"}
    for body in ('{"amount": "5.00"}'.encode("utf-16"), '{"amount": "5.00"}'.encode("utf-16-le"),
                 '{"amount": "5.00"}'.encode("utf-32")):
        refused = suite.client.post(url, content=body, headers={**as_json, **key()})
        assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == "body", refused.text
    twice = suite.client.post(url, content=b'{"amount": "5.00", "amount": "500.00"}', headers={**as_json, **key()})
    assert twice.status_code == 422 and twice.json()["errors"][0]["field"] == "body.amount", twice.text
    postings = f"/api/monitoring/loans/{loan['id']}/postings"
    assert suite.client.get(postings, headers=officer(suite)).json()["items"] == []
    posted = suite.client.post(url, content=b'{"amount": "5.00"}', headers={**as_json, **key()})
    assert posted.status_code == 201, posted.text


# A date or a moment in a query or a path, written as a number or (for a date) with a time.
ODD_DATES = [
    ("/api/customer/access-log?since=-1", "query.since"),
    ("/api/customer/interactions?until=1700000000", "query.until"),
    ("/api/customer/satisfaction/trend?since=-1", "query.since"),
    ("/api/customer/customers?created_from=1700000000.5", "query.created_from"),
    ("/api/scoring/audit?since=-1", "query.since"),
    ("/api/customer/relationship/features?as_of=2026-01-01T00:00:00Z", "query.as_of"),
    # A date took a number of seconds that falls on a midnight (1970-01-01, 2026-01-01).
    ("/api/monitoring/rules/review?since=0&until=2026-12-31", "query.since"),
    ("/api/monitoring/checks?due_by=1767225600", "query.due_by"),
    ("/api/monitoring/cob/runs/1767225600", "path.business_date"),
]


@pytest.mark.parametrize(("path", "field"), ODD_DATES, ids=[path.split("?")[0].rsplit("/", 1)[-1] + "-" + field
                                                          for path, field in ODD_DATES])
def test_a_number_for_a_date_or_a_moment_in_a_query_or_a_path_is_a_422_naming_it(suite, path, field):
    """Found: pydantic's lax mode read a number as seconds since 1970, so `since=-1` listed from 1969-12-31 (and
    a date took a date and time at midnight)."""
    response = suite.client.get(path, headers=suite.headers("admin"))
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert [e["field"] for e in response.json()["errors"]] == [field], response.text


def test_iso_dates_and_moments_in_a_query_are_still_taken(suite):
    admin = suite.headers("admin")
    for path in ("/api/customer/access-log?since=2026-01-01T00:00:00Z&until=2026-02-01T08:00:00",
                 "/api/customer/interactions?since=2026-01-01", "/api/scoring/audit?since=2026-01-01T00:00:00%2B08:00",
                 "/api/monitoring/rules/review?since=2026-01-01&until=2026-12-31"):
        response = suite.client.get(path, headers=admin)
        assert response.status_code == 200, (path, response.text)


# Each was taken as 1990-01-01 (or 1970-01-01): a number of seconds, or a date and time, that falls on a midnight.
@pytest.mark.parametrize("odd", [631152000, "631152000", "0", 631152000.0, "1990-01-01T00:00:00Z", "1990-01-01 00:00"],
                         ids=["int", "numeric_text", "zero_text", "float", "datetime_z", "datetime_space"])
def test_a_number_or_a_date_and_time_for_a_date_in_a_body_is_a_422_naming_it_and_writes_nothing(
        suite, borrowers, odd):  # noqa: F811 - the fixture imported above
    admin = {**suite.headers("admin"), **key()}
    name = f"Odd Date {key()['Idempotency-Key'][:8]}"
    response = suite.client.post("/api/customer/customers", json={**person(branch="OD1"), "name": name,
                                                                   "date_of_birth": odd}, headers=admin)
    assert response.status_code == 422, response.text
    assert [e["field"] for e in response.json()["errors"]] == ["body.date_of_birth"], response.text
    listed = suite.client.get("/api/customer/customers", params={"name_prefix": name},
                              headers=suite.headers("admin"))
    assert listed.json()["items"] == []

    loan = register(suite, borrowers)
    url = f"/api/monitoring/loans/{loan['id']}/repayments"
    posted = suite.client.post(url, json={"amount": "10.00", "value_date": odd}, headers={**officer(suite), **key()})
    assert posted.status_code == 422, posted.text
    assert [e["field"] for e in posted.json()["errors"]] == ["body.value_date"], posted.text
    assert suite.client.get(f"/api/monitoring/loans/{loan['id']}/postings",
                            headers=officer(suite)).json()["items"] == []


@pytest.mark.parametrize("odd", [1700000000, "1700000000", "-1", 1.7e9],
                         ids=["int", "numeric_text", "minus_one", "float"])
def test_a_number_for_a_moment_in_a_body_is_a_422_naming_it_and_logs_nothing(suite, odd):
    admin = suite.headers("admin")
    customer = suite.client.post("/api/customer/customers", json=person(branch="OD2"), headers={**admin, **key()})
    url = f"/api/customer/customers/{customer.json()['id']}/interactions"
    response = suite.client.post(url, json={"channel": "phone", "direction": "outbound", "purpose": "service",
                                            "outcome": "reached", "occurred_at": odd}, headers={**admin, **key()})
    assert response.status_code == 422, response.text
    assert [e["field"] for e in response.json()["errors"]] == ["body.occurred_at"], response.text
    assert suite.client.get(url, headers=admin).json()["items"] == []


def test_date_and_moment_types_refuse_numbers_and_a_date_refuses_a_time():
    from datetime import UTC, datetime

    from pydantic import TypeAdapter, ValidationError

    from shared.bounds import BusinessDate, Timestamp

    day, moment = TypeAdapter(BusinessDate), TypeAdapter(Timestamp)
    for odd in (0, -1, 1.5, "0", "-1", "1700000000", "1700000000.5", True, "2026-01-01T00:00:00", "20260101"):
        with pytest.raises(ValidationError, match="ISO 8601"):
            day.validate_python(odd)
    for odd in (0, -1, 1.5, "0", "-1", "1700000000", True, "20260101T000000"):
        with pytest.raises(ValidationError, match="ISO 8601"):
            moment.validate_python(odd)
    assert day.validate_python("2026-01-31") == day.validate_python(date(2026, 1, 31)) == date(2026, 1, 31)
    assert moment.validate_python("2026-01-31T08:00:00+08:00") == moment.validate_python("2026-01-31T00:00:00") \
        == moment.validate_python(datetime(2026, 1, 31, tzinfo=UTC)) == datetime(2026, 1, 31, tzinfo=UTC)
    # What OpenAPI says of them stays a date and a date-time.
    assert day.json_schema()["format"] == "date" and moment.json_schema()["format"] == "date-time"


@pytest.mark.parametrize(("path", "field"), [
    ("/api/monitoring/loans?limit=5&limit=500", "query.limit"),
    ("/api/customer/customers?status=active&status=closed", "query.status"),
    ("/api/customer/interactions?since=2026-01-01&officer=a&since=2020-01-01", "query.since"),
    ("/api/scoring/scores?customer_id=a&customer_id=b", "query.customer_id"),
    ("/api/monitoring/audit?actor=a&actor=b", "query.actor"),
    ("/clients?limit=1&limit=2", "query.limit"),
], ids=["monitoring_page_limit", "customer_enum", "customer_moment", "scoring", "audit", "gateway_own_route"])
def test_a_query_parameter_given_more_than_once_is_a_422_naming_it(suite, path, field):
    """Found: of `?limit=5&limit=500` the last was taken silently, where a proxy in front may have checked the
    first."""
    response = suite.client.get(path, headers=suite.headers("admin"))
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert [e["field"] for e in response.json()["errors"]] == [field], response.text
    assert "more than once" in response.json()["errors"][0]["message"]


def test_a_query_parameter_taken_as_a_list_may_repeat(suite, tmp_path):
    from fastapi import Query
    from fastapi.testclient import TestClient

    router = APIRouter()

    @router.get("/probe")
    def probe(ids: list[str] = Query([]), label: str | None = None) -> dict:
        return {"ids": ids, "label": label}

    app = create_service_app(name="probe", title="probe", description="probe",
                             kernel=KernelSettings(var_dir=tmp_path),
                             database=Database(f"sqlite:///{tmp_path / 'probe.db'}"), routers=[router],
                             verifier=suite.services["customer"].state.verifier, default_scopes=lambda _method: ())
    client, admin = TestClient(app), suite.headers("admin")
    taken = client.get("/probe?ids=a&ids=b&label=x&unknown=1&unknown=2", headers=admin)
    assert (taken.status_code, taken.json()) == (200, {"ids": ["a", "b"], "label": "x"}), taken.text
    refused = client.get("/probe?ids=a&label=x&label=y", headers=admin)
    assert refused.status_code == 422 and [e["field"] for e in refused.json()["errors"]] == ["query.label"]


def test_text_for_a_whole_number_is_a_422_naming_it_and_writes_nothing(suite, borrowers):  # noqa: F811
    """Found: `"household_size": "3"` was read as 3. Money stays text ("21000.00"), as the money types ask."""
    admin = suite.headers("admin")
    name = f"Odd Count {key()['Idempotency-Key'][:8]}"
    body = {**person(branch="OD3"), "name": name, "monthly_income": "21000.00"}
    for odd in ("3", "3.0", " 3", ""):
        response = suite.client.post("/api/customer/customers", json={**body, "household_size": odd},
                                     headers={**admin, **key()})
        assert response.status_code == 422, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert [e["field"] for e in response.json()["errors"]] == ["body.household_size"], response.text
    listed = suite.client.get("/api/customer/customers", params={"name_prefix": name}, headers=admin)
    assert listed.json()["items"] == []

    customer = borrowers.new_customer("BJ001")
    loan = suite.client.post("/api/monitoring/loans", json=loan_body(customer, term_months="12"),
                             headers={**officer(suite), **key()})
    assert loan.status_code == 422, loan.text
    assert [e["field"] for e in loan.json()["errors"]] == ["body.term_months"], loan.text
    assert suite.client.get(f"/api/monitoring/loans?customer_id={customer}",
                            headers=officer(suite)).json()["items"] == []

    created = suite.client.post("/api/customer/customers", json={**body, "household_size": 3},
                                headers={**admin, **key()})
    assert created.status_code == 201, created.text
    assert (created.json()["household_size"], created.json()["monthly_income"]) == (3, "21000.00")


def test_text_is_told_from_a_whole_number_through_nested_models_lists_maps_and_unions():
    from decimal import Decimal

    from pydantic import BaseModel

    from shared.bounds import text_for_integer_at

    class Line(BaseModel):
        count: int
        amount: Decimal = Decimal(0)

    class Command(BaseModel):
        lines: list[Line] = []
        counts: dict[str, int] = {}
        limit: int | None = None
        label: int | str | None = None
        share: float = 0.0
        days: list[int] = []

    assert text_for_integer_at(Command, {"lines": [{"count": 1}, {"count": "2"}]}) == "body.lines.1.count"
    assert text_for_integer_at(Command, {"counts": {"a": 1, "b": "2"}}) == "body.counts.b"
    assert text_for_integer_at(Command, {"limit": "5"}) == "body.limit"
    assert text_for_integer_at(Command, {"days": [1, "7"]}) == "body.days.1"
    # A decimal, a float, and a field that takes text too are not whole numbers only (their own checks decide).
    assert text_for_integer_at(Command, {"lines": [{"count": 1, "amount": "1.50"}], "label": "x", "share": "0.5",
                                         "limit": None}) is None


def _dates(annotation, metadata, path, seen, found):  # noqa: ANN001, ANN202
    """Appends (path, whether it is the kernel's: shared/bounds.py) for each date or datetime in `annotation`."""
    from typing import Annotated, get_args, get_origin

    from pydantic import BaseModel

    from shared.bounds import iso_date, iso_moment

    metadata = list(metadata)
    while get_origin(annotation) is Annotated:
        annotation, *more = get_args(annotation)
        metadata += more
    if isinstance(annotation, type) and issubclass(annotation, date):
        found.append((path, iso_date in metadata or iso_moment in metadata))
    elif isinstance(annotation, type) and issubclass(annotation, BaseModel):
        for name, field in annotation.model_fields.items() if annotation not in seen else ():
            _dates(field.annotation, field.metadata, f"{path}.{field.alias or name}", seen | {annotation}, found)
    else:
        for arg in get_args(annotation):
            _dates(arg, (), path, seen, found)


def test_every_date_and_moment_a_request_gives_is_the_kernels(suite):
    """Bodies, queries and paths of every service and the gateway: a plain `date` or `datetime` took numbers."""
    from fastapi.routing import APIRoute, iter_route_contexts

    found: list[tuple[str, bool]] = []
    for app in (*suite.services.values(), suite.gateway):
        for context in iter_route_contexts(app.routes):
            route = context.original_route
            if not isinstance(route, APIRoute):
                continue
            where = f"{app.state.service_name} {context.path}"
            if route.body_field is not None:
                _dates(route.body_field.field_info.annotation, (), f"{where} body", frozenset(), found)
            pending = [route.dependant]
            while pending:
                current = pending.pop()
                pending.extend(current.dependencies)
                for field in (*current.query_params, *current.path_params, *current.header_params):
                    _dates(field.field_info.annotation, field.field_info.metadata,
                           f"{where} {field.field_info.in_.value}.{field.alias}", frozenset(), found)
    assert len(found) > 40, found  # the walk reached them
    assert [path for path, kernels in found if not kernels] == []
