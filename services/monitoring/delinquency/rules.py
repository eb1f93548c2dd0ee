"""Days past due, delinquency buckets, pauses, and the replay of delinquency history.

DPD counts from the oldest instalment with principal or interest still unpaid after its due date; unpaid
penalties alone do not make a loan overdue (the classification rules speak of overdue principal or interest).
A day inside a delinquency pause (e.g. a dispute) is not counted.
"""

from bisect import bisect_right
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from services.monitoring.errors import DomainError
from services.monitoring.loans.allocation import Allocation, InstalmentAllocation
from services.monitoring.loans.money import require_date, require_money
from services.monitoring.loans.schedule import Instalment


@dataclass(frozen=True)
class InstalmentState:
    number: int
    due_date: date
    principal_outstanding: Decimal
    interest_outstanding: Decimal

    @property
    def unpaid(self) -> bool:
        return self.principal_outstanding + self.interest_outstanding > 0


@dataclass(frozen=True)
class Pause:
    start: date
    end: date | None  # inclusive; None while the pause is still open
    reason: str

    def __post_init__(self) -> None:
        require_date("pause.start", self.start)
        if self.end is not None:
            require_date("pause.end", self.end)
            if self.end < self.start:
                raise DomainError("pause.end", "must not be before the pause start")
        if not self.reason or not self.reason.strip():
            raise DomainError("pause.reason", "a delinquency pause needs a reason")


@dataclass(frozen=True)
class Bucket:
    name: str
    min_days: int
    max_days: int | None  # None: open-ended top bucket

    def contains(self, dpd: int) -> bool:
        return self.min_days <= dpd and (self.max_days is None or dpd <= self.max_days)


@dataclass(frozen=True)
class BucketScheme:
    """Contiguous, non-overlapping DPD ranges from 0 upwards, the last one open-ended."""

    buckets: tuple[Bucket, ...]

    def __post_init__(self) -> None:
        if not self.buckets:
            raise DomainError("buckets", "at least one bucket is required")
        names = [b.name for b in self.buckets]
        if len(set(names)) != len(names):
            raise DomainError("buckets", "bucket names must be unique")
        expected_min = 0
        for i, bucket in enumerate(self.buckets):
            if not bucket.name or not bucket.name.strip():
                raise DomainError(f"buckets[{i}].name", "must not be empty")
            if bucket.min_days != expected_min:
                where = "start at 0" if i == 0 else f"start at {expected_min}, right after the previous bucket"
                raise DomainError(f"buckets[{i}].min_days", f"must {where} (gaps and overlaps are not allowed)")
            if bucket.max_days is None:
                if i != len(self.buckets) - 1:
                    raise DomainError(f"buckets[{i}].max_days", "only the last bucket may be open-ended")
                return
            if bucket.max_days < bucket.min_days:
                raise DomainError(f"buckets[{i}].max_days", "must not be below min_days")
            expected_min = bucket.max_days + 1
        raise DomainError(f"buckets[{len(self.buckets) - 1}].max_days", "the last bucket must be open-ended")

    @classmethod
    def from_data(cls, rows: Iterable[Sequence[object] | Mapping[str, object]]) -> "BucketScheme":
        """Build from stored configuration: (name, min_days, max_days) rows or mappings with those keys."""
        buckets = []
        for i, row in enumerate(rows):
            values = (
                (row.get("name"), row.get("min_days"), row.get("max_days")) if isinstance(row, Mapping) else tuple(row)
            )
            if len(values) != 3:
                raise DomainError(f"buckets[{i}]", "expected (name, min_days, max_days)")
            name, min_days, max_days = values
            if not isinstance(name, str):
                raise DomainError(f"buckets[{i}].name", "must be a string")
            for field, value in (("min_days", min_days), ("max_days", max_days)):
                if value is None and field == "max_days":
                    continue
                if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                    raise DomainError(f"buckets[{i}].{field}", "must be a non-negative integer")
            buckets.append(Bucket(name, min_days, max_days))  # type: ignore[arg-type]
        return cls(tuple(buckets))

    def bucket_for(self, dpd: int) -> Bucket:
        if dpd < 0:
            raise DomainError("dpd", "must not be negative")
        return self.buckets[bisect_right([b.min_days for b in self.buckets], dpd) - 1]


DEFAULT_BUCKETS = BucketScheme.from_data(
    [("M0", 0, 0), ("M1", 1, 30), ("M2", 31, 60), ("M3", 61, 90), ("M4+", 91, None)]
)


class _PauseCalendar:
    """Merged pause intervals as inclusive day ordinals, for counting paused days between two dates."""

    def __init__(self, pauses: Iterable[Pause]) -> None:
        spans = sorted((p.start.toordinal(), (p.end or date.max).toordinal()) for p in pauses)
        merged: list[list[int]] = []
        for start, end in spans:
            if merged and start <= merged[-1][1] + 1:
                merged[-1][1] = max(merged[-1][1], end)
            else:
                merged.append([start, end])
        self.spans = [(s, e) for s, e in merged]

    def paused_between(self, after: int, through: int) -> int:
        """Paused days d with after < d <= through."""
        return sum(max(0, min(e, through) - max(s, after + 1) + 1) for s, e in self.spans)

    def is_paused(self, day: int) -> bool:
        return any(s <= day <= e for s, e in self.spans)

    def boundaries(self) -> list[int]:
        # A pause changes the DPD trend on its first day and on the day after its last.
        return [s for s, _ in self.spans] + [e + 1 for _, e in self.spans if e < date.max.toordinal()]


