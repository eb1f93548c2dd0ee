"""Outside feeds: credit-bureau overdue records, lawsuits and enforcement records, business borrowers' financial
statements. Each is uploaded as CSV, checked row by row, and kept in monitoring's own tables; an import's report
(what was taken, what was already on file, which rows were refused and why) stays readable."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field as PydanticField
from sqlalchemy import Index, UniqueConstraint
from sqlmodel import Field

from services.monitoring.db import MonitoringTable
from services.monitoring.loans.models import money_column, new_id, now
from shared.bounds import Amount, BusinessDate, PositiveAmount

MAX_FEED_BYTES = 8 * 1024 * 1024
MAX_FEED_ROWS = 50_000


class FeedKind(StrEnum):
    BUREAU = "bureau"
    LEGAL = "legal"
    FINANCIALS = "financials"


class CaseType(StrEnum):
    LAWSUIT = "lawsuit"
    ENFORCEMENT = "enforcement"


class CaseStatus(StrEnum):
    FILED = "filed"
    PENDING = "pending"
    JUDGED = "judged"
    SETTLED = "settled"
    DISMISSED = "dismissed"


# Identifiers are the bank's customer ids (opaque, as monitoring's loans carry them): the feeds are the answers to
# queries the bank sent about its own borrowers, so no national ID or name is stored here.
class BureauRecord(MonitoringTable, table=True):
    """A new overdue record of one of our borrowers at another lender, as the credit bureau reported it."""

    __tablename__ = "feed_bureau_records"
    __table_args__ = (UniqueConstraint("customer_id", "lender", "reported_on", name="uq_feed_bureau_record"),)

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    customer_id: str = Field(max_length=64, index=True)
    lender: str = Field(max_length=128)
    amount_overdue: Decimal = Field(sa_column=money_column())
    days_overdue: int
    reported_on: date
    import_id: str = Field(max_length=32)


class LegalRecord(MonitoringTable, table=True):
    """A lawsuit or enforcement record naming one of our borrowers as a party."""

    __tablename__ = "feed_legal_records"
    __table_args__ = (UniqueConstraint("customer_id", "case_type", "filed_on", "amount", name="uq_feed_legal_record"),)

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    customer_id: str = Field(max_length=64, index=True)
    case_type: str = Field(max_length=16)
    amount: Decimal = Field(sa_column=money_column())
    filed_on: date
    status: str = Field(max_length=16)
    import_id: str = Field(max_length=32)


class FinancialStatement(MonitoringTable, table=True):
    """A business borrower's statement for one period (ratios to two decimals)."""

    __tablename__ = "feed_financial_statements"
    __table_args__ = (UniqueConstraint("customer_id", "period_end", name="uq_feed_financial_statement"),)

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    customer_id: str = Field(max_length=64, index=True)
    period_end: date
    total_liabilities: Decimal = Field(sa_column=money_column())
    current_ratio: Decimal = Field(sa_column=money_column())
    debt_to_equity: Decimal = Field(sa_column=money_column())
    revenue: Decimal = Field(sa_column=money_column())
    import_id: str = Field(max_length=32)


class FeedImport(MonitoringTable, table=True):
    __tablename__ = "feed_imports"
    __table_args__ = (Index("ix_feed_imports_uploaded", "uploaded_at", "id"),)

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    feed: str = Field(max_length=16)
    uploaded_by: str = Field(max_length=64)
    uploaded_at: datetime = Field(default_factory=now)
    rows: int
    accepted: int
    already_on_file: int
    rejected: int
    alerts_raised: int


class FeedRowError(MonitoringTable, table=True):
    __tablename__ = "feed_row_errors"
    __table_args__ = (Index("ix_feed_row_errors_import_row", "import_id", "row", "id"),)

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    import_id: str = Field(foreign_key="feed_imports.id", max_length=32)
    row: int
    field: str = Field(max_length=64)
    message: str = Field(max_length=300)


class _Row(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    customer_id: str = PydanticField(min_length=1, max_length=64)


class BureauRow(_Row):
    lender: str = PydanticField(min_length=1, max_length=128)
    amount_overdue: PositiveAmount
    days_overdue: int = PydanticField(ge=1, le=10_000)
    reported_date: BusinessDate


class LegalRow(_Row):
    case_type: CaseType
    amount: Amount
    filed_date: BusinessDate
    status: CaseStatus


class FinancialsRow(_Row):
    period_end: BusinessDate
    total_liabilities: Amount
    current_ratio: Decimal = PydanticField(ge=0, max_digits=10, decimal_places=2)
    debt_to_equity: Decimal = PydanticField(ge=0, max_digits=10, decimal_places=2)
    revenue: Amount


ROW_MODELS: dict[FeedKind, type[_Row]] = {FeedKind.BUREAU: BureauRow, FeedKind.LEGAL: LegalRow,
                                          FeedKind.FINANCIALS: FinancialsRow}


class FeedImportRead(BaseModel):
    model_config = ConfigDict(from_attributes=True, json_schema_extra={"examples": [{
        "id": "5e0c", "feed": "bureau", "uploaded_by": "ana.one", "uploaded_at": "2026-03-02T09:00:00Z", "rows": 3,
        "accepted": 2, "already_on_file": 0, "rejected": 1, "alerts_raised": 2}]})

    id: str
    feed: FeedKind
    uploaded_by: str
    uploaded_at: datetime
    rows: int = PydanticField(description="Data rows in the file (the header excluded)")
    accepted: int = PydanticField(description="New records stored")
    already_on_file: int = PydanticField(description="Rows an earlier import already stored: not stored twice")
    rejected: int = PydanticField(description="Rows refused; their reasons are under /feeds/imports/{id}/errors")
    alerts_raised: int


class FeedRowErrorRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    row: int = PydanticField(description="Line of the file, the header being line 1")
    field: str
    message: str
