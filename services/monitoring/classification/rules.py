"""Five-category classification (五级分类), IFRS 9 staging, expected loss, and change records.

Overdue-day floors follow the 2023 measures for commercial banks' financial-asset risk classification; they
are floors, so judgement may only make a class worse.
"""

from bisect import bisect_right
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from enum import IntEnum, StrEnum

from services.monitoring.errors import DomainError
from services.monitoring.loans.money import (
    require_date,
    require_fraction,
    require_money,
    require_rounding,
    to_cents,
)
from services.monitoring.loans.schedule import add_months

MIN_OBSERVATION_MONTHS = 12
# A repayment plan or deferral (a hardship concession, not a restructuring) keeps the loan at least special
# mention for this long from its approval: the default of LOANCRM_MONITORING_HARDSHIP_OBSERVATION_MONTHS.
HARDSHIP_OBSERVATION_MONTHS = 6


class LoanClass(IntEnum):
    """Ordered from best to worst, so max() of two classes is the worse one."""

    NORMAL = 1
    SPECIAL_MENTION = 2
    SUBSTANDARD = 3
    DOUBTFUL = 4
    LOSS = 5

    @property
    def label_zh(self) -> str:
        return _CLASS_LABELS_ZH[self]

    @property
    def is_non_performing(self) -> bool:
        return self >= LoanClass.SUBSTANDARD


_CLASS_LABELS_ZH = {
    LoanClass.NORMAL: "正常",
    LoanClass.SPECIAL_MENTION: "关注",
    LoanClass.SUBSTANDARD: "次级",
    LoanClass.DOUBTFUL: "可疑",
    LoanClass.LOSS: "损失",
}


class Ifrs9Stage(IntEnum):
    STAGE_1 = 1  # performing: 12-month expected loss
    STAGE_2 = 2  # significant increase in credit risk: lifetime expected loss
    STAGE_3 = 3  # credit-impaired


@dataclass(frozen=True)
class ClassFloor:
    min_dpd: int
    loan_class: LoanClass


@dataclass(frozen=True)
class ClassificationFloors:
    """From `min_dpd` days overdue onwards a loan is at least `loan_class`; below the first floor, NORMAL."""

    floors: tuple[ClassFloor, ...]

    def __post_init__(self) -> None:
        previous: ClassFloor | None = None
        for i, floor in enumerate(self.floors):
            if isinstance(floor.min_dpd, bool) or not isinstance(floor.min_dpd, int) or floor.min_dpd < 1:
                raise DomainError(f"floors[{i}].min_dpd", "must be an integer of at least 1")
            if not isinstance(floor.loan_class, LoanClass) or floor.loan_class is LoanClass.NORMAL:
                raise DomainError(f"floors[{i}].loan_class", "must be a class worse than normal")
            if previous and floor.min_dpd <= previous.min_dpd:
                raise DomainError(f"floors[{i}].min_dpd", "must increase from one floor to the next")
            if previous and floor.loan_class <= previous.loan_class:
                raise DomainError(f"floors[{i}].loan_class", "must be worse than the previous floor's class")
            previous = floor

    @classmethod
    def from_data(cls, rows: Iterable[Sequence[object]]) -> "ClassificationFloors":
        """Build from stored configuration: (min_dpd, class name) rows, e.g. (91, "SUBSTANDARD")."""
        floors = []
        for i, row in enumerate(rows):
            if len(row) != 2:
                raise DomainError(f"floors[{i}]", "expected (min_dpd, class)")
            min_dpd, name = row
            try:
                loan_class = name if isinstance(name, LoanClass) else LoanClass[str(name).upper()]
            except KeyError:
                raise DomainError(f"floors[{i}].loan_class", f"unknown class {name!r}") from None
            floors.append(ClassFloor(min_dpd, loan_class))  # type: ignore[arg-type]
        return cls(tuple(floors))

    def floor_for(self, dpd: int) -> LoanClass:
        if isinstance(dpd, bool) or not isinstance(dpd, int) or dpd < 0:
            raise DomainError("dpd", "must be a non-negative integer")
        index = bisect_right([f.min_dpd for f in self.floors], dpd) - 1
        return self.floors[index].loan_class if index >= 0 else LoanClass.NORMAL


