"""Reviewing rules against defaults: per rule, precision and recall by loan and the lead time from the first alert
to the default, on the effective history or on a ground-truth file (the demo portfolio's planted defaults)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
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


@dataclass
class Truth:
    """What a ground-truth file says: each defaulted loan's day, and the loans of each planted pattern (named by
    the rule kind meant to find it, e.g. `shared_payer`)."""

    defaults: dict[str, date] = field(default_factory=dict)
    patterns: dict[str, set[str]] = field(default_factory=dict)


def read_truth(lines: Iterable[str]) -> Truth:
    """JSON lines, each naming a loan (`loan_id`) or several (`loans`), with `defaulted_on` for a loan that
    defaulted and `pattern` for loans planted with one; a line naming no loan (a `kind` of customers, such as a
    shared identifier) is not about loans and is passed over."""
    truth = Truth()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            if "loan_id" not in row and "loans" not in row and "kind" in row:
                continue
            loans = [row["loan_id"]] if "loan_id" in row else row["loans"]
            if not loans or not all(isinstance(loan, str) and loan for loan in loans):
                raise ValueError("loan_id must be a string")
            defaulted, pattern = row.get("defaulted_on"), row.get("pattern")
            if defaulted is not None:
                day = date.fromisoformat(defaulted)
                for loan in loans:
                    truth.defaults[loan] = min(day, truth.defaults.get(loan, day))
            if pattern is not None:
                if not isinstance(pattern, str):
                    raise ValueError("pattern must be a rule kind")
                truth.patterns.setdefault(pattern, set()).update(loans)
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
    return {loan_id: truth[loan_id] for loan_id in in_scope(session, set(truth), scope=scope, branch=branch)
            if truth[loan_id] <= until}


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


def in_scope(session: Session, loans: set[str], *, scope: Visibility, branch: str | None) -> set[str]:
    """Those of `loans` on the book that the caller may see (and of `branch`)."""
    known = sa_select(Loan.id).where(Loan.id.in_(loans), scope.where(Loan.branch))
    if branch is not None:
        known = known.where(Loan.branch == branch)
    return set(session.execute(known).scalars())


def against_pattern(first: Mapping[str, date], planted: set[str], until: date) -> dict[str, object]:
    """A rule's review against the loans planted with the pattern it is meant to find (pure arithmetic)."""
    alerted = {loan for loan, day in first.items() if day <= until}
    found = len(alerted & planted)
    return {"planted_loans": len(planted), "planted_found": found,
            "planted_recall": found / len(planted) if planted else None,
            "planted_precision": found / len(alerted) if alerted else None}


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
