"""Hardship concessions and early recall, as applied once a checker approves them (see approvals).

Each replaces the instalments not yet due on the day of approval (arrears stay arrears) through the loans'
`supersede_schedule`, so the old ones are kept as the rebooking's history, DPD counts against the new due dates
from that day on, and no money can be dated before it. A repayment plan or a deferral starts a hardship
observation (at least special mention, `classification.rules.in_hardship`); a recall makes everything outstanding
due on the day.
"""

from __future__ import annotations

import calendar
from datetime import date
from decimal import ROUND_DOWN, Decimal

from sqlmodel import Session, select

from services.monitoring.classification.rules import ChangeCause
from services.monitoring.classification.service import last_value_date
from services.monitoring.delinquency import service as delinquency
from services.monitoring.errors import DomainError
from services.monitoring.hardship.models import (
    DeferralRequest,
    HardshipRead,
    HardshipRecord,
    HolidayInterest,
    RepaymentPlanRequest,
    Shortfall,
    Treatment,
)
from services.monitoring.loans import service as loans
from services.monitoring.loans.models import Instalment, InstalmentRead, Loan, LoanStatus, SupersededInstalment
from services.monitoring.loans.money import ZERO, to_cents
from services.monitoring.loans.schedule import Rounding, add_months
from services.monitoring.loans.service import NewInstalment, Rebuild
from shared.errors import Problem
from shared.pagination import Page, PageRequest, keyset


def _owed(later: list[Instalment]) -> list[NewInstalment]:
    """What each later instalment still owes (one paid in full ahead of time owes nothing and drops out)."""
    owed = [NewInstalment(r.due_date, r.principal - r.principal_paid, r.interest - r.interest_paid) for r in later]
    return [o for o in owed if o.principal + o.interest > 0]


def _split(amount: Decimal, parts: int) -> list[Decimal]:
    """`amount` in `parts` equal cents, rounded down, the last taking the rest (so none is ever negative)."""
    share = to_cents(amount / parts, ROUND_DOWN)
    return [share] * (parts - 1) + [amount - share * (parts - 1)]


def _shift(due: date, months: int, anchor_day: int) -> date:
    """`due` moved by `months`, on the schedule's own day of the month: a due date clamped to a short month's end
    (the 28th for a loan due on the 31st) goes back to that day where the new month has it."""
    last = calendar.monthrange(due.year, due.month)[1]
    day = anchor_day if due.day == last and anchor_day > due.day else due.day
    moved = add_months(due.replace(day=1), months)
    return moved.replace(day=min(day, calendar.monthrange(moved.year, moved.month)[1]))


def plan_schedule(command: RepaymentPlanRequest) -> Rebuild:
    """The next `months` instalments ask for `reduced_instalment` (interest first, then principal); the shortfall,
    principal and interest each, is spread over the instalments after them or added to the last one. The
    shortfall bears no further interest: the schedule's interest is kept, only when it is paid moves."""
    def rebuild(later: list[Instalment], _anchor: date) -> list[NewInstalment]:
        owed = _owed(later)
        if len(owed) <= command.months:
            raise DomainError("months", f"must leave at least one instalment after the plan ({len(owed)} remain)")
        reduced, short_principal, short_interest = [], ZERO, ZERO
        for item in owed[:command.months]:
            interest = min(command.reduced_instalment, item.interest)
            principal = min(command.reduced_instalment - interest, item.principal)
            short_principal += item.principal - principal
            short_interest += item.interest - interest
            reduced.append(NewInstalment(item.due_date, principal, interest))
        if short_principal + short_interest == 0:
            raise DomainError("reduced_instalment", "must be less than the instalments it reduces")
        rest = owed[command.months:]
        if command.shortfall is Shortfall.AT_END:
            principal_shares = [ZERO] * (len(rest) - 1) + [short_principal]
            interest_shares = [ZERO] * (len(rest) - 1) + [short_interest]
        else:
            principal_shares, interest_shares = _split(short_principal, len(rest)), _split(short_interest, len(rest))
        return reduced + [NewInstalment(item.due_date, item.principal + p, item.interest + i)
                          for item, p, i in zip(rest, principal_shares, interest_shares, strict=True)]
    return rebuild


def deferral_schedule(loan: Loan, command: DeferralRequest) -> Rebuild:
    """Every instalment not yet due moves out by `months`, on the schedule's day of the month; with interest
    `charged`, the holiday's interest (principal not yet due × annual_rate / 12 × months, in cents by the loan's
    rounding) is spread over the moved instalments."""
    anchor_day = (loan.first_due_date or loan.disbursement_date).day
    rounding = Rounding(loan.rounding).mode

    def rebuild(later: list[Instalment], _anchor: date) -> list[NewInstalment]:
        owed = _owed(later)
        principal = sum((o.principal for o in owed), ZERO)
        extra = ZERO
        if command.interest is HolidayInterest.CHARGED:
            extra = to_cents(principal * loan.annual_rate / 12 * command.months, rounding)
        return [NewInstalment(_shift(o.due_date, command.months, anchor_day), o.principal, o.interest + share)
                for o, share in zip(owed, _split(extra, len(owed)), strict=True)]
    return rebuild


def recall_schedule(loan: Loan, effective: date) -> Rebuild:
    """One instalment due on `effective`: all the principal not yet due, and the running period's interest accrued
    to that day (pro rata by days, less what was paid of it); the interest of later periods is not owed."""
    rounding = Rounding(loan.rounding).mode

    def rebuild(later: list[Instalment], anchor: date) -> list[NewInstalment]:
        running = later[0]
        elapsed, period = (effective - anchor).days, (running.due_date - anchor).days
        accrued = max(to_cents(running.interest * elapsed / period, rounding) - running.interest_paid, ZERO)
        return [NewInstalment(effective, sum((r.principal - r.principal_paid for r in later), ZERO), accrued)]
    return rebuild


