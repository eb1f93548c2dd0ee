"""Customer records as bankers and partners meet them: validation, duplicates, masking, scope, ETags, erasure."""

import asyncio
import os
import stat
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta

import httpx
import pytest
from sqlalchemy import inspect, text

from services.customer.customers.pii import KEY_FILE
from services.customer.db import audit
from tests.customer.factory import key, national_id, person, phone, unique


def _problem(response, status, field=None):
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    if field:
        assert field in [e["field"] for e in body["errors"]], body
    return body


def test_reads_served_together_each_answer_their_own_customer_with_their_own_records(suite, api, actors):
    """Reads by id that arrive together are read, logged and committed in one batch (shared/audit/grouped.py):
    each still answers its own customer, one out of scope or unknown fails alone, and each customer shown in full
    has its own access-log entry and audit row under its own request id."""
    officer = actors.officer("BJ201")
    mine = [actors.register(officer, branch="BJ201")["id"] for _ in range(3)]
    theirs = actors.register(actors.officer("BJ202"), branch="BJ202")["id"]
    wanted = [*mine, theirs, "no-such-customer", *mine]
    requests = [f"together-{uuid.uuid4().hex}" for _ in wanted]

    async def read_all() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=suite.services["customer"])
        async with httpx.AsyncClient(transport=transport, base_url="http://customer") as client:
            return await asyncio.gather(*(client.get(f"/customers/{customer_id}",
                                                     headers={**officer, "X-Request-Id": request_id})
                                          for customer_id, request_id in zip(wanted, requests, strict=True)))

    answers = asyncio.run(read_all())
    assert [a.status_code for a in answers] == [200, 200, 200, 404, 404, 200, 200, 200]
    auditor = actors.user("auditor")
    for customer_id, request_id, answer in zip(wanted, requests, answers, strict=True):
        trail = api.get("/audit", params={"request_id": request_id}, headers=auditor).json()["items"]
        if answer.status_code == 404:
            assert trail == [], trail
            continue
        assert answer.json()["id"] == customer_id and answer.json()["pii_view"] == "full"
        assert [(row["action"], row["entity_id"], row["actor"]) for row in trail] == [
            ("read", customer_id, trail[0]["actor"])] and trail[0]["actor"].startswith("loanofficer.")
    for customer_id in mine:
        log = api.get("/access-log", params={"customer_id": customer_id}, headers=auditor).json()["items"]
        seen = sorted(entry["request_id"] for entry in log if entry["via"] == "get_customer")
        assert seen == sorted(r for c, r in zip(wanted, requests, strict=True) if c == customer_id)


def test_reads_that_arrive_while_a_batch_commits_are_answered_only_once_their_own_rows_are_committed(suite, api,
                                                                                                  actors,
                                                                                                  monkeypatch):
    """While one batch of reads is being committed (held here as its audit rows go out, before they commit), reads
    that arrive go into the next batch: none of them, nor the read being committed, answers before its own audit
    row is committed; then each answers its own customer, has its own row under its own request id, after the
    first one's, and the chain still verifies."""
    app = suite.services["customer"]
    officer = actors.officer("BJ301")
    ids = [actors.register(officer, branch="BJ301")["id"] for _ in range(3)]
    requests = [f"during-{uuid.uuid4().hex}" for _ in ids]
    armed, committing, release = threading.Event(), threading.Event(), threading.Event()

    send = audit.send

    def hold_the_first_commit(connection, entries):
        if armed.is_set() and not committing.is_set():
            committing.set()
            release.wait(30)
        return send(connection, entries)

    def queued() -> int:  # reads waiting for the next batch
        return sum(len(queue.waiting) for queue in app.state.read_log._queues.values())  # noqa: SLF001

    async def until(condition) -> None:
        for _ in range(3000):
            if condition():
                return
            await asyncio.sleep(0.01)
        raise AssertionError("never happened")

    async def read_during_a_commit() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://customer") as client:
            def read(n: int) -> asyncio.Task[httpx.Response]:
                return asyncio.create_task(client.get(f"/customers/{ids[n]}",
                                                      headers={**officer, "X-Request-Id": requests[n]}))

            armed.set()
            first = read(0)
            await until(committing.is_set)
            later = [read(1), read(2)]
            await until(lambda: queued() == 2)
            assert not first.done() and not any(task.done() for task in later)
            release.set()
            return [await first, *[await task for task in later]]

    monkeypatch.setattr(audit, "send", hold_the_first_commit)
    try:
        answers = asyncio.run(read_during_a_commit())
    finally:
        release.set()
    assert [(a.status_code, a.json()["id"]) for a in answers] == [(200, customer_id) for customer_id in ids]
    auditor = actors.user("auditor")
    seqs = []
    for customer_id, request_id in zip(ids, requests, strict=True):
        trail = api.get("/audit", params={"request_id": request_id}, headers=auditor).json()["items"]
        assert [(row["action"], row["entity_id"]) for row in trail] == [("read", customer_id)]
        seqs.append(trail[0]["seq"])
    assert seqs[0] < min(seqs[1:])
    with app.state.database.engine.connect() as connection:
        assert audit.verify(connection).broken is None