def _dpd(anchor_due: date | None, as_of: date, calendar: _PauseCalendar) -> int:
    if anchor_due is None:
        return 0
    after, through = anchor_due.toordinal(), as_of.toordinal()
    return through - after - calendar.paused_between(after, through)


def days_past_due(instalments: Iterable[InstalmentState], as_of: date, pauses: Iterable[Pause] = ()) -> int:
    """Days the oldest instalment with unpaid principal or interest has been overdue on `as_of`."""
    as_of = require_date("as_of", as_of)
    overdue = [i.due_date for i in instalments if i.unpaid and i.due_date < as_of]
    return _dpd(min(overdue, default=None), as_of, _PauseCalendar(pauses))


@dataclass(frozen=True)
class Posting:
    """A repayment as booked: its value date and what it paid on each instalment."""

    on: date
    lines: tuple[InstalmentAllocation, ...]

    @classmethod
    def from_allocation(cls, on: date, allocation: Allocation) -> "Posting":
        return cls(on, allocation.lines)


@dataclass(frozen=True)
class DelinquencyPoint:
    on: date
    dpd: int
    bucket: str
    ageing: bool  # True: DPD grows by one a day after `on` until the next point; False: it holds


def replay_delinquency(
    schedule: Sequence[Instalment],
    postings: Iterable[Posting],
    start: date,
    end: date,
    *,
    pauses: Iterable[Pause] = (),
    scheme: BucketScheme = DEFAULT_BUCKETS,
) -> list[DelinquencyPoint]:
    """The DPD/bucket history over [start, end] as change points, recomputed from all postings.

    A backdated posting is simply included and the range replayed from its value date. Points are emitted on
    `start`, wherever the DPD trend breaks (an instalment falls overdue, a payment cures or shifts the oldest
    unpaid instalment, a pause begins or ends) and wherever the bucket changes; `state_on` reads any day back.
    Cost grows with instalments, postings, pauses and bucket crossings, not with the number of days.
    Reversals are modelled by replaying without the reversed posting; negative postings are refused.
    """
    start, end = require_date("start", start), require_date("end", end)
    if end < start:
        raise DomainError("end", "must not be before start")
    calendar = _PauseCalendar(pauses)
    instalments = sorted(schedule, key=lambda i: (i.due_date, i.number))
    owed = {i.number: i.principal + i.interest for i in instalments}
    if len(owed) != len(instalments):
        raise DomainError("schedule", "instalment numbers must be unique")
    ordered_postings = sorted(postings, key=lambda p: p.on)
    for posting in ordered_postings:
        require_date("postings.on", posting.on)
        for line in posting.lines:
            if line.number not in owed:
                raise DomainError("postings", f"instalment {line.number} is not in the schedule")
            require_money("postings.principal", line.principal)
            require_money("postings.interest", line.interest)

    first, last = start.toordinal(), end.toordinal()
    events = {first}
    events.update(p.on.toordinal() for p in ordered_postings)
    events.update(i.due_date.toordinal() + 1 for i in instalments)
    events.update(calendar.boundaries())
    breakpoints = sorted(e for e in events if first <= e <= last)

    paid = dict.fromkeys(owed, Decimal(0))
    next_posting = 0
    oldest = 0  # postings only add, so the oldest unpaid instalment can only move forward
    points: list[DelinquencyPoint] = []

    def emit(day: int, dpd: int, ageing: bool) -> None:
        bucket = scheme.bucket_for(dpd).name
        if points:
            prev = points[-1]
            expected = prev.dpd + (day - prev.on.toordinal() if prev.ageing else 0)
            if (expected, prev.bucket, prev.ageing) == (dpd, bucket, ageing):
                return
        points.append(DelinquencyPoint(date.fromordinal(day), dpd, bucket, ageing))

    for k, day in enumerate(breakpoints):
        while next_posting < len(ordered_postings) and ordered_postings[next_posting].on.toordinal() <= day:
            for line in ordered_postings[next_posting].lines:
                paid[line.number] += line.principal + line.interest
            next_posting += 1
        while oldest < len(instalments) and paid[instalments[oldest].number] >= owed[instalments[oldest].number]:
            oldest += 1
        anchor = None
        if oldest < len(instalments) and instalments[oldest].due_date.toordinal() < day:
            anchor = instalments[oldest].due_date
        dpd = _dpd(anchor, date.fromordinal(day), calendar)
        ageing = anchor is not None and not calendar.is_paused(day)
        emit(day, dpd, ageing)
        if ageing:
            segment_end = (breakpoints[k + 1] - 1) if k + 1 < len(breakpoints) else last
            for bucket in scheme.buckets:
                if dpd < bucket.min_days <= dpd + segment_end - day:
                    emit(day + bucket.min_days - dpd, bucket.min_days, True)
    return points


def state_on(points: Sequence[DelinquencyPoint], day: date) -> DelinquencyPoint:
    """The DPD and bucket on `day` (within the replayed range), read from replayed change points."""
    index = bisect_right([p.on for p in points], day) - 1
    if index < 0:
        raise DomainError("day", "is before the replayed range")
    point = points[index]
    dpd = point.dpd + ((day - point.on).days if point.ageing else 0)
    return DelinquencyPoint(day, dpd, point.bucket, point.ageing)
