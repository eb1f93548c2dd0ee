"""The posting core: money received for a batch of loans (a single posting is a batch of one).

Every repayment, whether posted through the API one at a time or read from a bulk file, goes through
`post_repayments`. The common case, money dated on the business date and after every live posting of its loan, is
allocated over the instalments held in memory and written with a few statements per batch: the loans locked and
read at once, their unpaid instalments, pauses, latest postings and the enabled rules each in one query, then one
executemany per table (postings, instalments, loans, history, alerts, events, audit). A posting that changes the
past (an earlier value date, or money dated before a live posting) replays the loan's history through
`service.post_repayment`, the same rules, one loan at a time.

Before posting, a loan whose ageing is behind the business date is first aged to it (inline COB, Apache Fineract's
term) in the same transaction; the core then reads the loans fresh under their locks.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from functools import cache
from types import SimpleNamespace
from typing import Any

from sqlalchemy import Date, bindparam, func, select, update
from sqlmodel import Session

from services.monitoring.alerts.models import Alert
from services.monitoring.alerts.service import alert_events, alert_rows, insert_alerts
from services.monitoring.classification.rules import ChangeCause, diff_states
from services.monitoring.cob import service as cob
from services.monitoring.db import outbox
from services.monitoring.delinquency import service as delinquency
from services.monitoring.delinquency.models import DelinquencyPause, RiskChange
from services.monitoring.errors import DomainError
from services.monitoring.loans import service as loans_service
from services.monitoring.loans.models import Instalment, Loan, LoanStatus, new_id, now
from services.monitoring.loans.money import ZERO
from services.monitoring.loans.products import policy
from services.monitoring.repayments import service
from services.monitoring.repayments.models import Posting, PostingStatus, RepaymentCreate
from services.monitoring.rules.engine import Facts
from services.monitoring.rules.service import alert_drafts, enabled_rules_at, rules_key
from shared.audit import note_rows
from shared.auth.scope import Visibility
from shared.db import Step, among, insert_rows, run_together, update_rows
from shared.errors import Problem
from shared.outbox import EventType

LOOK_BACK = 12  # postings read per loan to count partial payments in a row (as `service._partials_in_a_row`)
_LOANS, _INSTALMENTS, _POSTINGS = Loan.__table__, Instalment.__table__, Posting.__table__
_RISK = RiskChange.__table__
_UNPAID = (_INSTALMENTS.c.principal_paid < _INSTALMENTS.c.principal) | (
    _INSTALMENTS.c.interest_paid < _INSTALMENTS.c.interest)
_PAID = ("principal_paid", "interest_paid", "penalty_paid")
_LOAN_STATE = ("outstanding_principal", "credit_balance", "oldest_unpaid_due", "status", "dpd", "bucket",
               "classification", "ifrs9_stage")


@dataclass(frozen=True)
class Repayment:
    """One item of a batch: what `RepaymentCreate` says, for a loan."""

    loan_id: str
    amount: Decimal
    value_date: date | None = None
    external_id: str | None = None
    # From a repayment file, passed on in the repayment.posted event: the payer's account masked, and its keyed hash
    # (`account_reference`), never in clear.
    payer: dict[str, str] | None = None


@dataclass(frozen=True)
class Refused:
    """Why an item was not posted: the HTTP status a single posting answers, the field at fault, the reason."""

    status: int
    field: str | None
    message: str

    def problem(self) -> Exception:
        if self.status == 422 and self.field is not None:
            return DomainError(self.field, self.message)
        return Problem(self.status, {404: "Not found", 409: "Conflict"}.get(self.status, "Unprocessable"),
                       self.message)


@dataclass(frozen=True)
class Posted:
    posting: dict[str, Any]  # the postings row as written
    loan: dict[str, Any]  # the loan row after the posting


def loan_ids(items: Iterable[Repayment]) -> list[str]:
    return sorted({item.loan_id for item in items})


@dataclass
class _Batch:
    """What a batch writes, gathered while its items are allocated in memory."""

    postings: list[dict[str, Any]] = field(default_factory=list)
    instalments: dict[tuple[str, int], SimpleNamespace] = field(default_factory=dict)
    loans: dict[str, SimpleNamespace] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    drafts: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    # What each changed loan and instalment held before the batch, for the audit trail's digest of before.
    before: dict[tuple[str, Any], dict[str, Any]] = field(default_factory=dict)


class _Clock:
    """created_at orders postings of one value date: strictly increasing within a batch."""

    def __init__(self) -> None:
        self.last: datetime | None = None

    def tick(self) -> datetime:
        at = now()
        if self.last is not None and at <= self.last:
            at = self.last + timedelta(microseconds=1)
        self.last = at
        return at


@cache
def _reads(dialect_name: str) -> SimpleNamespace:
    """The statements that read a batch's loans (`ids`) under their write locks, built once per dialect."""
    def of(column: Any, name: str) -> Any:
        return among(column, name, dialect_name)

    pauses, t, p = DelinquencyPause.__table__, _INSTALMENTS, _POSTINGS
    paused = select(pauses.c.id).where(pauses.c.loan_id == _LOANS.c.id).exists().label("paused")
    # The loans, with which of them have delinquency pauses and the rules' key (`rules_key`); on PostgreSQL the
    # statement takes their row locks in id order (two batches never deadlock). SQLite has no row locks: a no-op
    # UPDATE takes the database's write lock first (see loans.service.lock_loan).
    loans = select(_LOANS, paused, *rules_key()).where(of(_LOANS.c.id, "ids")).order_by(_LOANS.c.id)
    as_of = bindparam("as_of", type_=Date)
    # Each loan's unpaid instalments due by the business date, and the first one due after it (which a payment
    # no larger than what is due leaves unpaid: it is the next unpaid due date); one scan of the unpaid rows.
    next_due = func.min(t.c.due_date).filter(t.c.due_date > as_of).over(partition_by=t.c.loan_id)
    unpaid = select(t, next_due.label("next_due")).where(of(t.c.loan_id, "ids"), _UNPAID).subquery()
    instalments = (select(*(unpaid.c[c.name] for c in t.c))
                   .where(unpaid.c.due_date <= func.coalesce(unpaid.c.next_due, as_of))
                   .order_by(unpaid.c.loan_id, unpaid.c.number))
    # Each loan's latest live postings, newest first: (value date, left overdue).
    rank = func.row_number().over(partition_by=p.c.loan_id, order_by=(
        p.c.value_date.desc(), p.c.created_at.desc(), p.c.id.desc())).label("rank")
    ranked = (select(p.c.loan_id, p.c.value_date, p.c.left_overdue, rank)
              .where(of(p.c.loan_id, "ids"), p.c.status == PostingStatus.POSTED).subquery())
    return SimpleNamespace(
        lock=None if dialect_name == "postgresql" else update(_LOANS).where(of(_LOANS.c.id, "ids")).values(
            id=_LOANS.c.id),
        loans=loans.with_for_update(of=_LOANS) if dialect_name == "postgresql" else loans,
        instalments=instalments,
        recent=select(ranked).where(ranked.c.rank <= LOOK_BACK).order_by(ranked.c.loan_id, ranked.c.rank),
        known=select(p.c.loan_id, p.c.external_id).where(of(p.c.loan_id, "ids"), of(p.c.external_id, "externals")))


