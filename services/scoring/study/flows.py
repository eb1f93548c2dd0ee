"""The study's extract: point-in-time loan facts from monitoring and relationship features from the customer
service, over HTTP as the caller, joined by customer into one table. `service.run_study` fits it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
import pandas as pd

from shared.clients.customer import CustomerClient, RelationshipFeatures
from shared.clients.identity import Credentials
from shared.clients.monitoring import LoanOutcome, MonitoringClient
from shared.errors import Problem

PAGE = 1000


@dataclass
class Extract:
    table: pd.DataFrame
    counts: dict[str, int]


def dated_after(service: str, as_of: date, found: date) -> Problem:
    return Problem(502, "Peer answered facts dated after as_of",
                   f"The {service} service answered facts as of {found.isoformat()} for a study as of "
                   f"{as_of.isoformat()}: the study uses nothing dated after its observation date.",
                   extra={"service": service})


def join(outcomes: list[LoanOutcome], features: list[RelationshipFeatures], as_of: date,
         excluded: dict[str, int] | None = None) -> Extract:
    """One row per loan with its borrower's features; refuses any fact dated after as_of, and counts the loans
    whose borrower has no features in the caller's scope (left out)."""
    for outcome in outcomes:
        if outcome.as_of != as_of:
            raise dated_after("monitoring", as_of, outcome.as_of)
    for feature in features:
        if feature.as_of > as_of:
            raise dated_after("customer", as_of, feature.as_of)
    by_customer = {f.customer_id: f.model_dump(mode="json", exclude={"as_of", "survey_dimensions"})
                   for f in features}
    rows, without = [], 0
    for outcome in outcomes:
        feature = by_customer.get(outcome.customer_id)
        if feature is None:
            without += 1
            continue
        rows.append({**feature, **outcome.model_dump(mode="json")})
    table = pd.DataFrame(rows)
    if not table.empty:
        for column in ("annual_income", "monthly_debt_payments", "principal", "pd_at_origination"):
            table[column] = pd.to_numeric(table[column], errors="coerce")
        table["default_in_window"] = table["default_in_window"].astype(int)  # bad = 1, as training reads it
    counts = {"loans_in_extract": len(rows), "loans_without_relationship_features": without, **(excluded or {})}
    return Extract(table=table, counts=counts)


async def extract(customer: CustomerClient, monitoring: MonitoringClient, *, as_of: date, window_months: int,
                  credentials: Credentials) -> Extract:
    """Every page of both services as `credentials` (each page asks for a token: a long extract renews it)."""
    outcomes: list[LoanOutcome] = []
    excluded = {"excluded_already_defaulted": 0, "excluded_unknown_at_as_of": 0}
    cursor: str | None = None
    while True:
        page = await monitoring.loan_outcomes(as_of, window_months=window_months, token=await credentials.token(),
                                              cursor=cursor,
                                              limit=PAGE)
        outcomes.extend(page.items)
        excluded["excluded_already_defaulted"] += page.excluded_already_defaulted
        excluded["excluded_unknown_at_as_of"] += page.excluded_unknown_at_as_of
        if not (cursor := page.next_cursor):
            break
    features: list[RelationshipFeatures] = []
    cursor = None
    while True:
        found = await customer.relationship_features(as_of, window_months=window_months,
                                                     token=await credentials.token(), cursor=cursor, limit=PAGE)
        features.extend(found.items)
        if not (cursor := found.next_cursor):
            break
    return join(outcomes, features, as_of, excluded)
