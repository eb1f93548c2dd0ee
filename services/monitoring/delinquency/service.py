"""A loan's risk state (DPD, bucket, class, IFRS 9 stage) and its append-only history of changes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import date, timedelta
from decimal import Decimal

from sqlalchemy import ColumnElement, Row
from sqlmodel import Session, select

from services.monitoring.classification.rules import (
    ChangeCause,
    DEFAULT_STAGING,
    ChangeRecord,
    Ifrs9Stage,
    LoanClass,
    RiskState,
    StagingRule,
    classification_floor,
    diff_states,
    ifrs9_stage,
)
from services.monitoring.delinquency.models import (
    DelinquencyPause,
    HistoryView,
    PauseCreate,
    PauseRead,
    RiskChange,
    RiskChangeRead,
)
from services.monitoring.delinquency.rules import (
    DelinquencyPoint,
    InstalmentState,
    Pause,
    Posting,
    days_past_due,
    replay_delinquency,
    state_on,
)
from services.monitoring.errors import DomainError
from services.monitoring.loans.models import ClassName, Loan, now
from services.monitoring.loans.products import POLICIES, policy
from services.monitoring.loans.schedule import Instalment as ScheduledInstalment
from shared.pagination import Page, PageRequest, keyset

# The IFRS 9 staging rule of this process, from its settings (`use_staging`): one accounting policy for the whole
# portfolio, so every path that assesses a loan (booking, postings, COB) stages it the same way.
_staging: list[StagingRule] = [DEFAULT_STAGING]


def use_staging(rule: StagingRule) -> None:
    _staging[0] = rule


def staging() -> StagingRule:
    return _staging[0]


# DPD moves every day; history keeps the changes a banker reports on.
HISTORY_FIELDS = ("bucket", "loan_class", "stage")


def to_class(name: str) -> LoanClass:
    return LoanClass[name.upper()]


def class_name(loan_class: LoanClass) -> str:
    return ClassName(loan_class.name.lower()).value


def dpd_on(oldest_unpaid_due: date | None, as_of: date, pauses: Sequence[Pause] = ()) -> int:
    """DPD from the due date of the oldest unpaid instalment alone: that instalment decides it."""
    if oldest_unpaid_due is None:
        return 0
    if not pauses:
        return max(0, (as_of - oldest_unpaid_due).days)
    return days_past_due([InstalmentState(0, oldest_unpaid_due, Decimal(1), Decimal(0))], as_of, pauses)


def pauses_of(session: Session, *conditions: ColumnElement[bool]) -> dict[str, list[Pause]]:
    """Pauses by loan id, for the loans the conditions on `DelinquencyPause.loan_id` select."""
    found: dict[str, list[Pause]] = {}
    for row in session.exec(select(DelinquencyPause).where(*conditions)):
        found.setdefault(row.loan_id, []).append(Pause(row.start, row.end, row.reason))
    return found


def assess(loan: Loan | Row, dpd: int, as_of: date) -> RiskState:
    """The state the rules give for `dpd` on `as_of`: the product's floor, worsened by an approved override."""
    rules = policy(loan.product)
    previous = to_class(loan.classification) if loan.restructured_on else None
    loan_class = classification_floor(dpd, rules.floors, loan.restructured_on, as_of, previous_class=previous,
                                      hardship=(loan.hardship_on, loan.hardship_until))
    if loan.override_class:
        loan_class = max(loan_class, to_class(loan.override_class))
    return RiskState(dpd=dpd, bucket=rules.buckets.bucket_for(dpd).name, loan_class=loan_class,
                     stage=ifrs9_stage(dpd, loan_class, rule=staging()))


def state_thresholds() -> tuple[int, ...]:
    """The DPD values at which `assess` can give a plain loan (no override, restructuring or pause) another
    bucket, class or stage, over every product: between two of them only the DPD moves."""
    days = {staging().stage2_dpd + 1, staging().stage3_dpd + 1}
    for rules in POLICIES.values():
        days.update(b.min_days for b in rules.buckets.buckets if b.min_days > 0)
        days.update(f.min_dpd for f in rules.floors.floors)
    return tuple(sorted(days))


