from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field as PydanticField
from sqlalchemy import JSON, Column
from sqlmodel import Field

from services.monitoring.db import MonitoringTable
from services.monitoring.loans.models import now
from shared.bounds import said


class Severity(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


class RuleKind(StrEnum):
    DPD_REACHED = "dpd_reached"  # params: days
    CLASS_WORSENED = "class_worsened"  # params: at_least (class name)
    PARTIAL_PAYMENT = "partial_payment"  # params: in_a_row; that many repayments in a row left the loan overdue
    SCORE_DROP = "score_drop"  # params: points, grade_notches
    PROMISE_BROKEN = "promise_broken"  # params: grace_days
    # On the account-transactions feed:
    SALARY_STOPPED = "salary_stopped"  # params: gap_days, min_credits
    SHARED_PAYER = "shared_payer"  # params: borrowers, estate_severity
    CARD_CASH_OUT = "card_cash_out"  # params: round_to, min_purchases, window_days, repaid_share
    FUNDS_MOVED_ON = "funds_moved_on"  # params: within_days, share
    # On the customer service's contact log and complaints (its portrait):
    COMPLAINT_SILENCE = "complaint_silence"  # params: min_complaints, silent_days
    # Registered by rules/signals.py: outside feeds (bureau, legal, financial statements), account activity against
    # the borrower's own history, satisfaction from the customer service's surveys.
    BUREAU_OVERDUE = "bureau_overdue"  # params: min_days_overdue, min_amount
    LEGAL_CASE = "legal_case"  # params: min_amount
    FINANCIALS_WEAKENING = "financials_weakening"  # params: liabilities_rise, current_ratio_below, debt_to_equity_above
    ACTIVITY_DROP = "activity_drop"  # params: window_days, history_windows, share
    SATISFACTION_FALLING = "satisfaction_falling"  # params: csat_drop, nps_at_most
    # On a collateral revaluation (collateral/):
    LTV_ABOVE = "ltv_above"  # params: max_ltv (a decimal string); the loan-to-value crossed it


FEED_KINDS = (RuleKind.SALARY_STOPPED, RuleKind.SHARED_PAYER, RuleKind.CARD_CASH_OUT, RuleKind.FUNDS_MOVED_ON,
              RuleKind.ACTIVITY_DROP)
# Of those, the kinds whose evaluator reads only the feed's rows and payers (and the loan), never the day judged:
# the same rows give the same findings on any day.
ROWS_ONLY_FEED_KINDS = (RuleKind.SHARED_PAYER, RuleKind.CARD_CASH_OUT, RuleKind.FUNDS_MOVED_ON)
# The rules on the outside feeds: run when a feed file is imported.
OUTSIDE_KINDS = (RuleKind.BUREAU_OVERDUE, RuleKind.LEGAL_CASE, RuleKind.FINANCIALS_WEAKENING)


class EarlyWarningRule(MonitoringTable, table=True):
    """An early-warning rule as data: which evaluator, with which thresholds, raising which severity."""

    __tablename__ = "early_warning_rules"

    code: str = Field(primary_key=True, max_length=64)
    name: str = Field(max_length=200)
    kind: str = Field(max_length=32)
    params: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    severity: str = Field(max_length=16)
    enabled: bool = True
    version: int = 1
    updated_by: str = Field(default="shipped", max_length=64)
    updated_at: datetime = Field(default_factory=now)


class RuleWrite(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"name": "Sixty days overdue", "kind": "dpd_reached", "params": {"days": 61}, "severity": "high",
         "enabled": True}]})

    name: said(3, 200)
    kind: RuleKind
    params: dict[str, Any] = PydanticField(default_factory=dict)
    severity: Severity
    enabled: bool = True


class RuleRead(RuleWrite):
    model_config = ConfigDict(from_attributes=True)

    code: str
    version: int
    updated_by: str
    updated_at: datetime


class LeadTime(BaseModel):
    """Days from a loan's first alert of the rule to its default, over the defaults the rule warned about."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "loans": 3, "median_days": 41, "min_days": 12, "max_days": 95,
        "distribution": {"0-30": 1, "31-90": 1, "91-180": 1, "181-365": 0, "366+": 0}}]})

    loans: int
    median_days: float | None = PydanticField(description="null when the rule warned about no default")
    min_days: int | None
    max_days: int | None
    distribution: dict[str, int] = PydanticField(description="How many warned defaults had a lead time in each "
                                                             "range of days (both ends included)")


class RuleReview(BaseModel):
    """How well a rule did: of its closed alerts, how many were real (precision); of the loans that went bad,
    how many it warned about first (recall). Against defaults (more than 90 days past due, or the ground-truth
    file's), the same per loan with the lead time."""

    code: str
    alerts: int
    resolved: int
    false_positives: int
    precision: float | None = PydanticField(
        description="resolved / (resolved + false positives); null without closed alerts")
    loans_gone_bad: int
    warned_before: int
    recall: float | None = PydanticField(description="warned_before / loans_gone_bad; null when none went bad")
    defaults_from: str = PydanticField("history", description=(
        "`history`: a default is the first day over 90 days past due on the effective history; `truth`: the "
        "ground-truth file's `defaulted_on`"))
    alerted_loans: int = PydanticField(0, description=(
        "Loans whose first alert of the rule (alerts a correction disproved left out) fell within the period"))
    alerted_then_defaulted: int = PydanticField(0, description=(
        "Of those, loans that defaulted on or after that first alert, by `until`"))
    default_precision: float | None = PydanticField(None, description=(
        "alerted_then_defaulted / alerted_loans; null when the rule alerted on no loan"))
    defaulted_loans: int = PydanticField(0, description="Loans whose default fell within the period")
    warned_defaults: int = PydanticField(0, description=(
        "Of those, loans with an alert of the rule on or before the day they defaulted"))
    default_recall: float | None = PydanticField(None, description=(
        "warned_defaults / defaulted_loans; null when no loan defaulted"))
    lead_time: LeadTime | None = None
    planted_loans: int | None = PydanticField(None, description=(
        "Against a ground-truth file naming loans planted with the pattern this rule's kind looks for (e.g. "
        "`shared_payer`): how many of them are on the book; null without such a file or pattern"))
    planted_found: int | None = PydanticField(None, description="Of those, loans the rule alerted on by `until`")
    planted_recall: float | None = PydanticField(None, description="planted_found / planted_loans")
    planted_precision: float | None = PydanticField(None, description=(
        "planted_found / loans the rule alerted on by `until`; null when it alerted on none"))
