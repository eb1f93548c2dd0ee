"""COB's ageing step over a set of loans, set-based: one id range (a chunk) or one loan (inline COB, before a write
to a loan whose COB is behind the business date). No web framework here."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import ColumnElement, and_, bindparam, insert, or_, select, text, update
from sqlmodel import Session

from services.monitoring.alerts.service import raise_alerts
from services.monitoring.classification.rules import ChangeCause, Ifrs9Stage, RiskState, diff_states
from services.monitoring.cob.models import CobFailure
from services.monitoring.delinquency import service as delinquency
from services.monitoring.delinquency.models import DelinquencyPause, RiskChange
from services.monitoring.loans.models import Loan, LoanStatus, new_id, now
from services.monitoring.loans.products import POLICIES
from services.monitoring.rules.engine import Facts
from services.monitoring.rules.models import EarlyWarningRule, RuleKind
from services.monitoring.rules.service import alert_drafts, enabled_rules

LOANS = Loan.__table__
_AGEING_COLUMNS = (LOANS.c.id, LOANS.c.customer_id, LOANS.c.product, LOANS.c.oldest_unpaid_due, LOANS.c.dpd,
                   LOANS.c.bucket, LOANS.c.classification, LOANS.c.ifrs9_stage, LOANS.c.override_class,
                   LOANS.c.restructured_on, LOANS.c.hardship_on, LOANS.c.hardship_until)
_SET_STATE = (update(LOANS).where(LOANS.c.id == bindparam("b_id"))
              .values(dpd=bindparam("b_dpd"), bucket=bindparam("b_bucket"),
                      classification=bindparam("b_class"), ifrs9_stage=bindparam("b_stage")))

log = logging.getLogger(__name__)


@dataclass
class Aged:
    """What ageing a set of loans did."""

    processed: int = 0
    changed: int = 0
    history: int = 0
    raised: int = 0
    failures: list[CobFailure] = field(default_factory=list)


@dataclass(frozen=True)
class Loans:
    """Which loans to age: the id range [first, next_first) (None: to the last id), or these loans `only` (the
    loans of a posting, inline COB)."""

    first: str = ""
    next_first: str | None = None
    only: tuple[str, ...] = ()

    def sql(self) -> str:
        if self.only:
            return f"loans.id IN ({', '.join(f':cob_only_{n}' for n in range(len(self.only)))})"
        return "loans.id >= :cob_first" + ("" if self.next_first is None else " AND loans.id < :cob_next")

    def params(self) -> dict[str, Any]:
        return {"cob_first": self.first, "cob_next": self.next_first,
                **{f"cob_only_{n}": loan_id for n, loan_id in enumerate(self.only)}}

    def pauses(self) -> list[ColumnElement[bool]]:
        if self.only:
            return [DelinquencyPause.loan_id.in_(self.only)]
        bounds = [DelinquencyPause.loan_id >= self.first]
        if self.next_first is not None:
            bounds.append(DelinquencyPause.loan_id < self.next_first)
        return bounds


def is_postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def candidates(day: date) -> ColumnElement[bool]:
    """The loans ageing can change on `day`: overdue, or restructured (their observation period ends by date); the
    rest stay current. Every write that moves a loan's oldest unpaid due date reassesses the loan at once, so a
    loan not overdue carries no days past due. A loan in a hardship observation is one until the day it ends. All
    three conditions are indexed."""
    return and_(LOANS.c.status == LoanStatus.ACTIVE.value, or_(
        LOANS.c.oldest_unpaid_due < day, LOANS.c.restructured_on.is_not(None), LOANS.c.hardship_until >= day))


def ageing_rules(session: Session) -> tuple[list[EarlyWarningRule], tuple[int, ...]]:
    """The rules COB warns with, and the DPD values at which a loan's state or a DPD rule can change."""
    rules = enabled_rules(session, kinds=[RuleKind.DPD_REACHED, RuleKind.CLASS_WORSENED])
    days = set(delinquency.state_thresholds())
    days.update(int(r.params["days"]) for r in rules if r.kind == RuleKind.DPD_REACHED)
    return rules, tuple(sorted(days))


def _quiet(session: Session, thresholds: tuple[int, ...]) -> tuple[str, str]:
    """SQL for a loan's DPD on :cob_day, and the condition that only its DPD moves today: a plain loan (no
    override, restructuring or pause) still overdue, whose DPD grows without reaching a threshold. Those loans
    are aged by one UPDATE; every other candidate goes through the rules in Python."""
    if is_postgres(session):
        dpd = "(CAST(:cob_day AS DATE) - loans.oldest_unpaid_due)"
    else:
        dpd = "CAST(julianday(:cob_day) - julianday(loans.oldest_unpaid_due) AS INTEGER)"
    crossings = "".join(f" AND NOT (loans.dpd < {int(t)} AND {dpd} >= {int(t)})" for t in thresholds)
    products = ", ".join(f"'{p.value}'" for p in POLICIES)  # an unknown product fails in Python, and is reported
    condition = (
        f"loans.status = :cob_active AND loans.product IN ({products}) AND loans.oldest_unpaid_due < :cob_day"
        " AND loans.override_class IS NULL"
        f" AND loans.restructured_on IS NULL AND {dpd} > loans.dpd{crossings}"
        " AND NOT EXISTS (SELECT 1 FROM delinquency_pauses p WHERE p.loan_id = loans.id)")
    return dpd, condition


