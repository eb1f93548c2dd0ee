"""Reminder rules: the schedule table (product x grade, `*` for any), the reminders a business day queues (one per
loan, instalment and offset), and whether a queued one may go: by a channel the customer consents to, not after
they opted out, and not past the weekly contact cap, which counts every contact, collection included."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta

from sqlalchemy import select as sa_select
from sqlmodel import Session, select

from services.monitoring.loans.models import Instalment, Loan, LoanStatus, new_id, now
from services.monitoring.loans.products import Product
from services.monitoring.reminders.models import (ANY, Reminder, ReminderRead, ReminderSchedule,
                                                  ReminderStatus, ScheduleChange, ScheduleRead)
from shared.auth.scope import Visibility
from shared.clients.customer import ContactPlan
from shared.db import insert_ignoring
from shared.errors import field_problem
from shared.pagination import Page, PageRequest, keyset

# Used where the table has no row for a loan's product and grade: weaker grades earlier and more often; a borrower
# never scored is reminded as a middling one.
DEFAULT_OFFSETS = {"A": [3], "B": [3], "C": [5, 1], "D": [7, 3, 1], "E": [10, 5, 1]}
UNGRADED_OFFSETS = [5, 1]


def offsets_for(table: dict[tuple[str, str], list[int]], product: str, grade: str | None) -> list[int]:
    """The most specific row: product and grade, product for any grade, any product for the grade, then `*`/`*`."""
    for key in ((product, grade), (product, ANY), (ANY, grade), (ANY, ANY)):
        if key in table:
            return table[key]
    return DEFAULT_OFFSETS.get(grade or "", UNGRADED_OFFSETS)


def schedule_table(session: Session) -> dict[tuple[str, str], list[int]]:
    return {(row.product, row.grade): row.offsets_days for row in session.exec(select(ReminderSchedule))}


def set_schedule(session: Session, product: str, grade: str, command: ScheduleChange, *, by: str) -> ReminderSchedule:
    if product != ANY and product not in {p.value for p in Product}:
        raise field_problem("path.product", f"one of {', '.join(p.value for p in Product)} or {ANY}")
    row = session.get(ReminderSchedule, (product, grade))
    if row is None:
        row = ReminderSchedule(product=product, grade=grade, offsets_days=command.offsets_days, updated_by=by)
    else:
        row.offsets_days, row.updated_by, row.updated_at = command.offsets_days, by, now()
    session.add(row)
    session.flush()
    return row


def list_schedules(session: Session, paging: PageRequest) -> Page[ScheduleRead]:
    return keyset(session, select(ReminderSchedule), paging, ReminderSchedule.product, ReminderSchedule.grade,
                  read=lambda rows: [ScheduleRead.model_validate(r) for r in rows])


def list_reminders(session: Session, paging: PageRequest, *, scope: Visibility, loan_id: str | None,
                   status: ReminderStatus | None) -> Page[ReminderRead]:
    query = select(Reminder).where(scope.where(Reminder.branch))
    for column, value in ((Reminder.loan_id, loan_id), (Reminder.status, status)):
        if value is not None:
            query = query.where(column == value)
    return keyset(session, query, paging, Reminder.remind_on, Reminder.id,
                  read=lambda rows: [ReminderRead.model_validate(r) for r in rows])


def queue_reminders(session: Session, day: date) -> int:
    """Queue the reminders `day` calls for: each unpaid instalment of an active loan due `offset` days after it,
    for an offset of its product and grade. A reminder queued before is left as it is."""
    table = schedule_table(session)
    # Only the due dates some schedule reminds of today are read: a few days of the book, not the whole window.
    offsets = {d for days in (*table.values(), *DEFAULT_OFFSETS.values(), UNGRADED_OFFSETS) for d in days}
    due = session.execute(sa_select(Loan.id, Loan.product, Loan.last_grade, Loan.customer_id, Loan.branch,
                                    Instalment.number, Instalment.due_date).join(
        Instalment, Instalment.loan_id == Loan.id).where(
        Loan.status == LoanStatus.ACTIVE, Instalment.due_date.in_([day + timedelta(days=d) for d in offsets]),
        (Instalment.principal_paid < Instalment.principal) | (Instalment.interest_paid < Instalment.interest)))
    rows = []
    for loan in due:
        offset = (loan.due_date - day).days
        if offset in offsets_for(table, loan.product, loan.last_grade):
            rows.append({"id": new_id(), "loan_id": loan.id, "instalment_number": loan.number,
                         "offset_days": offset, "due_date": loan.due_date, "remind_on": day,
                         "customer_id": loan.customer_id, "branch": loan.branch,
                         "status": ReminderStatus.QUEUED.value, "created_at": now(), "updated_at": now()})
    if not rows:
        return 0
    inserted = session.execute(insert_ignoring(session, Reminder.__table__).returning(Reminder.__table__.c.id), rows)
    return len(inserted.all())


def queued(session: Session, day: date) -> Sequence[Reminder]:
    return session.exec(select(Reminder).where(Reminder.status == ReminderStatus.QUEUED, Reminder.remind_on <= day)
                        .order_by(Reminder.customer_id, Reminder.due_date, Reminder.id)).all()


def why_not(reminder: Reminder, plan: ContactPlan, contacts_this_week: int, cap: int, day: date) -> str | None:
    """Why a queued reminder may not go, or None when it may (by `plan.reminder_channels[0]`)."""
    if reminder.due_date <= day:
        return "the due date has come"
    if plan.opted_out:
        return "the customer opted out of reminders"
    if not plan.reminder_channels:
        return "no channel the customer consents to be reminded by"
    if contacts_this_week >= cap:
        return f"weekly contact cap reached ({contacts_this_week} contacts in 7 days, cap {cap})"
    return None


def mark_sent(reminder: Reminder, channel: str, interaction_id: str) -> None:
    reminder.status, reminder.channel, reminder.interaction_id = ReminderStatus.SENT, channel, interaction_id
    reminder.updated_at = now()


def mark_skipped(reminder: Reminder, reason: str) -> None:
    reminder.status, reminder.reason, reminder.updated_at = ReminderStatus.SKIPPED, reason, now()
