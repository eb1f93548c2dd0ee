"""Alerts: raised by rules (once per event), worked forward through their lifecycle."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date
from functools import cache
from typing import Any

from sqlalchemy import Insert, select as sa_select
from sqlmodel import Session, select

from services.monitoring.alerts.models import (
    OPEN_STATUSES,
    TRANSITIONS,
    Alert,
    AlertEvent,
    AlertEventRead,
    AlertRead,
    AlertStatus,
)
from services.monitoring.db import insert_ignoring, outbox
from services.monitoring.loans.models import Loan, new_id, now
from services.monitoring.rules import engine
from services.monitoring.rules.engine import Facts
from services.monitoring.rules.models import EarlyWarningRule
from services.monitoring.rules.service import alert_drafts, due_date, enabled_rules
from services.monitoring.transactions.models import ACCOUNT, PAYER, AccountTransaction
from shared.auth.scope import Visibility, visibility
from shared.auth.tokens import Principal
from shared.audit import entry, note
from shared.errors import Problem
from shared.outbox import EventType
from shared.pagination import Page, PageRequest, keyset
from shared.pii import PiiVault, full_view_test

TXNS = AccountTransaction.__table__


def raise_alerts(session: Session, drafts: Sequence[dict[str, Any]], branches: dict[str, str] | None = None,
                 events: list[dict[str, Any]] | None = None) -> int:
    """Insert the drafts, skipping any event already alerted on (unique loan, rule, trigger); returns how many.
    `branches` (loan id -> branch) when the caller holds the loans already; `events`, a list of outbox events the
    caller records itself, to add the alerts' events to (else they are recorded here)."""
    if not drafts:
        return 0
    if branches is None:
        branches = dict(session.execute(sa_select(Loan.id, Loan.branch).where(
            Loan.id.in_({d["loan_id"] for d in drafts}))).all())
    raised = session.execute(insert_alerts(session.get_bind().dialect.name), alert_rows(drafts, branches))
    raised_events = alert_events(raised.mappings().all())
    if events is None:
        outbox.record_many(session, raised_events)
    else:
        events.extend(raised_events)
    return len(raised_events)


def alert_rows(drafts: Sequence[dict[str, Any]], branches: dict[str, str]) -> list[dict[str, Any]]:
    """The alerts rows of `raise_alerts`' drafts, for `insert_alerts`."""
    return [{**d, "id": new_id(), "branch": branches[d["loan_id"]], "status": AlertStatus.OPEN.value,
             "due_at": due_date(d["severity"], d["created_on"]), "created_at": now()} for d in drafts]


@cache
def insert_alerts(dialect_name: str) -> Insert:
    """The insert of `alert_rows` that skips an event already alerted on, returning the alerts it raised."""
    table = Alert.__table__
    return insert_ignoring(dialect_name, table).returning(
        table.c.id, table.c.loan_id, table.c.customer_id, table.c.branch, table.c.rule, table.c.severity,
        table.c.due_at)


def alert_events(raised: Sequence[Any]) -> list[dict[str, Any]]:
    """The outbox events of the alerts `insert_alerts` returned."""
    return [dict(type=EventType.ALERT_RAISED, subject_id=a["id"], branch=a["branch"], customer_id=a["customer_id"],
                 payload={"alert_id": a["id"], "loan_id": a["loan_id"], "customer_id": a["customer_id"],
                          "branch": a["branch"], "rule": a["rule"], "severity": a["severity"],
                          "status": AlertStatus.OPEN.value, "due_at": a["due_at"]})
            for a in raised]


def _resolved(session: Session, alert: Alert, actor: str) -> None:
    """The webhook event of an alert closed (resolved, dismissed, or disproved by a correction)."""
    outbox.record(session, EventType.ALERT_RESOLVED, alert.id, {
        "alert_id": alert.id, "loan_id": alert.loan_id, "customer_id": alert.customer_id, "branch": alert.branch,
        "rule": alert.rule, "severity": alert.severity, "status": alert.status, "closed_on": alert.closed_on,
        "resolved_by": actor,
    }, branch=alert.branch, customer_id=alert.customer_id)


