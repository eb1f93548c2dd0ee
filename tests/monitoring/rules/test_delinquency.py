import random
from datetime import date, timedelta
from decimal import Decimal
from itertools import pairwise

import pytest

from services.monitoring.delinquency.rules import (
    DEFAULT_BUCKETS,
    Bucket,
    BucketScheme,
    DelinquencyPoint,
    InstalmentState,
    Pause,
    Posting,
    days_past_due,
    replay_delinquency,
    state_on,
)
from services.monitoring.errors import DomainError
from services.monitoring.loans.allocation import DueItem, InstalmentAllocation, allocate
from services.monitoring.loans.schedule import generate_schedule

D = Decimal
JAN10, FEB10, MAR10 = date(2024, 1, 10), date(2024, 2, 10), date(2024, 3, 10)


def state(number, due, principal="0.00", interest="0.00") -> InstalmentState:
    return InstalmentState(number, due, D(principal), D(interest))


def test_nothing_unpaid_means_zero_dpd():
    assert days_past_due([state(1, JAN10), state(2, FEB10)], date(2024, 6, 1)) == 0


@pytest.mark.parametrize(("as_of", "dpd"), [(JAN10 - timedelta(1), 0), (JAN10, 0), (date(2024, 1, 11), 1), (FEB10, 31)])
def test_dpd_starts_the_day_after_the_due_date(as_of, dpd):
    assert days_past_due([state(1, JAN10, "100.00")], as_of) == dpd


def test_dpd_counts_from_the_oldest_partially_paid_instalment():
    instalments = [state(1, JAN10, interest="0.01"), state(2, FEB10, "500.00", "50.00")]
    assert days_past_due(instalments, date(2024, 2, 15)) == 36


def test_dpd_moves_to_the_next_instalment_once_the_oldest_is_paid():
    instalments = [state(2, FEB10, "500.00"), state(1, JAN10), state(3, MAR10, "500.00")]
    assert days_past_due(instalments, date(2024, 2, 15)) == 5


def test_unpaid_penalty_alone_does_not_make_a_loan_overdue():
    # Penalties are not part of InstalmentState: an instalment with principal and interest settled is paid.
    assert days_past_due([state(1, JAN10)], date(2024, 5, 1)) == 0


def test_days_inside_a_pause_do_not_count():
    pause = Pause(date(2024, 1, 20), date(2024, 1, 29), "dispute")
    assert days_past_due([state(1, JAN10, "1.00")], FEB10, [pause]) == 31 - 10


def test_pause_before_the_due_date_is_irrelevant():
    pause = Pause(date(2023, 12, 1), JAN10, "dispute")
    assert days_past_due([state(1, JAN10, "1.00")], FEB10, [pause]) == 31


def test_open_ended_pause_freezes_dpd():
    pause = Pause(date(2024, 1, 20), None, "dispute")
    assert days_past_due([state(1, JAN10, "1.00")], date(2025, 1, 1), [pause]) == 9


def test_overlapping_pauses_are_not_counted_twice():
    pauses = [
        Pause(date(2024, 1, 15), date(2024, 1, 25), "dispute"),
        Pause(date(2024, 1, 20), date(2024, 1, 30), "hardship"),
    ]
    assert days_past_due([state(1, JAN10, "1.00")], FEB10, pauses) == 31 - 16


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"start": FEB10, "end": JAN10, "reason": "dispute"}, "pause.end"),
        ({"start": JAN10, "end": FEB10, "reason": "  "}, "pause.reason"),
        ({"start": "2024-01-10", "end": None, "reason": "dispute"}, "pause.start"),
    ],
)
def test_invalid_pause_is_refused(kwargs, field):
    with pytest.raises(DomainError) as caught:
        Pause(**kwargs)
    assert caught.value.field == field


