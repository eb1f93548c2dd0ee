"""Repayments and reversals: allocation over the schedule, balances, and the replay of history they cause."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from sqlmodel import Session, select

from services.monitoring.alerts import service as alerts
from services.monitoring.alerts.models import OPEN_STATUSES, Alert, AlertStatus
from services.monitoring.alerts.service import (
    alerts_on,
    close_by_correction,
    raise_alerts,
    reconcile,
    reopen_after_correction,
    restate,
)
from services.monitoring.cob import service as cob
from services.monitoring.db import outbox
from services.monitoring.classification.rules import ChangeCause, ChangeRecord, LoanClass, RiskState
from services.monitoring.delinquency import service as delinquency
from services.monitoring.delinquency.models import DelinquencyPause
from services.monitoring.delinquency.rules import Posting as PaidLines
from services.monitoring.delinquency.rules import replay_delinquency, state_on
from services.monitoring.errors import DomainError
from services.monitoring.loans import service as loans
from services.monitoring.loans.allocation import DueItem, InstalmentAllocation, allocate
from services.monitoring.loans.models import Instalment, Loan, LoanStatus
from services.monitoring.loans.money import ZERO, to_cents
from services.monitoring.loans.products import ProductPolicy, policy
from services.monitoring.loans.schedule import Instalment as ScheduledInstalment, Rounding
from services.monitoring.repayments.models import BalanceCheck, Posting, PostingRead, PostingStatus, RepaymentCreate
from services.monitoring.rules.engine import Facts, evaluate, evaluate_all
from services.monitoring.rules.models import EarlyWarningRule, RuleKind
from services.monitoring.rules.service import alert_drafts, enabled_rules
from shared.auth.scope import Visibility
from shared.errors import Problem
from shared.outbox import EventType
from shared.pagination import Page, PageRequest, keyset


def active_postings(session: Session, loan_id: str) -> list[Posting]:
    return list(session.exec(
        select(Posting).where(Posting.loan_id == loan_id, Posting.status == PostingStatus.POSTED)
        .order_by(Posting.value_date, Posting.created_at, Posting.id)))


def _partials_in_a_row(session: Session, loan_id: str, look_back: int = 12) -> int:
    """How many of the latest live postings, newest first, each left the loan overdue."""
    latest = session.exec(
        select(Posting.left_overdue).where(Posting.loan_id == loan_id, Posting.status == PostingStatus.POSTED)
        .order_by(Posting.value_date.desc(), Posting.created_at.desc(), Posting.id.desc()).limit(look_back)).all()
    count = 0
    for left_overdue in latest:
        if not left_overdue:
            break
        count += 1
    return count


def _paid_lines(postings: Sequence[Posting]) -> list[PaidLines]:
    return [PaidLines(p.value_date, tuple(
        InstalmentAllocation(line["number"], p.value_date, ZERO, _d(line["interest"]), _d(line["principal"]))
        for line in p.lines)) for p in postings]


def _d(value: object) -> Decimal:
    return Decimal(str(value))  # JSON keeps amounts as strings


def _scheduled(rows: Sequence[Instalment]) -> list[ScheduledInstalment]:
    return [ScheduledInstalment(r.number, r.due_date, r.principal, r.interest, r.principal + r.interest, ZERO, ZERO)
            for r in rows]


def _penalty_due(row: Instalment, daily_rate: Decimal, on: date, rounding: str) -> Decimal:
    """Penalty interest for each day the instalment has been overdue, less what was paid of it. It is charged on
    what the instalment still owes on `on`: a part paid late earns no penalty for its late days (the borrower's
    favour, and what keeps a backdated replay from needing a day-by-day ledger)."""
    days = (on - row.due_date).days
    if daily_rate == 0 or days <= 0:
        return ZERO
    owed = row.principal - row.principal_paid + row.interest - row.interest_paid
    return max(to_cents(owed * daily_rate * days, rounding) - row.penalty_paid - row.penalty_waived, ZERO)


def _penalties(loan: Loan, due_now: Sequence[Instalment], on: date) -> dict[int, Decimal]:
    """The penalty each instalment due by `on` has been charged by then and not paid, by number."""
    rounding = Rounding(loan.rounding).mode  # the loan's own, as its schedule was
    return {r.number: _penalty_due(r, loan.penalty_daily_rate, on, rounding) for r in due_now}


def payoff(loan: Loan, rows: Sequence[Instalment], on: date) -> Decimal:
    """What settles the loan in full with money dated `on`, given its unpaid instalments `rows` (all of them):
    the most `_apply` can allocate before the rest is an overpayment. That is every unpaid instalment's principal
    and interest (paid early, a later instalment's scheduled interest is owed too: this book gives no rebate) and
    the penalty charged by `on` on the instalments due by then."""
    unpaid = [r for r in rows if r.principal_paid < r.principal or r.interest_paid < r.interest]
    penalties = _penalties(loan, [r for r in unpaid if r.due_date <= on], on)
    return (sum((r.principal - r.principal_paid + r.interest - r.interest_paid for r in unpaid), ZERO)
            + sum(penalties.values(), ZERO))


def over_payoff(loan: Loan, rows: Sequence[Instalment], amount: Decimal, on: date,
                tolerance: Decimal) -> str | None:
    """Why `amount` cannot be taken (the field is the amount), or None: more than settles the loan in full on
    `on` plus `tolerance` (MonitoringSettings.overpayment_tolerance) is a mistake, never a credit to keep. The
    rule of both paths (`posting._refusal`, `post_repayment`) and so of repayment files."""
    owed = payoff(loan, rows, on)
    if amount <= owed + tolerance:
        return None
    return (f"must be at most {owed + tolerance}: {owed} settles the loan in full on {on.isoformat()} (principal, "
            f"interest and penalty), and at most {tolerance} more is kept as a credit")


def _apply(rules: ProductPolicy, loan: Loan, rows: list[Instalment], posting: Posting) -> Decimal:
    """Allocate one posting on top of what the instalments already show paid; returns the overpayment."""
    unpaid = [r for r in rows if r.principal_paid < r.principal or r.interest_paid < r.interest]
    due_now = [r for r in unpaid if r.due_date <= posting.value_date]
    penalties = _penalties(loan, due_now, posting.value_date)
    owed_now = sum((r.principal - r.principal_paid + r.interest - r.interest_paid + penalties[r.number]
                    for r in due_now), ZERO)
    # A payment no larger than what is due cannot reach later instalments: leaving them out keeps a posting on a
    # 30-year mortgage as cheap as one on a 12-month loan.
    candidates = due_now if posting.amount <= owed_now else unpaid
    dues = [DueItem(r.number, r.due_date, penalties.get(r.number, ZERO), r.interest - r.interest_paid,
                    r.principal - r.principal_paid) for r in candidates]
    split = allocate(posting.amount, dues, rules.order, rules.strategy, as_of=posting.value_date)
    by_number = {r.number: r for r in candidates}
    for line in split.lines:
        if line.total > 0:
            by_number[line.number].principal_paid += line.principal
            by_number[line.number].interest_paid += line.interest
            by_number[line.number].penalty_paid += line.penalty
    posting.principal, posting.interest = split.component_total("principal"), split.component_total("interest")
    posting.penalty, posting.overpayment = split.component_total("penalty"), split.overpayment
    posting.lines = [{"number": line.number, "principal": str(line.principal), "interest": str(line.interest),
                      "penalty": str(line.penalty)} for line in split.lines if line.total > 0]
    return split.overpayment


def _receive(session: Session, loan: Loan, posting: Posting) -> None:
    """Money dated on or after every live posting: earlier splits stand, only the new money is allocated.

    Only unpaid instalments are read, and only those already due unless the money is more than they owe.
    """
    rows = loans.unpaid_instalments(session, loan.id, due_by=posting.value_date)
    if posting.amount > sum((r.principal - r.principal_paid + r.interest - r.interest_paid for r in rows), ZERO):
        rows = loans.unpaid_instalments(session, loan.id)
    loan.credit_balance += _apply(policy(loan.product), loan, rows, posting)
    loan.outstanding_principal -= posting.principal
    session.add_all([*rows, posting])
    session.flush()
    loan.oldest_unpaid_due = loans.next_unpaid_due(session, loan.id)


def _reallocate(session: Session, loan: Loan) -> tuple[list[Instalment], list[Posting]]:
    """An earlier value date or a reversal changes what every later posting found owed: split them all again."""
    rows = loans.instalments(session, loan.id)
    postings = active_postings(session, loan.id)
    rules = policy(loan.product)
    for row in rows:
        row.principal_paid = row.interest_paid = row.penalty_paid = ZERO
    loan.credit_balance = sum((_apply(rules, loan, rows, p) for p in postings), ZERO)
    loan.outstanding_principal = loans.outstanding(rows)
    loan.oldest_unpaid_due = loans.oldest_unpaid_due(rows)
    session.add_all([*rows, *postings])
    return rows, postings


def _rebook(session: Session, loan: Loan, since: date, as_of: date, cause: ChangeCause, reference: str,
            received: Posting | None = None,
            ) -> tuple[list[ChangeRecord], tuple[list[Instalment], list[Posting]] | None]:
    """Bring instalments, balances and risk state in line with the live postings, then record what changed.
    Also returns the instalments and postings when every posting was split again (a correction of the past)."""
    if received is not None and since == as_of and session.exec(select(Posting.id).where(
            Posting.loan_id == loan.id, Posting.status == PostingStatus.POSTED,
            Posting.value_date > received.value_date).limit(1)).first() is None:
        _receive(session, loan, received)
        rows, postings = None, None
    else:
        rows, postings = _reallocate(session, loan)
    loan.status = LoanStatus.ACTIVE if loan.oldest_unpaid_due is not None else LoanStatus.CLOSED
    session.add(loan)
    reallocated = None if rows is None else (rows, postings)
    if rows is not None and since < as_of:
        return delinquency.replay(session, loan, _scheduled(rows), _paid_lines(postings), since, as_of,
                                  cause=cause, reference=reference), reallocated
    return delinquency.reassess(session, loan, as_of, cause=cause, reference=reference), reallocated


def _partial_runs(rows: Sequence[Instalment], postings: Sequence[Posting]) -> dict[str, tuple[Decimal, int]]:
    """Each live posting (value-date order): what was still overdue right after it, judged on its value date (not
    on the day it was booked), and how many postings in a row, up to it, left the loan overdue."""
    paid: dict[int, Decimal] = {}
    runs: dict[str, tuple[Decimal, int]] = {}
    in_a_row = 0
    for posting in postings:
        for line in posting.lines:
            paid[line["number"]] = paid.get(line["number"], ZERO) + _d(line["principal"]) + _d(line["interest"])
        overdue = sum((max(r.principal + r.interest - paid.get(r.number, ZERO), ZERO)
                       for r in rows if r.due_date < posting.value_date), ZERO)
        in_a_row = in_a_row + 1 if overdue > 0 else 0
        runs[posting.id] = (overdue, in_a_row)
    return runs


def _timeline(session: Session, loan: Loan, rows: Sequence[Instalment], postings: Sequence[Posting],
              as_of: date, thresholds: set[int]) -> tuple[list[date], Callable[[date], RiskState]]:
    """The corrected risk path from the first day money can be dated: the days on which a state or rule threshold
    can be crossed, and the state on any day."""
    start = loans.rebooked_on(session, loan) or loan.disbursement_date
    pauses = delinquency.pauses_of(session, DelinquencyPause.loan_id == loan.id).get(loan.id, [])
    points = replay_delinquency(_scheduled(rows), _paid_lines(postings), start, as_of, pauses=pauses,
                                scheme=policy(loan.product).buckets)
    days = {as_of}
    for point, following in zip(points, [*points[1:], None], strict=True):
        days.add(point.on)
        last = following.on - timedelta(days=1) if following else as_of
        if point.ageing:
            days.update(d for t in thresholds if point.on < (d := point.on + timedelta(days=t - point.dpd)) <= last)

    def state(day: date) -> RiskState:
        return delinquency.assess(loan, state_on(points, day).dpd, day)

    return sorted(days), state


def _holds(rule: EarlyWarningRule, state: RiskState) -> bool:
    if rule.kind == RuleKind.DPD_REACHED:
        return state.dpd >= rule.params["days"]
    return state.loan_class >= LoanClass[rule.params["at_least"].upper()]


def _recomputed(rule: EarlyWarningRule, loan: Loan, alert: Alert, then: RiskState) -> dict[str, Any]:
    """The alert's evidence with the facts of its day as the corrected path has them."""
    hit = evaluate(rule.kind, rule.params, Facts(loan.id, loan.customer_id, alert.created_on, None, then))
    evidence = {**alert.evidence, **(hit.evidence if hit is not None else {})}
    if "from" in alert.evidence:  # the class it came from belongs to the event that raised it
        evidence["from"] = alert.evidence["from"]
    return evidence


def _follow_state_rule(session: Session, loan: Loan, rule: EarlyWarningRule, days: Sequence[date],
                       state: Callable[[date], RiskState], *, since: date, as_of: date, reference: str,
                       what: str) -> int:
    """A DPD or class alert claims the loan was in a state on the day it was raised. After a correction dated
    `since`, each open alert from then on is judged against the corrected path: disproved, it is closed naming
    the posting; standing, it states the recomputed facts. If the loan is in the state now and no alert says so,
    the one a correction had closed within this stretch is reopened, or else one is raised for its first day."""
    episode: date | None = None
    for day in days:
        if not _holds(rule, state(day)):
            episode = None
        elif episode is None:
            episode = day
    found = alerts_on(session, loan.id, rule.code)
    standing = 0
    for alert in found:
        if AlertStatus(alert.status) not in OPEN_STATUSES:
            continue
        if alert.created_on < since:
            standing += 1
            continue
        then = state(alert.created_on)
        if _holds(rule, then):
            restate(session, alert, _recomputed(rule, loan, alert, then))
            standing += 1
        else:
            close_by_correction(session, alert, reference=reference, as_of=as_of, note=(
                f"{what} {reference}: on {alert.created_on.isoformat()} the loan was {then.dpd} days past due, "
                f"{then.bucket}, {then.loan_class.name.lower()}"))
    if episode is None or standing:
        return 0
    closed = [a for a in found if a.status == AlertStatus.RESOLVED_BY_CORRECTION.value and a.created_on >= episode]
    if closed:
        alert = closed[-1]
        reopen_after_correction(session, alert, _recomputed(rule, loan, alert, state(alert.created_on)),
                                note=f"{what} {reference}: the loan is in this state again since {episode.isoformat()}")
        return 0
    before = state(episode - timedelta(days=1)) if episode > days[0] else None
    return raise_alerts(session, alert_drafts([rule], Facts(loan.id, loan.customer_id, episode, before,
                                                            state(episode))))


def _follow_facts(session: Session, loan: Loan, rows: list[Instalment], postings: list[Posting], *, since: date,
                  as_of: date, reference: str, what: str) -> None:
    """After a correction of the past, the loan's alerts agree with the corrected history: partial payments judged
    on value dates, and DPD and class alerts on the corrected path (see `_follow_state_rule`)."""
    runs = _partial_runs(rows, postings)
    for posting in postings:
        posting.left_overdue = runs[posting.id][0] > 0
    session.add_all(postings)
    rules = enabled_rules(session, [RuleKind.PARTIAL_PAYMENT, RuleKind.DPD_REACHED, RuleKind.CLASS_WORSENED])
    state_rules = [r for r in rules if r.kind != RuleKind.PARTIAL_PAYMENT]
    thresholds = set(delinquency.state_thresholds()) | {
        int(r.params["days"]) for r in state_rules if r.kind == RuleKind.DPD_REACHED}
    days, state = _timeline(session, loan, rows, postings, as_of, thresholds)
    for rule in state_rules:
        _follow_state_rule(session, loan, rule, days, state, since=since, as_of=as_of, reference=reference, what=what)
    facts = Facts(loan.id, loan.customer_id, as_of)
    for rule in (r for r in rules if r.kind == RuleKind.PARTIAL_PAYMENT):
        hits = [hit for p in postings for hit in evaluate_all(rule.kind, rule.params, Facts(
            loan.id, loan.customer_id, as_of, payment={"posting_id": p.id, "amount": p.amount,
                                                       "overdue_after": runs[p.id][0],
                                                       "partials_in_a_row": runs[p.id][1]}))]
        in_a_row = rule.params["in_a_row"]
        reconcile(session, rule, facts, hits, as_of=as_of, disproof=lambda alert, in_a_row=in_a_row: (
            reference, (f"{what} {reference}: judged on value dates, posting "
                        f"{alert.trigger_key.removeprefix('posting:')} no longer makes {in_a_row} "
                        f"partial payments in a row")))


def _refuse_written_off(loan: Loan) -> None:
    # Replaying postings would put a written-off loan back in the book; recoveries are booked outside it.
    if loan.status == LoanStatus.WRITTEN_OFF:
        raise Problem(409, "Conflict", f"The loan was written off on {loan.written_off_on.isoformat()}; its postings "
                                       "can no longer change.")


def post_repayment(session: Session, loan_id: str, command: RepaymentCreate, *, scope: Visibility, posted_by: str,
                   as_of: date, tolerance: Decimal) -> tuple[Posting, list[ChangeRecord]]:
    """Book money received; a value date before the business date replays delinquency from that date. At most
    what settles the loan in full on the value date plus `tolerance` is taken (`over_payoff`)."""
    loan = loans.lock_loan(session, loan_id, scope)
    cob.catch_up(session, loan, as_of)
    value_date = command.value_date or as_of
    if value_date > as_of:
        raise DomainError("value_date", f"must not be after the business date {as_of.isoformat()}")
    if value_date < loan.disbursement_date:
        raise DomainError("value_date", "must not be before the disbursement date")
    rebooked = loans.rebooked_on(session, loan)
    if rebooked is not None and value_date < rebooked:
        raise DomainError("value_date", f"must not be before the schedule's rebooking on {rebooked.isoformat()}")
    if loan.status == LoanStatus.CLOSED:
        raise DomainError("amount", "the loan is fully repaid; nothing is owed")
    _refuse_written_off(loan)
    if command.external_id and session.exec(select(Posting.id).where(
            Posting.loan_id == loan.id, Posting.external_id == command.external_id)).first():
        raise Problem(409, "Conflict", f"A posting with external_id {command.external_id!r} already exists.")
    # Against what is unpaid now: for money dated before later postings, what they paid is not owed twice.
    refused = over_payoff(loan, loans.unpaid_instalments(session, loan.id), command.amount, value_date, tolerance)
    if refused is not None:
        raise DomainError("amount", refused)
    posting = Posting(loan_id=loan.id, external_id=command.external_id, amount=command.amount, value_date=value_date,
                      booked_on=as_of, created_by=posted_by)
    session.add(posting)
    session.flush()
    outbox.record(session, EventType.REPAYMENT_POSTED, posting.id, {
        "posting_id": posting.id, "loan_id": loan.id, "customer_id": loan.customer_id, "branch": loan.branch,
        "external_id": posting.external_id, "amount": posting.amount, "value_date": value_date, "booked_on": as_of,
    }, branch=loan.branch, customer_id=loan.customer_id)
    cause = ChangeCause.BACKDATED_REPAYMENT if value_date < as_of else ChangeCause.REPAYMENT
    before = delinquency.stored_state(loan)
    records, reallocated = _rebook(session, loan, value_date, as_of, cause, posting.id, received=posting)
    if reallocated is not None:
        _follow_facts(session, loan, *reallocated, since=value_date, as_of=as_of, reference=posting.id,
                      what=f"backdated repayment (value date {value_date.isoformat()})")
        return posting, records
    # The latest money: what it left overdue on its own value date (all earlier postings stand).
    overdue = loans.overdue_amount(session, loan.id, value_date)
    posting.left_overdue = overdue > 0
    session.add(posting)
    alerts.warn(session, Facts(loan.id, loan.customer_id, as_of, before, delinquency.stored_state(loan),
                               payment={"posting_id": posting.id, "amount": posting.amount, "overdue_after": overdue,
                                        "partials_in_a_row": _partials_in_a_row(session, loan.id)}))
    return posting, records


def reverse_posting(session: Session, posting_id: str, reason: str, *, scope: Visibility, reversed_by: str,
                    as_of: date) -> tuple[Posting, list[ChangeRecord]]:
    """Undo a posting (e.g. a bounced cheque); what it paid becomes owed again from its value date."""
    found = session.get(Posting, posting_id)
    if found is None:
        raise Problem(404, "Not found", f"No posting {posting_id!r}.")
    loan = loans.lock_loan(session, found.loan_id, scope, asked_for=f"posting {posting_id!r}")
    cob.catch_up(session, loan, as_of)
    posting = session.get(Posting, posting_id, populate_existing=True)
    if posting.status == PostingStatus.REVERSED:
        raise Problem(409, "Conflict", "This posting is already reversed.")
    _refuse_written_off(loan)
    rebooked = loans.rebooked_on(session, loan)
    if rebooked is not None and posting.value_date < rebooked:
        raise Problem(409, "Conflict", f"The posting is dated before the schedule's rebooking on "
                                       f"{rebooked.isoformat()}; it cannot be undone against the new schedule.")
    posting.status, posting.reversal_reason = PostingStatus.REVERSED, reason
    posting.reversed_by, posting.reversed_on = reversed_by, as_of
    session.add(posting)
    session.flush()
    records, reallocated = _rebook(session, loan, posting.value_date, as_of, ChangeCause.REVERSAL, posting.id)
    assert reallocated is not None  # a reversal always splits the remaining postings again
    _follow_facts(session, loan, *reallocated, since=posting.value_date, as_of=as_of, reference=posting.id,
                  what=f"reversal of posting (value date {posting.value_date.isoformat()})")
    return posting, records


def postings(session: Session, loan_id: str, paging: PageRequest) -> Page[PostingRead]:
    return keyset(session, select(Posting).where(Posting.loan_id == loan_id), paging,
                  Posting.value_date, Posting.created_at, Posting.id,
                  read=lambda rows: [PostingRead.model_validate(p) for p in rows])


def balance_check(session: Session, loan: Loan) -> BalanceCheck:
    rows = loans.instalments(session, loan.id)
    live = active_postings(session, loan.id)
    repaid = sum((p.principal for p in live), ZERO)
    interest = sum((p.interest for p in live), ZERO)
    received = sum((p.amount for p in live), ZERO)
    overpaid = sum((p.overpayment for p in live), ZERO)
    penalty = sum((p.penalty for p in live), ZERO)
    unpaid = loans.outstanding(rows)
    scheduled_interest_paid = sum((r.interest_paid for r in rows), ZERO)
    consistent = (loan.principal - repaid == loan.outstanding_principal == unpaid
                  and interest == scheduled_interest_paid and received == repaid + interest + penalty + overpaid
                  and overpaid == loan.credit_balance)
    return BalanceCheck(loan_id=loan.id, principal=loan.principal, principal_repaid=repaid,
                        outstanding_principal=loan.outstanding_principal, schedule_principal_unpaid=unpaid,
                        interest_repaid=interest, schedule_interest_paid=scheduled_interest_paid, received=received,
                        credit_balance=loan.credit_balance, consistent=consistent)


def interest_due(session: Session, loan: Loan, as_of: date) -> list[tuple[Instalment, Decimal]]:
    """Interest fallen due by `as_of` and unpaid, per instalment, oldest first."""
    rows = loans.unpaid_instalments(session, loan.id, due_by=as_of)
    return [(r, r.interest - r.interest_paid) for r in rows if r.interest > r.interest_paid]


def penalty_due(session: Session, loan: Loan, as_of: date) -> list[tuple[Instalment, Decimal]]:
    """Penalty interest charged by `as_of` and neither paid nor waived, per instalment, oldest first."""
    rows = loans.unpaid_instalments(session, loan.id, due_by=as_of)
    rounding = Rounding(loan.rounding).mode
    return [(r, due) for r in rows if (due := _penalty_due(r, loan.penalty_daily_rate, as_of, rounding)) > 0]


def _spread(amount: Decimal, dues: list[tuple[Instalment, Decimal]], what: str,
            as_of: date) -> list[tuple[Instalment, Decimal]]:
    """Split a waiver over the instalments, oldest first; never more than is due."""
    total = sum((due for _, due in dues), ZERO)
    if amount > total:
        raise DomainError("amount", f"exceeds the {what} due on {as_of.isoformat()} ({total})")
    shares, left = [], amount
    for row, due in dues:
        share = min(left, due)
        if share:
            shares.append((row, share))
            left -= share
    return shares


def _lines(shares: list[tuple[Instalment, Decimal]]) -> list[dict[str, str | int]]:
    return [{"number": row.number, "amount": str(share)} for row, share in shares]


def waive_penalty(session: Session, loan: Loan, amount: Decimal, *, as_of: date) -> dict[str, object]:
    """Forgive penalty interest due: the instalments accrue that much less. DPD counts principal and interest
    only, so the risk state does not move. The caller holds the loan's lock."""
    shares = _spread(amount, penalty_due(session, loan, as_of), "penalty", as_of)
    for row, share in shares:
        row.penalty_waived += share
        session.add(row)
    session.flush()
    return {"component": "penalty", "amount": str(amount), "lines": _lines(shares)}


def waive_interest(session: Session, loan: Loan, amount: Decimal, *, as_of: date,
                   reference: str) -> dict[str, object]:
    """Forgive interest due: it comes off what the instalments owe (kept in interest_waived), which may cure an
    instalment, so the loan is reassessed with cause `waiver`. The caller holds the loan's lock."""
    shares = _spread(amount, interest_due(session, loan, as_of), "interest", as_of)
    for row, share in shares:
        row.interest -= share
        row.interest_waived += share
        session.add(row)
    session.flush()
    loan.oldest_unpaid_due = loans.next_unpaid_due(session, loan.id)
    if loan.oldest_unpaid_due is None:
        loan.status = LoanStatus.CLOSED
    delinquency.reassess(session, loan, as_of, cause=ChangeCause.WAIVER, reference=reference)
    return {"component": "interest", "amount": str(amount), "lines": _lines(shares)}


def write_off_loan(session: Session, loan: Loan, *, as_of: date) -> dict[str, object]:
    """Take the loan out of the book for what it owes today (principal, interest due, penalty): COB no longer
    ages it and portfolio figures count it as written off. The caller holds the loan's lock."""
    if loan.status != LoanStatus.ACTIVE:
        raise Problem(409, "Conflict", f"Only an active loan can be written off; this one is {loan.status}.")
    interest = sum((due for _, due in interest_due(session, loan, as_of)), ZERO)
    penalty = sum((due for _, due in penalty_due(session, loan, as_of)), ZERO)
    amount = loan.outstanding_principal + interest + penalty
    loan.status, loan.written_off_on, loan.written_off_amount = LoanStatus.WRITTEN_OFF, as_of, amount
    session.add(loan)
    return {"principal": str(loan.outstanding_principal), "interest": str(interest), "penalty": str(penalty),
            "amount": str(amount)}
