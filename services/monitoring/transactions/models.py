"""The account-transactions feed: what the core banking system saw move on borrowers' accounts."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field as PydanticField
from sqlalchemy import Index
from sqlmodel import Field

from services.monitoring.db import MonitoringTable
from services.monitoring.loans.models import money_column, new_id, now
from shared.bounds import BusinessDate, PositiveAmount

MAX_BATCH_ROWS = 10_000
ACCOUNT = "account"
PAYER = "payer_account"
COUNTERPARTY = "counterparty"
# The personal fields of a feed row (the borrower's account and other people's): each stored as <field>_enc,
# _hash and _masked.
SEALED = (ACCOUNT, PAYER, COUNTERPARTY)


class Direction(StrEnum):
    CREDIT = "credit"
    DEBIT = "debit"


class TransactionKind(StrEnum):
    SALARY = "salary"
    REPAYMENT = "repayment"
    CARD_PURCHASE = "card_purchase"
    TRANSFER = "transfer"
    CASH = "cash"
    OTHER = "other"


class AccountTransaction(MonitoringTable, table=True):
    __tablename__ = "account_transactions"
    __table_args__ = (Index("ix_account_transactions_customer_booked", "customer_id", "booked_on"),
                      # The shared-payer check: who else one payer repaid, by the keyed hash of its account.
                      Index("ix_account_transactions_payer_hash", "payer_account_hash"),
                      # How far the feed is known (the latest day it covers): read on every intake.
                      Index("ix_account_transactions_booked", "booked_on"))

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    customer_id: str = Field(max_length=64)
    loan_id: str | None = Field(default=None, max_length=32)
    booked_on: date
    amount: Decimal = Field(sa_column=money_column())
    direction: str = Field(max_length=8)
    kind: str = Field(max_length=16)
    merchant: str | None = Field(default=None, max_length=128)
    # Accounts are personal data (the borrower's own, and the payer's and counterparty's, other people's): sealed
    # under `pii_kid` (shared/pii.py), matched by their keyed hashes (a transfer to the borrower's own account is
    # known by hash), shown masked unless the role may see them. The `_clear` columns hold an older version's clear
    # values until the service seals them at its next start (`seal_accounts_held_in_clear`).
    pii_kid: str | None = Field(default=None, max_length=32)
    account_enc: str | None = Field(default=None, max_length=200)
    account_hash: str | None = Field(default=None, max_length=64)
    account_masked: str | None = Field(default=None, max_length=64)
    account_clear: str | None = Field(default=None, max_length=64)
    payer_account_enc: str | None = Field(default=None, max_length=200)
    payer_account_hash: str | None = Field(default=None, max_length=64)
    payer_account_masked: str | None = Field(default=None, max_length=64)
    payer_account_clear: str | None = Field(default=None, max_length=64)
    counterparty_enc: str | None = Field(default=None, max_length=200)
    counterparty_hash: str | None = Field(default=None, max_length=64)
    counterparty_masked: str | None = Field(default=None, max_length=64)
    counterparty_clear: str | None = Field(default=None, max_length=64)
    housing_estate: str | None = Field(default=None, max_length=128)
    recorded_by: str = Field(max_length=64)
    recorded_at: datetime = Field(default_factory=now)


class TransactionRow(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"account": "6222-0001", "customer_id": "c0ffee", "booked_on": "2026-02-15", "amount": "1066.19",
         "direction": "credit", "kind": "repayment", "payer_account": "6222-0777",
         "housing_estate": "Sunshine Garden"}]})

    account: str = PydanticField(min_length=1, max_length=64)
    customer_id: str = PydanticField(min_length=1, max_length=64)
    loan_id: str | None = PydanticField(default=None, min_length=1, max_length=32,
                                        description="The loan a repayment or a disbursement belongs to")
    booked_on: BusinessDate
    amount: PositiveAmount
    direction: Direction
    kind: TransactionKind
    counterparty: str | None = PydanticField(default=None, max_length=64,
                                             description="The other account of a transfer")
    merchant: str | None = PydanticField(default=None, max_length=128, description="Where a card was used")
    payer_account: str | None = PydanticField(default=None, max_length=64,
                                              description="The account a repayment came from")
    housing_estate: str | None = PydanticField(default=None, max_length=128,
                                               description="The estate of the property a mortgage repayment is for")


class TransactionBatch(BaseModel):
    rows: list[TransactionRow] = PydanticField(min_length=1, max_length=MAX_BATCH_ROWS)


class BatchReceipt(BaseModel):
    accepted: int
    customers_checked: int
    alerts_raised: int


class PayerFacts(BaseModel):
    payer_account: str = PydanticField(description="Masked (its last four characters): screening keeps what it "
                                                   "is given")
    payer_account_hash: str = PydanticField(description="Keyed hash of the account: the same payer, the same hash")
    other_borrowers: int
    other_borrower_ids: list[str]
    # The housing estates the repayments named, this customer's and the others'.
    estates: list[str]


class FeedRow(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    booked_on: date
    amount: Decimal
    direction: Direction
    kind: TransactionKind
    counterparty: str | None = PydanticField(description="Masked, as the payer is")
    counterparty_hash: str | None
    merchant: str | None
    payer_account: str | None = PydanticField(description="Masked, as in `payers`")
    payer_account_hash: str | None


class ScreeningFacts(BaseModel):
    """`GET /customers/{id}/screening-facts`: what application screening needs from the feed about one customer."""

    customer_id: str
    since: date
    payers: list[PayerFacts]
    transactions: list[FeedRow]
    truncated: bool
