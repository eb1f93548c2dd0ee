"""A loan's risk state (DPD, bucket, class, IFRS 9 stage) and its append-only history of changes."""

from __future__ import annotations

from collections.abc import Sequence
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
from services.monitoring.delinquency.models import DelinquencyPause, PauseCreate, RiskChange
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
from services.monitoring.loans.models import ClassName, Loan
from services.monitoring.loans.products import POLICIES, policy
from services.monitoring.loans.schedule import Instalment as ScheduledInstalment

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
    loan_class = classification_floor(dpd, rules.floors, loan.restructured_on, as_of, previous_class=previous)
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
                 reference: str | None) -> list[dict[str, object]]:
    return [
        {"loan_id": loan_id, "field": r.field, "from_value": _value(r.from_value), "to_value": _value(r.to_value),
         "cause": r.cause.value, "effective_date": r.effective_date, "recorded_on": recorded_on,
         "reference": reference}
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
    session.add_all(RiskChange(**row) for row in history_rows(loan.id, records, as_of, reference))
    set_state(loan, after)
    session.add(loan)
    return records


def replay(
    session: Session,
    loan: Loan,
    schedule: Sequence[ScheduledInstalment],
    old_postings: Sequence[Posting],
    new_postings: Sequence[Posting],
    since: date,
    as_of: date,
    *,
    cause: ChangeCause,
    reference: str,
) -> list[ChangeRecord]:
    """A posting or reversal dated `since` changed the past: append the corrected path from where it diverges.

    Old records stay as they were; the correction is new records carrying the back value dates.
    """
    buckets = policy(loan.product).buckets
    pauses = pauses_of(session, DelinquencyPause.loan_id == loan.id).get(loan.id, [])
    old_points = replay_delinquency(schedule, old_postings, since, as_of, pauses=pauses, scheme=buckets)
    new_points = replay_delinquency(schedule, new_postings, since, as_of, pauses=pauses, scheme=buckets)
    thresholds = [f.min_dpd for f in policy(loan.product).floors.floors]
    days = sorted(_change_days(old_points, thresholds, as_of) | _change_days(new_points, thresholds, as_of))
    previous: RiskState | None = None
    records: list[ChangeRecord] = []
    for day in days:
        new = assess(loan, state_on(new_points, day).dpd, day)
        old = assess(loan, state_on(old_points, day).dpd, day)
        if previous is None and _reported(new) == _reported(old):
            continue
        records += diff_states(previous or old, new, cause, day)
        previous = new
    final = assess(loan, state_on(new_points, as_of).dpd, as_of)
    session.add_all(RiskChange(**row) for row in history_rows(loan.id, records, as_of, reference))
    set_state(loan, final)
    session.add(loan)
    return records


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


def _reported(state: RiskState) -> tuple[object, ...]:
    return state.bucket, state.loan_class, state.stage


def history(session: Session, loan_id: str) -> list[RiskChange]:
    return list(session.exec(select(RiskChange).where(RiskChange.loan_id == loan_id)
                             .order_by(RiskChange.recorded_at, RiskChange.effective_date)))


def pause_delinquency(session: Session, loan: Loan, command: PauseCreate, *, by: str,
                      as_of: date) -> DelinquencyPause:
    """Stop the DPD clock over [start, end] (e.g. a dispute); the loan is reassessed at once with cause `pause`.

    The caller holds the loan's lock.
    """
    try:
        Pause(command.start, command.end, command.reason)  # validates the range and the reason
    except DomainError as exc:
        raise DomainError(exc.field.removeprefix("pause."), exc.message) from None
    if command.start > as_of:
        raise DomainError("start", f"must not be after the business date {as_of.isoformat()}")
    pause = DelinquencyPause(loan_id=loan.id, created_by=by, **command.model_dump())
    session.add(pause)
    session.flush()
    reassess(session, loan, as_of, cause=ChangeCause.PAUSE, reference=pause.id)
    return pause


def pauses(session: Session, loan_id: str) -> list[DelinquencyPause]:
    return list(session.exec(select(DelinquencyPause).where(DelinquencyPause.loan_id == loan_id)
                             .order_by(DelinquencyPause.start)))
