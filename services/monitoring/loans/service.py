"""Loan accounts and their schedules: register, preview, look up. No web framework here."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from sqlalchemy import delete, func, update
from sqlmodel import Session, select

from services.monitoring.alerts import service as alerts
from services.monitoring.checks import service as checks
from services.monitoring.checks.models import CheckCadence
from services.monitoring.classification.rules import ChangeCause
from services.monitoring.delinquency import service as delinquency
from services.monitoring.errors import DomainError
from services.monitoring.loans.models import (
    Instalment,
    InstalmentRead,
    Loan,
    LoanCreate,
    LoanSegment,
    LoanSummary,
    RebookingRead,
    ScheduleRebooking,
    ScheduleRequest,
    SchedulePreview,
    SupersededInstalment,
)
from services.monitoring.loans.schedule import DayCount, Rounding, generate_schedule
from services.monitoring.loans.money import ZERO
from services.monitoring.rules.engine import Facts
from services.monitoring.rules.models import RuleKind
from shared.auth.scope import Visibility
from shared.clients.customer import Customer, lending_refusal
from shared.clients.scoring import Score
from shared.errors import Problem
from shared.pagination import Page, PageRequest, keyset

PD_PLACES = Decimal("0.000001")  # the stored PD's scale (loans.last_pd)


def preview_schedule(command: ScheduleRequest, rounding: Rounding = Rounding.HALF_UP,
                     day_count: DayCount = DayCount.ACTUAL_360, penalty_daily_rate: Decimal = ZERO) -> SchedulePreview:
    instalments = generate_schedule(
        command.principal, command.annual_rate, command.term_months, command.repayment_method,
        command.disbursement_date, command.first_due_date, rounding=rounding.mode, day_count=day_count,
    )
    rows = [InstalmentRead(number=i.number, due_date=i.due_date, principal=i.principal, interest=i.interest,
                           total=i.total) for i in instalments]
    total_interest = sum((i.interest for i in instalments), ZERO)
    total_principal = sum((i.principal for i in instalments), ZERO)
    return SchedulePreview(repayment_method=command.repayment_method, rounding=rounding, day_count=day_count,
                           total_principal=total_principal,
                           total_interest=total_interest, total_repayment=total_principal + total_interest,
                           instalments=rows, penalty_daily_rate=penalty_daily_rate)


def find_by_external_id(session: Session, source: str, external_id: str) -> Loan | None:
    return session.exec(select(Loan).where(Loan.external_source == source, Loan.external_id == external_id)).first()


def note_score(loan: Loan, score: Score, day: date) -> None:
    """Keep the borrower's latest score on the loan: the baseline of re-scores, and the PD of expected loss."""
    loan.last_score, loan.last_grade, loan.scored_on = score.points, score.grade, day
    loan.last_pd = Decimal(str(score.pd)).quantize(PD_PLACES)


def note_segments(session: Session, loan: Loan, value_tier: str, segments: list[str]) -> None:
    """Replace the loan's copy of its borrower's value tier and named segments (from the customer portrait)."""
    loan.value_tier = value_tier
    session.execute(delete(LoanSegment).where(LoanSegment.loan_id == loan.id))
    session.add_all(LoanSegment(loan_id=loan.id, segment=s) for s in set(segments))


def check_borrower(branch: str, customer: Customer) -> None:
    """May a loan (a disbursed application's too) be booked for this borrower, by the customer service's record?
    Not for a customer the bank may not lend to (`lending_refusal`: closed, erased, KYC rejected). And at their
    branch, like everything hanging off a customer: a branch's officers see the loans of their customers, and a
    customer's own branch sees every loan it owes; another branch, or one that does not exist, is refused."""
    refusal = lending_refusal(customer.status, customer.kyc_status)
    if refusal:
        raise DomainError("customer_id", f"{refusal}; no loan is booked for them")
    if branch != customer.branch:
        raise DomainError("branch", f"the customer is of branch {customer.branch}; their loans are booked there")


