"""Feedback and complaints: a status, an owner and a response deadline; overdue ones surface for managers."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlmodel import Session, select

from services.customer import scoping
from services.customer.common import as_utc, plain, utcnow
from services.customer.complaints.models import OPEN_STATUSES, Complaint, ComplaintCreate, ComplaintRead, \
    ComplaintResponse, ComplaintStatus
from services.customer.customers.models import Customer
from shared.auth.tokens import Principal
from shared.errors import Problem, field_problem
from shared.pagination import Page, PageRequest, keyset

# Which status may follow which: closed complaints stay closed (a new one is filed instead).
_NEXT = {
    ComplaintStatus.OPEN: {ComplaintStatus.IN_PROGRESS, ComplaintStatus.RESOLVED, ComplaintStatus.REJECTED},
    ComplaintStatus.IN_PROGRESS: {ComplaintStatus.RESOLVED, ComplaintStatus.REJECTED},
}


def response_deadline(received_at: datetime, response_days: int) -> datetime:
    """When the answer to a complaint is due: `response_days` calendar days after the bank received it, to the
    minute (received 3 March 16:40 UTC with 15 days -> due 18 March 16:40 UTC).

    The rule is the regulator's, stated to customers in calendar days from receipt: weekends and holidays count,
    and the clock starts at `received_at` (a letter logged days later keeps its real date), not when it was typed
    in. This service keeps no business date of its own (the end-of-day business date belongs to the monitoring
    service's loan accounting, and a complaint's deadline must not stand still while a batch is late), so
    "overdue" is judged against the current UTC time, the instant a customer would judge it by."""
    return as_utc(received_at) + timedelta(days=response_days)


def read(complaint: Complaint) -> ComplaintRead:
    overdue = complaint.status in OPEN_STATUSES and as_utc(complaint.due_at) < utcnow()
    return ComplaintRead.model_validate({**complaint.model_dump(), "overdue": overdue})


def file_complaint(session: Session, customer: Customer, command: ComplaintCreate, by: str,
                   response_days: int) -> ComplaintRead:
    opened = command.received_at or utcnow()
    if opened > utcnow():
        raise field_problem("body.received_at", "cannot be in the future")
    complaint = Complaint(customer_id=customer.id, branch=customer.branch, recorded_by=by, opened_at=opened,
                          due_at=response_deadline(opened, response_days), assigned_to=command.assigned_to or by,
                          **plain(command.model_dump(exclude={"assigned_to", "received_at"})))
    session.add(complaint)
    session.flush()
    return read(complaint)


def respond_to_complaint(session: Session, principal: Principal, complaint_id: str,
                         command: ComplaintResponse) -> ComplaintRead:
    complaint = session.get(Complaint, complaint_id)
    customer = session.get(Customer, complaint.customer_id) if complaint else None
    if complaint is None or customer is None or not scoping.can_change(principal, customer.branch,
                                                                        customer.referred_by):
        raise Problem(404, "Not found", f"No complaint {complaint_id!r}.")
    allowed = _NEXT.get(ComplaintStatus(complaint.status), set())
    if command.status not in allowed:
        raise Problem(409, "Invalid transition", f"A {complaint.status} complaint cannot become {command.status}.")
    if command.status in (ComplaintStatus.RESOLVED, ComplaintStatus.REJECTED):
        if not command.response:
            raise field_problem("body.response", "required to close a complaint")
        complaint.responded_at = utcnow()
    complaint.status = command.status.value
    complaint.response = command.response or complaint.response
    complaint.assigned_to = command.assigned_to or complaint.assigned_to
    session.add(complaint)
    session.flush()
    return read(complaint)


def customer_complaints(session: Session, customer_id: str, paging: PageRequest) -> Page[ComplaintRead]:
    return keyset(session, select(Complaint).where(Complaint.customer_id == customer_id), paging,
                  Complaint.opened_at, Complaint.id, descending=True, read=_reads)


def open_complaints(session: Session, customer_id: str) -> list[ComplaintRead]:
    """The customer's complaints still waiting for an answer, newest first (few by nature: the 360° view)."""
    return _reads(list(session.exec(select(Complaint).where(
        Complaint.customer_id == customer_id, Complaint.status.in_(OPEN_STATUSES))
        .order_by(Complaint.opened_at.desc(), Complaint.id.desc()))))


def _reads(rows: list[Complaint]) -> list[ComplaintRead]:
    return [read(row) for row in rows]


def overdue_complaints(session: Session, principal: Principal, branch: str | None,
                       paging: PageRequest) -> Page[ComplaintRead]:
    """Open past their deadline, the longest overdue first."""
    query = (select(Complaint).join(Customer, Customer.id == Complaint.customer_id)
             .where(Complaint.status.in_(OPEN_STATUSES), Complaint.due_at < utcnow()))
    scope = scoping.scope_filter(principal, Customer.branch, Customer.referred_by)
    if scope is not None:
        query = query.where(scope)
    if branch:
        query = query.where(Complaint.branch == branch)
    return keyset(session, query, paging, Complaint.due_at, Complaint.id, read=_reads)