@dataclass
class _Read:
    loans: dict[str, SimpleNamespace]
    with_pauses: set[str]
    rules_key: tuple[int, int]
    instalments: dict[str, list[SimpleNamespace]]
    recent: dict[str, list[tuple[date, bool]]]  # each loan's latest live postings, newest first
    known: set[tuple[str, str]]  # (loan, external id) already posted


def _read(session: Session, items: Sequence[Repayment], ids: list[str], as_of: date) -> _Read:
    """Lock the batch's loans and read what posting to them needs, in one round trip on PostgreSQL."""
    connection = session.connection()
    statements = _reads(connection.dialect.name)
    externals = sorted({item.external_id for item in items if item.external_id})
    on = {"ids": ids, "as_of": as_of}
    steps = [Step(statements.loans, on, rows=True), Step(statements.instalments, on, rows=True),
             Step(statements.recent, on, rows=True)]
    if externals:
        steps.append(Step(statements.known, {"ids": ids, "externals": externals}, rows=True))
    if statements.lock is not None:
        steps.insert(0, Step(statements.lock, {"ids": ids}))
    found = run_together(connection, steps)
    if statements.lock is not None:
        found = found[1:]
    read = _Read({}, set(), (0, 0), {loan_id: [] for loan_id in ids}, {loan_id: [] for loan_id in ids}, set())
    for row in found[0]:
        read.rules_key = (row.pop("rules_count"), int(row.pop("rules_versions")))
        if row.pop("paused"):
            read.with_pauses.add(row["id"])
        read.loans[row["id"]] = SimpleNamespace(**row)
    if not read.loans:
        read.rules_key = tuple(connection.execute(select(*rules_key())).one())
    for row in found[1]:
        read.instalments[row["loan_id"]].append(SimpleNamespace(**row))
    for row in found[2]:
        read.recent[row["loan_id"]].append((row["value_date"], bool(row["left_overdue"])))
    if externals:
        read.known = {(row["loan_id"], row["external_id"]) for row in found[3]}
    return read


