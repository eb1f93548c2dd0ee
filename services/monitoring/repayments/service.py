"""Repayments and reversals: allocation over the schedule, balances, and the replay of history they cause."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from decimal import Decimal

from sqlmodel import Session, select

from services.monitoring.alerts import service as alerts
from services.monitoring.classification.rules import ChangeCause, ChangeRecord
from services.monitoring.delinquency import service as delinquency
from services.monitoring.delinquency.rules import Posting as PaidLines
from services.monitoring.errors import DomainError
from services.monitoring.loans import service as loans
from services.monitoring.loans.allocation import DueItem, InstalmentAllocation, allocate
from services.monitoring.loans.models import Instalment, Loan, LoanStatus
from services.monitoring.loans.money import ZERO, to_cents
from services.monitoring.loans.products import ProductPolicy, policy
from services.monitoring.loans.schedule import Instalment as ScheduledInstalment, Rounding
from services.monitoring.repayments.models import BalanceCheck, Posting, PostingStatus, RepaymentCreate
from services.monitoring.rules.engine import Facts
from services.monitoring.rules.models import RuleKind
from shared.errors import Problem


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
    return max(to_cents(owed * daily_rate * days, rounding) - row.penalty_paid, ZERO)


def _apply(rules: ProductPolicy, loan: Loan, rows: list[Instalment], posting: Posting) -> Decimal:
    """Allocate one posting on top of what the instalments already show paid; returns the overpayment."""
    unpaid = [r for r in rows if r.principal_paid < r.principal or r.interest_paid < r.interest]
    due_now = [r for r in unpaid if r.due_date <= posting.value_date]
    rounding = Rounding(loan.rounding).mode  # the loan's own, as its schedule was
    penalties = {r.number: _penalty_due(r, loan.penalty_daily_rate, posting.value_date, rounding) for r in due_now}
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
            old_lines: list[PaidLines], received: Posting | None = None) -> list[ChangeRecord]:
    """Bring instalments, balances and risk state in line with the live postings, then record what changed."""
    if received is not None and since == as_of and session.exec(select(Posting.id).where(
            Posting.loan_id == loan.id, Posting.status == PostingStatus.POSTED,
            Posting.value_date > received.value_date).limit(1)).first() is None:
        _receive(session, loan, received)
        rows, postings = None, None
    else:
        rows, postings = _reallocate(session, loan)
    loan.status = LoanStatus.ACTIVE if loan.oldest_unpaid_due is not None else LoanStatus.CLOSED
    session.add(loan)
    if rows is not None and since < as_of:
        return delinquency.replay(session, loan, _scheduled(rows), old_lines, _paid_lines(postings), since, as_of,
                                  cause=cause, reference=reference)
    return delinquency.reassess(session, loan, as_of, cause=cause, reference=reference)


def post_repayment(session: Session, loan_id: str, command: RepaymentCreate, *, branch: str | None, posted_by: str,
                   as_of: date) -> tuple[Posting, list[ChangeRecord]]:
    """Book money received; a value date before the business date replays delinquency from that date."""
    loan = loans.lock_loan(session, loan_id, branch)
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
    if command.external_id and session.exec(select(Posting.id).where(
            Posting.loan_id == loan.id, Posting.external_id == command.external_id)).first():
        raise Problem(409, "Conflict", f"A posting with external_id {command.external_id!r} already exists.")
    old_lines = _paid_lines(active_postings(session, loan.id)) if value_date < as_of else []
    posting = Posting(loan_id=loan.id, external_id=command.external_id, amount=command.amount, value_date=value_date,
                      booked_on=as_of, created_by=posted_by)
    session.add(posting)
    session.flush()
    cause = ChangeCause.BACKDATED_REPAYMENT if value_date < as_of else ChangeCause.REPAYMENT
    before = delinquency.stored_state(loan)
    records = _rebook(session, loan, value_date, as_of, cause, posting.id, old_lines, received=posting)
    overdue = loans.overdue_amount(session, loan.id, as_of)
    posting.left_overdue = overdue > 0
    session.add(posting)
    alerts.warn(session, Facts(loan.id, loan.customer_id, as_of, before, delinquency.stored_state(loan),
                               payment={"posting_id": posting.id, "amount": posting.amount, "overdue_after": overdue,
                                        "partials_in_a_row": _partials_in_a_row(session, loan.id)}))
    return posting, records


def reverse_posting(session: Session, posting_id: str, reason: str, *, branch: str | None, reversed_by: str,
                    as_of: date) -> tuple[Posting, list[ChangeRecord]]:
    """Undo a posting (e.g. a bounced cheque); what it paid becomes owed again from its value date."""
    found = session.get(Posting, posting_id)
    if found is None:
        raise Problem(404, "Not found", f"No posting {posting_id!r}.")
    loan = loans.lock_loan(session, found.loan_id, branch)
    posting = session.get(Posting, posting_id, populate_existing=True)
    if posting.status == PostingStatus.REVERSED:
        raise Problem(409, "Conflict", "This posting is already reversed.")
    rebooked = loans.rebooked_on(session, loan)
    if rebooked is not None and posting.value_date < rebooked:
        raise Problem(409, "Conflict", f"The posting is dated before the schedule's rebooking on "
                                       f"{rebooked.isoformat()}; it cannot be undone against the new schedule.")
    old_lines = _paid_lines(active_postings(session, loan.id))
    posting.status, posting.reversal_reason = PostingStatus.REVERSED, reason
    posting.reversed_by, posting.reversed_on = reversed_by, as_of
    session.add(posting)
    session.flush()
    before = delinquency.stored_state(loan)
    records = _rebook(session, loan, posting.value_date, as_of, ChangeCause.REVERSAL, posting.id, old_lines)
    alerts.warn(session, Facts(loan.id, loan.customer_id, as_of, before, delinquency.stored_state(loan)),
                kinds=[RuleKind.DPD_REACHED, RuleKind.CLASS_WORSENED])
    return posting, records


def postings(session: Session, loan_id: str) -> list[Posting]:
    return list(session.exec(select(Posting).where(Posting.loan_id == loan_id)
                             .order_by(Posting.value_date, Posting.created_at, Posting.id)))


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