@pytest.mark.parametrize(
    ("dpd", "bucket"),
    [(0, "M0"), (1, "M1"), (30, "M1"), (31, "M2"), (60, "M2"), (61, "M3"), (90, "M3"), (91, "M4+"), (5000, "M4+")],
)
def test_default_bucket_boundaries(dpd, bucket):
    assert DEFAULT_BUCKETS.bucket_for(dpd).name == bucket


def test_bucket_scheme_from_mappings_with_custom_edges():
    scheme = BucketScheme.from_data(
        [
            {"name": "current", "min_days": 0, "max_days": 0},
            {"name": "early", "min_days": 1, "max_days": 15},
            {"name": "late", "min_days": 16, "max_days": None},
        ]
    )
    assert [scheme.bucket_for(d).name for d in (0, 15, 16)] == ["current", "early", "late"]


@pytest.mark.parametrize(
    ("rows", "field"),
    [
        ([], "buckets"),
        ([("M0", 1, None)], "buckets[0].min_days"),
        ([("M0", 0, 0), ("M1", 2, None)], "buckets[1].min_days"),
        ([("M0", 0, 5), ("M1", 3, None)], "buckets[1].min_days"),
        ([("M0", 0, None), ("M1", 1, None)], "buckets[0].max_days"),
        ([("M0", 0, 0), ("M1", 1, 30)], "buckets[1].max_days"),
        ([("M0", 0, 0), ("M0", 1, None)], "buckets"),
        ([("M0", 0, 5), ("M1", 6, 4), ("M2", 5, None)], "buckets[1].max_days"),
        ([("M0", -1, None)], "buckets[0].min_days"),
        ([("M0", 0, "30")], "buckets[0].max_days"),
        ([("M0", 0)], "buckets[0]"),
        ([("", 0, None)], "buckets[0].name"),
    ],
)
def test_invalid_bucket_schemes_are_refused(rows, field):
    with pytest.raises(DomainError) as caught:
        BucketScheme.from_data(rows)
    assert caught.value.field == field


def test_bucket_scheme_validates_direct_construction_too():
    with pytest.raises(DomainError):
        BucketScheme((Bucket("M0", 0, 0), Bucket("M2", 31, None)))


# --- replay -------------------------------------------------------------------------------------------------

SCHEDULE = generate_schedule(D("3000.00"), D("0"), 3, "equal_principal", date(2023, 12, 10))  # 1000 due Jan/Feb/Mar 10


def pay(on: date, number: int, amount: str) -> Posting:
    inst = next(i for i in SCHEDULE if i.number == number)
    return Posting(on, (InstalmentAllocation(number, inst.due_date, D("0"), D("0"), D(amount)),))


def brute_force(schedule, postings, start, end, pauses=()):
    """Day-by-day reference: outstanding per instalment from postings up to that day, then days_past_due."""
    result = []
    day = start
    while day <= end:
        paid = {i.number: D(0) for i in schedule}
        for p in postings:
            if p.on <= day:
                for line in p.lines:
                    paid[line.number] += line.principal + line.interest
        states = [
            InstalmentState(i.number, i.due_date, i.principal + i.interest - paid[i.number], D(0)) for i in schedule
        ]
        dpd = days_past_due(states, day, pauses)
        result.append((day, dpd, DEFAULT_BUCKETS.bucket_for(dpd).name))
        day += timedelta(1)
    return result


def read_back(points, start, end):
    return [
        (s.on, s.dpd, s.bucket) for s in (state_on(points, start + timedelta(k)) for k in range((end - start).days + 1))
    ]


def test_replay_of_an_unpaid_loan_lists_only_the_changes():
    points = replay_delinquency(SCHEDULE, [], date(2024, 1, 1), date(2024, 12, 31))
    assert points == [
        DelinquencyPoint(date(2024, 1, 1), 0, "M0", False),
        DelinquencyPoint(date(2024, 1, 11), 1, "M1", True),
        DelinquencyPoint(date(2024, 2, 10), 31, "M2", True),
        DelinquencyPoint(date(2024, 3, 11), 61, "M3", True),
        DelinquencyPoint(date(2024, 4, 10), 91, "M4+", True),
    ]


