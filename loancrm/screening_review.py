"""`loancrm screening review --truth FILE`: every customer on the book screened by the application checks, as
scoring screens an applicant, and the checks reviewed against the planted patterns of a ground-truth file.

An operator's batch over the services' own databases (as `loancrm demo generate` writes them): each customer's
shared identifiers from the customer service's rule, their repayments and feed rows from monitoring's, judged by
scoring's checks, with no HTTP in between (a million customers would be a million calls per peer)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

from sqlmodel import Session, select
from tqdm import tqdm

from services.customer.customers.models import Customer
from services.customer.identity_links.service import shared_identifiers
from services.monitoring.transactions.service import screening_facts
from services.scoring.screening.models import Check
from services.scoring.screening.review import CheckReview, read_planted, review_checks
from services.scoring.applications.models import Application
from services.scoring.screening.service import Facts, findings, other_applicants
from services.scoring.settings import ScoringSettings
from shared.auth.tokens import Principal
from shared.clients.monitoring import ScreeningFacts
from shared.db import Database
from shared.settings import KernelSettings, load_settings

# Bank-wide, as screening looks for rings across branches.
REVIEWER = Principal(sub="screening-review", roles=("admin",), branch=None, scopes=frozenset(), jti="cli",
                     expires_at=0)
BATCH = 500


def _customer_ids(database: Database, limit: int | None) -> Iterator[list[str]]:
    """Every customer id, in batches, in id order (the first `limit` when given)."""
    last, left = "", limit
    while left is None or left > 0:
        size = BATCH if left is None else min(BATCH, left)
        with database.session() as session:
            ids = list(session.exec(select(Customer.id).where(Customer.id > last).order_by(Customer.id)
                                       .limit(size)).all())
        if not ids:
            return
        yield ids
        last = ids[-1]
        left = None if left is None else left - len(ids)


def run(kernel: KernelSettings, truth: Path, as_of: date, *, limit: int | None = None,
        progress: bool = True) -> list[CheckReview]:
    with truth.open(encoding="utf-8") as lines:
        planted = read_planted(lines)
    settings = load_settings(ScoringSettings)
    databases = {name: Database(kernel.database_url(name)) for name in ("customer", "scoring", "monitoring")}
    since = as_of - timedelta(days=settings.screening_feed_days)
    found: dict[str, set[Check]] = {}
    try:
        with tqdm(total=limit, unit="customer", desc="screening", disable=not progress) as bar:
            for ids in _customer_ids(databases["customer"], limit):
                with databases["customer"].session() as people, databases["scoring"].session() as scoring, \
                        databases["monitoring"].session() as book:
                    for customer_id in ids:
                        feed = ScreeningFacts.model_validate(
                            screening_facts(book, customer_id, since).model_dump(mode="json"))
                        facts = Facts(identifiers=shared_identifiers(people, REVIEWER, customer_id), feed=feed)
                        found[customer_id] = {finding.check for finding in findings(
                            facts, _local(scoring, customer_id), settings)}
                bar.update(len(ids))
    finally:
        for database in databases.values():
            database.dispose()
    return review_checks(found, planted)


def _local(session: Session, customer_id: str) -> dict[str, list[str]]:
    """Other applicants sharing the device or payout account of the customer's latest application."""
    latest = session.exec(select(Application).where(Application.customer_id == customer_id)
                          .order_by(Application.created_at.desc()).limit(1)).first()
    if latest is None:
        return {}
    return other_applicants(session, customer_id, {"device_hash": latest.device_hash,
                                                   "payout_account_hash": latest.payout_account_hash})