def list_alerts(session: Session, paging: PageRequest, *, principal: Principal, vault: PiiVault,
                customer_id: str | None = None, loan_id: str | None = None, status: AlertStatus | None = None,
                owner: str | None = None) -> Page[AlertRead]:
    """The alerts the caller may see; an account in their evidence (a payer's, a borrower's) in clear only where
    the caller's role may see personal data of the alert's branch, else masked."""
    scope = visibility(principal)
    query = select(Alert).where(scope.where(Alert.branch))
    for column, value in ((Alert.customer_id, customer_id), (Alert.loan_id, loan_id),
                          (Alert.status, status), (Alert.owner, owner)):
        if value is not None:
            query = query.where(column == value)
    return keyset(session, query, paging, Alert.created_at, Alert.id,
                  read=lambda alerts: _accounts_as_seen(session, vault, principal, alerts))


# The accounts an alert's evidence may name (masked, beside their keyed hash): a payer's, the borrower's own.
_EVIDENCE_ACCOUNTS = (PAYER, ACCOUNT)


def _accounts_as_seen(session: Session, vault: PiiVault, principal: Principal,
                    alerts: Sequence[Alert]) -> list[AlertRead]:
    full_for = full_view_test(principal)
    clear: dict[str, dict[str, str]] = {}
    for field in _EVIDENCE_ACCOUNTS:
        hashed = f"{field}_hash"
        wanted = {a.evidence[hashed] for a in alerts if hashed in a.evidence and full_for(a.branch)}
        opened = clear[field] = {}
        if wanted:
            # Any feed row naming the account holds it; one per account is opened.
            digest = TXNS.c[hashed]
            for row in session.execute(sa_select(TXNS.c.id, TXNS.c.pii_kid, TXNS.c[f"{field}_enc"].label("enc"),
                                                 digest.label("digest")).where(digest.in_(wanted))):
                if row.digest not in opened and row.enc is not None:
                    opened[row.digest] = vault.open(row.enc, kid=row.pii_kid or "", row_id=row.id, field=field)
    shown, in_clear, fields = [], [], set()
    for alert in alerts:
        read = AlertRead.model_validate(alert)
        named = {field: clear[field][read.evidence[f"{field}_hash"]] for field in _EVIDENCE_ACCOUNTS
                 if full_for(alert.branch) and read.evidence.get(f"{field}_hash") in clear[field]}
        if named:
            read.evidence = {**read.evidence, **named}
            in_clear.append(alert.id)
            fields.update(named)
        shown.append(read)
    if in_clear:
        # Personal data shown in clear is a read the trail records (with the caller's commit), as customer's are.
        note(session, Alert.__table__, entry("read", Alert.__tablename__, in_clear[0] if len(in_clear) == 1 else None,
                                             None, None, {"via": "list_alerts", "full": in_clear,
                                                          "fields": sorted(fields)}))
    return shown


def get_alert(session: Session, alert_id: str, scope: Visibility) -> Alert:
    alert = session.get(Alert, alert_id)
    if alert is None or not scope.allows(alert.branch):
        raise Problem(404, "Not found", f"No alert {alert_id!r}.")
    return alert


def _move(session: Session, alert_id: str, to: AlertStatus, *, actor: str, scope: Visibility, note: str | None,
          as_of: date) -> Alert:
    alert = get_alert(session, alert_id, scope)
    current = AlertStatus(alert.status)
    if to not in TRANSITIONS[current]:
        raise Problem(409, "Conflict", f"An alert that is {current.value} cannot become {to.value}.")
    session.add(AlertEvent(alert_id=alert.id, from_status=current.value, to_status=to.value, actor=actor, note=note))
    alert.status = to.value
    if to is AlertStatus.ACKNOWLEDGED or alert.owner is None:
        alert.owner = actor
    if to not in OPEN_STATUSES:
        alert.closed_on = as_of
        _resolved(session, alert, actor)
    session.add(alert)
    session.flush()
    return alert


def acknowledge_alert(session: Session, alert_id: str, **kwargs: Any) -> Alert:
    return _move(session, alert_id, AlertStatus.ACKNOWLEDGED, **kwargs)


def start_alert(session: Session, alert_id: str, **kwargs: Any) -> Alert:
    return _move(session, alert_id, AlertStatus.IN_PROGRESS, **kwargs)


def resolve_alert(session: Session, alert_id: str, **kwargs: Any) -> Alert:
    return _move(session, alert_id, AlertStatus.RESOLVED, **kwargs)


def dismiss_alert(session: Session, alert_id: str, **kwargs: Any) -> Alert:
    """Close as a false positive: the rule fired but nothing was wrong (feeds the rule's precision)."""
    return _move(session, alert_id, AlertStatus.FALSE_POSITIVE, **kwargs)