def stored_state(loan: Loan) -> RiskState:
    return RiskState(dpd=loan.dpd, bucket=loan.bucket, loan_class=to_class(loan.classification),
                     stage=Ifrs9Stage(loan.ifrs9_stage))


def _value(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, LoanClass):
        return class_name(value)
    return str(int(value)) if isinstance(value, int) else str(value)


def history_rows(loan_id: str, records: Sequence[ChangeRecord], recorded_on: date,
                 reference: str | None, dpd: int) -> list[dict[str, object]]:
    """Rows for the records of one state change, each keeping the DPD on its effective date."""
    return [
        {"loan_id": loan_id, "field": r.field, "from_value": _value(r.from_value), "to_value": _value(r.to_value),
         "cause": r.cause.value, "effective_date": r.effective_date, "recorded_on": recorded_on,
         "reference": reference, "dpd": dpd}
        for r in records if r.field in HISTORY_FIELDS
    ]


def set_state(loan: Loan, state: RiskState) -> None:
    loan.dpd, loan.bucket = state.dpd, state.bucket
    loan.classification, loan.ifrs9_stage = class_name(state.loan_class), int(state.stage)


def reassess(session: Session, loan: Loan, as_of: date, *, cause: ChangeCause | str,
             reference: str | None, booking: bool = False) -> list[ChangeRecord]:
    """Bring the loan's state to `as_of` and append what changed; returns the change records.

    When `booking`, the loan has no state yet, so every field is recorded as its first value.
    """
    before = None if booking else stored_state(loan)
    pauses = pauses_of(session, DelinquencyPause.loan_id == loan.id).get(loan.id, [])
    after = assess(loan, dpd_on(loan.oldest_unpaid_due, as_of, pauses), as_of)
    records = diff_states(before, after, cause, as_of)
    session.add_all(RiskChange(**row) for row in history_rows(loan.id, records, as_of, reference, after.dpd))
    set_state(loan, after)
    session.add(loan)
    return records


def replay(
    session: Session,
    loan: Loan,
    schedule: Sequence[ScheduledInstalment],
    postings: Sequence[Posting],
    since: date,
    as_of: date,
    *,
    cause: ChangeCause,
    reference: str,
) -> list[ChangeRecord]:
    """A posting or reversal dated `since` changed the past: recompute the path from `since` with the live
    `postings`, and where it parts from the effective timeline, mark the rest of that timeline superseded (never
    deleted) and append the corrected rows, carrying their back effective dates. Returns the appended records.

    First values (the booking's) stand; the corrected path starts from the state effective the day before
    `since`, so the rows keep chaining.
    """
    rows = list(session.exec(select(RiskChange).where(RiskChange.loan_id == loan.id,
                                                      RiskChange.superseded_at.is_(None))
                             .order_by(RiskChange.effective_date, RiskChange.recorded_at)))
    booked = min((r.effective_date for r in rows if r.from_value is None), default=since)
    start = max(since, booked)
    kept = [r for r in rows if r.effective_date < start or r.from_value is None]
    previous: dict[str, str | None] = {field: None for field in HISTORY_FIELDS}
    for row in kept:
        previous[row.field] = row.to_value
    buckets = policy(loan.product).buckets
    pauses = pauses_of(session, DelinquencyPause.loan_id == loan.id).get(loan.id, [])
    points = replay_delinquency(schedule, postings, start, as_of, pauses=pauses, scheme=buckets)
    thresholds = [f.min_dpd for f in policy(loan.product).floors.floors]
    corrected: dict[str, list[tuple[ChangeRecord, int]]] = {field: [] for field in HISTORY_FIELDS}
    for day in sorted(_change_days(points, thresholds, as_of)):
        state = assess(loan, state_on(points, day).dpd, day)
        for record in diff_states(None, state, cause, day):
            if record.field in HISTORY_FIELDS and _value(record.to_value) != previous[record.field]:
                from_value = previous[record.field]
                previous[record.field] = _value(record.to_value)
                corrected[record.field].append((replace(record, from_value=from_value), state.dpd))
    kept_ids = {r.id for r in kept}
    stale: dict[str, list[RiskChange]] = {field: [] for field in HISTORY_FIELDS}
    for row in rows:
        if row.id not in kept_ids:
            stale[row.field].append(row)
    appended: list[ChangeRecord] = []
    when = now()
    for field in HISTORY_FIELDS:
        old, new = stale[field], corrected[field]
        same = 0  # the common beginning stays as it is
        while (same < min(len(old), len(new)) and old[same].effective_date == new[same][0].effective_date
               and old[same].to_value == _value(new[same][0].to_value)):
            same += 1
        for row in old[same:]:
            row.superseded_at, row.superseded_by = when, reference
            session.add(row)
        for record, dpd in new[same:]:
            session.add_all(RiskChange(**row, recorded_at=when)
                            for row in history_rows(loan.id, [record], as_of, reference, dpd))
            appended.append(record)
    set_state(loan, assess(loan, state_on(points, as_of).dpd, as_of))
    session.add(loan)
    return appended


