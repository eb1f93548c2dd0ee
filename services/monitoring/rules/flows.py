"""`loancrm rules review`: the rules' review from the command line, against the history or a ground-truth file."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from services.monitoring.rules.models import RuleReview
from services.monitoring.rules.queries import read_truth
from services.monitoring.rules.service import review_rules
from shared.auth.scope import EVERYTHING
from shared.db import Database
from shared.settings import KernelSettings


def run_review_cli(kernel: KernelSettings, since: date, until: date, *, branch: str | None = None,
                   codes: list[str] | None = None, truth: Path | None = None) -> list[RuleReview]:
    """Every rule (or these) over [since, until], on the whole book (or a branch); raises DomainError for a bad
    window or truth file, Problem for an unknown rule."""
    planted = None
    if truth is not None:
        with truth.open(encoding="utf-8") as lines:
            planted = read_truth(lines)
    database = Database(kernel.database_url("monitoring"))
    try:
        with database.session() as session:
            reviews = review_rules(session, since, until, EVERYTHING, branch, truth=planted, codes=codes)
            session.commit()  # the shipped rules, installed on first use
            return reviews
    finally:
        database.dispose()