def test_own_branch_officer_sees_full_data_and_the_view_is_logged_for_auditors(api, actors):
    officer = actors.officer("BJ101")
    body = person(branch="BJ101", email="li.na@example.com")
    created = actors.register(officer, **body)
    assert created["pii_view"] == "full" and created["national_id"] == body["national_id"]
    assert created["monthly_income"] == "18000.00" and created["branch"] == "BJ101"

    auditor = actors.user("auditor")
    seen = api.get(f"/customers/{created['id']}", headers=auditor)
    assert seen.status_code == 200 and seen.json()["phone"] == body["phone"]
    assert seen.headers["etag"] == '"1"'

    log = api.get("/access-log", params={"customer_id": created["id"]}, headers=auditor).json()["items"]
    assert {entry["via"] for entry in log} >= {"register_customer", "get_customer"}
    assert all(entry["action"] == "full_view" for entry in log)
    assert api.get("/access-log", headers=officer).status_code == 403


def test_other_roles_see_masked_data(api, actors):
    body = person(branch="BJ102", email="zhao@example.com", address="88 Jianguo Rd, Chaoyang, Beijing")
    created = actors.register(actors.officer("BJ102"), **body)
    for role in ("collector", "risk_analyst"):
        seen = api.get(f"/customers/{created['id']}", headers=actors.user(role)).json()
        assert seen["pii_view"] == "masked"
        nid, tel = body["national_id"], body["phone"]
        # Issue 14, Found 7: the ID's region and birth date are hidden, and so is the birth date beside it.
        assert seen["national_id"] == f"{'*' * 16}{nid[-2:]}"
        assert seen["phone"] == f"{tel[:3]}******{tel[-2:]}"
        assert seen["email"] == "z***@example.com"
        assert seen["date_of_birth"] is None and seen["birth_year"] == int(body["date_of_birth"][:4])
        # The home address is no less identifying: only the town, as a collector asks for it by a reveal.
        assert seen["address"] == "***, Beijing"
        assert [c["address"] for c in api.get("/customers", params={"branch": "BJ102"},
                                              headers=actors.user(role)).json()["items"]] == ["***, Beijing"]


def test_officers_of_other_branches_and_unknown_roles_get_404_not_403(api, actors):
    created = actors.register(actors.officer("BJ103"), branch="BJ103")
    stranger = actors.officer("SH201")
    _problem(api.get(f"/customers/{created['id']}", headers=stranger), 404)
    _problem(api.get("/customers/" + "0" * 32, headers=stranger), 404)
    etag = '"1"'
    _problem(api.patch(f"/customers/{created['id']}", json={"name": "X"},
                       headers={**stranger, "If-Match": etag}), 404)