def register_loan(session: Session, command: LoanCreate, *, registered_by: str, as_of: date,
                  latest_score: Score | None = None, penalty_daily_rate: Decimal = ZERO,
                  rounding: Rounding = Rounding.HALF_UP, day_count: DayCount = DayCount.ACTUAL_360,
                  cadence: CheckCadence | None = None) -> Loan:
    """Book a disbursed loan with its schedule and its risk state on the business date.

    `latest_score` (the scoring service's latest for the borrower) is the baseline later re-scores compare with.
    """
    if command.disbursement_date > as_of:
        raise DomainError("disbursement_date", f"must not be after the business date {as_of.isoformat()}")
    if command.external_id and find_by_external_id(session, registered_by, command.external_id):
        raise Problem(409, "Conflict", f"A loan with external_id {command.external_id!r} already exists.")
    preview = preview_schedule(command, rounding, day_count)
    loan = Loan(
        **command.model_dump(exclude={"product", "repayment_method"}),
        product=command.product.value,
        repayment_method=command.repayment_method.value,
        external_source=registered_by if command.external_id else None,
        outstanding_principal=command.principal,
        penalty_daily_rate=penalty_daily_rate,
        rounding=rounding.value,
        day_count=day_count.value,
        oldest_unpaid_due=preview.instalments[0].due_date,
        officer=registered_by,
        created_by=registered_by,
    )
    if latest_score is not None:
        note_score(loan, latest_score, as_of)
        loan.origination_grade, loan.origination_pd = loan.last_grade, loan.last_pd
    session.add(loan)
    session.flush()
    session.add_all(Instalment(loan_id=loan.id, number=i.number, due_date=i.due_date, principal=i.principal,
                               interest=i.interest) for i in preview.instalments)
    checks.schedule_use_of_funds(session, loan, cadence)
    delinquency.reassess(session, loan, as_of, cause=ChangeCause.COB_AGEING, reference=None, booking=True)
    # A loan booked already overdue (e.g. migrated from another system) warns like one that just fell behind.
    alerts.warn(session, Facts(loan.id, loan.customer_id, as_of, None, delinquency.stored_state(loan)),
                kinds=[RuleKind.DPD_REACHED, RuleKind.CLASS_WORSENED])
    return loan


def get_loan(session: Session, loan_id: str, scope: Visibility, asked_for: str | None = None) -> Loan:
    """The loan, or 404 when it does not exist or lies outside the caller's scope (existence is not leaked).
    `asked_for` names what the caller asked for when it reached the loan through a record of it (a posting):
    the 404 names that, as for an unknown one, never the loan's id."""
    loan = session.get(Loan, loan_id)
    if loan is None or not scope.allows(loan.branch):
        raise _not_found(asked_for or f"loan {loan_id!r}")
    return loan


def _not_found(what: str) -> Problem:
    return Problem(404, "Not found", f"No {what}.")


def lock_loan(session: Session, loan_id: str, scope: Visibility, asked_for: str | None = None) -> Loan:
    """Take the loan's write lock for the rest of the transaction, then read it fresh.

    PostgreSQL: a row lock (SELECT … FOR UPDATE). SQLite has no row locks; a no-op UPDATE starts the write
    transaction first, so concurrent writers queue on the busy timeout instead of failing on lock upgrade.
    A loan outside the caller's scope is a 404 as in `get_loan`.
    """
    # Scoped in the statement that locks: a caller who may not see the loan never holds its lock.
    mine = (Loan.id == loan_id, scope.where(Loan.branch))
    if session.get_bind().dialect.name == "postgresql":
        # One round trip: the locked row is read fresh into the session.
        loan = session.exec(select(Loan).where(*mine).with_for_update()
                            .execution_options(populate_existing=True)).first()
    elif session.execute(update(Loan).where(*mine).values(id=Loan.id)).rowcount:
        loan = session.get(Loan, loan_id, populate_existing=True)
    else:
        loan = None
    if loan is None:
        raise _not_found(asked_for or f"loan {loan_id!r}")
    return loan


def list_loans(session: Session, paging: PageRequest, *, scope: Visibility, customer_id: str | None = None,
               external_id: str | None = None) -> Page[LoanSummary]:
    query = select(Loan).where(scope.where(Loan.branch))
    if customer_id is not None:
        query = query.where(Loan.customer_id == customer_id)
    if external_id is not None:
        query = query.where(Loan.external_id == external_id)
    return keyset(session, query, paging, Loan.created_at, Loan.id,
                  read=lambda loans: [LoanSummary.model_validate(loan) for loan in loans])