def _all_unpaid(session: Session, loan_id: str) -> list[SimpleNamespace]:
    query = select(_INSTALMENTS).where(_INSTALMENTS.c.loan_id == loan_id, _UNPAID).order_by(_INSTALMENTS.c.number)
    return [SimpleNamespace(**row._mapping) for row in session.connection().execute(query)]


def _unpaid(session: Session, batch: _Batch, loan_id: str, rows: list[SimpleNamespace],
            amount: Decimal) -> list[SimpleNamespace]:
    """The loan's unpaid instalments as the batch has left them, for `service.over_payoff`: the ones held in memory
    (due by the business date and the next one) when they alone owe at least `amount` (then so does the payoff),
    else every unpaid one, read as `_receive` reads them."""
    if amount <= sum((r.principal - r.principal_paid + r.interest - r.interest_paid for r in rows), ZERO):
        return rows
    return [batch.instalments.get((loan_id, r.number), r) for r in _all_unpaid(session, loan_id)]


def _refusal(loan: SimpleNamespace | None, item: Repayment, value_date: date, as_of: date, rebooked: date | None,
             known: set[tuple[str, str]], scope: Visibility, unpaid: Callable[[], list[SimpleNamespace]],
             tolerance: Decimal) -> Refused | None:
    """The checks of `service.post_repayment`, in its order; `unpaid()` reads the loan's unpaid instalments."""
    if loan is None or not scope.allows(loan.branch):
        return Refused(404, None, f"No loan {item.loan_id!r}.")
    if value_date > as_of:
        return Refused(422, "value_date", f"must not be after the business date {as_of.isoformat()}")
    if value_date < loan.disbursement_date:
        return Refused(422, "value_date", "must not be before the disbursement date")
    if rebooked is not None and value_date < rebooked:
        return Refused(422, "value_date", f"must not be before the schedule's rebooking on {rebooked.isoformat()}")
    if loan.status == LoanStatus.CLOSED:
        return Refused(422, "amount", "the loan is fully repaid; nothing is owed")
    if loan.status == LoanStatus.WRITTEN_OFF:
        return Refused(409, None, f"The loan was written off on {loan.written_off_on.isoformat()}; its postings "
                                  "can no longer change.")
    if item.external_id and (loan.id, item.external_id) in known:
        return Refused(409, None, f"A posting with external_id {item.external_id!r} already exists.")
    if (message := service.over_payoff(loan, unpaid(), item.amount, value_date, tolerance)) is not None:
        return Refused(422, "amount", message)
    return None


