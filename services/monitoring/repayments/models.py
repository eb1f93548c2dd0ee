from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field as PydanticField
from sqlalchemy import JSON, Column, Index, UniqueConstraint
from sqlmodel import Field

from services.monitoring.db import MonitoringTable
from services.monitoring.loans.models import LoanSummary, money_column, new_id, now
from shared.bounds import BusinessDate, PositiveAmount, said


class PostingStatus(StrEnum):
    POSTED = "posted"
    REVERSED = "reversed"


class Posting(MonitoringTable, table=True):
    """A repayment as received. Its split over instalments is recomputed whenever an earlier-dated posting
    or a reversal changes what was owed when it arrived."""

    __tablename__ = "postings"
    __table_args__ = (Index("ix_postings_loan", "loan_id", "value_date"),
                      # A repayment file's references are unique per source, across loans.
                      Index("ix_postings_external_id", "external_id"),
                      UniqueConstraint("loan_id", "external_id", name="uq_postings_external"))

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    loan_id: str = Field(foreign_key="loans.id", max_length=32)
    external_id: str | None = Field(default=None, max_length=64)
    amount: Decimal = Field(sa_column=money_column())
    value_date: date
    booked_on: date
    principal: Decimal = Field(default=Decimal("0.00"), sa_column=money_column())
    interest: Decimal = Field(default=Decimal("0.00"), sa_column=money_column())
    penalty: Decimal = Field(default=Decimal("0.00"), sa_column=money_column())
    overpayment: Decimal = Field(default=Decimal("0.00"), sa_column=money_column())
    lines: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    status: str = Field(default=PostingStatus.POSTED, max_length=16)
    # Whether the loan was still overdue right after this posting: partial payments in a row are a warning sign.
    left_overdue: bool = Field(default=False, sa_column_kwargs={"server_default": "0"})
    reversal_reason: str | None = Field(default=None, max_length=200)
    reversed_by: str | None = Field(default=None, max_length=64)
    reversed_on: date | None = None
    created_by: str = Field(max_length=64)
    created_at: datetime = Field(default_factory=now)


class RepaymentCreate(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"amount": "1066.19", "value_date": "2026-02-15", "external_id": "TXN-88123"}]})

    amount: PositiveAmount
    value_date: BusinessDate | None = PydanticField(
        default=None,
        description="When the money was received; defaults to the business date. Earlier dates replay history.")
    external_id: str | None = PydanticField(default=None, min_length=1, max_length=64)


class ReversalCreate(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"reason": "cheque bounced"}]})

    reason: said(1, 200)


class PostingLine(BaseModel):
    number: int
    principal: Decimal
    interest: Decimal
    penalty: Decimal


class PostingRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    loan_id: str
    external_id: str | None
    amount: Decimal
    value_date: date
    booked_on: date
    principal: Decimal
    interest: Decimal
    penalty: Decimal
    overpayment: Decimal
    lines: list[PostingLine]
    status: PostingStatus
    reversal_reason: str | None
    created_by: str
    created_at: datetime


class PostingReceipt(PostingRead):
    loan: LoanSummary = PydanticField(description="The loan after this posting: balance, DPD, bucket, class.")


class BalanceCheck(BaseModel):
    """The loan's balances recomputed from its schedule and postings, beside what is stored."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"loan_id": "4ab2c9d0e1f24a5b8c7d6e5f4a3b2c1d", "principal": "12000.00", "principal_repaid": "946.19",
         "outstanding_principal": "11053.81", "schedule_principal_unpaid": "11053.81", "interest_repaid": "120.00",
         "schedule_interest_paid": "120.00", "received": "1066.19", "credit_balance": "0.00", "consistent": True}]})

    loan_id: str
    principal: Decimal
    principal_repaid: Decimal
    outstanding_principal: Decimal
    schedule_principal_unpaid: Decimal
    interest_repaid: Decimal
    schedule_interest_paid: Decimal
    received: Decimal
    credit_balance: Decimal
    consistent: bool