# "Overdue more than 90 days" means from day 91, hence the +1 on every regulatory figure.
LOAN_FLOORS = ClassificationFloors.from_data(
    [(1, "SPECIAL_MENTION"), (91, "SUBSTANDARD"), (271, "DOUBTFUL"), (361, "LOSS")]
)
CREDIT_CARD_FLOORS = ClassificationFloors.from_data(
    [(1, "SPECIAL_MENTION"), (91, "SUBSTANDARD"), (121, "DOUBTFUL"), (181, "LOSS")]
)


def in_observation(restructured_on: date | None, as_of: date, observation_months: int) -> bool:
    return restructured_on is not None and restructured_on <= as_of < add_months(restructured_on, observation_months)


def classification_floor(
    dpd: int,
    floors: ClassificationFloors,
    restructured_on: date | None,
    as_of: date,
    observation_months: int = MIN_OBSERVATION_MONTHS,
    previous_class: LoanClass | None = None,
    hardship: tuple[date | None, date | None] = (None, None),
) -> LoanClass:
    """The best class the rules allow on `as_of`.

    During a restructuring's observation period the loan is at least special mention and never better than
    `previous_class` (its class at restructuring, or last assigned during the period). Outside that period the
    floor is point-in-time: a cured loan may return to normal. A restructuring dated after `as_of` is ignored,
    so history can be replayed across it. `hardship` (from, until) is a repayment plan's or deferral's
    observation: at least special mention on the days from its approval to the day before `until`.
    """
    as_of = require_date("as_of", as_of)
    if restructured_on is not None:
        require_date("restructured_on", restructured_on)
    if isinstance(observation_months, bool) or not isinstance(observation_months, int):
        raise DomainError("observation_months", "must be an integer number of months")
    if observation_months < MIN_OBSERVATION_MONTHS:
        raise DomainError("observation_months", f"must be at least {MIN_OBSERVATION_MONTHS} (one year)")
    floor = floors.floor_for(dpd)
    if in_observation(restructured_on, as_of, observation_months):
        floor = max(floor, LoanClass.SPECIAL_MENTION, previous_class or LoanClass.NORMAL)
    if in_hardship(*hardship, as_of):
        floor = max(floor, LoanClass.SPECIAL_MENTION)
    return floor


def in_hardship(since: date | None, until: date | None, as_of: date) -> bool:
    return since is not None and until is not None and since <= as_of < until


def apply_override(floor_class: LoanClass, requested_class: LoanClass) -> LoanClass:
    """Judgement may downgrade a loan below its floor, never upgrade it above."""
    if requested_class < floor_class:
        raise DomainError(
            "requested_class",
            f"{requested_class.name} ({requested_class.label_zh}) is better than the floor "
            f"{floor_class.name} ({floor_class.label_zh}); an override may only keep or worsen the class",
        )
    return requested_class


# Days past due beyond which a loan is in stage 2 and stage 3 (IFRS 9's rebuttable presumptions).
STAGE2_DPD, STAGE3_DPD = 30, 90


@dataclass(frozen=True)
class StagingRule:
    """IFRS 9 staging: stage 3 past `stage3_dpd` days, stage 2 past `stage2_dpd`, and never better than the stage
    the loan's class maps to (by default special mention is stage 2, substandard and worse stage 3)."""

    stage2_dpd: int = STAGE2_DPD
    stage3_dpd: int = STAGE3_DPD
    class_stages: Mapping[LoanClass, Ifrs9Stage] = field(default_factory=lambda: {
        LoanClass.NORMAL: Ifrs9Stage.STAGE_1, LoanClass.SPECIAL_MENTION: Ifrs9Stage.STAGE_2,
        LoanClass.SUBSTANDARD: Ifrs9Stage.STAGE_3, LoanClass.DOUBTFUL: Ifrs9Stage.STAGE_3,
        LoanClass.LOSS: Ifrs9Stage.STAGE_3})


