from __future__ import annotations

from datetime import date

from pydantic import BaseModel, ConfigDict, Field as PydanticField

from services.monitoring.approvals.models import RequestStatus
from services.monitoring.loans.models import ClassName, Rate
from services.monitoring.loans.schedule import MAX_TERM_MONTHS
from shared.bounds import BusinessDate, said


class OverrideRequest(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"requested_class": "substandard", "reason": "borrower's main customer went bankrupt"}]})

    requested_class: ClassName
    reason: said(5, 500)


class OverrideRead(BaseModel):
    """A class override as the class-override routes show it: a change request of kind class_override."""

    id: str
    loan_id: str
    requested_class: ClassName
    reason: str
    status: RequestStatus
    maker: str
    checker: str | None
    requested_on: date
    decided_on: date | None
    decision_note: str | None


class RestructuringRequest(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"reason": "term extended by 12 months after the borrower's shop closed for renovation"},
        {"reason": "rate cut and term extended", "annual_rate": "0.0350", "term_months": 24,
         "effective_date": "2026-03-31"}]})

    reason: said(5, 200)
    annual_rate: Rate | None = PydanticField(
        default=None, description="The new rate from effective_date; with term_months or alone, the schedule after "
                                  "that date is rebooked (without either, only the classification changes)")
    term_months: int | None = PydanticField(
        default=None, ge=1, le=MAX_TERM_MONTHS,
        description="Instalments of the new schedule (default: as many as were still to fall due)")
    effective_date: BusinessDate | None = PydanticField(
        default=None, description="Rebook from this date (default the business date): not after it, nor before "
                                  "the last posting's value date")