SCENARIOS = {
    "partial then full": [pay(date(2024, 2, 1), 1, "400.00"), pay(date(2024, 2, 20), 1, "600.00")],
    "cure and relapse": [pay(date(2024, 1, 25), 1, "1000.00"), pay(date(2024, 4, 30), 2, "1000.00")],
    "prepaid before due": [pay(date(2024, 1, 5), 1, "1000.00"), pay(date(2024, 1, 5), 2, "1000.00")],
    "skips the oldest": [pay(date(2024, 2, 5), 2, "1000.00"), pay(date(2024, 3, 1), 3, "1000.00")],
    "settles all late": [pay(date(2024, 5, 1), n, "1000.00") for n in (3, 1, 2)],
    "paid before the range": [pay(date(2023, 12, 20), 1, "1000.00")],
}
PAUSES = {
    "no pause": [],
    "dispute": [Pause(date(2024, 2, 1), date(2024, 2, 14), "dispute")],
    "open dispute": [Pause(date(2024, 3, 20), None, "dispute")],
    "two pauses": [
        Pause(date(2024, 1, 5), date(2024, 1, 12), "hardship"),
        Pause(date(2024, 3, 1), date(2024, 3, 31), "dispute"),
    ],
}


@pytest.mark.parametrize("pauses", PAUSES.values(), ids=PAUSES.keys())
@pytest.mark.parametrize("postings", SCENARIOS.values(), ids=SCENARIOS.keys())
def test_event_driven_replay_matches_day_by_day_computation(postings, pauses):
    start, end = date(2024, 1, 1), date(2024, 8, 31)
    points = replay_delinquency(SCHEDULE, postings, start, end, pauses=pauses)
    assert read_back(points, start, end) == brute_force(SCHEDULE, postings, start, end, pauses)
    # Change points only: no two consecutive points describe the same trend.
    for prev, nxt in pairwise(points):
        expected = prev.dpd + ((nxt.on - prev.on).days if prev.ageing else 0)
        assert (expected, prev.bucket, prev.ageing) != (nxt.dpd, nxt.bucket, nxt.ageing)


def test_backdated_repayment_rewrites_dpd_and_buckets_from_its_value_date_only():
    start, end = date(2024, 1, 1), date(2024, 4, 30)
    before = replay_delinquency(SCHEDULE, [], start, end)
    assert state_on(before, date(2024, 2, 15)).bucket == "M2"  # 36 days late on instalment 1
    # Recorded later, value-dated Feb 12: it clears instalment 1, leaving only instalment 2 overdue.
    backdated = pay(date(2024, 2, 12), 1, "1000.00")
    after = replay_delinquency(SCHEDULE, [backdated], start, end)
    assert [p for p in after if p.on < backdated.on] == [p for p in before if p.on < backdated.on]
    assert state_on(after, date(2024, 2, 11)) == state_on(before, date(2024, 2, 11))
    assert (state_on(after, date(2024, 2, 12)).dpd, state_on(after, date(2024, 2, 12)).bucket) == (2, "M1")
    assert (state_on(after, date(2024, 2, 15)).dpd, state_on(after, date(2024, 2, 15)).bucket) == (5, "M1")
    assert state_on(after, date(2024, 3, 12)).bucket == "M2"
    assert state_on(before, date(2024, 3, 12)).bucket == "M3"
    assert DelinquencyPoint(date(2024, 2, 12), 2, "M1", True) in after


def test_replay_from_the_allocation_of_a_real_repayment():
    dues = [DueItem(i.number, i.due_date, D("0"), i.interest, i.principal) for i in SCHEDULE]
    posting = Posting.from_allocation(date(2024, 2, 20), allocate(D("1500.00"), dues, as_of=date(2024, 2, 20)))
    points = replay_delinquency(SCHEDULE, [posting], date(2024, 1, 1), date(2024, 3, 1))
    # 1500 settles January and half of February: DPD now counts from Feb 10.
    assert state_on(points, date(2024, 2, 20)).dpd == 10
    assert state_on(points, date(2024, 2, 19)).dpd == 40


