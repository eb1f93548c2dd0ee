"""Who may set what, masks that combination cannot undo, exact lookups and reveals (issue 14, Found 5 and 7;
issue 15, Found 6): through the API, with monitoring running in-process for the collector's queue item."""

import asyncio
import uuid
from datetime import date

import pytest

from services.customer.customers.service import count_lookup
from shared.errors import Problem
from shared.limits import build_limiter
from tests.customer.factory import key, person
from tests.customer.test_lifecycle import book_overdue_loan, customer_without_monitoring  # noqa: F401
from tests.monitoring.api.helpers import alerts_of, cob
from tests.test_limits import _redis_url


def _problem(response, status, field=None):
    assert response.status_code == status, response.text
    body = response.json()
    if field is not None:
        assert [e["field"] for e in body["errors"]] == [field], body
    return body


def _access(api, actors, customer_id):
    return api.get("/access-log", params={"customer_id": customer_id}, headers=actors.admin()).json()["items"]


def test_a_partner_cannot_set_kyc_or_the_acquisition_channel_of_its_referral(api, actors):
    partner = actors.user("partner")
    registered = api.post("/customers", json=person(branch="PV01", acquisition_channel="branch"),
                          headers={**partner, **key()})
    _problem(registered, 403, "body.acquisition_channel")
    referral = actors.register(partner, branch="PV01")
    assert referral["acquisition_channel"] == "partner" and referral["kyc_status"] == "pending"
    url = f"/customers/{referral['id']}"
    _problem(api.patch(url, json={"kyc_status": "verified"}, headers={**partner, "If-Match": '"1"'}), 403,
             "body.kyc_status")
    assert api.get(url, headers=partner).json()["kyc_status"] == "pending"
    # Its own data about the person it still keeps up to date; an officer of the branch verifies identity.
    assert api.patch(url, json={"occupation": "teacher"}, headers={**partner, "If-Match": '"1"'}).status_code == 200
    verified = api.patch(url, json={"kyc_status": "verified"}, headers={**actors.officer("PV01"), "If-Match": '"2"'})
    assert verified.status_code == 200 and verified.json()["kyc_status"] == "verified"


def test_a_masked_reader_sees_the_birth_year_and_cannot_rebuild_the_id(api, actors):
    body = person(branch="PV02", born=date(1987, 6, 5))
    created = actors.register(actors.officer("PV02"), **body)
    seen = api.get(f"/customers/{created['id']}", headers=actors.user("collector")).json()
    assert seen["pii_view"] == "masked"
    assert (seen["national_id"], seen["phone"]) == ("*" * 16 + body["national_id"][-2:],
                                                    body["phone"][:3] + "*" * 6 + body["phone"][-2:])
    assert (seen["date_of_birth"], seen["birth_year"]) == (None, 1987)
    # Nothing else in the answer carries the birth date or the ID's region and sequence digits.
    text = str(seen)
    assert "19870605" not in text and "1987-06-05" not in text and body["national_id"][:6] not in text
    full = api.get(f"/customers/{created['id']}", headers=actors.officer("PV02")).json()
    assert (full["date_of_birth"], full["birth_year"]) == ("1987-06-05", 1987)


def test_an_exact_lookup_is_scoped_and_logged_as_a_personal_data_read(api, actors):
    created = actors.register(actors.officer("PV03"), **person(branch="PV03"))
    outsider = actors.officer("PV99")
    assert api.post("/customers/lookup", json={"national_id": created["national_id"]}, headers=outsider).json() == []
    insider = actors.suite.headers("collector.pv03", ["collector"])
    found = api.post("/customers/lookup", json={"phone": created["phone"]}, headers=insider).json()
    assert [c["id"] for c in found] == [created["id"]] and found[0]["pii_view"] == "masked"
    # Masked or not, a lookup confirms who a number belongs to: it is a personal-data read.
    lookups = [(e["actor"], e["action"], e["via"]) for e in _access(api, actors, created["id"])
               if e["via"] == "lookup_customers"]
    assert lookups == [("collector.pv03", "lookup", "lookup_customers")]


def test_exact_lookups_are_rate_limited_per_user_with_retry_after(api, actors, suite):
    limit = suite.services["customer"].state.settings.lookup_per_minute
    guesser, other = actors.user("risk_analyst"), actors.user("risk_analyst")
    for _ in range(limit):
        assert api.post("/customers/lookup", json={"phone": "13800000000"}, headers=guesser).status_code == 200
    refused = api.post("/customers/lookup", json={"phone": "13800000001"}, headers=guesser)
    problem = _problem(refused, 429)
    assert problem["type"] == "urn:loancrm:customer:lookup-rate-limited"
    assert 1 <= int(refused.headers["retry-after"]) <= 120  # the sliding estimate spans two minutes
    assert api.post("/customers/lookup", json={"phone": "13800000000"}, headers=other).status_code == 200


def test_replicas_share_the_lookup_count_through_redis():
    """Two customer-service processes on one Redis count one user's lookups together, so replicas do not
    multiply what a guesser may try."""
    url, user = _redis_url(), f"guesser-{uuid.uuid4().hex}"

    async def run():  # noqa: ANN202
        first, second = build_limiter(url), build_limiter(url)
        try:
            await count_lookup(first, user, 2)
            await count_lookup(second, user, 2)
            with pytest.raises(Problem) as refused:
                await count_lookup(first, user, 2)
            return refused.value
        finally:
            await first.aclose()
            await second.aclose()

    refused = asyncio.run(run())
    assert refused.status == 429 and 1 <= int(refused.headers["Retry-After"]) <= 120