def instalments(session: Session, loan_id: str) -> list[Instalment]:
    return list(session.exec(select(Instalment).where(Instalment.loan_id == loan_id).order_by(Instalment.number)))


def instalment_read(row: Instalment | SupersededInstalment) -> InstalmentRead:
    waived = ({"interest_waived": row.interest_waived, "penalty_waived": row.penalty_waived}
              if isinstance(row, Instalment) else {})
    return InstalmentRead(number=row.number, due_date=row.due_date, principal=row.principal, interest=row.interest,
                          total=row.principal + row.interest, principal_paid=row.principal_paid,
                          interest_paid=row.interest_paid, penalty_paid=row.penalty_paid, **waived)


def oldest_unpaid_due(rows: list[Instalment]) -> date | None:
    return min((r.due_date for r in rows if r.principal_paid < r.principal or r.interest_paid < r.interest),
               default=None)


def outstanding(rows: list[Instalment]) -> Decimal:
    return sum((r.principal - r.principal_paid for r in rows), ZERO)


_UNPAID = (Instalment.principal_paid < Instalment.principal) | (Instalment.interest_paid < Instalment.interest)


def unpaid_instalments(session: Session, loan_id: str, due_by: date | None = None) -> list[Instalment]:
    query = select(Instalment).where(Instalment.loan_id == loan_id, _UNPAID)
    if due_by is not None:
        query = query.where(Instalment.due_date <= due_by)
    return list(session.exec(query.order_by(Instalment.number)))


def next_unpaid_due(session: Session, loan_id: str) -> date | None:
    return session.exec(select(func.min(Instalment.due_date)).where(Instalment.loan_id == loan_id, _UNPAID)).one()


def overdue_amount(session: Session, loan_id: str, as_of: date) -> Decimal:
    """Principal and interest fallen due before `as_of` and still unpaid."""
    owed = session.exec(select(func.sum(Instalment.principal - Instalment.principal_paid + Instalment.interest
                                        - Instalment.interest_paid))
                        .where(Instalment.loan_id == loan_id, Instalment.due_date < as_of)).one()
    return Decimal(owed or 0)


def rebookings(session: Session, loan_id: str) -> list[RebookingRead]:
    found = list(session.exec(select(ScheduleRebooking).where(ScheduleRebooking.loan_id == loan_id)
                              .order_by(ScheduleRebooking.effective_date, ScheduleRebooking.created_at)))
    superseded: dict[str, list[InstalmentRead]] = {}
    if found:
        for row in session.exec(select(SupersededInstalment).where(
                SupersededInstalment.rebooking_id.in_([r.id for r in found]))
                .order_by(SupersededInstalment.number)):
            superseded.setdefault(row.rebooking_id, []).append(instalment_read(row))
    fields = set(RebookingRead.model_fields) - {"superseded"}
    return [RebookingRead.model_validate({**{f: getattr(r, f) for f in fields}, "superseded": superseded.get(r.id, [])})
            for r in found]


def rebooked_on(session: Session, loan: Loan) -> date | None:
    """The effective date of the loan's latest rebooking: money cannot be dated (or undone) before it. Only a
    restructured, hardship or recalled loan can have one."""
    if loan.restructured_on is None and loan.hardship_on is None and loan.recalled_on is None:
        return None
    return session.exec(select(func.max(ScheduleRebooking.effective_date))
                        .where(ScheduleRebooking.loan_id == loan.id)).one()


def check_rebooking(session: Session, loan: Loan, rows: list[Instalment], *, effective: date,
                    last_value_date: date | None, as_of: date) -> Decimal:
    """Whether the schedule can be rebooked from `effective`; returns the principal that would be rescheduled."""
    if effective > as_of:
        raise DomainError("effective_date", f"must not be after the business date {as_of.isoformat()}")
    floor = max(d for d in (loan.disbursement_date, last_value_date, rebooked_on(session, loan)) if d)
    if effective < floor:
        raise DomainError("effective_date", f"must not be before {floor.isoformat()} (disbursement, the last "
                                            "posting's value date or the last rebooking)")
    rescheduled = loan.outstanding_principal - sum((r.principal - r.principal_paid for r in rows
                                                    if r.due_date <= effective), ZERO)
    if rescheduled <= 0:
        raise DomainError("effective_date", "nothing is left to reschedule: all the principal owed has fallen due")
    return rescheduled


