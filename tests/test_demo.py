"""The demo portfolio a first run seeds: every role signs in to data of its own (issue #20, Found 1)."""

from collections import Counter

import pytest

from loancrm.demo import DEMO_USERS, Seeder, demo_passwords
from tests.scoring.api.conftest import install, trained  # noqa: F401 - a fixture, used below


@pytest.fixture(scope="module")
def seeded(suite, trained):  # noqa: ANN001, ANN201, F811
    install(suite, trained)
    passwords = demo_passwords()
    admin = suite.token("admin", ["admin"])
    report = Seeder(suite.client, admin, passwords, customers=24).run()
    return suite, passwords, report, admin


def _sign_in(suite, username, password):  # noqa: ANN001, ANN202
    token = suite.client.post("/auth/token", data={"username": username, "password": password})
    assert token.status_code == 200, token.text
    return {"Authorization": f"Bearer {token.json()['access_token']}"}


def test_every_role_signs_in_and_sees_its_main_screen_filled(seeded):
    suite, passwords, _report, _admin = seeded
    assert {r for roles, _ in DEMO_USERS.values() for r in roles} >= {
        "loan_officer", "risk_analyst", "collector", "auditor", "credit_committee", "partner"}
    officer = _sign_in(suite, "demo.officer", passwords["demo.officer"])
    customers = suite.client.get("/api/customer/customers", headers=officer).json()["items"]
    assert customers and {c["branch"] for c in customers} == {"BJ001"}
    analyst = _sign_in(suite, "demo.analyst", passwords["demo.analyst"])
    loans = suite.client.get("/api/monitoring/loans", params={"limit": 200}, headers=analyst)
    assert loans.status_code == 200
    items = loans.json()["items"] if isinstance(loans.json(), dict) else loans.json()
    buckets = Counter(loan["bucket"] for loan in items)
    # Loans at every stage: current and several delinquency buckets, on loans of all three branches.
    assert buckets["M0"] >= 1 and len(buckets) >= 4, buckets
    collector = _sign_in(suite, "demo.collector", passwords["demo.collector"])
    queue = suite.client.get("/api/monitoring/collections/queue", headers=collector)
    assert queue.status_code == 200 and queue.json()
    auditor = _sign_in(suite, "demo.auditor", passwords["demo.auditor"])
    assert suite.client.get("/api/customer/customers", headers=auditor).json()["items"]


def test_applications_in_every_state(seeded):
    _suite, _passwords, report, _admin = seeded
    states = {what.removeprefix("applications ") for what in report.counts if what.startswith("applications ")}
    assert {"approved", "declined", "in_review"} <= states, report.counts
    assert report.counts["loans"] >= 5 and report.counts["repayments"] > 0
    assert report.counts["collection actions"] >= 1 and report.counts["surveys"] and report.counts["complaints"]


def test_seeding_again_repeats_nothing(seeded):
    suite, passwords, report, admin = seeded
    before = suite.client.get("/api/customer/customers", params={"limit": 500},
                              headers=suite.headers("admin", ["admin"])).json()["items"]
    again = Seeder(suite.client, admin, passwords, customers=24).run()
    after = suite.client.get("/api/customer/customers", params={"limit": 500},
                             headers=suite.headers("admin", ["admin"])).json()["items"]
    assert len(after) == len(before)
    assert again.counts["loans"] == report.counts["loans"] and again.counts["repayments"] == report.counts["repayments"]


def test_the_study_extract_reads_both_services_over_http(seeded):
    """The study's extract against the real customer and monitoring services (their contract, end to end), as a
    risk analyst signed in once with their password, the session renewed by its refresh tokens past the access
    tokens' life (no token pasted anywhere)."""
    import asyncio
    from datetime import UTC, datetime, timedelta

    import httpx

    from services.scoring.study.flows import extract
    from shared.clients.customer import CustomerClient
    from shared.clients.identity import UserSession
    from shared.clients.monitoring import MonitoringClient

    suite, passwords, report, _admin = seeded
    as_of = datetime.now(UTC).date() - timedelta(days=40)

    class Slow(MonitoringClient):  # reading a page takes longer than a token lives
        async def loan_outcomes(self, *args, **kwargs):  # noqa: ANN002, ANN003, ANN202
            page = await super().loan_outcomes(*args, **kwargs)
            await asyncio.sleep(2.2)
            return page

    async def run():  # noqa: ANN202
        customer = CustomerClient("http://customer", transport=httpx.ASGITransport(app=suite.services["customer"]))
        monitoring = Slow(suite.kernel, httpx.ASGITransport(app=suite.services["monitoring"]))
        session = UserSession("http://gateway", "demo.analyst", passwords["demo.analyst"],
                              transport=httpx.ASGITransport(app=suite.gateway))
        try:
            return await extract(customer, monitoring, as_of=as_of, window_months=1, credentials=session), session
        finally:
            await session.aclose()
            await customer.aclose()
            await monitoring.aclose()

    gateway, settings = suite.gateway.state, suite.gateway.state.gateway_settings
    gateway.gateway_settings = settings.model_copy(update={"token_ttl_seconds": 2})  # while the extract runs only
    try:
        found, session = asyncio.run(run())
    finally:
        gateway.gateway_settings = settings
    assert session.issued == 2  # the password once, then the refresh token for the customer service's pages
    # The demo's loans were disbursed months ago but booked today: on a date 40 days back nothing was known of
    # them, so the point-in-time extract counts them out rather than use what was learnt later.
    assert found.counts["excluded_unknown_at_as_of"] >= 1
    assert found.counts["loans_in_extract"] == 0 and len(found.table) == 0
    assert found.counts["excluded_unknown_at_as_of"] <= report.counts["loans"]
