"""The public contract as an integrator meets it: a client generated from the gateway's merged OpenAPI document
with openapi-python-client (pinned, a test dependency) drives a whole loan journey; the document's operationIds,
security, required headers and examples are what its routes really do. On SQLite only: nothing here depends on
the database.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from services.scoring.registry.flows import ensure_default_champion
from tests.customer.factory import person
from tests.scoring.api.conftest import german_rows
from tests.support import ADMIN_PASSWORD, PASSWORD, running_suite
from tests.test_api_fuzz import _records

ROOT = Path(__file__).resolve().parents[1]
GENERATOR = Path(sys.executable).parent / "openapi-python-client"
# Generator output that is not a warning about the document.
ALLOWED_OUTPUT = [
    re.compile(r"^Generating \S+$"),
    # Printed by the formatting post-hook when it tidied the generated code.
    re.compile(r"^\d+ files? (reformatted|left unchanged)(, \d+ files? (reformatted|left unchanged))*$"),
    re.compile(r"^Found \d+ errors? \(\d+ fixed, 0 remaining\)\.$|^All checks passed!$"),
]
# An example shows a request's shape; some rules also weigh the records it meets, which a fixed example cannot
# know: dates against today's business date, amounts against what a fresh loan has due, a close-of-business run
# the other example started, a reveal by queue item that only a collector makes.
STATE_RULES = re.compile(r"business date|exceeds the \w+ due|is unfinished|why you need this field|"
                         r"extract holds no loans|instalment after the plan")


@pytest.fixture(scope="module")
def contract(tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    with running_suite("sqlite", tmp_path_factory.mktemp("contract")) as suite:
        # A champion to score with, as `loancrm up` installs.
        ensure_default_champion(suite.kernel)
        suite.services["scoring"].state.scoring.serving.invalidate()
        yield suite


@pytest.fixture(scope="module")
def document(contract) -> dict[str, Any]:  # noqa: ANN001
    response = contract.client.get("/api/openapi.json")
    assert response.status_code == 200
    body = response.json()
    assert not body.get("x-unavailable-services")
    return body


def _operations(spec: dict[str, Any]):  # noqa: ANN202
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            yield path, method, operation


def test_operation_ids_are_readable_unique_and_tagged(document):
    ids = [operation["operationId"] for _, _, operation in _operations(document)]
    assert len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)
    assert all(re.fullmatch(r"[a-z][a-z0-9_]*", i) and "__" not in i for i in ids), ids
    post_repayment = document["paths"]["/api/monitoring/loans/{loan_id}/repayments"]["post"]
    assert post_repayment["operationId"] == "repayments_post_repayment"
    assert post_repayment["tags"] == ["monitoring: repayments"]
    assert all(operation.get("tags") for _, _, operation in _operations(document))


def test_schema_titles_are_unique_and_errors_share_one_problem_schema(document):
    schemas = document["components"]["schemas"]
    titles = [schema.get("title", name) for name, schema in schemas.items()]
    assert len(titles) == len(set(titles)), sorted(t for t in titles if titles.count(t) > 1)
    assert {"ProblemDetail", "MonitoringLoanSummary", "ScoringReason"} <= set(schemas)
    assert not any(name.endswith("ProblemDetail") and name != "ProblemDetail" for name in schemas)
    for path, method, operation in _operations(document):
        for status, response in operation["responses"].items():
            if status[0] in "45":
                # The token endpoints answer RFC 6749 errors: a problem with the `error` member besides.
                shared = "TokenError" if path.startswith("/auth/") and status in ("400", "401") and \
                    "TokenError" in str(response) else "ProblemDetail"
                assert response["content"] == {"application/problem+json": {
                    "schema": {"$ref": f"#/components/schemas/{shared}"}}}, (method, path, status)
            else:
                assert response.get("content") or status == "204", (method, path, status)


def test_every_service_and_the_merged_document_declare_the_token_and_each_operations_scopes(contract, document):
    specs = {"merged": document, **{name: client.get("/openapi.json").json()
                                    for name, client in contract.direct.items()}}
    for name, spec in specs.items():
        password = spec["components"]["securitySchemes"]["OAuth2"]["flows"]["password"]
        assert password["tokenUrl"] == ("/auth/token" if name == "merged" else "http://127.0.0.1:8000/auth/token")
        assert {"customer:read", "monitoring:write", "users:admin"} <= set(password["scopes"])
    secured = {(path, method): operation.get("security") for path, method, operation in _operations(document)}
    assert secured[("/api/monitoring/loans/{loan_id}/repayments", "post")] == [{"OAuth2": ["monitoring:write"]}]
    assert secured[("/api/customer/customers", "get")] == [{"OAuth2": ["customer:read"]}]
    assert secured[("/auth/users", "get")] == [{"OAuth2": ["users:admin"]}, {"OAuth2": ["audit:read"]}]
    assert secured[("/api/scoring/whoami", "get")] == [{"OAuth2": []}]
    assert secured[("/auth/token", "post")] is None and secured[("/api/customer/health/live", "get")] is None
    for (path, method), security in secured.items():
        operation = document["paths"][path][method]
        if "x-scopes" in operation and operation["x-scopes"]:
            assert security == [{"OAuth2": [scope]} for scope in operation["x-scopes"]], (method, path)
    # Every scope an operation names is one the scheme declares, for both grants that give a token.
    for name, spec in specs.items():
        flows = spec["components"]["securitySchemes"]["OAuth2"]["flows"]
        named = {scope for _, _, operation in _operations(spec) for requirement in operation.get("security") or []
                 for scope in requirement["OAuth2"]}
        for flow in ("password", "clientCredentials"):
            assert named <= set(flows[flow]["scopes"]), (name, flow, named - set(flows[flow]["scopes"]))


def test_required_headers_are_documented_required_and_missing_ones_are_a_428_naming_them(contract, document):
    def header(path: str, method: str, name: str) -> dict[str, Any]:
        return next(p for p in document["paths"][path][method]["parameters"] if p["name"] == name)

    assert header("/api/customer/customers", "post", "Idempotency-Key")["required"] is True
    assert header("/api/monitoring/loans/{loan_id}/repayments", "post", "Idempotency-Key")["required"] is True
    assert header("/api/customer/customers/{customer_id}", "patch", "If-Match")["required"] is True
    assert header("/api/scoring/scores", "post", "Idempotency-Key")["required"] is False
    # No Idempotency-Key anywhere is described as required while documented optional, or the other way round.
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            for parameter in operation.get("parameters", []):
                if parameter["in"] == "header" and parameter["name"] == "Idempotency-Key":
                    described = parameter.get("description", "").startswith("Required.")
                    assert parameter.get("required", False) is described, (method, path, parameter["name"])
    headers = contract.headers("admin")
    created = contract.client.post("/api/customer/customers", json=person(), headers=headers)
    assert created.status_code == 428, created.text
    assert created.headers["content-type"] == "application/problem+json"
    assert created.json()["errors"] == [{"field": "header.Idempotency-Key", "message": "required"}]
    customer = contract.client.post("/api/customer/customers", json=person(),
                                    headers={**headers, "Idempotency-Key": uuid.uuid4().hex}).json()
    patched = contract.client.patch(f"/api/customer/customers/{customer['id']}", json={"name": "Li Si"},
                                    headers=headers)
    assert patched.status_code == 428 and patched.json()["errors"][0]["field"] == "header.If-Match"


def test_the_whole_api_has_a_public_docs_page(contract):
    for path in ("/api/docs", "/api/docs/"):
        page = contract.client.get(path)
        assert page.status_code == 200, path
        assert "swagger-ui" in page.text and "/api/openapi.json" in page.text


def _generate(document: dict[str, Any], where: Path) -> list[str]:
    source = where / "openapi.json"
    source.write_text(json.dumps(document))
    env = {**os.environ, "PATH": f"{GENERATOR.parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    run = subprocess.run([str(GENERATOR), "generate", "--path", str(source), "--meta", "none", "--output-path",
                          str(where / "loancrm_client"), "--config", str(ROOT / "openapi-python-client.yaml")],
                         capture_output=True, text=True, env=env, timeout=300, check=False)
    assert run.returncode == 0, run.stdout + run.stderr
    lines = [line.strip() for line in (run.stdout + run.stderr).splitlines() if line.strip()]
    return [line for line in lines if not any(allowed.match(line) for allowed in ALLOWED_OUTPUT)]


def test_a_generated_client_drives_a_loan_journey(contract, document, tmp_path, monkeypatch):
    unexpected = _generate(document, tmp_path)
    assert not unexpected, "\n".join(unexpected)
    monkeypatch.syspath_prepend(str(tmp_path))
    client_module = importlib.import_module("loancrm_client.client")

    def api(module: str):  # noqa: ANN202
        return importlib.import_module(f"loancrm_client.api.{module}")

    models = importlib.import_module("loancrm_client.models")
    anonymous = client_module.Client(base_url="http://gateway", raise_on_unexpected_status=True)
    anonymous.set_httpx_client(TestClient(contract.gateway, base_url="http://gateway"))

    def sign_in(username: str, password: str):  # noqa: ANN202
        token = api("authentication.authentication_issue_token").sync(
            client=anonymous, body=models.AuthenticationIssueTokenBody(
                grant_type=models.AuthenticationIssueTokenBodyGrantType.PASSWORD, username=username,
                password=password))
        assert isinstance(token, models.TokenResponse), token
        signed = client_module.AuthenticatedClient(base_url="http://gateway", token=token.access_token,
                                                   raise_on_unexpected_status=True)
        signed.set_httpx_client(TestClient(contract.gateway, base_url="http://gateway",
                                           headers={"Authorization": f"Bearer {token.access_token}"}))
        return signed

    contract.add_user("officer.contract", ["loan_officer"], branch="BJ001")
    officer, checker = sign_in("officer.contract", PASSWORD), sign_in("admin", ADMIN_PASSWORD)

    def key() -> str:
        return uuid.uuid4().hex

    customer = api("customer_customers.customers_register_customer").sync(
        client=officer, body=models.CustomerCreate.from_dict(person(branch="BJ001")), idempotency_key=key())
    assert isinstance(customer, models.CustomerRead), customer
    consent = api("customer_consents.consents_grant_consent").sync(
        customer.id, client=officer, idempotency_key=key(),
        body=models.CustomerConsentGrant.from_dict({"purpose": "credit_bureau_query", "source": "branch_form"}))
    assert isinstance(consent, models.CustomerConsentRead), consent

    # An applicant the policy sends to review, so that a second person decides.
    rows = german_rows()[:200]
    batch = api("scoring_scores.scores_score_batch").sync(
        client=officer, body=models.ScoringBatchRequest.from_dict({"rows": [{"features": row} for row in rows]}))
    assert isinstance(batch, models.ScoringBatchRead), batch
    features = next(row for row, score in zip(rows, batch.scores, strict=True) if score.decision.value == "review")
    score = api("scoring_scores.scores_score_applicant").sync(
        client=officer, body=models.ScoringScoreInput.from_dict({"customer_id": customer.id, "features": features}))
    assert isinstance(score, models.ScoringScoreRead) and score.decision.value == "review", score

    application = api("scoring_applications.applications_submit_application").sync(
        client=officer, body=models.ScoringApplicationCreate.from_dict({
            "customer_id": customer.id, "product": "personal_loan", "amount": "8000.00", "term_months": 12,
            "purpose": "home renovation", "features": features, "collateral": "apartment, Chaoyang"}))
    assert isinstance(application, models.ScoringApplicationDetail), application
    assert application.status.value == "in_review"
    decided = api("scoring_applications.applications_decide_application").sync(
        application.id, client=checker,
        body=models.ScoringDecisionCommand.from_dict({"decision": "approve", "reason": "income verified"}))
    assert isinstance(decided, models.ScoringApplicationDetail) and decided.status.value == "approved", decided
    shown = api("scoring_disclosure.disclosure_disclose_terms").sync(
        application.id, client=officer, body=models.ScoringDisclosureCommand.from_dict({}))
    assert isinstance(shown, models.ScoringDisclosureRead) and shown.total_cost is not None, shown
    acknowledged = api("scoring_disclosure.disclosure_acknowledge_disclosure").sync(
        application.id, client=officer, body=models.ScoringAcknowledgementCommand.from_dict({"channel": "branch"}))
    assert isinstance(acknowledged, models.ScoringDisclosureRead) and acknowledged.acknowledged_at, acknowledged
    disbursed = api("scoring_applications.applications_mark_disbursed").sync(
        application.id, client=officer,
        body=models.ScoringDisbursementCommand.from_dict({"disbursement_date": "2026-01-15"}))
    assert isinstance(disbursed, models.ScoringApplicationDetail) and disbursed.loan_id, disbursed

    receipt = api("monitoring_repayments.repayments_post_repayment").sync(
        disbursed.loan_id, client=officer, idempotency_key=key(),
        body=models.MonitoringRepaymentCreate.from_dict({"amount": "500.00", "value_date": "2026-02-15"}))
    assert isinstance(receipt, models.MonitoringPostingReceipt), receipt
    assert str(receipt.amount) == "500.00" and receipt.loan.id == disbursed.loan_id
    loan = api("monitoring_loans.loans_get_loan").sync(disbursed.loan_id, client=officer)
    assert isinstance(loan, models.MonitoringLoanDetail), loan
    assert loan.customer_id == customer.id and loan.external_id == application.id

    # An error is typed too: the same problem schema from every service.
    missing = api("monitoring_loans.loans_get_loan").sync("no-such-loan", client=officer)
    assert isinstance(missing, models.ProblemDetail) and missing.status == 404


def _path_values(contract) -> dict[str, str]:  # noqa: ANN001
    token = contract.token("admin")
    known = _records(contract, token)
    # The rule example changes a rule of its kind (a rule's kind never changes).
    rules = contract.client.get("/api/monitoring/rules", headers={"Authorization": f"Bearer {token}"}).json()["items"]
    known["code"] = next(rule["code"] for rule in rules if rule["kind"] == "dpd_reached")
    known["purpose"] = "credit_bureau_query"
    known["product"], known["grade"] = "personal_loan", "E"  # a reminder schedule's row
    # A user of its own for the access-change example (changing the caller's own would revoke its token).
    contract.add_user("example.target", ["loan_officer"], branch="BJ001")
    known["username"] = "example.target"
    # Ids of records the examples do not need to find: a 404 still shows the body passed validation.
    return {**known, **{name: "0" * 32 for name in ("complaint_id", "survey_id", "application_id", "override_id",
                                                     "alert_id", "check_id", "request_id",
                                                     "interaction_id")}}


def _with_ids(node: Any, values: dict[str, str]) -> Any:
    if isinstance(node, dict):
        return {k: values[k] if k in values and k.endswith("_id") and isinstance(v, str) else _with_ids(v, values)
                for k, v in node.items()}
    if isinstance(node, list):
        return [_with_ids(item, values) for item in node]
    return node


def test_every_request_example_passes_its_services_own_validation(contract):
    values = _path_values(contract)
    headers = contract.headers("admin")
    clients = {"gateway": contract.client, **contract.direct}
    sent = 0
    findings = []
    for service, client in clients.items():
        spec = client.get("/openapi.json").json()
        schemas = spec["components"]["schemas"]
        # The close-of-business run goes on in the background and moves the business date: sent last.
        operations = sorted(_operations(spec), key=lambda o: o[0] == "/cob/runs")
        for path, method, operation in operations:
            content = operation.get("requestBody", {}).get("content", {}).get("application/json")
            if content is None:
                continue
            schema = content["schema"]
            examples = schemas[schema["$ref"].rsplit("/", 1)[1]].get("examples", []) if "$ref" in schema else []
            for example in examples:
                # The example's ids stand for records of the caller's: the ones made here.
                example = _with_ids(example, values)
                url = re.sub(r"{(\w+)}", lambda m: str(example.get(m.group(1), values[m.group(1)])), path)
                extra = {"Idempotency-Key": uuid.uuid4().hex}
                if any(p["name"] == "If-Match" for p in operation.get("parameters", [])):
                    extra["If-Match"] = client.get(url, headers=headers).headers.get("etag", '"1"')
                response = client.request(method.upper(), url, json=example, headers={**headers, **extra})
                sent += 1
                # Sent by a caller the route lets in (a withdrawn consent may still refuse it, with its own title).
                refused = response.status_code == 401 or (response.status_code == 403 and
                                                          response.json()["title"] == "Forbidden")
                assert not refused, (method, url, response.text)
                fields = [e["field"] for e in response.json().get("errors") or []] if response.status_code == 422 \
                    else []
                own_fields = not fields or any(f.startswith("body") for f in fields)
                if response.status_code == 422 and own_fields and not STATE_RULES.search(response.json()["detail"]):
                    findings.append(f"{service} {method.upper()} {path}: {response.text[:300]}")
    assert sent > 40
    assert not findings, "\n".join(findings)