def test_an_officer_of_the_branch_and_an_admin_reveal_one_field_with_a_reason(api, actors):
    officer = actors.officer("PV04")
    created = actors.register(officer, **person(branch="PV04"))
    url = f"/customers/{created['id']}/reveal"
    _problem(api.post(url, json={"field": "national_id"}, headers=officer), 422, "body.reason")
    # A reason of spaces, invisible characters or dots says nothing: it was taken, and the ID shown.
    for blank in (" " * 5, "\u3000" * 5, "\u200b" * 5, "....."):
        _problem(api.post(url, json={"field": "national_id", "reason": blank}, headers=officer), 422, "body.reason")
    shown = api.post(url, json={"field": "national_id", "reason": "identity check at the counter"}, headers=officer)
    assert shown.status_code == 200, shown.text
    assert shown.json() == {"customer_id": created["id"], "field": "national_id",
                            "value": created["national_id"], "reason": "identity check at the counter"}
    by_admin = api.post(url, json={"field": "date_of_birth", "reason": "court order 2026-114"},
                        headers=actors.admin()).json()
    assert by_admin["value"] == created["date_of_birth"]
    reveals = [(e["action"], e["reason"]) for e in _access(api, actors, created["id"]) if e["action"] == "reveal"]
    assert sorted(reveals) == [("reveal", "court order 2026-114"), ("reveal", "identity check at the counter")]
    # Another branch's officer does not see the customer at all; analysts and partners may not ask.
    _problem(api.post(url, json={"field": "phone", "reason": "curious, honestly"}, headers=actors.officer("PV98")),
             404)
    for role in ("risk_analyst", "partner", "auditor"):
        _problem(api.post(url, json={"field": "phone", "reason": "curious, honestly"}, headers=actors.user(role)),
                 403)


def test_a_collector_gets_the_phone_of_a_borrower_in_their_queue_item_and_nothing_else(suite, api, actors):
    """Issue 15, Found 6: the queue item links to the reveal; the customer service checks the item with
    monitoring and logs the read with the item as its reason."""
    officer = actors.officer("PV05")
    borrower = actors.register(officer, **person(branch="PV05", address="7 Hope Road, Estate 7, Shenzhen"))
    bystander = actors.register(officer, **person(branch="PV05"))
    loan = book_overdue_loan(suite, borrower, officer, disbursement_date="2031-01-15")
    closed = cob(suite, date(2031, 4, 13))  # the next business day after the booking's
    assert closed.status_code == 200, closed.text
    item_id = next(a["id"] for a in alerts_of(suite, loan["id"]) if a["status"] == "open")
    collector, colleague = actors.user("collector"), actors.user("collector")
    monitoring = suite.direct["monitoring"]
    link = monitoring.get(f"/collections/queue/{item_id}", headers=collector).json()["contact"]
    assert link["href"] == f"/customers/{borrower['id']}/reveal" and "phone" in link["fields"]
    body = {**link["body"], "field": "phone"}

    # Not yet theirs: the item has no owner until a collector takes it.
    _problem(api.post(link["href"], json=body, headers=collector), 403, "body.queue_item_id")
    taken = monitoring.post(f"/alerts/{item_id}/acknowledge", json={}, headers=collector)
    assert taken.status_code == 200, taken.text

    shown = api.post(link["href"], json=body, headers=collector)
    assert shown.status_code == 200, shown.text
    assert shown.json()["value"] == borrower["phone"]
    assert shown.json()["reason"] == f"collection queue item {item_id} (loan {loan['id']})"
    email = api.post(link["href"], json={**body, "field": "email"}, headers=collector).json()
    assert email["value"] == borrower["email"]
    # The home address, sealed at rest and masked in the collector's reads, is theirs by the same item.
    assert api.get(f"/customers/{borrower['id']}", headers=collector).json()["address"] == "***, Shenzhen"
    home = api.post(link["href"], json={**body, "field": "address"}, headers=collector).json()
    assert home["value"] == "7 Hope Road, Estate 7, Shenzhen"
    logged = [e for e in _access(api, actors, borrower["id"]) if e["action"] == "reveal"]
    assert len(logged) == 3 and all(e["reason"].startswith(f"collection queue item {item_id}") for e in logged)

    # The same item does not open another customer, another collector, the ID, or a made-up item.
    _problem(api.post(f"/customers/{bystander['id']}/reveal", json=body, headers=collector), 403,
             "body.queue_item_id")
    _problem(api.post(link["href"], json=body, headers=colleague), 403, "body.queue_item_id")
    _problem(api.post(link["href"], json={**body, "field": "national_id"}, headers=collector), 403, "body.field")
    _problem(api.post(link["href"], json={**body, "queue_item_id": uuid.uuid4().hex}, headers=collector), 403,
             "body.queue_item_id")
    _problem(api.post(link["href"], json={"field": "phone", "reason": "need to call"}, headers=collector), 422,
             "body.queue_item_id")
    # Once the item is closed it is no longer worked, and no longer a reason.
    assert monitoring.post(f"/alerts/{item_id}/resolve", json={"note": "paid"}, headers=collector).status_code == 200
    _problem(api.post(link["href"], json=body, headers=collector), 403, "body.queue_item_id")
    assert len([e for e in _access(api, actors, borrower["id"]) if e["action"] == "reveal"]) == 3


def test_with_monitoring_down_a_collector_is_shown_nothing(api, actors, customer_without_monitoring):  # noqa: F811
    created = actors.register(actors.officer("PV06"), **person(branch="PV06"))
    answer = customer_without_monitoring.post(f"/customers/{created['id']}/reveal",
                                              json={"field": "phone", "queue_item_id": uuid.uuid4().hex},
                                              headers=actors.user("collector"))
    assert answer.status_code == 503 and answer.json()["service"] == "monitoring"
    assert not [e for e in _access(api, actors, created["id"]) if e["action"] == "reveal"]
