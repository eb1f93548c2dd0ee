"""Webhooks as a partner or a back end meets them: subscribe, receive signed events on a receiver of its own (here
on loopback), survive being down for a while, read the delivery log, ask for a redelivery; and never receive an
event about an object it could not read through the API."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import threading
import time
import uuid
from datetime import date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from sqlalchemy import func, select

from gateway.webhooks.models import now
from gateway.webhooks.service import verify_signature
from services.monitoring.db import outbox as monitoring_outbox
from services.scoring.db import outbox as scoring_outbox
from shared.errors import Problem
from tests.monitoring.api.helpers import (alerts_of, borrowers, champion, closed_port, cob, officer, register, role,
                                         set_today)
from tests.scoring.api.conftest import german_rows
from tests.scoring.api.helpers import acknowledge_terms, new_customer

__all__ = ["borrowers", "champion"]  # fixtures, used by name
ALL_TYPES = ["alert.raised", "alert.resolved", "application.decided", "loan.disbursed", "repayment.posted"]


def receiver_verifies(secret: str, header: str, body: bytes, tolerance: int = 300) -> bool:
    """The README's receiver-side check, as a partner would copy it."""
    fields = dict(part.split("=", 1) for part in header.split(","))
    timestamp, sent = int(fields["t"]), fields["v1"]
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return abs(time.time() - timestamp) <= tolerance and hmac.compare_digest(expected, sent)


class Receiver:
    """A partner's endpoint on loopback, in a thread; answers `status` to every POST and keeps what it got."""

    def __init__(self, port: int | None = None, status: int = 200) -> None:
        self.port, self.status = port or closed_port(), status
        self.received: list[tuple[dict[str, str], bytes]] = []
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/loancrm/events"

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the http.server hook
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def events(self) -> list[dict]:
        return [json.loads(body) for _, body in self.received]


@pytest.fixture
def receiver():  # noqa: ANN201
    running = Receiver().start()
    yield running
    running.stop()


def run_pass(suite, at: datetime | None = None):  # noqa: ANN001, ANN201
    """One relay and delivery pass, in the gateway's own event loop, as its background task runs it."""
    return suite.client.portal.call(suite.gateway.state.webhooks.run_once, at)


