"""The typed client the scoring and monitoring services use to call this one."""

import asyncio
from datetime import UTC, datetime

import httpx
import pytest

from shared.clients.customer import ConsentPurpose, CustomerClient, CustomerNotFound


def test_the_client_reads_checks_consent_gets_the_portrait_and_logs_a_call(suite, actors):
    officer = actors.officer("CLI01")
    customer = actors.register(officer, branch="CLI01")
    token = officer["Authorization"].removeprefix("Bearer ")
    collector = actors.user("collector")["Authorization"].removeprefix("Bearer ")

    async def scenario():
        client = CustomerClient("http://customer", transport=httpx.ASGITransport(suite.services["customer"]))
        try:
            read = await client.get_customer(customer["id"], token=token)
            consent = await client.check_consent(customer["id"], ConsentPurpose.CREDIT_BUREAU_QUERY, token=token)
            portrait = await client.get_portrait(customer["id"], token=token)
            when = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
            call = dict(channel="phone", direction="outbound", purpose="collection", outcome="no_answer",
                        occurred_at=when)
            first = await client.log_interaction(customer["id"], token=collector, idempotency_key="call-1", **call)
            again = await client.log_interaction(customer["id"], token=collector, idempotency_key="call-1", **call)
            with pytest.raises(CustomerNotFound):
                await client.get_customer("0" * 32, token=token)
            return read, consent, portrait, first, again
        finally:
            await client.aclose()

    read, consent, portrait, first, again = asyncio.run(scenario())
    assert read.id == customer["id"] and read.pii_view == "full"
    assert consent.allowed is False and consent.purpose == ConsentPurpose.CREDIT_BUREAU_QUERY
    assert portrait.customer_id == customer["id"] and portrait.lifecycle_stage
    assert first.id == again.id and first.purpose == "collection"

