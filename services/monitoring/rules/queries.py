"""Reviewing rules against defaults: per rule, precision and recall by loan and the lead time from the first alert
to the default, on the effective history or on a ground-truth file (the demo portfolio's planted defaults)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import date
from statistics import median

from sqlalchemy import func, select as sa_select
from sqlmodel import Session

from services.monitoring.alerts.models import Alert, AlertStatus
from services.monitoring.errors import DomainError
from services.monitoring.loans.models import Loan
from services.monitoring.outcomes.service import first_defaults
from services.monitoring.rules.models import LeadTime
from shared.auth.scope import Visibility

LEAD_RANGES = ((0, 30), (31, 90), (91, 180), (181, 365), (366, None))


def read_truth(lines: Iterable[str]) -> dict[str, date]:
    """Loan id -> defaulted_on from JSON lines; a line without `defaulted_on` (e.g. only a `pattern`) names a loan
    that did not default, and is read for its id only."""
    truth: dict[str, date] = {}
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            loan_id = row["loan_id"]
            defaulted = row.get("defaulted_on")
            if not isinstance(loan_id, str) or not loan_id:
                raise ValueError("loan_id must be a string")
            if defaulted is not None:
                day = date.fromisoformat(defaulted)
                truth[loan_id] = min(day, truth.get(loan_id, day))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise DomainError("truth", f"line {number}: {exc}; expected "
                                       '{"loan_id": "...", "defaulted_on": "YYYY-MM-DD"}') from None
    return truth


def lead_time(days: Sequence[int]) -> LeadTime:
    counts = {f"{low}-{high}" if high is not None else f"{low}+": sum(
        1 for d in days if d >= low and (high is None or d <= high)) for low, high in LEAD_RANGES}
    return LeadTime(loans=len(days), median_days=float(median(days)) if days else None,
                    min_days=min(days) if days else None, max_days=max(days) if days else None, distribution=counts)


def defaults_in(session: Session, *, scope: Visibility, until: date, branch: str | None,
                truth: Mapping[str, date] | None) -> dict[str, date]:
    """Every loan's first default up to `until`: from the history, or the file's (for loans in scope)."""
    if truth is None:
        return first_defaults(session, scope=scope, until=until, branch=branch)
    known = sa_select(Loan.id).where(Loan.id.in_(set(truth)), scope.where(Loan.branch))
    if branch is not None:
        known = known.where(Loan.branch == branch)
    return {loan_id: truth[loan_id] for loan_id in session.execute(known).scalars() if truth[loan_id] <= until}


def first_alerts(session: Session, codes: Sequence[str], *, scope: Visibility, until: date,
                 branch: str | None) -> dict[str, dict[str, date]]:
    """Rule -> loan -> the day of its first alert of the rule up to `until`; alerts a correction disproved (their
    facts never held) do not count."""
    query = sa_select(Alert.rule, Alert.loan_id, func.min(Alert.created_on)).where(
        Alert.rule.in_(codes), Alert.created_on <= until,
        Alert.status != AlertStatus.RESOLVED_BY_CORRECTION.value, scope.where(Alert.branch))
    if branch is not None:
        query = query.where(Alert.branch == branch)
    found: dict[str, dict[str, date]] = {code: {} for code in codes}
    for rule, loan_id, day in session.execute(query.group_by(Alert.rule, Alert.loan_id)):
        found[rule][loan_id] = day
    return found


def against_defaults(first: Mapping[str, date], defaults: Mapping[str, date], since: date,
                     until: date) -> dict[str, object]:
    """One rule's review fields from its first alerts and the loans' defaults (pure arithmetic)."""
    alerted = {loan: day for loan, day in first.items() if since <= day <= until}
    hits = sum(1 for loan, day in alerted.items() if loan in defaults and defaults[loan] >= day)
    defaulted = {loan: day for loan, day in defaults.items() if since <= day <= until}
    leads = sorted((day - first[loan]).days for loan, day in defaulted.items()
                   if loan in first and first[loan] <= day)
    return {"alerted_loans": len(alerted), "alerted_then_defaulted": hits,
            "default_precision": hits / len(alerted) if alerted else None, "defaulted_loans": len(defaulted),
            "warned_defaults": len(leads), "default_recall": len(leads) / len(defaulted) if defaulted else None,
            "lead_time": lead_time(leads)}
