"""Managing early-warning rules and applying the enabled ones to a loan's events."""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from datetime import date, timedelta
from types import SimpleNamespace
from typing import Any

from sqlalchemy import func, select as sa_select
from sqlmodel import Session, select

from services.monitoring.alerts.models import Alert, AlertStatus
from services.monitoring.db import insert_ignoring
from services.monitoring.delinquency.models import RiskChange
from services.monitoring.errors import DomainError
from services.monitoring.loans.models import Loan, now
from services.monitoring.rules import engine, queries
from services.monitoring.rules.models import EarlyWarningRule, RuleRead, RuleReview, RuleWrite
from shared.auth.scope import Visibility
from shared.errors import Problem
from shared.pagination import Page, PageRequest, page_of

NON_PERFORMING = ("substandard", "doubtful", "loss")


def list_rules(session: Session) -> list[EarlyWarningRule]:
    """All rules; the shipped ones are installed on first use (insert-if-absent, so concurrent first uses cannot
    collide) and an analyst's later edits are never overwritten."""
    rules = list(session.exec(select(EarlyWarningRule).order_by(EarlyWarningRule.code)))
    known = {rule.code for rule in rules}
    missing = [{**rule, "kind": rule["kind"].value, "version": 1, "enabled": True, "updated_by": "shipped",
                "updated_at": now()} for rule in engine.SHIPPED_RULES if rule["code"] not in known]
    if not missing:
        return rules
    session.execute(insert_ignoring(session, EarlyWarningRule.__table__), missing)
    return list(session.exec(select(EarlyWarningRule).order_by(EarlyWarningRule.code)))


def rules_page(session: Session, paging: PageRequest) -> Page[RuleRead]:
    """A page of the rules by code; a small set, paged in memory after `list_rules` installed the shipped ones."""
    return page_of(list_rules(session), paging, lambda rule: (rule.code,), str,
                   read=lambda rules: [RuleRead.model_validate(r) for r in rules])


def enabled_rules(session: Session, kinds: Sequence[str] | None = None) -> list[EarlyWarningRule]:
    return [r for r in list_rules(session) if r.enabled and (kinds is None or r.kind in kinds)]


def rule_copies(session: Session) -> list[SimpleNamespace]:
    """The enabled rules as plain objects, to apply away from the session (the shipped ones installed first)."""
    return [SimpleNamespace(code=r.code, kind=r.kind, params=dict(r.params), severity=r.severity, version=r.version)
            for r in enabled_rules(session)]


def rules_key() -> tuple[Any, ...]:
    """Scalar subqueries that change whenever a rule is added or edited (every edit bumps `version`): a reader
    can put them in a statement it runs anyway and re-read the rules only when they moved."""
    t = EarlyWarningRule.__table__
    return (sa_select(func.count()).select_from(t).scalar_subquery().label("rules_count"),
            sa_select(func.coalesce(func.sum(t.c.version), 0)).scalar_subquery().label("rules_versions"))


_snapshots: dict[str, tuple[tuple[int, int], list[SimpleNamespace]]] = {}  # database -> (key, its rules)
_snapshots_lock = threading.Lock()


def enabled_rules_at(session: Session, key: tuple[int, int]) -> list[SimpleNamespace]:
    """The enabled rules as of `key` (from `rules_key`; within one database it only grows), read from the
    database only when it moved. Plain copies, shared by the process's sessions on that database."""
    database = session.get_bind().url.render_as_string(hide_password=True)
    with _snapshots_lock:
        known = _snapshots.get(database)
    if known is not None and known[0] == key:
        return known[1]
    rules = rule_copies(session)
    if key[0] >= len(engine.SHIPPED_RULES):  # not the key of before the shipped rules were installed
        with _snapshots_lock:
            _snapshots[database] = (key, rules)
    return rules