def subscribe(suite, headers: dict[str, str], url: str, types: list[str] | None = None) -> dict:  # noqa: ANN001
    response = suite.client.post("/webhooks/subscriptions", json={"url": url, "event_types": types or ALL_TYPES},
                                 headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


def deliveries(suite, headers: dict[str, str], **params: str) -> list[dict]:  # noqa: ANN001
    response = suite.client.get("/webhooks/deliveries", params={"limit": 200, **params}, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()["items"]


def event_ids(suite, service: str, subject_id: str) -> list[str]:  # noqa: ANN001
    table = (scoring_outbox if service == "scoring" else monitoring_outbox).table
    with suite.database(service).session() as session:
        return list(session.execute(select(table.c.id).where(table.c.subject_id == subject_id)).scalars())


@pytest.fixture(scope="module")
def approving(suite, champion) -> dict:  # noqa: ANN001
    """Features the champion approves at submission."""
    rows = german_rows()[:100]
    scores = suite.direct["scoring"].post("/scores:batch", json={"rows": [{"features": r} for r in rows]},
                                          headers=role(suite, "risk_analyst")).json()["scores"]
    return next(row for row, score in zip(rows, scores) if score["decision"] == "approve")


def submit(suite, headers: dict[str, str], features: dict, branch: str = "BJ001") -> dict:  # noqa: ANN001
    body = {"customer_id": new_customer(suite, headers, branch=branch), "product": "personal_loan",
            "amount": "8000.00", "term_months": 12, "purpose": "home renovation", "features": features,
            "branch": branch}
    response = suite.direct["scoring"].post("/applications", json=body, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


def pay(suite, loan_id: str, amount: str = "100.00") -> dict:  # noqa: ANN001
    response = suite.direct["monitoring"].post(f"/loans/{loan_id}/repayments", json={"amount": amount},
                                               headers={**officer(suite), "Idempotency-Key": uuid.uuid4().hex})
    assert response.status_code == 201, response.text
    return response.json()


def test_a_subscriber_receives_each_business_event_signed(suite, borrowers, approving, receiver):  # noqa: ANN001
    admin = suite.headers("admin")
    created = subscribe(suite, admin, receiver.url)
    secret = created["secret"]
    assert secret.startswith("whsec_") and created["event_types"] == ALL_TYPES
    shown = suite.client.get(f"/webhooks/subscriptions/{created['id']}", headers=admin).json()
    assert "secret" not in shown and shown["url"] == receiver.url

    application = submit(suite, officer(suite), approving)
    assert application["status"] == "approved"
    acknowledge_terms(suite, application["id"], officer(suite))
    disbursed = suite.direct["scoring"].post(f"/applications/{application['id']}/disbursement",
                                             json={"disbursement_date": "2026-01-15"}, headers=officer(suite))
    assert disbursed.status_code == 200, disbursed.text
    loan_id = disbursed.json()["loan_id"]
    posting = pay(suite, loan_id)
    # An alert raised by the close of business and resolved by a collector.
    set_today(suite, date(2032, 1, 10))
    loan = register(suite, borrowers, disbursement_date="2032-01-10")
    cob(suite, date(2032, 2, 11))
    alert = next(a for a in alerts_of(suite, loan["id"]) if a["status"] == "open")
    collector = role(suite, "collector")
    for action in ("acknowledge", "resolve"):
        moved = suite.direct["monitoring"].post(f"/alerts/{alert['id']}/{action}", json={"note": "paid"},
                                                headers=collector)
        assert moved.status_code == 200, moved.text

    result = run_pass(suite)
    assert result.delivered >= 5
    by_subject: dict[tuple[str, str], dict] = {}
    for headers, body in receiver.received:
        assert receiver_verifies(secret, headers["loancrm-signature"], body), headers
        assert verify_signature(secret, headers["loancrm-signature"], body)
        assert not verify_signature("whsec_another", headers["loancrm-signature"], body)
        event = json.loads(body)
        assert headers["loancrm-event-id"] == event["id"] and headers["loancrm-event-type"] == event["type"]
        subject = event["data"].get("alert_id") or event["data"].get("posting_id") or event["data"]["application_id"]
        by_subject[event["type"], subject] = event
    decided = by_subject["application.decided", application["id"]]["data"]
    assert decided["status"] == "approved" and decided["customer_id"] == application["customer_id"]
    assert decided["approved_amount"] == application["approved_amount"] and decided["branch"] == "BJ001"
    paid_out = by_subject["loan.disbursed", application["id"]]["data"]
    assert paid_out["loan_id"] == loan_id and paid_out["disbursed_by"] == "officer.bj001"
    repaid = by_subject["repayment.posted", posting["id"]]["data"]
    assert (repaid["loan_id"], repaid["amount"], repaid["customer_id"]) == (loan_id, "100.00",
                                                                            application["customer_id"])
    raised = by_subject["alert.raised", alert["id"]]["data"]
    assert (raised["loan_id"], raised["rule"], raised["status"]) == (loan["id"], alert["rule"], "open")
    resolved = by_subject["alert.resolved", alert["id"]]["data"]
    assert (resolved["status"], resolved["resolved_by"]) == ("resolved", "collector.one")
    # A second pass sends nothing again: each event is delivered once per subscription.
    before = len(receiver.received)
    run_pass(suite)
    assert len(receiver.received) == before
    log = deliveries(suite, admin, subscription_id=created["id"])
    assert {d["status"] for d in log} == {"delivered"} and all(d["attempts"] == 1 for d in log)
    assert all(d["last_status_code"] == 200 and d["next_attempt_at"] is None for d in log)


def test_a_receiver_down_for_a_while_gets_the_event_once_it_is_back(suite, borrowers):  # noqa: ANN001
    down = Receiver()  # its port is closed until it starts
    headers = officer(suite)
    subscription = subscribe(suite, headers, down.url, ["repayment.posted"])
    loan = register(suite, borrowers)
    posting = pay(suite, loan["id"])
    start = now()
    run_pass(suite, start)
    [first] = deliveries(suite, headers, subscription_id=subscription["id"])
    assert (first["status"], first["attempts"], first["last_status_code"]) == ("pending", 1, None)
    assert "ConnectError" in first["last_error"]
    retry_at = datetime.fromisoformat(first["next_attempt_at"])
    # Back-off: 30 s doubled per attempt, less up to half of it as jitter.
    assert start + timedelta(seconds=15) <= retry_at <= start + timedelta(seconds=31)
    run_pass(suite, start + timedelta(seconds=1))  # not due yet: nothing is attempted
    assert deliveries(suite, headers, subscription_id=subscription["id"])[0]["attempts"] == 1
    run_pass(suite, retry_at + timedelta(seconds=1))  # still down: a longer wait
    second = deliveries(suite, headers, subscription_id=subscription["id"])[0]
    assert (second["status"], second["attempts"]) == ("pending", 2)
    second_wait = datetime.fromisoformat(second["next_attempt_at"]) - (retry_at + timedelta(seconds=1))
    assert timedelta(seconds=30) <= second_wait <= timedelta(seconds=61)
    down.start()
    try:
        run_pass(suite, datetime.fromisoformat(second["next_attempt_at"]) + timedelta(seconds=1))
    finally:
        down.stop()
    done = deliveries(suite, headers, subscription_id=subscription["id"])[0]
    assert (done["status"], done["attempts"], done["last_status_code"]) == ("delivered", 3, 200)
    [event] = down.events()
    assert event["type"] == "repayment.posted" and event["data"]["posting_id"] == posting["id"]


def test_after_its_last_attempt_a_delivery_fails_and_is_redelivered_by_id(suite, borrowers):  # noqa: ANN001
    failing = Receiver(status=500).start()
    settings = suite.gateway.state.webhooks.settings
    headers = officer(suite)
    try:
        subscription = subscribe(suite, headers, failing.url, ["repayment.posted"])
        pay(suite, register(suite, borrowers)["id"])
        at = now()
        limit, settings.max_attempts = settings.max_attempts, 2
        try:
            run_pass(suite, at)
            run_pass(suite, at + timedelta(hours=1))
        finally:
            settings.max_attempts = limit
        [failed] = deliveries(suite, headers, subscription_id=subscription["id"])
        assert (failed["status"], failed["attempts"], failed["last_status_code"]) == ("failed", 2, 500)
        assert failed["next_attempt_at"] is None and failed["last_error"] == "answered 500"
        assert [d["id"] for d in deliveries(suite, headers, status="failed")].count(failed["id"]) == 1
        failing.status = 200
        path = f"/webhooks/deliveries/{failed['id']}/redeliver"
        key = {"Idempotency-Key": uuid.uuid4().hex}
        queued = suite.client.post(path, headers={**headers, **key})
        assert queued.status_code == 200, queued.text
        assert (queued.json()["status"], queued.json()["attempts"], queued.json()["redeliveries"]) == (
            "pending", 0, 1)
        again = suite.client.post(path, headers={**headers, **key})  # a retried request queues it once
        assert again.json() == queued.json()
        run_pass(suite, at + timedelta(hours=2))
        done = suite.client.get(f"/webhooks/deliveries/{failed['id']}", headers=headers).json()
        assert (done["status"], done["attempts"], done["redeliveries"]) == ("delivered", 1, 1)
        # The same event, three times: receivers deduplicate on LoanCRM-Event-Id.
        assert len({h["loancrm-event-id"] for h, _ in failing.received}) == 1 and len(failing.received) == 3
    finally:
        failing.stop()
    other = suite.client.post(path, headers=suite.headers("officer.sh009", ["loan_officer"], "SH009"))
    assert other.status_code == 404


def test_a_partner_receives_only_events_about_its_own_objects(suite, borrowers, approving):  # noqa: ANN001
    partner, rival = (suite.headers(name, ["partner"]) for name in ("partner.hooks", "rival.hooks"))
    bj, sh = officer(suite), officer(suite, "SH001")
    nowhere = f"http://127.0.0.1:{closed_port()}/hook"
    subscriptions = {name: subscribe(suite, who, nowhere)["id"] for name, who in
                     (("partner", partner), ("rival", rival), ("bj", bj), ("sh", sh))}
    application = submit(suite, partner, approving)
    posting = pay(suite, register(suite, borrowers)["id"])
    suite.client.portal.call(suite.gateway.state.webhooks.relay, now())
    [decided] = event_ids(suite, "scoring", application["id"])
    [repaid] = event_ids(suite, "monitoring", posting["id"])

    def received(name: str, who: dict[str, str]) -> set[str]:
        got = {d["event_id"] for d in deliveries(suite, who, subscription_id=subscriptions[name])}
        return got & {decided, repaid}

    assert received("partner", partner) == {decided}  # its application; monitoring has nothing of a partner's
    assert received("rival", rival) == set()
    assert received("bj", bj) == {decided, repaid}
    assert received("sh", sh) == set()
    # Nor can the rival read or redeliver the partner's deliveries, or list its subscriptions.
    theirs = deliveries(suite, partner, subscription_id=subscriptions["partner"])[0]["id"]
    assert suite.client.get(f"/webhooks/deliveries/{theirs}", headers=rival).status_code == 404
    assert suite.client.post(f"/webhooks/deliveries/{theirs}/redeliver", headers=rival).status_code == 404
    mine = suite.client.get("/webhooks/subscriptions", headers=rival).json()["items"]
    assert [s["id"] for s in mine] == [subscriptions["rival"]]
    assert suite.client.delete(f"/webhooks/subscriptions/{subscriptions['partner']}",
                               headers=rival).status_code == 404
    # An admin sees every subscription.
    every = suite.client.get("/webhooks/subscriptions", params={"limit": 200}, headers=suite.headers("admin"))
    assert set(subscriptions.values()) <= {s["id"] for s in every.json()["items"]}


def _partner_client(suite, client_id: str, scopes: list[str] | None = None) -> dict[str, str]:  # noqa: ANN001
    """A partner system's client (the admin's `POST /clients`) and the bearer header of a token of its own."""
    created = suite.client.post("/clients", json={"client_id": client_id, "name": client_id, "scopes": scopes},
                                headers={**suite.headers("admin"), "Idempotency-Key": uuid.uuid4().hex})
    assert created.status_code == 201, created.text
    token = suite.client.post("/auth/token", data={"grant_type": "client_credentials"},
                              auth=(client_id, created.json()["client_secret"]))
    assert token.status_code == 200, token.text
    return {"Authorization": f"Bearer {token.json()['access_token']}"}


def test_a_partner_system_receives_only_what_its_allowed_scopes_read_and_nothing_once_disabled(  # noqa: ANN001
        suite, approving):
    nowhere = f"http://127.0.0.1:{closed_port()}/hook"
    # Allowed to submit applications but not to read them back: it may not read them from a webhook either.
    blind = _partner_client(suite, "blind-broker", ["customer:read", "customer:write", "scoring:write", "webhooks:read",
                                                    "webhooks:write"])
    disabled = _partner_client(suite, "gone-broker")
    subscriptions = {"blind": subscribe(suite, blind, nowhere)["id"], "gone": subscribe(suite, disabled, nowhere)["id"]}
    submitted = {"blind": submit(suite, blind, approving)["id"], "gone": submit(suite, disabled, approving)["id"]}
    assert suite.client.post("/clients/gone-broker/disable", headers=suite.headers("admin")).status_code == 200
    suite.client.portal.call(suite.gateway.state.webhooks.relay, now())
    admin = suite.headers("admin")
    for name in ("blind", "gone"):
        [decided] = event_ids(suite, "scoring", submitted[name])
        sent = {d["event_id"] for d in deliveries(suite, admin, subscription_id=subscriptions[name])}
        assert decided not in sent, name


def test_a_target_whose_name_resolves_to_a_private_address_is_never_sent_to(suite, borrowers, monkeypatch):  # noqa: ANN001
    """A name is taken at subscription (DNS may change); what it resolves to when a delivery is due is checked."""
    real = socket.getaddrinfo

    def resolver(host, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        if host == "hooks.partner.test":
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.0.0.7", 443))]
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    admin = suite.headers("admin")
    subscription = subscribe(suite, admin, "https://hooks.partner.test/hook", ["repayment.posted"])
    pay(suite, register(suite, borrowers)["id"])
    run_pass(suite)
    [attempted] = deliveries(suite, admin, subscription_id=subscription["id"])
    assert attempted["attempts"] == 1 and attempted["last_status_code"] is None
    assert "10.0.0.7" in attempted["last_error"] and "private" in attempted["last_error"]


def test_a_delivery_goes_to_the_address_that_was_checked_whatever_dns_answers_next(suite, borrowers,  # noqa: ANN001
                                                                                      monkeypatch):
    """DNS rebinding: the name resolved to a public address for the check, then to loopback. The delivery goes to
    the checked address, with the name as Host and as the TLS name; it never resolves the name a second time."""
    real, answers = socket.getaddrinfo, iter(["93.184.216.34"])

    def resolver(host, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        if host == "rebind.partner.test":
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (next(answers, "127.0.0.1"), 443))]
        return real(host, *args, **kwargs)

    sent, network = [], httpx.AsyncHTTPTransport()

    async def receiver(request: httpx.Request) -> httpx.Response:
        if not request.headers["host"].startswith("rebind.partner.test"):
            return await network.handle_async_request(request)  # the other tests' receivers, as before
        sent.append((request.url.host, request.url.port, request.headers["host"],
                     request.extensions.get("sni_hostname")))
        return httpx.Response(204)

    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    webhooks = suite.gateway.state.webhooks
    monkeypatch.setattr(webhooks, "http", httpx.AsyncClient(transport=httpx.MockTransport(receiver)))
    admin = suite.headers("admin")
    subscription = subscribe(suite, admin, "https://rebind.partner.test:8443/hook", ["repayment.posted"])
    pay(suite, register(suite, borrowers)["id"])
    run_pass(suite)
    assert sent == [("93.184.216.34", 8443, "rebind.partner.test:8443", "rebind.partner.test")]
    [delivered] = deliveries(suite, admin, subscription_id=subscription["id"])
    assert delivered["last_status_code"] == 204


def test_an_event_is_recorded_with_its_write_or_not_at_all(suite, borrowers, monkeypatch):  # noqa: ANN001
    loan = register(suite, borrowers)

    def postings_of_loan() -> int:
        table = monitoring_outbox.table
        with suite.database("monitoring").session() as session:
            return session.execute(select(func.count()).select_from(table).where(
                table.c.type == "repayment.posted", table.c.payload["loan_id"].as_string() == loan["id"])).scalar()

    # The command fails after its posting and its event were written: neither stays.
    written = monitoring_outbox.written

    def write_then_refuse(*args: object, **kwargs: object) -> None:
        written(*args, **kwargs)
        raise Problem(409, "Conflict", "a late refusal")

    monkeypatch.setattr(monitoring_outbox, "written", write_then_refuse)
    refused = suite.direct["monitoring"].post(f"/loans/{loan['id']}/repayments", json={"amount": "100.00"},
                                              headers={**officer(suite), "Idempotency-Key": uuid.uuid4().hex})
    assert refused.status_code == 409
    monkeypatch.undo()
    assert postings_of_loan() == 0
    assert suite.direct["monitoring"].get(f"/loans/{loan['id']}/postings", headers=officer(suite)).json()["items"] == []
    pay(suite, loan["id"])
    assert postings_of_loan() == 1


def test_the_event_feed_is_for_the_system_identity_only(suite, borrowers):  # noqa: ANN001
    loan = register(suite, borrowers)
    pay(suite, loan["id"])
    pay(suite, loan["id"])
    claims = {"iss": suite.kernel.jwt_issuer, "aud": suite.kernel.jwt_audience, "sub": "system:tests",
              "iat": int(time.time()), "exp": int(time.time()) + 60, "jti": uuid.uuid4().hex, "sid": uuid.uuid4().hex,
              "roles": ["system"], "scope": "events:read", "branch": None}
    system = {"Authorization": f"Bearer {suite.sign(claims)}"}
    page = suite.direct["monitoring"].get("/events", params={"after": 0, "limit": 2}, headers=system)
    assert page.status_code == 200, page.text
    first, second = page.json()["items"]
    assert first["seq"] < second["seq"] and page.json()["next_cursor"] == str(second["seq"])
    after = suite.direct["monitoring"].get("/events", params={"after": first["seq"], "limit": 1}, headers=system)
    assert after.json()["items"][0]["id"] == second["id"]
    assert suite.direct["monitoring"].get("/events", headers=suite.headers("admin")).status_code == 403
    assert suite.direct["monitoring"].get("/loans", headers=system).status_code == 403


@pytest.mark.parametrize(("url", "why"), [
    ("http://partner.example.com/hook", "https"), ("ftp://partner.example.com/hook", "https"),
    ("https://10.1.2.3/hook", "private"), ("https://169.254.169.254/latest", "private"),
    ("https://user:pw@partner.example.com/hook", "user"), ("https://localhost/hook", "this host"),
    # Spellings of private and loopback addresses a resolver takes as literals too, and a trailing dot.
    ("https://127.1/hook", "private"), ("https://0x7f.0.0.1/hook", "private"), ("https://2130706433/hook", "private"),
    ("https://012.0.0.1/hook", "private"), ("https://10.1.2.3./hook", "private"),
    ("https://localhost./hook", "this host"),
    ("https://partner.example.com/hook\r\nX-Injected: 1", "control"), ("https://partner.example.com/a b", "spaces"),
])
def test_a_target_must_be_https_or_this_hosts_loopback(suite, url, why):  # noqa: ANN001
    response = suite.client.post("/webhooks/subscriptions", json={"url": url, "event_types": ["loan.disbursed"]},
                                 headers=officer(suite))
    assert response.status_code == 422, response.text
    [error] = response.json()["errors"]
    assert error["field"] == "body.url" and why in error["message"]


def test_a_subscription_shows_its_secret_once_and_can_be_deleted(suite):  # noqa: ANN001
    headers = officer(suite)
    body = {"url": "https://partner.example.com/hook", "event_types": ["loan.disbursed", "loan.disbursed"]}
    key = {"Idempotency-Key": uuid.uuid4().hex}
    first = suite.client.post("/webhooks/subscriptions", json=body, headers={**headers, **key})
    assert first.status_code == 201 and first.json()["secret"] and first.json()["event_types"] == ["loan.disbursed"]
    replay = suite.client.post("/webhooks/subscriptions", json=body, headers={**headers, **key})
    assert replay.json()["id"] == first.json()["id"] and replay.json()["secret"] is None
    unknown = suite.client.post("/webhooks/subscriptions", json={**body, "event_types": ["loan.eaten"]},
                                headers=headers)
    assert unknown.status_code == 422
    path = f"/webhooks/subscriptions/{first.json()['id']}"
    assert suite.client.delete(path, headers=headers).status_code == 204
    assert suite.client.get(path, headers=headers).status_code == 404
    assert suite.client.delete(path, headers=headers).status_code == 404


def test_subscriptions_and_deliveries_come_in_cursor_pages(suite):  # noqa: ANN001
    headers = suite.headers("pager.hooks", ["risk_analyst"])
    made = [subscribe(suite, headers, f"https://partner{n}.example.com/hook")["id"] for n in range(3)]
    seen, cursor = [], None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = suite.client.get("/webhooks/subscriptions", params=params, headers=headers).json()
        seen += [s["id"] for s in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == made
    bad = suite.client.get("/webhooks/deliveries", params={"cursor": "not-ours"}, headers=headers)
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "query.cursor"
