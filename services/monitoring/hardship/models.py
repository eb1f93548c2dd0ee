"""Hardship concessions (a temporary repayment plan, a deferral) and early recall: the commands a maker sends and
the history of what each approved one did to the schedule."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field as PydanticField
from sqlalchemy import JSON, Column
from sqlmodel import Field

from services.monitoring.db import MonitoringTable
from shared.bounds import PositiveAmount, said
from services.monitoring.loans.models import InstalmentRead, new_id, now

MAX_PLAN_MONTHS = 24
MAX_DEFERRAL_MONTHS = 12


class Treatment(StrEnum):
    REPAYMENT_PLAN = "repayment_plan"  # reduced instalments for some months, the shortfall paid later
    DEFERRAL = "deferral"  # a payment holiday: the instalments move out by some months
    EARLY_RECALL = "early_recall"  # acceleration: everything outstanding falls due at once


class Shortfall(StrEnum):
    """Where a repayment plan puts what its reduced instalments leave unpaid."""

    RESPREAD = "respread"  # spread evenly over the instalments after the plan
    AT_END = "at_end"  # added to the last instalment


class HolidayInterest(StrEnum):
    """What a deferral does about interest for the months of the holiday."""

    WAIVED = "waived"  # none is charged: the instalments move out as they were (the bank's concession)
    CHARGED = "charged"  # the holiday's interest on the principal not yet due is spread over the moved instalments


class RepaymentPlanRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"months": 3, "reduced_instalment": "300.00", "shortfall": "respread",
         "reason": "borrower's shop closed for two months after a flood"}]})

    months: int = PydanticField(ge=1, le=MAX_PLAN_MONTHS, description=(
        "How many of the next instalments are reduced; at least one instalment must remain after them"))
    reduced_instalment: PositiveAmount = PydanticField(description=(
        "What each reduced instalment asks for in all: interest first, then principal. The rest of each (principal "
        "and interest) is the shortfall, which bears no further interest"))
    shortfall: Shortfall
    reason: said(5, 500)


class DeferralRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"months": 3, "interest": "charged", "reason": "payment holiday during the borrower's hospital stay"}]})

    months: int = PydanticField(ge=1, le=MAX_DEFERRAL_MONTHS,
                                description="Every instalment not yet due moves out by this many months")
    interest: HolidayInterest = PydanticField(description=(
        "waived: no interest for the holiday; charged: the principal not yet due × annual_rate / 12 × months, "
        "spread evenly over the moved instalments (the last absorbs the rounding)"))
    reason: said(5, 500)


class RecallRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"reason": "borrower's business sold its main assets; the contract's acceleration clause applies"}]})

    reason: said(5, 500)


class HardshipRecord(MonitoringTable, table=True):
    """Append-only: one approved plan, deferral or recall, with who asked and who approved, and the instalments
    it put in place (the ones it replaced are the rebooking's superseded instalments)."""

    __tablename__ = "hardship_records"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    loan_id: str = Field(foreign_key="loans.id", index=True, max_length=32)
    request_id: str = Field(foreign_key="change_requests.id", max_length=32)
    rebooking_id: str = Field(foreign_key="schedule_rebookings.id", max_length=32)
    treatment: str = Field(max_length=16)
    terms: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    effective_date: date
    observation_until: date | None = None  # None for a recall
    proposed_by: str = Field(max_length=64)
    approved_by: str = Field(max_length=64)
    schedule_after: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=now)


class HardshipRead(BaseModel):
    id: str
    loan_id: str
    request_id: str
    treatment: Treatment
    terms: dict[str, Any] = PydanticField(description="The command as the maker sent it")
    effective_date: date
    observation_until: date | None = PydanticField(
        description="At least special mention until the day before (none for a recall)")
    proposed_by: str
    approved_by: str
    schedule_before: list[InstalmentRead] = PydanticField(description="The instalments it replaced, as they stood")
    schedule_after: list[InstalmentRead] = PydanticField(description="The instalments it put in their place")
    created_at: datetime