def _code(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")[:64]


def create_rule(session: Session, command: RuleWrite, *, by: str) -> EarlyWarningRule:
    engine.validate_params(command.kind, command.params)
    code = _code(command.name)
    if session.get(EarlyWarningRule, code) is not None:
        raise DomainError("name", f"a rule named like this already exists ({code})")
    rule = EarlyWarningRule(code=code, **command.model_dump(mode="json"), updated_by=by)
    session.add(rule)
    session.flush()
    return rule


def update_rule(session: Session, code: str, command: RuleWrite, *, by: str) -> EarlyWarningRule:
    list_rules(session)
    rule = session.get(EarlyWarningRule, code)
    if rule is None:
        raise Problem(404, "Not found", f"No rule {code!r}.")
    if command.kind.value != rule.kind:
        raise DomainError("kind", "a rule's kind cannot change; create a new rule instead")
    engine.validate_params(command.kind, command.params)
    for name, value in command.model_dump(mode="json").items():
        setattr(rule, name, value)
    rule.version += 1
    rule.updated_by, rule.updated_at = by, now()
    session.add(rule)
    session.flush()
    return rule


def alert_drafts(rules: Sequence[EarlyWarningRule], facts: engine.Facts,
                 hits: Sequence[engine.Hit] | None = None) -> list[dict[str, Any]]:
    """What the enabled rules say about one event (or these hits of the one rule): rows ready for
    `alerts.service.raise_alerts`."""
    drafts = []
    for rule in rules:
        for hit in engine.evaluate_all(rule.kind, rule.params, facts) if hits is None else hits:
            drafts.append({"loan_id": facts.loan_id, "customer_id": facts.customer_id, "rule": rule.code,
                           "severity": hit.severity or rule.severity, "trigger_key": hit.trigger,
                           "evidence": {**hit.evidence, "rule_version": rule.version}, "created_on": facts.day})
    return drafts


def due_date(severity: str, day: date) -> date:
    return day + timedelta(days={"high": 1, "medium": 3, "low": 7}[severity])


def review_rules(session: Session, since: date, until: date, scope: Visibility, branch: str | None = None,
                 truth: queries.Truth | None = None, codes: Sequence[str] | None = None) -> list[RuleReview]:
    """Every rule's review (or these rules'), by code; defaults from the history, or from `truth` when given."""
    if until < since:
        raise DomainError("until", "must not be before since")
    kinds = {rule.code: rule.kind for rule in list_rules(session)}
    if codes is not None and (unknown := set(codes) - set(kinds)):
        raise Problem(404, "Not found", f"No rule {sorted(unknown)[0]!r}.")
    codes = [code for code in kinds if codes is None or code in codes]
    defaults = queries.defaults_in(session, scope=scope, until=until, branch=branch,
                                   truth=None if truth is None else truth.defaults)
    planted = {} if truth is None else {
        kind: queries.in_scope(session, loans, scope=scope, branch=branch) for kind, loans in truth.patterns.items()}
    first = queries.first_alerts(session, codes, scope=scope, until=until, branch=branch)
    return [_judged(session, code, since, until, scope, branch).model_copy(update={
        **queries.against_defaults(first[code], defaults, since, until),
        **(queries.against_pattern(first[code], planted[kinds[code]], until) if kinds[code] in planted else {}),
        "defaults_from": "history" if truth is None else "truth"}) for code in codes]


def review_rule(session: Session, code: str, since: date, until: date, scope: Visibility,
                branch: str | None = None) -> RuleReview:
    [review] = review_rules(session, since, until, scope, branch, codes=[code])
    return review


def _judged(session: Session, code: str, since: date, until: date, scope: Visibility,
            branch: str | None = None) -> RuleReview:
    """Precision from how collectors closed the rule's alerts; recall against loans that became non-performing.

    A loan "went bad" when its class first turned substandard or worse within [since, until]; the rule warned
    about it if one of its alerts on that loan was raised on or before that day.
    """
    alerts = sa_select(Alert.status).where(Alert.rule == code, Alert.created_on >= since, Alert.created_on <= until,
                                           scope.where(Alert.branch))
    bad = sa_select(RiskChange.loan_id, func.min(RiskChange.effective_date)).join(
        Loan, Loan.id == RiskChange.loan_id).where(
        RiskChange.field == "loan_class", RiskChange.to_value.in_(NON_PERFORMING),
        RiskChange.effective_date >= since, RiskChange.effective_date <= until, RiskChange.superseded_at.is_(None),
        scope.where(Loan.branch))
    if branch is not None:  # the analyst's own filter, within the scope
        alerts = alerts.where(Alert.branch == branch)
        bad = bad.where(Loan.branch == branch)
    statuses = list(session.execute(alerts).scalars())
    resolved = statuses.count(AlertStatus.RESOLVED.value)
    false_positives = statuses.count(AlertStatus.FALSE_POSITIVE.value)
    gone_bad = dict(session.execute(bad.group_by(RiskChange.loan_id)).all())
    first_warning = dict(session.execute(
        sa_select(Alert.loan_id, func.min(Alert.created_on)).where(
            Alert.rule == code, Alert.loan_id.in_(gone_bad)).group_by(Alert.loan_id)).all()) if gone_bad else {}
    warned = sum(1 for loan_id, bad_on in gone_bad.items()
                 if loan_id in first_warning and first_warning[loan_id] <= bad_on)
    closed = resolved + false_positives
    return RuleReview(code=code, alerts=len(statuses), resolved=resolved, false_positives=false_positives,
                      precision=resolved / closed if closed else None, loans_gone_bad=len(gone_bad),
                      warned_before=warned, recall=warned / len(gone_bad) if gone_bad else None)