@dataclass(frozen=True)
class NewInstalment:
    due_date: date
    principal: Decimal
    interest: Decimal


# Given the instalments due after the effective date (as they stand, paid parts included) and the last due date on
# or before it (the anchor), the instalments that replace what they still owe.
Rebuild = Callable[[list[Instalment], date], list[NewInstalment]]


def supersede_schedule(session: Session, loan: Loan, *, effective: date, rebuild: Rebuild,
                       annual_rate: Decimal | None, reason: str, by: str, last_value_date: date | None,
                       as_of: date) -> ScheduleRebooking:
    """Replace the schedule after `effective`: instalments due by then stay (arrears stay arrears); the later ones
    are superseded (kept as history; one part-paid stays, cut to what was paid) by what `rebuild` makes of what
    they still owe. The caller holds the loan's lock and reassesses it."""
    rows = instalments(session, loan.id)
    rescheduled = check_rebooking(session, loan, rows, effective=effective, last_value_date=last_value_date,
                                  as_of=as_of)
    kept = [r for r in rows if r.due_date <= effective]
    later = [r for r in rows if r.due_date > effective]
    touched = [r for r in later if r.principal_paid or r.interest_paid or r.penalty_paid]
    anchor = max((r.due_date for r in kept), default=loan.disbursement_date)
    fresh = rebuild(later, anchor)
    if sum((i.principal for i in fresh), ZERO) != rescheduled:
        raise DomainError("schedule", "the new instalments must carry exactly the principal not yet due")
    rate = loan.annual_rate if annual_rate is None else annual_rate
    rebooking = ScheduleRebooking(loan_id=loan.id, effective_date=effective, principal_rescheduled=rescheduled,
                                  annual_rate_before=loan.annual_rate, annual_rate_after=rate,
                                  term_months=len(fresh), reason=reason, created_by=by)
    session.add(rebooking)
    session.flush()
    session.add_all(SupersededInstalment(
        rebooking_id=rebooking.id, number=r.number, due_date=r.due_date, principal=r.principal, interest=r.interest,
        principal_paid=r.principal_paid, interest_paid=r.interest_paid, penalty_paid=r.penalty_paid) for r in later)
    for row in later:
        if row in touched:
            row.principal, row.interest = row.principal_paid, row.interest_paid
            session.add(row)
        else:
            session.delete(row)
    session.flush()  # the superseded numbers are free before the new instalments take them
    top = max((r.number for r in [*kept, *touched]), default=0)
    session.add_all(Instalment(loan_id=loan.id, number=top + n, due_date=i.due_date, principal=i.principal,
                               interest=i.interest) for n, i in enumerate(fresh, start=1))
    loan.annual_rate, loan.term_months = rate, top + len(fresh)
    session.flush()
    loan.oldest_unpaid_due = next_unpaid_due(session, loan.id)
    session.add(loan)
    return rebooking


def rebook_schedule(session: Session, loan: Loan, *, effective: date, annual_rate: Decimal | None,
                    term_months: int | None, reason: str, by: str, last_value_date: date | None,
                    as_of: date) -> ScheduleRebooking:
    """Restructure the schedule from `effective`: the principal not yet due is scheduled afresh on the new rate
    and term, from the last due date on or before `effective` (see `supersede_schedule`)."""
    rate = loan.annual_rate if annual_rate is None else annual_rate

    def rebuild(later: list[Instalment], anchor: date) -> list[NewInstalment]:
        untouched = [r for r in later if not (r.principal_paid or r.interest_paid or r.penalty_paid)]
        term = term_months or max(1, len(untouched))
        owed = sum((r.principal - r.principal_paid for r in later), ZERO)
        return [NewInstalment(i.due_date, i.principal, i.interest) for i in generate_schedule(
            owed, rate, term, loan.repayment_method, anchor, rounding=Rounding(loan.rounding).mode)]

    return supersede_schedule(session, loan, effective=effective, rebuild=rebuild, annual_rate=annual_rate,
                              reason=reason, by=by, last_value_date=last_value_date, as_of=as_of)