def _check(session: Session, loan: Loan, rebuild: Rebuild, as_of: date) -> None:
    """What applying the schedule on `as_of` would refuse, without changing anything."""
    if loan.status != LoanStatus.ACTIVE:
        raise Problem(409, "Conflict", f"The loan is {loan.status}; only an active loan's schedule can change.")
    if loan.recalled_on is not None:
        raise Problem(409, "Conflict", f"The loan was recalled on {loan.recalled_on.isoformat()}: all of it is due.")
    rows = loans.instalments(session, loan.id)
    loans.check_rebooking(session, loan, rows, effective=as_of, last_value_date=last_value_date(session, loan),
                          as_of=as_of)
    later = [r for r in rows if r.due_date > as_of]
    rebuild(later, max((r.due_date for r in rows if r.due_date <= as_of), default=loan.disbursement_date))


def check_repayment_plan(session: Session, loan: Loan, command: RepaymentPlanRequest, as_of: date) -> None:
    _check(session, loan, plan_schedule(command), as_of)


def check_deferral(session: Session, loan: Loan, command: DeferralRequest, as_of: date) -> None:
    _check(session, loan, deferral_schedule(loan, command), as_of)


def check_early_recall(session: Session, loan: Loan, as_of: date) -> None:
    if not loan.early_recall_allowed:
        raise Problem(409, "Conflict", "The loan's contract does not allow early recall.")
    _check(session, loan, recall_schedule(loan, as_of), as_of)


def _apply(session: Session, loan: Loan, treatment: Treatment, terms: dict, rebuild: Rebuild, *, request_id: str,
           reason: str, maker: str, checker: str, as_of: date, observation_until: date | None) -> HardshipRecord:
    """Put the new schedule in place on `as_of`, mark the loan, reassess it; the record keeps what was done."""
    _check(session, loan, rebuild, as_of)
    rebooking = loans.supersede_schedule(session, loan, effective=as_of, rebuild=rebuild, annual_rate=None,
                                         reason=f"{treatment.value}: {reason}"[:200], by=maker,
                                         last_value_date=last_value_date(session, loan), as_of=as_of)
    if treatment is Treatment.EARLY_RECALL:
        loan.recalled_on = as_of
    else:
        loan.hardship_kind, loan.hardship_on, loan.hardship_until = treatment.value, as_of, observation_until
    delinquency.reassess(session, loan, as_of, cause=ChangeCause(treatment.value), reference=request_id)
    first_new = loan.term_months - rebooking.term_months + 1
    after = [loans.instalment_read(r).model_dump(mode="json") for r in loans.instalments(session, loan.id)
             if r.number >= first_new]
    record = HardshipRecord(loan_id=loan.id, request_id=request_id, rebooking_id=rebooking.id,
                            treatment=treatment.value, terms=terms, effective_date=as_of,
                            observation_until=observation_until, proposed_by=maker, approved_by=checker,
                            schedule_after=after)
    session.add(record)
    session.flush()
    return record


def grant_repayment_plan(session: Session, loan: Loan, command: RepaymentPlanRequest, *, observation_months: int,
                         as_of: date, **who: str) -> HardshipRecord:
    return _apply(session, loan, Treatment.REPAYMENT_PLAN, command.model_dump(mode="json"), plan_schedule(command),
                  as_of=as_of, observation_until=add_months(as_of, observation_months), reason=command.reason, **who)


def grant_deferral(session: Session, loan: Loan, command: DeferralRequest, *, observation_months: int,
                   as_of: date, **who: str) -> HardshipRecord:
    # The observation runs from approval to `observation_months` after the holiday ends.
    return _apply(session, loan, Treatment.DEFERRAL, command.model_dump(mode="json"),
                  deferral_schedule(loan, command), as_of=as_of,
                  observation_until=add_months(as_of, command.months + observation_months),
                  reason=command.reason, **who)


def recall_loan(session: Session, loan: Loan, reason: str, *, as_of: date, **who: str) -> HardshipRecord:
    """Accelerate the loan (its contract allowed it when the recall was proposed: the flag is fixed at booking)."""
    return _apply(session, loan, Treatment.EARLY_RECALL, {"reason": reason}, recall_schedule(loan, as_of),
                  as_of=as_of, observation_until=None, reason=reason, **who)


def _reads(session: Session, records: list[HardshipRecord]) -> list[HardshipRead]:
    before: dict[str, list[InstalmentRead]] = {}
    if records:
        for row in session.exec(select(SupersededInstalment).where(
                SupersededInstalment.rebooking_id.in_([r.rebooking_id for r in records]))
                .order_by(SupersededInstalment.number)):
            before.setdefault(row.rebooking_id, []).append(loans.instalment_read(row))
    return [HardshipRead.model_validate({
        **r.model_dump(exclude={"rebooking_id", "schedule_after"}), "schedule_before": before.get(r.rebooking_id, []),
        "schedule_after": r.schedule_after}) for r in records]


def history(session: Session, loan_id: str, paging: PageRequest) -> Page[HardshipRead]:
    """The loan's approved plans, deferrals and recalls, oldest first, each with the schedule before and after."""
    return keyset(session, select(HardshipRecord).where(HardshipRecord.loan_id == loan_id), paging,
                  HardshipRecord.created_at, HardshipRecord.id, read=lambda rows: _reads(session, rows))