def test_a_partner_sees_only_its_own_referrals(api, actors):
    partner, rival = actors.user("partner"), actors.user("partner")
    referral = actors.register(partner, branch="BJ104", external_id="P-1")
    assert referral["referred_by"] and referral["pii_view"] == "masked"
    assert api.get(f"/customers/{referral['id']}", headers=partner).status_code == 200
    _problem(api.get(f"/customers/{referral['id']}", headers=rival), 404)
    by_external = api.get("/customers/by-external-id/P-1", headers=partner)
    assert by_external.status_code == 200 and by_external.json()["id"] == referral["id"]
    _problem(api.get("/customers/by-external-id/P-1", headers=rival), 404)
    listed = api.get("/customers", headers=rival).json()["items"]
    assert referral["id"] not in [c["id"] for c in listed]
    # The branch's own officer serves the referral.
    assert api.get(f"/customers/{referral['id']}", headers=actors.officer("BJ104")).json()["pii_view"] == "full"


@pytest.mark.parametrize(("change", "field"), [
    ({"national_id": "110105199003071230", "date_of_birth": "1990-03-07"}, "body.national_id"),  # bad check digit
    ({"national_id": "11010519900307"}, "body.national_id"),
    ({"date_of_birth": "1959-01-01"}, "body.national_id"),  # the ID says otherwise
    ({"phone": "12812345678"}, "body.phone"),
    ({"email": "not-an-email"}, "body.email"),
    ({"monthly_income": "-1.00"}, "body.monthly_income"),
    ({"monthly_income": "12.345"}, "body.monthly_income"),
    ({"monthly_income": "lots"}, "body.monthly_income"),
    ({"date_of_birth": "2999-01-01"}, "body.date_of_birth"),
    ({"household_size": 0}, "body.household_size"),
    ({"kind": "business"}, "body.business_registration_no"),
])
def test_bad_input_is_a_422_naming_the_field(api, actors, change, field):
    body = person(branch="BJ105")
    body.update(change)
    _problem(api.post("/customers", json=body, headers={**actors.admin(), **key()}), 422, field)


def test_minors_are_refused_and_a_plus86_phone_is_accepted(api, actors):
    young = date.today() - timedelta(days=365 * 17)
    _problem(api.post("/customers", json=person(born=young, branch="BJ105"),
                      headers={**actors.admin(), **key()}), 422, "body.date_of_birth")
    number = phone()
    created = actors.register(actors.admin(), phone=f"+86 {number}", branch="BJ105")
    assert created["phone"] == number


def test_duplicate_national_id_or_phone_is_a_409_naming_the_existing_customer(api, actors):
    admin = actors.admin()
    first = actors.register(admin, branch="BJ106")
    same_id = person(branch="BJ106", national_id=first["national_id"], date_of_birth=first["date_of_birth"])
    body = _problem(api.post("/customers", json=same_id, headers={**admin, **key()}), 409)
    assert body["existing_customer_id"] == first["id"] and body["field"] == "national_id"
    body = _problem(api.post("/customers", json=person(branch="BJ106", phone=first["phone"]),
                             headers={**admin, **key()}), 409)
    assert body["existing_customer_id"] == first["id"] and body["field"] == "phone"
    second = actors.register(admin, branch="BJ106")
    body = _problem(api.patch(f"/customers/{second['id']}", json={"phone": first["phone"]},
                              headers={**admin, "If-Match": '"1"'}), 409)
    assert body["existing_customer_id"] == first["id"]