def age_loans(session: Session, day: date, which: Loans, rules: list[EarlyWarningRule],
              thresholds: tuple[int, ...], *, forward_only: bool = False) -> Aged:
    """Age `which` loans to `day` in the caller's transaction: loans whose DPD alone moves by one UPDATE in SQL;
    the few that can change bucket, class or stage, or warn, through the rules in Python; unchanged loans are not
    touched. The loans stay locked (PostgreSQL: row locks; SQLite: the one writer) until the caller commits, so
    a concurrent posting waits instead of interleaving. Ageing is idempotent: a loan already aged to `day`
    shows no change. `forward_only` leaves a loan alone whose stored DPD is already past `day`'s (aged by a
    later day's run)."""
    postgres = is_postgres(session)
    dpd_sql, quiet_sql = _quiet(session, thresholds)
    params = {"cob_day": day if postgres else day.isoformat(), "cob_active": LoanStatus.ACTIVE.value,
              **which.params()}
    in_set = which.sql()
    query = select(*_AGEING_COLUMNS).where(text(in_set), candidates(day), text(f"({quiet_sql}) IS NOT TRUE"))
    rows = session.execute(query.with_for_update() if postgres else query, params).all()
    aged = session.execute(text(f"UPDATE loans SET dpd = {dpd_sql} WHERE {in_set} AND {quiet_sql}"),
                           params).rowcount
    paused = delinquency.pauses_of(session, *which.pauses()) if rows else {}
    updates: list[dict[str, Any]] = []
    history: list[dict[str, Any]] = []
    drafts: list[dict[str, Any]] = []
    result = Aged()
    reference = f"cob:{day.isoformat()}"
    for row in rows:
        try:
            before = RiskState(row.dpd, row.bucket, delinquency.to_class(row.classification),
                               Ifrs9Stage(row.ifrs9_stage))
            # A row carries the Loan attributes `assess` reads; no ORM object is built per loan.
            dpd = delinquency.dpd_on(row.oldest_unpaid_due, day, paused.get(row.id, ()))
            if forward_only and dpd < row.dpd:
                continue
            after = delinquency.assess(row, dpd, day)
            if after == before:
                continue
            records = diff_states(before, after, ChangeCause.COB_AGEING, day)
            facts = Facts(row.id, row.customer_id, day, before, after)
            loan_drafts = alert_drafts(rules, facts)
        except Exception as exc:  # noqa: BLE001 - one bad loan is reported and skipped, the batch goes on
            result.failures.append(CobFailure(business_date=day, loan_id=row.id, step="ageing",
                                              error=f"{type(exc).__name__}: {exc}"[:500]))
            continue
        updates.append({"b_id": row.id, "b_dpd": after.dpd, "b_bucket": after.bucket,
                        "b_class": delinquency.class_name(after.loan_class), "b_stage": int(after.stage)})
        history += delinquency.history_rows(row.id, records, day, reference, after.dpd)
        drafts += loan_drafts
    if updates:
        session.execute(_SET_STATE, updates)
    if history:
        session.execute(insert(RiskChange.__table__), [{**h, "id": new_id(), "recorded_at": now()} for h in history])
    result.raised = raise_alerts(session, drafts)
    result.processed, result.changed, result.history = len(rows) + aged, len(updates) + aged, len(history)
    return result


def behind(loan: Any, day: date) -> bool:
    """Whether ageing to `day` could change an active loan: one in a restructuring's or a hardship's observation
    (which ends by date), or an overdue one whose days past due are not yet counted to `day`. A loan a posting or
    COB already aged to `day` is not; a paused one counts fewer days than the calendar, so it always is (and
    ageing it, which knows the pauses, changes nothing)."""
    if loan.restructured_on is not None or (loan.hardship_until is not None and loan.hardship_until >= day):
        return True
    return (loan.oldest_unpaid_due is not None and loan.oldest_unpaid_due < day
            and loan.dpd != (day - loan.oldest_unpaid_due).days)


def catch_up(session: Session, loan: Loan, as_of: date) -> bool:
    """Inline COB (Apache Fineract's term): before a write, bring the locked `loan` to the business date `as_of`
    by the same ageing step COB runs, so the write starts from the state (history, alerts) COB would have left,
    e.g. a repayment to a loan last aged three days ago first ages it to today. Returns whether it changed (the
    caller's `loan` is then read again)."""
    if loan.status != LoanStatus.ACTIVE or not behind(loan, as_of):
        return False  # ageing leaves it as it is
    changed = catch_up_loans(session, [loan.id], as_of)
    if changed:
        session.refresh(loan)
    return changed


def catch_up_loans(session: Session, loan_ids: list[str], as_of: date) -> bool:
    """`catch_up` of several locked loans at once (a batch of postings), each one `behind`: one ageing step for
    all of them. Returns whether any changed."""
    rules, thresholds = ageing_rules(session)
    aged = age_loans(session, as_of, Loans(only=tuple(loan_ids)), rules, thresholds, forward_only=True)
    for failure in aged.failures:  # the write goes on; the next COB reports the loan
        log.warning("inline COB of loan %s on %s: %s", failure.loan_id, as_of.isoformat(), failure.error)
    return aged.changed > 0
