"""Every error a client can meet is RFC 9457 problem+json, with the field at fault; never a stack trace."""

import psycopg
import pytest
from fastapi import APIRouter
from fastapi.testclient import TestClient
from pydantic import BaseModel, Field
from sqlalchemy.engine import make_url

from shared.app import create_service_app
from shared.db import Database
from tests.support import postgres_libpq_url


class _Loan(BaseModel):
    principal: int = Field(gt=0)
    term_months: int


def _app(suite, tmp_path):
    router = APIRouter()

    @router.post("/loans")
    def create(loan: _Loan) -> dict:
        return {}

    @router.get("/boom")
    def boom() -> dict:
        raise RuntimeError("secret internals: password=hunter2")

    return create_service_app(
        name="probe", title="probe", description="probe", kernel=suite.kernel,
        database=Database(f"sqlite:///{tmp_path / 'probe.db'}"), routers=[router],
        verifier=suite.services["customer"].state.verifier,
        default_scopes=lambda _method: (),  # a probe app: no service scope to ask for, the token is still checked
    )


def test_validation_errors_name_each_field(suite, tmp_path):
    with TestClient(_app(suite, tmp_path)) as client:
        response = client.post("/loans", json={"principal": -5}, headers=suite.headers("admin"))
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    fields = {e["field"] for e in body["errors"]}
    assert fields == {"body.principal", "body.term_months"}
    assert body["title"] == "Invalid input" and body["instance"] == "/loans" and body["request_id"]


def test_a_problem_behind_a_proxy_names_the_path_the_caller_used(suite, tmp_path):
    """Issue 17, Found 7: `instance` named the service's own path, not the one under the gateway's prefix."""
    with TestClient(_app(suite, tmp_path)) as client:
        behind = client.post("/loans", json={}, headers={**suite.headers("admin"), "X-Forwarded-Prefix": "/api/probe"})
        odd = client.post("/loans", json={}, headers={**suite.headers("admin"), "X-Forwarded-Prefix": "x/../<b>"})
    assert behind.status_code == 422 and behind.json()["instance"] == "/api/probe/loans"
    assert odd.json()["instance"] == "/loans"  # a prefix that is no plain path is ignored


def test_malformed_json_is_a_422_problem_not_a_500(suite, tmp_path):
    with TestClient(_app(suite, tmp_path)) as client:
        response = client.post("/loans", content=b"{not json", headers={**suite.headers("admin"),
                                                                         "content-type": "application/json"})
    assert response.status_code == 422 and response.json()["errors"][0]["field"].startswith("body")


@pytest.mark.parametrize("body", [
    b"[" * 100_000 + b"]" * 100_000,  # nested past what the decoder recurses into
    b'{"principal": 1' + b"0" * 5000 + b', "term_months": 12}',  # past Python's limit of digits in an int
    b'{"principal": "\xff\xfe", "term_months": 12}',  # not UTF-8
], ids=["nested", "long_number", "not_utf8"])
def test_json_the_decoder_cannot_finish_is_a_422_naming_the_body(suite, tmp_path, body):
    with TestClient(_app(suite, tmp_path)) as client:
        response = client.post("/loans", content=body, headers={**suite.headers("admin"),
                                                                "content-type": "application/json"})
    assert response.status_code == 422 and response.headers["content-type"] == "application/problem+json"
    assert [e["field"] for e in response.json()["errors"]] == ["body"], response.text


def test_an_unexpected_failure_hides_its_internals(suite, tmp_path):
    with TestClient(_app(suite, tmp_path), raise_server_exceptions=False) as client:
        response = client.get("/boom", headers={**suite.headers("admin"), "X-Request-ID": "case-500"})
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    assert "hunter2" not in response.text and "Traceback" not in response.text
    assert response.json()["request_id"] == "case-500"


def test_unknown_route_and_wrong_method_are_problems(suite):
    missing = suite.direct["monitoring"].get("/no/such/thing", headers=suite.headers("admin"))
    assert missing.status_code == 404 and missing.headers["content-type"] == "application/problem+json"
    wrong = suite.client.delete("/auth/token")
    assert wrong.status_code == 405 and wrong.json()["title"] == "Method not allowed"


def test_head_answers_what_get_would_without_the_content(suite):
    admin = suite.headers("admin")
    for client, path in ((suite.client, "/api/monitoring/loans"), (suite.client, "/auth/users"),
                         (suite.direct["customer"], "/whoami")):
        got, head = client.get(path, headers=admin), client.head(path, headers=admin)
        assert head.status_code == got.status_code == 200, (path, head.status_code)
        assert head.content == b"" and head.headers["content-type"] == got.headers["content-type"]
        assert head.headers["content-length"] == got.headers["content-length"]
    # Still a request like any other: no token, no answer; and only where GET is routed.
    unsigned = suite.direct["customer"].head("/customers")
    assert unsigned.status_code == 401 and unsigned.content == b""
    assert suite.client.head("/auth/token").status_code == 405


def test_openapi_types_the_error_bodies(suite):
    spec = suite.direct["customer"].get("/openapi.json").json()
    assert "ProblemDetail" in spec["components"]["schemas"]
    whoami = spec["paths"]["/whoami"]["get"]["responses"]
    assert "application/problem+json" in whoami["401"]["content"]


def test_a_dropped_database_connection_is_a_503_and_the_retry_succeeds(suite):
    """The server drops the service's pooled connections (a failover or restart): that request fails cleanly
    with a 503 to retry, and the next one gets a fresh connection."""
    if suite.backend != "postgres":
        pytest.skip("only a database server can drop connections")
    client, headers = suite.direct["customer"], suite.headers("admin")
    assert client.get("/customers", headers=headers).status_code == 200  # a pooled connection now exists
    database = make_url(suite.database("customer").url).database
    with psycopg.connect(postgres_libpq_url(), autocommit=True) as admin:
        dropped = admin.execute("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = %s",
                                (database,)).fetchone()[0]
    assert dropped >= 1
    first = client.get("/customers", headers=headers)
    assert first.status_code == 503, first.text
    assert first.headers["content-type"] == "application/problem+json"
    assert first.headers["retry-after"] == "1"
    assert "Traceback" not in first.text
    assert client.get("/customers", headers=headers).status_code == 200