def test_a_retried_registration_returns_the_first_answer(api, actors):
    officer = actors.officer("BJ107")
    body, headers = person(branch="BJ107"), {**officer, **key()}
    first = api.post("/customers", json=body, headers=headers)
    again = api.post("/customers", json=body, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.json()["id"] == first.json()["id"] and again.headers["idempotent-replayed"] == "true"
    _problem(api.post("/customers", json=person(branch="BJ107"), headers=officer), 428)
    _problem(api.post("/customers", json=person(branch="BJ107"), headers=headers), 422, "header.Idempotency-Key")


def test_updates_need_the_current_etag(api, actors):
    officer = actors.officer("BJ108")
    created = actors.register(officer, branch="BJ108")
    url = f"/customers/{created['id']}"
    _problem(api.patch(url, json={"occupation": "teacher"}, headers=officer), 428)
    # `*` would match any version: it says nothing of what the caller read, so it is asked for an ETag (it was
    # refused as a failed precondition, 412, which tells a client its copy is stale when it is not).
    star = _problem(api.patch(url, json={"occupation": "teacher"}, headers={**officer, "If-Match": "*"}), 428)
    assert star["errors"][0]["field"] == "header.If-Match" and "*" in star["detail"]
    assert api.get(url, headers=officer).json()["occupation"] != "teacher"
    etag = api.get(url, headers=officer).headers["etag"]
    done = api.patch(url, json={"occupation": "teacher", "monthly_income": 21000.5},
                     headers={**officer, "If-Match": etag})
    assert done.status_code == 200 and done.json()["occupation"] == "teacher"
    assert done.json()["monthly_income"] == "21000.50" and done.headers["etag"] == '"2"'
    # A colleague still holding the old ETag loses, and nothing of theirs is written.
    stale = _problem(api.patch(url, json={"occupation": "driver"}, headers={**officer, "If-Match": etag}), 412)
    assert stale["current_version"] == 2
    assert api.get(url, headers=officer).json()["occupation"] == "teacher"
    _problem(api.patch(url, json={"phone": None}, headers={**officer, "If-Match": '"2"'}), 422, "body.phone")
    # Nor what the table cannot hold empty: a null kyc_status was a 500 (NOT NULL constraint failed).
    _problem(api.patch(url, json={"kyc_status": None}, headers={**officer, "If-Match": '"2"'}), 422, "body.kyc_status")
    # A name of spaces or joiners names nobody.
    for blank in ("   ", "\u200d\u200d"):
        _problem(api.patch(url, json={"name": blank}, headers={**officer, "If-Match": '"2"'}), 422, "body.name")
    assert api.get(url, headers=officer).json()["kyc_status"] is not None
    _problem(api.patch(url, json={"shoe_size": 42}, headers={**officer, "If-Match": '"2"'}), 422, "body.shoe_size")
    _problem(api.patch(url, json={"occupation": "x"}, headers={**actors.user("collector"), "If-Match": '"2"'}), 403)
    # If-Match compares strongly: a weak tag never matches (W/"2" did); a list matches when one of its tags does
    # (it was refused whole for the one tag this service never issued).
    _problem(api.patch(url, json={"occupation": "driver"}, headers={**officer, "If-Match": 'W/"2"'}), 412)
    listed = api.patch(url, json={"occupation": "nurse"}, headers={**officer, "If-Match": '"zzz", W/"2", "1", "2"'})
    assert listed.status_code == 200 and listed.headers["etag"] == '"3"', listed.text
    _problem(api.patch(url, json={"occupation": "driver"}, headers={**officer, "If-Match": '"1", "2"'}), 412)
    _problem(api.patch(url, json={"occupation": "driver"}, headers={**officer, "If-Match": '"3" junk'}), 412)
    assert api.get(url, headers=officer).json()["occupation"] == "nurse"


def test_personal_data_is_encrypted_at_rest_under_a_0600_key_file(suite, api, actors):
    body = person(branch="BJ109", address="88 Jianguo Rd, Chaoyang, Beijing")
    created = actors.register(actors.admin(), **body)
    assert created["address"] == body["address"]
    api.get(f"/customers/{created['id']}", headers=actors.user("risk_analyst"))
    engine = suite.database("customer").engine
    with engine.connect() as conn:
        row = conn.execute(text("SELECT * FROM customers WHERE id = :id"), {"id": created["id"]}).mappings().one()
        # Nor anywhere else the registration and the reads wrote: answers kept for retries, logs, the audit trail.
        stored = " ".join(str(v) for table in inspect(engine).get_table_names()
                          for fetched in conn.execute(text(f"SELECT * FROM {table}")) for v in fetched)
    assert body["national_id"] not in stored and body["phone"] not in stored and "zhang.san@" not in stored
    assert "Jianguo" not in stored and "Chaoyang" not in stored
    assert row["pii_kid"] and len(row["national_id_hash"]) == 64
    key_file = suite.kernel.var_dir / KEY_FILE
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600


def test_lookup_by_national_id_or_phone_is_exact_and_scoped(api, actors):
    officer = actors.officer("BJ110")
    created = actors.register(officer, branch="BJ110")
    by_id = api.post("/customers/lookup", json={"national_id": created["national_id"].lower()}, headers=officer)
    assert [c["id"] for c in by_id.json()] == [created["id"]]
    by_phone = api.post("/customers/lookup", json={"phone": "+86" + created["phone"]}, headers=officer)
    assert [c["id"] for c in by_phone.json()] == [created["id"]]
    assert api.post("/customers/lookup", json={"phone": created["phone"]}, headers=actors.officer("GZ1")).json() == []
    assert api.post("/customers/lookup", json={"national_id": national_id()}, headers=officer).json() == []
    _problem(api.post("/customers/lookup", json={}, headers=officer), 422, "body")


def test_closing_keeps_the_record_but_stops_changes(api, actors):
    officer = actors.officer("BJ111")
    created = actors.register(officer, branch="BJ111")
    url = f"/customers/{created['id']}"
    _problem(api.post(f"{url}/closure", json={"reason": "moved abroad"}, headers={**officer, "If-Match": '"7"'}), 412)
    closed = api.post(f"{url}/closure", json={"reason": "moved abroad"}, headers=officer)
    assert closed.status_code == 200 and closed.json()["status"] == "closed" and closed.json()["closed_at"]
    _problem(api.patch(url, json={"occupation": "x"}, headers={**officer, "If-Match": closed.headers["etag"]}), 409)
    assert api.get(url, headers=officer).json()["status"] == "closed"


def test_erasure_anonymises_personal_fields_and_keeps_history(api, actors):
    officer, admin, auditor = actors.officer("BJ112"), actors.admin(), actors.user("auditor")
    body = person(branch="BJ112")
    created = actors.register(officer, **body)
    url = f"/customers/{created['id']}"
    assert api.post(f"{url}/consents", json={"purpose": "marketing", "source": "app"},
                    headers={**officer, **key()}).status_code == 201
    contact = {"channel": "phone", "direction": "outbound", "purpose": "service", "outcome": "reached",
               "occurred_at": "2026-01-05T10:00:00Z", "notes": "talked about her divorce"}
    assert api.post(f"{url}/interactions", json=contact, headers={**officer, **key()}).status_code == 201
    complaint = {"kind": "complaint", "channel": "branch", "category": "fees", "description": "her ex-husband..."}
    assert api.post(f"{url}/complaints", json=complaint, headers={**officer, **key()}).status_code == 201
    _problem(api.post(f"{url}/erasure", headers=officer), 403)

    erased = api.post(f"{url}/erasure", headers=admin)
    assert erased.status_code == 200
    record = erased.json()
    assert record["status"] == "erased" and record["erased_at"]
    assert record["name"] is None and record["national_id"] is None and record["phone"] is None
    assert record["monthly_income"] is None and record["branch"] == "BJ112"
    consents = api.get(f"{url}/consents/check", params={"purpose": "marketing"}, headers=officer).json()
    assert consents["allowed"] is False
    contacts = api.get(f"{url}/interactions", headers=officer).json()["items"]
    assert len(contacts) == 1 and contacts[0]["notes"] is None and contacts[0]["outcome"] == "reached"
    complaints = api.get(f"{url}/complaints", headers=officer).json()["items"]
    assert complaints[0]["description"] is None and complaints[0]["category"] == "fees"
    log = api.get("/access-log", params={"customer_id": created["id"]}, headers=auditor).json()["items"]
    assert log[0]["action"] == "erasure" and log[0]["actor"] == "admin"
    _problem(api.post(f"{url}/erasure", headers=admin), 409)
    # The same person may come back as a new customer.
    again = actors.register(officer, **{**body, "email": None})
    assert again["id"] != created["id"]


def test_listing_pages_with_a_stable_cursor_and_filters(api, actors):
    branch = unique("LB").replace(".", "")[:12]
    officer = actors.officer(branch)
    ids = [actors.register(officer, branch=branch, name=f"Wang {i}")["id"] for i in range(5)]
    actors.register(officer, branch=branch, name="Li Lei")
    seen, cursor = [], None
    while True:
        params = {"name_prefix": "Wang", "limit": 2, **({"cursor": cursor} if cursor else {})}
        page = api.get("/customers", params=params, headers=officer).json()
        seen += [c["id"] for c in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ids
    others = api.get("/customers", params={"branch": branch}, headers=actors.officer("XX9")).json()["items"]
    assert others == []
    _problem(api.get("/customers", params={"cursor": "garbage"}, headers=officer), 422, "query.cursor")


def test_the_gateway_routes_customer_calls_with_etags(suite, actors):
    officer = actors.officer("BJ113")
    created = actors.register(officer, branch="BJ113")
    through = suite.client.get(f"/api/customer/customers/{created['id']}", headers=officer)
    assert through.status_code == 200 and through.headers["etag"] == '"1"'


def test_two_officers_saving_at_once_with_one_etag_cannot_both_win(api, actors):
    officer = actors.officer("BJ114")
    created = actors.register(officer, branch="BJ114")
    url = f"/customers/{created['id']}"
    headers = {**officer, "If-Match": '"1"'}
    with ThreadPoolExecutor(max_workers=4) as pool:
        answers = list(pool.map(lambda job: api.patch(url, json={"occupation": job}, headers=headers),
                                ["nurse", "pilot", "chef", "judge"]))
    assert sorted(a.status_code for a in answers) == [200, 412, 412, 412]
    winner = next(a for a in answers if a.status_code == 200).json()["occupation"]
    final = api.get(url, headers=officer)
    assert final.json()["occupation"] == winner and final.headers["etag"] == '"2"'


def test_full_views_by_list_and_lookup_log_every_customer_shown_and_masked_views_log_none(api, actors):
    officer = actors.officer("BJ131")
    first = actors.register(officer, **person(branch="BJ131"))
    second = actors.register(officer, **person(branch="BJ131"))
    auditor, analyst = actors.user("auditor"), actors.user("risk_analyst")

    masked = api.get("/customers", params={"branch": "BJ131"}, headers=analyst).json()["items"]
    assert {c["pii_view"] for c in masked} == {"masked"} and len(masked) == 2
    listed = api.get("/customers", params={"branch": "BJ131"}, headers=auditor).json()["items"]
    assert {c["id"] for c in listed} == {first["id"], second["id"]} and {c["pii_view"] for c in listed} == {"full"}
    found = api.post("/customers/lookup", json={"phone": second["phone"]}, headers=auditor).json()
    assert [c["id"] for c in found] == [second["id"]] and found[0]["pii_view"] == "full"

    for customer, seen in ((first, {("full_view", "list_customers")}),
                           (second, {("full_view", "list_customers"), ("full_view", "lookup_customers"),
                                     ("lookup", "lookup_customers")})):
        log = api.get("/access-log", params={"customer_id": customer["id"]}, headers=auditor).json()["items"]
        assert {(e["action"], e["via"]) for e in log if e["via"] != "register_customer"} == seen