def _change_days(points: Sequence[DelinquencyPoint], thresholds: list[int], end: date) -> set[date]:
    """Replay points mark bucket crossings; class floors (e.g. day 271) can fall between them."""
    days = {p.on for p in points}
    for point, following in zip(points, [*points[1:], None], strict=True):
        if not point.ageing:
            continue
        last = following.on - timedelta(days=1) if following else end
        for threshold in thresholds:
            crossing = point.on + timedelta(days=threshold - point.dpd)
            if point.on < crossing <= last:
                days.add(crossing)
    return days


def history(session: Session, loan_id: str, paging: PageRequest,
            view: HistoryView = HistoryView.EFFECTIVE) -> Page[RiskChangeRead]:
    """The effective timeline (rows no replay superseded, by effective date), or the as-recorded trail (every
    row, superseded ones included, in the order they became known)."""
    query = select(RiskChange).where(RiskChange.loan_id == loan_id)
    if view is HistoryView.EFFECTIVE:
        return keyset(session, query.where(RiskChange.superseded_at.is_(None)), paging, RiskChange.effective_date,
                      RiskChange.recorded_at, RiskChange.id, read=_risk_changes)
    return keyset(session, query, paging, RiskChange.recorded_at, RiskChange.effective_date, RiskChange.id,
                  read=_risk_changes)


def _risk_changes(rows: list[RiskChange]) -> list[RiskChangeRead]:
    return [RiskChangeRead.model_validate(r) for r in rows]


def check_pause(loan: Loan, command: PauseCreate, as_of: date, *, max_backdate_days: int, max_days: int) -> None:
    """A pause may start neither before disbursement, nor after the business date, nor more than
    `max_backdate_days` before it, and lasts at most `max_days` days (both inclusive)."""
    if command.end < command.start:
        raise DomainError("end", "must not be before the pause start")
    if command.start > as_of:
        raise DomainError("start", f"must not be after the business date {as_of.isoformat()}")
    if command.start < loan.disbursement_date:
        raise DomainError("start", f"must not be before the disbursement date {loan.disbursement_date.isoformat()}")
    if (as_of - command.start).days > max_backdate_days:
        raise DomainError("start", f"must not be more than {max_backdate_days} days before the business date "
                                   f"{as_of.isoformat()}")
    if (command.end - command.start).days + 1 > max_days:
        raise DomainError("end", f"a pause lasts at most {max_days} days")


def pause_delinquency(session: Session, loan: Loan, command: PauseCreate, *, by: str, as_of: date,
                      reference: str) -> DelinquencyPause:
    """Stop the DPD clock over [start, end] (e.g. a dispute); the loan is reassessed at once with cause `pause`.

    Only an approved request applies it (see approvals); the caller holds the loan's lock and has checked it.
    """
    reason = command.reason.value + (f": {command.note}" if command.note else "")
    pause = DelinquencyPause(loan_id=loan.id, start=command.start, end=command.end, reason=reason, created_by=by)
    session.add(pause)
    session.flush()
    reassess(session, loan, as_of, cause=ChangeCause.PAUSE, reference=reference)
    return pause


def pauses(session: Session, loan_id: str, paging: PageRequest) -> Page[PauseRead]:
    return keyset(session, select(DelinquencyPause).where(DelinquencyPause.loan_id == loan_id), paging,
                  DelinquencyPause.start, DelinquencyPause.id,
                  read=lambda rows: [PauseRead.model_validate(p) for p in rows])
