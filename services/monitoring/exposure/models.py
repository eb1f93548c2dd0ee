"""A customer's credit risk as monitoring sees it: what the customer service needs to guard erasure, closure and
offers (read-only, no table of its own)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field

from services.monitoring.loans.models import ClassName


class ActiveLoan(BaseModel):
    id: str
    external_id: str | None
    product: str
    outstanding_principal: Decimal
    dpd: int
    classification: ClassName


class CustomerRisk(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "customer_id": "c0ffee", "as_of": "2026-03-20", "active_loans": [
            {"id": "4ab2", "external_id": "CORE-2026-000123", "product": "personal_loan",
             "outstanding_principal": "9055.90", "dpd": 56, "classification": "special_mention"}],
        "outstanding_principal": "9055.90", "current_max_dpd": 56, "max_dpd_12m": 56, "worst_bucket_12m": "M2",
        "worst_class": "special_mention", "open_alerts": 2}]})

    customer_id: str
    as_of: date = Field(description="Monitoring's business date the figures are for.")
    active_loans: list[ActiveLoan] = Field(description="Loans not yet repaid in full (something still owed).")
    outstanding_principal: Decimal
    current_max_dpd: int = Field(description="The worst days past due among the active loans today.")
    max_dpd_12m: int = Field(
        description="At least this many days past due in the last 12 months: the worse of today's DPD and the "
                    "lowest DPD of the worst bucket a loan was in (DPD itself is not kept day by day; buckets are).")
    worst_bucket_12m: str | None = Field(description="The worst delinquency bucket held in the last 12 months.")
    worst_class: ClassName | None = Field(description="The worst five-category class among active loans.")
    open_alerts: int = Field(description="Alerts open, acknowledged or in progress on the customer's loans.")
