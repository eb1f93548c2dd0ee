"""The study's extract: nothing dated after as_of is used, and the customer client reads the features contract."""

from __future__ import annotations

import asyncio
from datetime import date

import httpx
import pytest

from services.scoring.study.flows import join
from shared.clients.customer import CustomerClient, RelationshipFeatures
from shared.clients.monitoring import LoanOutcome
from shared.errors import Problem

AS_OF = date(2025, 6, 30)


def outcome(**overrides) -> LoanOutcome:  # noqa: ANN003
    values = {"loan_id": "L1", "customer_id": "C1", "product": "personal_loan", "grade_at_origination": "B",
              "pd_at_origination": "0.03", "vintage": "2024-11", "principal": "12000.00",
              "disbursement_date": "2024-11-15", "as_of": AS_OF, "window_months": 12, "dpd_at_as_of": 0,
              "bucket_at_as_of": "M0", "default_in_window": True, "default_on": "2025-10-02"}
    return LoanOutcome.model_validate({**values, **overrides})


def features(**overrides) -> RelationshipFeatures:  # noqa: ANN003
    values = {"customer_id": "C1", "as_of": AS_OF, "annual_income": "120000.00", "monthly_debt_payments": "2000.00",
              "contacts_relationship": 4, "contacts_collection": 7, "csat_mean": 4.2, "information_sharing": 0.6,
              "loyalty_index": 0.5}
    return RelationshipFeatures.model_validate({**values, **overrides})


def test_the_join_keeps_one_row_per_loan_and_counts_borrowers_without_features() -> None:
    found = join([outcome(), outcome(loan_id="L2", customer_id="C2")], [features()], AS_OF,
                 {"excluded_already_defaulted": 3})
    assert list(found.table["loan_id"]) == ["L1"] and found.table["default_in_window"].tolist() == [1]
    assert found.table["annual_income"].tolist() == [120000.0]
    assert found.counts == {"loans_in_extract": 1, "loans_without_relationship_features": 1,
                            "excluded_already_defaulted": 3}


@pytest.mark.parametrize("late", ["features", "outcome"])
def test_facts_dated_after_as_of_are_refused(late: str) -> None:
    later = date(2025, 7, 1)
    with pytest.raises(Problem) as refused:
        join([outcome(as_of=later) if late == "outcome" else outcome()],
             [features(as_of=later) if late == "features" else features()], AS_OF)
    assert refused.value.status == 502 and "after" in refused.value.title


def test_the_customer_client_pages_relationship_features() -> None:
    seen = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(dict(request.url.params))
        body = {"items": [features().model_dump(mode="json") | {"new_measure": 1}], "next_cursor": None}
        return httpx.Response(200, json=body)

    client = CustomerClient("http://customer", transport=httpx.MockTransport(answer))
    page = asyncio.run(client.relationship_features(AS_OF, window_months=12, token="t", cursor="abc", limit=10))
    assert page.items[0].contacts_relationship == 4 and page.next_cursor is None
    assert seen == [{"as_of": "2025-06-30", "window_months": "12", "limit": "10", "cursor": "abc"}]