DEFAULT_STAGING = StagingRule()


def ifrs9_stage(
    dpd: int,
    loan_class: LoanClass,
    *,
    significant_increase: bool = False,
    grade_notches_down: int = 0,
    sicr_notches: int = 2,
    stage2_dpd: int | None = None,
    stage3_dpd: int | None = None,
    rule: StagingRule = DEFAULT_STAGING,
) -> Ifrs9Stage:
    """Stage 3 beyond the rule's stage-3 days, stage 2 beyond its stage-2 days or on a significant increase in
    credit risk (flagged, or a grade fall of `sicr_notches` or more), and at least the stage of the loan's class."""
    stage2_dpd = rule.stage2_dpd if stage2_dpd is None else stage2_dpd
    stage3_dpd = rule.stage3_dpd if stage3_dpd is None else stage3_dpd
    if isinstance(dpd, bool) or not isinstance(dpd, int) or dpd < 0:
        raise DomainError("dpd", "must be a non-negative integer")
    if not isinstance(loan_class, LoanClass):
        raise DomainError("loan_class", "must be a LoanClass")
    if not 0 < stage2_dpd < stage3_dpd:
        raise DomainError("stage2_dpd", "must be positive and below stage3_dpd")
    if sicr_notches < 1:
        raise DomainError("sicr_notches", "must be at least 1")
    by_class = rule.class_stages.get(loan_class, Ifrs9Stage.STAGE_1)
    if dpd > stage3_dpd:
        return Ifrs9Stage.STAGE_3
    if dpd > stage2_dpd or significant_increase or grade_notches_down >= sicr_notches:
        return max(Ifrs9Stage.STAGE_2, by_class)
    return by_class


def expected_loss(pd: Decimal, lgd: Decimal, ead: Decimal, rounding: str = ROUND_HALF_UP) -> Decimal:
    """PD × LGD × EAD in cents; PD and LGD are fractions, EAD an amount."""
    pd = require_fraction("pd", pd)
    lgd = require_fraction("lgd", lgd)
    ead = require_money("ead", ead)
    return to_cents(pd * lgd * ead, require_rounding(rounding))


class ChangeCause(StrEnum):
    COB_AGEING = "cob_ageing"
    REPAYMENT = "repayment"
    BACKDATED_REPAYMENT = "backdated_repayment"
    REVERSAL = "reversal"
    PAUSE = "pause"
    RESTRUCTURING = "restructuring"
    OVERRIDE = "override"
    POLICY_CHANGE = "policy_change"
    WAIVER = "waiver"
    WRITE_OFF = "write_off"
    REPAYMENT_PLAN = "repayment_plan"
    DEFERRAL = "deferral"
    EARLY_RECALL = "early_recall"


@dataclass(frozen=True)
class RiskState:
    dpd: int
    bucket: str
    loan_class: LoanClass
    stage: Ifrs9Stage


@dataclass(frozen=True)
class ChangeRecord:
    field: str
    from_value: object  # None when the loan had no recorded state yet
    to_value: object
    cause: ChangeCause
    effective_date: date


def diff_states(
    previous: RiskState | None, current: RiskState, cause: ChangeCause | str, effective_date: date
) -> list[ChangeRecord]:
    """Records for every field that differs, to be appended to the loan's history (never rewritten).

    A backdated correction is expressed as new records with the back value date, not by editing old ones.
    """
    try:
        cause = ChangeCause(cause)
    except ValueError:
        raise DomainError("cause", f"unknown change cause {cause!r}") from None
    effective_date = require_date("effective_date", effective_date)
    return [
        ChangeRecord(
            field=f.name,
            from_value=getattr(previous, f.name) if previous else None,
            to_value=getattr(current, f.name),
            cause=cause,
            effective_date=effective_date,
        )
        for f in fields(RiskState)
        if previous is None or getattr(previous, f.name) != getattr(current, f.name)
    ]