def _receive(session: Session, batch: _Batch, loan: SimpleNamespace, rows: list[SimpleNamespace],
             posting: SimpleNamespace, *, pauses: list, rules: list, recent: list[tuple[date, bool]],
             as_of: date) -> list[SimpleNamespace]:
    """`service._receive`, `delinquency.reassess` and the alerts of a posting, on the loan held in memory.
    Returns the loan's unpaid instalments as they stand after it."""
    due_now = [r for r in rows if r.due_date <= posting.value_date]
    rounding_owed = sum((r.principal - r.principal_paid + r.interest - r.interest_paid for r in due_now), ZERO)
    if posting.amount > rounding_owed and any(r.due_date > posting.value_date for r in rows):
        rows = _all_unpaid(session, loan.id)  # more than is due: later instalments can be paid early
        rows = [batch.instalments.get((loan.id, r.number), r) for r in rows]
    before_paid = {r.number: tuple(getattr(r, name) for name in _PAID) for r in rows}
    batch.before.setdefault(("loans", loan.id), {"id": loan.id, **{name: getattr(loan, name) for name in _LOAN_STATE}})
    loan.credit_balance += service._apply(policy(loan.product), loan, rows, posting)  # noqa: SLF001
    loan.outstanding_principal -= posting.principal
    for row in rows:
        if tuple(getattr(row, name) for name in _PAID) != before_paid[row.number]:
            batch.instalments[(loan.id, row.number)] = row
            batch.before.setdefault(("instalments", (loan.id, row.number)), {
                "loan_id": loan.id, "number": row.number, **dict(zip(_PAID, before_paid[row.number], strict=True))})
    unpaid = [r for r in rows if r.principal_paid < r.principal or r.interest_paid < r.interest]
    loan.oldest_unpaid_due = min((r.due_date for r in unpaid), default=None)
    loan.status = (LoanStatus.ACTIVE if loan.oldest_unpaid_due is not None else LoanStatus.CLOSED).value
    before = delinquency.stored_state(loan)
    cause = ChangeCause.REPAYMENT
    after = delinquency.assess(loan, delinquency.dpd_on(loan.oldest_unpaid_due, as_of, pauses), as_of)
    records = diff_states(before, after, cause, as_of)
    batch.history.extend(delinquency.history_rows(loan.id, records, as_of, posting.id, after.dpd))
    delinquency.set_state(loan, after)
    overdue = sum((r.principal - r.principal_paid + r.interest - r.interest_paid
                   for r in rows if r.due_date < posting.value_date), ZERO)
    posting.left_overdue = overdue > 0
    in_a_row = 0
    for _, left_overdue in [(posting.value_date, posting.left_overdue), *recent][:LOOK_BACK]:
        if not left_overdue:
            break
        in_a_row += 1
    batch.drafts.extend(alert_drafts(rules, Facts(loan.id, loan.customer_id, as_of, before, after, payment={
        "posting_id": posting.id, "amount": posting.amount, "overdue_after": overdue,
        "partials_in_a_row": in_a_row})))
    return unpaid


