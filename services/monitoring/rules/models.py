from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field as PydanticField
from sqlalchemy import JSON, Column
from sqlmodel import Field

from services.monitoring.db import MonitoringTable
from services.monitoring.loans.models import now


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
    # On a collateral revaluation (collateral/):
    LTV_ABOVE = "ltv_above"  # params: max_ltv (a decimal string); the loan-to-value crossed it


FEED_KINDS = (RuleKind.SALARY_STOPPED, RuleKind.SHARED_PAYER, RuleKind.CARD_CASH_OUT, RuleKind.FUNDS_MOVED_ON)


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

    name: str = PydanticField(min_length=3, max_length=200)
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


class RuleReview(BaseModel):
    """How well a rule did: of its closed alerts, how many were real (precision); of the loans that went bad,
    how many it warned about first (recall)."""

    code: str
    alerts: int
    resolved: int
    false_positives: int
    precision: float | None = PydanticField(
        description="resolved / (resolved + false positives); null without closed alerts")
    loans_gone_bad: int
    warned_before: int
    recall: float | None = PydanticField(description="warned_before / loans_gone_bad; null when none went bad")
