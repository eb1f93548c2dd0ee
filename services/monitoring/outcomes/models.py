"""Point-in-time loan facts for studies: what was known of each loan on a date, and what followed in a window."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field

from services.monitoring.loans.products import Product
from shared.pagination import Page

# "90+ days past due": more than 90 days, the M4+ bucket, where a loan is at least substandard and in IFRS 9 stage 3.
DEFAULT_DPD = 90


class LoanOutcome(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"loan_id": "4ab2c9d0e1f24a5b8c7d6e5f4a3b2c1d", "customer_id": "c0ffee", "product": "personal_loan",
         "grade_at_origination": "B", "pd_at_origination": "0.031200", "vintage": "2025-03",
         "principal": "120000.00", "disbursement_date": "2025-03-14", "as_of": "2025-12-31", "window_months": 12,
         "dpd_at_as_of": 0, "bucket_at_as_of": "M0", "default_in_window": False, "default_on": None}]})

    loan_id: str
    customer_id: str
    product: Product
    grade_at_origination: str | None = Field(description=(
        "The grade scoring gave the borrower when the loan was booked (null when it had no score then, or for "
        "loans booked before this was kept); later re-scores do not change it."))
    pd_at_origination: Decimal | None = Field(description="The probability of default behind that grade.")
    vintage: str = Field(description="Disbursement month, YYYY-MM.", pattern=r"^\d{4}-\d{2}$")
    principal: Decimal
    disbursement_date: date
    as_of: date
    window_months: int
    dpd_at_as_of: int = Field(ge=0, description=(
        "Days past due on as_of from the effective history: the DPD of the last change on or before as_of, aged "
        "to as_of while overdue (a part payment that shortens DPD within a bucket is seen at the next change)."))
    bucket_at_as_of: str
    default_in_window: bool = Field(description=(
        f"More than {DEFAULT_DPD} days past due (M4+) on some day in (as_of, as_of + window_months], on the "
        "effective history (rows a backdated posting or reversal disproved do not count)."))
    default_on: date | None = Field(description="The first such day, when there is one.")


class OutcomePage(Page[LoanOutcome]):
    excluded_already_defaulted: int = Field(ge=0, description=(
        f"Loans of this page's range left out because they were already more than {DEFAULT_DPD} days past due "
        "on as_of (or written off by then): they cannot default in the window."))
    excluded_unknown_at_as_of: int = Field(ge=0, description=(
        "Loans disbursed by as_of but booked into monitoring after it (no risk history on as_of): left out, "
        "since nothing was known of them then."))