def _write(session: Session, batch: _Batch) -> None:
    """One statement per table for the whole batch, each noted in the audit trail; on PostgreSQL in one round
    trip, the events with them (an alert's event is written only if the alert was: an event already alerted on is
    skipped)."""
    connection = session.connection()
    steps, noted, raised = [], [], None
    if batch.postings:
        steps.append(insert_rows(_POSTINGS, batch.postings))
        noted.append((_POSTINGS, "insert", batch.postings, None))
    if batch.instalments:
        rows = [{"loan_id": r.loan_id, "number": r.number, **{name: getattr(r, name) for name in _PAID}}
                for r in batch.instalments.values()]
        steps.append(update_rows(_INSTALMENTS, ("loan_id", "number"), rows))
        noted.append((_INSTALMENTS, "update", rows,
                      [batch.before[("instalments", (r["loan_id"], r["number"]))] for r in rows]))
    if batch.loans:
        rows = [{"id": loan.id, **{name: getattr(loan, name) for name in _LOAN_STATE}} for loan in batch.loans.values()]
        steps.append(update_rows(_LOANS, ("id",), rows))
        noted.append((_LOANS, "update", rows, [batch.before[("loans", r["id"])] for r in rows]))
    if batch.history:
        at = now()
        rows = [{**row, "id": new_id(), "recorded_at": at, "superseded_at": None, "superseded_by": None}
                for row in batch.history]
        steps.append(insert_rows(_RISK, rows))
        noted.append((_RISK, "insert", rows, None))
    alerts = alert_rows(batch.drafts, {loan.id: loan.branch for loan in batch.loans.values()})
    if alerts:
        raised = len(steps)
        steps.append(Step(insert_alerts(connection.dialect.name), alerts, rows=True))
        noted.append((Alert.__table__, "insert", alerts, None))
    events = outbox.rows(batch.events + alert_events(alerts))
    posted, alerted = events[:len(batch.events)], events[len(batch.events):]
    if posted:
        steps.append(outbox.insert_step(posted))
    if alerted:
        steps.append(outbox.insert_step_if_subject(Alert.__table__, alerted))
    found = run_together(connection, steps)
    for table, action, rows, before in noted:
        note_rows(session, table, action, rows, before)
    if raised is not None:
        ids = {row["id"] for row in found[raised]}
        alerted = [row for row in alerted if row["subject_id"] in ids]
    if posted or alerted:
        outbox.written(session, posted + alerted)


def _catch_up(session: Session, read: _Read, scope: Visibility, as_of: date) -> bool:
    """Inline COB: the locked loans ageing could change today (not yet aged to it, restructured or in hardship)
    are brought to the business date first, all in one ageing step, so a posting starts from what COB would have
    left. Returns whether any changed (the batch is then read again)."""
    behind = [loan.id for loan in read.loans.values() if loan.status == LoanStatus.ACTIVE
              and scope.allows(loan.branch) and cob.behind(loan, as_of)]
    return bool(behind) and cob.catch_up_loans(session, behind, as_of)


