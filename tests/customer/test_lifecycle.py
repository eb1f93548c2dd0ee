"""Erasure and closure wait until nothing is owed (issue 15, Found 4): the customer service asks monitoring."""

import json
import socket
import uuid
from datetime import date
from decimal import Decimal

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from services.customer.main import create_app
from shared.settings import KernelSettings
from tests.monitoring.api.helpers import assert_problem, set_today

TODAY = date(2031, 4, 12)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def customer_without_monitoring(suite):
    """The same customer database, with monitoring at a port nobody listens on."""
    kernel = KernelSettings(**{**suite.kernel.model_dump(), "monitoring_url": f"http://127.0.0.1:{_closed_port()}"})
    # The gateway stays reachable: the guard gets the service's own token there before asking monitoring.
    app = create_app(kernel, verifier=suite.services["customer"].state.verifier,
                     transports={"gateway": httpx.ASGITransport(suite.gateway)})
    with TestClient(app, base_url="http://customer") as client:
        yield client


def book_overdue_loan(suite, customer, officer, **overrides):
    """A loan disbursed in January whose February and March instalments are unpaid: 56 days past due today."""
    set_today(suite, TODAY)
    body = {"customer_id": customer["id"], "product": "personal_loan", "principal": "12000.00",
            "annual_rate": "0.12", "term_months": 12, "repayment_method": "equal_instalment",
            "disbursement_date": "2031-01-15", "purpose": "working capital", "officer": "officer",
            "branch": customer["branch"], **overrides}
    response = suite.direct["monitoring"].post("/loans", json=body,
                                               headers={**officer, "Idempotency-Key": uuid.uuid4().hex})
    assert response.status_code == 201, response.text
    return response.json()


def repay_in_full(suite, loan, officer):
    owed = sum(Decimal(i["total"]) for i in loan["schedule"])
    response = suite.direct["monitoring"].post(f"/loans/{loan['id']}/repayments", json={"amount": str(owed)},
                                               headers={**officer, "Idempotency-Key": uuid.uuid4().hex})
    assert response.status_code == 201, response.text
    assert suite.direct["monitoring"].get(f"/loans/{loan['id']}", headers=officer).json()["status"] == "closed"


def test_erasure_and_closure_answer_409_naming_the_loans_still_owed(suite, api, actors):
    officer, admin = actors.officer("LC01"), actors.admin()
    customer = actors.register(officer, branch="LC01")
    loan = book_overdue_loan(suite, customer, officer)
    _refused_while_owing(api, f"/customers/{customer['id']}", loan, officer, admin)


def _refused_while_owing(api, url, loan, closure, erasure) -> None:  # noqa: ANN001
    """Closure (as `closure`) and erasure (as `erasure`) each a 409 naming the overdue loan; the customer intact."""
    for path, headers, body in (("closure", closure, {"reason": "moved abroad"}), ("erasure", erasure, None)):
        refused = api.post(f"{url}/{path}", json=body, headers={**headers, "Idempotency-Key": uuid.uuid4().hex})
        assert refused.status_code == 409, refused.text
        problem = refused.json()
        assert problem["type"] == "urn:loancrm:customer:loans-outstanding"
        assert [(a["id"], a["outstanding_principal"], a["dpd"]) for a in problem["active_loans"]] == [
            (loan["id"], "12000.00", 56)]
    still = api.get(url, headers=closure).json()
    assert still["status"] == "active" and still["name"] == "Zhang San"


def _place_at_branch(suite, loan_id, branch):
    """Put a loan at another branch than its customer's, in monitoring's own database: how a loan booked before
    loans had to be booked at their customer's branch lies (booking one there now is refused)."""
    with suite.database("monitoring").session() as session:
        session.execute(text("UPDATE loans SET branch = :branch WHERE id = :id"), {"branch": branch, "id": loan_id})
        session.commit()


def test_a_loan_at_another_branch_still_stops_closure_and_erasure(suite, api, actors):
    """The guard asks monitoring as the customer service, not as the caller: monitoring shows a loan officer the
    loans of their own branch only, and the customer still owes the one booked elsewhere."""
    officer, admin = actors.officer("LC05"), actors.admin()
    customer = actors.register(officer, branch="LC05")
    loan = book_overdue_loan(suite, customer, officer)
    _place_at_branch(suite, loan["id"], "LC06")
    mine = suite.direct["monitoring"].get(f"/customers/{customer['id']}/risk", headers=officer)
    assert mine.status_code == 200 and mine.json()["active_loans"] == []  # what the officer's own token shows
    _refused_while_owing(api, f"/customers/{customer['id']}", loan, officer, admin)


def _problem_without(answer, customer_id):  # noqa: ANN001, ANN202
    """A 404 problem as the client reads it, the id it names and its request id aside."""
    body = json.loads(answer.text.replace(customer_id, "<id>"))
    return answer.status_code, answer.headers["content-type"], {k: v for k, v in body.items() if k != "request_id"}