def events(session: Session, alert_id: str, paging: PageRequest) -> Page[AlertEventRead]:
    return keyset(session, select(AlertEvent).where(AlertEvent.alert_id == alert_id), paging, AlertEvent.at,
                  AlertEvent.id, read=lambda rows: [AlertEventRead.model_validate(e) for e in rows])


def warn(session: Session, facts: Facts, kinds: Sequence[str] | None = None) -> int:
    """Apply the enabled rules (of these kinds) to one event and raise what they find."""
    return raise_alerts(session, alert_drafts(enabled_rules(session, kinds), facts))


SYSTEM = "system:correction"


def close_by_correction(session: Session, alert: Alert, *, reference: str, note: str, as_of: date) -> None:
    """A correction showed the alert's facts never held: closed, naming the posting or feed row that showed it."""
    session.add(AlertEvent(alert_id=alert.id, from_status=alert.status,
                           to_status=AlertStatus.RESOLVED_BY_CORRECTION.value, actor=SYSTEM, note=note[:500]))
    alert.status, alert.corrected_by, alert.closed_on = AlertStatus.RESOLVED_BY_CORRECTION.value, reference, as_of
    session.add(alert)
    _resolved(session, alert, SYSTEM)


def reopen_after_correction(session: Session, alert: Alert, evidence: dict[str, Any], *, note: str) -> None:
    """A later correction made a disproved alert's facts true again: the same alert is open again."""
    session.add(AlertEvent(alert_id=alert.id, from_status=alert.status, to_status=AlertStatus.OPEN.value,
                           actor=SYSTEM, note=note[:500]))
    alert.status, alert.corrected_by, alert.closed_on = AlertStatus.OPEN.value, None, None
    alert.evidence = evidence
    session.add(alert)


def restate(session: Session, alert: Alert, evidence: dict[str, Any]) -> None:
    """An alert that still stands states its facts as recomputed."""
    if alert.evidence != evidence:
        alert.evidence = evidence
        session.add(alert)


def alerts_on(session: Session, loan_id: str, rule: str) -> list[Alert]:
    return list(session.exec(select(Alert).where(Alert.loan_id == loan_id, Alert.rule == rule)
                             .order_by(Alert.created_on, Alert.created_at, Alert.id)))


def alerts_by_loan(session: Session, loan_ids: Sequence[str],
                   rules: Sequence[str]) -> dict[tuple[str, str], list[Alert]]:
    """(loan, rule) -> its alerts, for many loans in one query."""
    found: dict[tuple[str, str], list[Alert]] = {}
    if loan_ids and rules:
        for alert in session.exec(select(Alert).where(Alert.loan_id.in_(loan_ids), Alert.rule.in_(rules))
                                  .order_by(Alert.created_on, Alert.created_at, Alert.id)):
            found.setdefault((alert.loan_id, alert.rule), []).append(alert)
    return found


def reconcile(session: Session, rule: EarlyWarningRule, facts: Facts, found: Sequence[engine.Hit], *,
              disproof: Callable[[Alert], tuple[str, str] | None], as_of: date,
              existing: Sequence[Alert] | None = None) -> int:
    """Make a loan's alerts of an event rule agree with the events the rule finds in the whole known history:
    each event found has one alert (raised, restated, or reopened if a correction had closed it); an open alert
    whose event is no longer found is closed when `disproof` names what disproved it (reference, note). Returns
    how many alerts were raised. `existing` are the loan's alerts of the rule, when the caller read them already."""
    by_trigger = {hit.trigger: hit for hit in found}
    known = {alert.trigger_key: alert for alert in (
        alerts_on(session, facts.loan_id, rule.code) if existing is None else existing)}
    for trigger, alert in known.items():
        hit = by_trigger.get(trigger)
        status = AlertStatus(alert.status)
        if hit is not None:
            evidence = {**hit.evidence, "rule_version": rule.version}
            if status is AlertStatus.RESOLVED_BY_CORRECTION:
                reopen_after_correction(session, alert, evidence, note="the facts hold again in the corrected "
                                                                       "history")
            elif status in OPEN_STATUSES:
                restate(session, alert, evidence)
        elif status in OPEN_STATUSES:
            disproved = disproof(alert)
            if disproved is not None:
                close_by_correction(session, alert, reference=disproved[0], note=disproved[1], as_of=as_of)
    return raise_alerts(session, alert_drafts([rule], facts, [h for h in found if h.trigger not in known]))