def post_repayments(session: Session, items: Sequence[Repayment], *, scope: Visibility, posted_by: str,
                    as_of: date, tolerance: Decimal) -> list[Posted | Refused]:
    """Post each item in order, within the caller's transaction (which commits); one answer per item. An item
    more than settles its loan in full plus `tolerance` (MonitoringSettings.overpayment_tolerance) is refused."""
    ids = loan_ids(items)
    read = _read(session, items, ids, as_of)
    if _catch_up(session, read, scope, as_of):
        read = _read(session, items, ids, as_of)
    loans, instalments, recent, known = read.loans, read.instalments, read.recent, read.known
    pauses = delinquency.pauses_of(session, DelinquencyPause.loan_id.in_(read.with_pauses)) \
        if read.with_pauses else {}
    rules = enabled_rules_at(session, read.rules_key)
    # The ORM path's check (`service.post_repayment`): only a restructured, hardship or recalled loan has one.
    rebooked = {loan.id: loans_service.rebooked_on(session, loan) for loan in loans.values()}
    batch, clock = _Batch(), _Clock()
    answers: list[Posted | Refused | None] = [None] * len(items)
    replaying: dict[str, list[int]] = {}  # loan -> its items that change the past, and every later one
    for index, item in enumerate(items):
        if item.loan_id in replaying:
            replaying[item.loan_id].append(index)
            continue
        loan = loans.get(item.loan_id)
        value_date = item.value_date or as_of
        refused = _refusal(loan, item, value_date, as_of, rebooked.get(item.loan_id), known, scope,
                           lambda loan=loan, item=item: _unpaid(session, batch, loan.id, instalments[loan.id],
                                                                item.amount), tolerance)
        if refused is not None:
            answers[index] = refused
            continue
        latest = recent[loan.id][0][0] if recent[loan.id] else None
        if value_date != as_of or (latest is not None and latest > value_date):
            replaying[loan.id] = [index]
            continue
        if item.external_id:
            known.add((loan.id, item.external_id))
        posting = SimpleNamespace(id=new_id(), amount=item.amount, value_date=value_date)
        instalments[loan.id] = _receive(session, batch, loan, instalments[loan.id], posting, pauses=pauses.get(
            loan.id, []), rules=rules, recent=recent[loan.id], as_of=as_of)
        recent[loan.id] = [(value_date, posting.left_overdue), *recent[loan.id]][:LOOK_BACK]
        row = {"id": posting.id, "loan_id": loan.id, "external_id": item.external_id, "amount": item.amount,
               "value_date": value_date, "booked_on": as_of, "principal": posting.principal,
               "interest": posting.interest, "penalty": posting.penalty, "overpayment": posting.overpayment,
               "lines": posting.lines, "status": PostingStatus.POSTED.value, "left_overdue": posting.left_overdue,
               "reversal_reason": None, "reversed_by": None, "reversed_on": None, "created_by": posted_by,
               "created_at": clock.tick()}
        batch.postings.append(row)
        batch.loans[loan.id] = loan
        batch.events.append(dict(type=EventType.REPAYMENT_POSTED, subject_id=posting.id, branch=loan.branch,
                                 customer_id=loan.customer_id, payload={
                                     "posting_id": posting.id, "loan_id": loan.id, "customer_id": loan.customer_id,
                                     "branch": loan.branch, "external_id": item.external_id,
                                     "amount": item.amount, "value_date": value_date, "booked_on": as_of,
                                     **(item.payer or {})}))
        answers[index] = Posted(row, vars(loan).copy())
    _write(session, batch)
    for indexes in replaying.values():
        for index in indexes:
            answers[index] = _replay(session, items[index], scope=scope, posted_by=posted_by, as_of=as_of,
                                     tolerance=tolerance)
    return answers  # type: ignore[return-value]


def _replay(session: Session, item: Repayment, *, scope: Visibility, posted_by: str, as_of: date,
            tolerance: Decimal) -> Posted | Refused:
    """A posting that changes the past: the loan's history replayed through the ORM path, in a savepoint so that
    a refusal leaves the rest of the batch standing."""
    command = RepaymentCreate.model_construct(amount=item.amount, value_date=item.value_date,
                                              external_id=item.external_id)
    try:
        with session.begin_nested():
            posting, _ = service.post_repayment(session, item.loan_id, command, scope=scope, posted_by=posted_by,
                                                as_of=as_of, tolerance=tolerance)
            session.flush()
    except DomainError as refused:
        return Refused(422, refused.field, refused.message)
    except Problem as refused:
        return Refused(refused.status, None, refused.detail or refused.title)
    loan = session.get(Loan, item.loan_id)
    posted = {c.name: getattr(posting, c.name) for c in _POSTINGS.columns}
    return Posted(posted, {c.name: getattr(loan, c.name) for c in _LOANS.columns})


def post_one(session: Session, item: Repayment, *, scope: Visibility, posted_by: str, as_of: date,
             tolerance: Decimal) -> Posted:
    """A single posting: the batch of one; a refusal raises as the API answers it."""
    answer = post_repayments(session, [item], scope=scope, posted_by=posted_by, as_of=as_of, tolerance=tolerance)[0]
    if isinstance(answer, Refused):
        raise answer.problem()
    return answer