def test_replay_cost_does_not_grow_with_days():
    schedule = generate_schedule(D("480000.00"), D("0.05"), 480, "equal_principal", date(2000, 1, 10))
    postings = [
        Posting(
            i.due_date + timedelta(45), (InstalmentAllocation(i.number, i.due_date, D("0"), i.interest, i.principal),)
        )
        for i in schedule
    ]
    points = replay_delinquency(schedule, postings, date(2000, 1, 1), date(2045, 1, 1))
    # The replay walks events, not days: two centuries more of calendar add no point (it was timed once, which a
    # loaded machine failed; a comparison of results cannot be slowed down).
    assert replay_delinquency(schedule, postings, date(2000, 1, 1), date(2245, 1, 1)) == points
    # Every instalment paid 45 days late: each payment moves the anchor to the next, already overdue instalment.
    paid_on = schedule[10].due_date + timedelta(45)
    assert state_on(points, paid_on - timedelta(1)).dpd == 44
    assert state_on(points, paid_on).dpd == (paid_on - schedule[11].due_date).days
    assert len(points) < 5 * len(schedule)


@pytest.mark.parametrize(
    ("postings", "start", "end", "field"),
    [
        ([pay(date(2024, 2, 1), 1, "1.00")], date(2024, 2, 1), date(2024, 1, 1), "end"),
        (
            [Posting(date(2024, 2, 1), (InstalmentAllocation(9, JAN10, D("0"), D("0"), D("1.00")),))],
            JAN10,
            FEB10,
            "postings",
        ),
        ([pay(date(2024, 2, 1), 1, "-1.00")], JAN10, FEB10, "postings.principal"),
    ],
)
def test_invalid_replay_input_is_refused(postings, start, end, field):
    with pytest.raises(DomainError) as caught:
        replay_delinquency(SCHEDULE, postings, start, end)
    assert caught.value.field == field


def test_replay_refuses_a_schedule_with_repeated_numbers():
    with pytest.raises(DomainError) as caught:
        replay_delinquency([*SCHEDULE, SCHEDULE[0]], [], JAN10, FEB10)
    assert caught.value.field == "schedule"


def test_state_on_before_the_replayed_range_is_refused():
    points = replay_delinquency(SCHEDULE, [], date(2024, 1, 1), date(2024, 2, 1))
    with pytest.raises(DomainError):
        state_on(points, date(2023, 12, 31))


@pytest.mark.parametrize("seed", range(20))
def test_replay_matches_day_by_day_on_random_histories(seed):
    rng = random.Random(seed)
    schedule = generate_schedule(D("6000.00"), D("0.12"), 6, "equal_instalment", date(2024, 1, 31))
    postings = []
    for _ in range(rng.randint(0, 8)):
        inst = rng.choice(schedule)
        share = D(rng.choice([1, 2, 4])) / 4  # a quarter, a half or all of the instalment
        amount = (inst.principal * share).quantize(D("0.01"))
        on = date(2024, 1, 15) + timedelta(rng.randint(0, 300))
        postings.append(Posting(on, (InstalmentAllocation(inst.number, inst.due_date, D("0"), D("0"), amount),)))
    pauses = []
    if rng.random() < 0.5:
        first = date(2024, 2, 1) + timedelta(rng.randint(0, 200))
        pauses.append(Pause(first, first + timedelta(rng.randint(0, 40)), "dispute"))
    start, end = date(2024, 1, 1), date(2025, 1, 31)
    points = replay_delinquency(schedule, postings, start, end, pauses=pauses)
    assert read_back(points, start, end) == brute_force(schedule, postings, start, end, pauses)