def test_the_risk_of_an_unknown_customer_or_one_out_of_sight_is_a_404_like_any_customer_read(suite, actors):
    """The pen test: `GET /customers/{id}/risk` answered zeros (no loans, nothing owed) for an id no customer has,
    monitoring not knowing customers. Monitoring now asks the customer service as the caller first: an unknown id
    is a 404 problem, to every role, and a customer of another branch reads exactly alike; a customer the caller
    sees still answers, loans or none."""
    officer, stranger = actors.officer("LC07"), actors.officer("LC08")
    customer = actors.register(officer, branch="LC07")
    unknown = uuid.uuid4().hex
    for client, prefix in ((suite.direct["monitoring"], ""), (suite.client, "/api/monitoring")):
        for headers in (officer, stranger, actors.admin(), actors.user("risk_analyst"), actors.user("collector")):
            assert_problem(client.get(f"{prefix}/customers/{unknown}/risk", headers=headers), 404)
        hidden = client.get(f"{prefix}/customers/{customer['id']}/risk", headers=stranger)
        missing = client.get(f"{prefix}/customers/{unknown}/risk", headers=stranger)
        assert _problem_without(hidden, customer["id"]) == _problem_without(missing, unknown)
        mine = client.get(f"{prefix}/customers/{customer['id']}/risk", headers=officer)
        assert mine.status_code == 200, mine.text
        assert (mine.json()["active_loans"], mine.json()["outstanding_principal"]) == ([], "0.00")


def test_after_repayment_erasure_removes_the_person_and_keeps_the_loan_under_the_pseudonym(suite, api, actors):
    officer, admin = actors.officer("LC02"), actors.admin()
    customer = actors.register(officer, branch="LC02", external_id=f"crm-{uuid.uuid4().hex[:8]}")
    loan = book_overdue_loan(suite, customer, officer)
    repay_in_full(suite, loan, officer)

    erased = api.post(f"/customers/{customer['id']}/erasure", headers=admin)
    assert erased.status_code == 200, erased.text
    record = erased.json()
    removed = ("name", "national_id", "phone", "email", "date_of_birth", "address", "monthly_income", "assets",
               "region", "external_id", "external_source")
    assert {name: record[name] for name in removed} == dict.fromkeys(removed)
    assert (record["id"], record["branch"], record["status"]) == (customer["id"], "LC02", "erased")
    assert api.get(f"/customers/{customer['id']}/portrait", headers=officer).json()["monthly_income"] is None
    kept = suite.direct["monitoring"].get(f"/loans/{loan['id']}", headers=officer).json()
    assert kept["customer_id"] == customer["id"] and kept["principal"] == "12000.00"


def test_closure_after_repayment_is_allowed(suite, api, actors):
    officer = actors.officer("LC03")
    customer = actors.register(officer, branch="LC03")
    repay_in_full(suite, book_overdue_loan(suite, customer, officer), officer)
    closed = api.post(f"/customers/{customer['id']}/closure", json={"reason": "moved abroad"}, headers=officer)
    assert closed.status_code == 200 and closed.json()["status"] == "closed"


def test_a_closed_customer_is_offered_no_new_credit(api, actors):
    """As none is scored or booked for them: the portrait's credit hold says so (a clean record had none)."""
    officer = actors.officer("LC04")
    customer = actors.register(officer, branch="LC04")
    offered = api.get(f"/customers/{customer['id']}/offers", headers=officer).json()["offers"]
    assert {"loan", "card"} & {offer["kind"] for offer in offered}
    closed = api.post(f"/customers/{customer['id']}/closure", json={"reason": "moved abroad"}, headers=officer)
    assert closed.status_code == 200, closed.text
    offers = api.get(f"/customers/{customer['id']}/offers", headers=officer)
    assert offers.status_code == 200, offers.text
    assert {offer["kind"] for offer in offers.json()["offers"]}.isdisjoint({"loan", "card"}), offers.text
    portrait = api.get(f"/customers/{customer['id']}/portrait", headers=officer).json()
    assert (portrait["status"], portrait["credit_hold"]) == ("closed", "the customer is closed: no new credit")


def test_with_monitoring_down_nothing_is_erased_or_closed_blindly(api, actors, customer_without_monitoring):
    officer, admin = actors.officer("LC04"), actors.admin()
    customer = actors.register(officer, branch="LC04")
    url = f"/customers/{customer['id']}"
    for path, headers, body in (("erasure", admin, None), ("closure", officer, {"reason": "moved abroad"})):
        answer = customer_without_monitoring.post(f"{url}/{path}", json=body, headers=headers)
        assert answer.status_code == 503, answer.text
        assert answer.json()["service"] == "monitoring"
    assert api.get(url, headers=officer).json()["status"] == "active"
    # An id the caller cannot see is a 404 before any peer is asked.
    assert customer_without_monitoring.post("/customers/" + "0" * 32 + "/erasure", headers=admin).status_code == 404
