"""Typed client of the monitoring service, for services that show a customer's loans and open alerts."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal

import httpx
from pydantic import BaseModel, TypeAdapter

from shared.clients.base import PeerUnavailable, ServiceClient
from shared.errors import Problem
from shared.settings import KernelSettings


class LoanSummary(BaseModel):
    id: str
    external_id: str | None
    customer_id: str
    product: str
    principal: Decimal
    outstanding_principal: Decimal
    dpd: int
    bucket: str
    classification: Literal["normal", "special_mention", "substandard", "doubtful", "loss"]
    ifrs9_stage: int
    status: Literal["active", "closed", "written_off"]
    disbursement_date: date


class AlertSummary(BaseModel):
    id: str
    loan_id: str
    customer_id: str
    rule: str
    severity: Literal["low", "medium", "high"]
    status: Literal["open", "acknowledged", "in_progress", "resolved", "false_positive", "resolved_by_correction"]
    owner: str | None
    due_at: date
    evidence: dict[str, Any]
    created_at: datetime


class ActiveLoan(BaseModel):
    id: str
    external_id: str | None
    product: str
    outstanding_principal: Decimal
    dpd: int
    classification: Literal["normal", "special_mention", "substandard", "doubtful", "loss"]


class CustomerRisk(BaseModel):
    """`GET /customers/{id}/risk`: what the customer service needs before erasing, closing or offering credit."""

    customer_id: str
    as_of: date
    active_loans: list[ActiveLoan]
    outstanding_principal: Decimal
    current_max_dpd: int
    max_dpd_12m: int
    worst_bucket_12m: str | None
    worst_class: Literal["normal", "special_mention", "substandard", "doubtful", "loss"] | None
    open_alerts: int


class QueueItem(BaseModel):
    """One collections queue item (its id is the alert's), as the customer service checks it before a reveal."""

    alert: AlertSummary
    loan: LoanSummary


class LoanOutcome(BaseModel):
    """`GET /loans/outcomes`: a loan's facts on as_of and whether it went 90+ days past due in the window after."""

    loan_id: str
    customer_id: str
    product: str
    grade_at_origination: str | None
    pd_at_origination: Decimal | None
    vintage: str
    principal: Decimal
    disbursement_date: date
    as_of: date
    window_months: int
    dpd_at_as_of: int
    bucket_at_as_of: str
    default_in_window: bool
    default_on: date | None


class OutcomePage(BaseModel):
    items: list[LoanOutcome]
    next_cursor: str | None
    excluded_already_defaulted: int
    excluded_unknown_at_as_of: int


class ScheduleInstalment(BaseModel):
    number: int
    due_date: date
    total: Decimal


class ScheduleQuote(BaseModel):
    """`POST /loans/schedule-preview`: what a loan on these terms would cost, by the product's conventions."""

    total_interest: Decimal
    total_repayment: Decimal
    penalty_daily_rate: Decimal = Decimal("0")
    instalments: list[ScheduleInstalment]


_LOANS = TypeAdapter(list[LoanSummary])
_ALERTS = TypeAdapter(list[AlertSummary])
_PAGE = 500  # the largest page monitoring's lists give: the fewest calls for a customer's loans or alerts


class PayerFacts(BaseModel):
    payer_account: str  # masked: its last four characters
    payer_account_hash: str  # keyed hash of the account: the same payer, the same hash
    other_borrowers: int
    other_borrower_ids: list[str]
    estates: list[str]


class FeedRow(BaseModel):
    booked_on: date
    amount: Decimal
    direction: str  # credit, debit
    kind: str  # salary, repayment, card_purchase, transfer, cash, other
    counterparty: str | None = None  # masked, as the payer is
    counterparty_hash: str | None = None
    merchant: str | None = None
    payer_account: str | None = None  # masked, as in `PayerFacts`
    payer_account_hash: str | None = None


class ScreeningFacts(BaseModel):
    """`GET /customers/{id}/screening-facts`: payer accounts shared with other borrowers and recent feed rows."""

    customer_id: str
    since: date
    payers: list[PayerFacts]
    transactions: list[FeedRow]
    truncated: bool


class MonitoringClient(ServiceClient):
    def __init__(self, kernel: KernelSettings, transport: httpx.AsyncBaseTransport | None = None, *,
                 timeout: float | None = None, retries: int = 2) -> None:
        """`timeout` defaults to the kernel's peer timeout; a caller that degrades instead may ask for less."""
        super().__init__("monitoring", kernel.urls("monitoring"), timeout=timeout or kernel.peer_timeout_seconds,
                         retries=retries, transport=transport)

    def _ok(self, response: httpx.Response) -> Any:
        if response.status_code >= 500:
            raise PeerUnavailable(self.service, f"answered {response.status_code}")
        if response.status_code >= 400:
            body = response.json() if response.headers.get("content-type", "").endswith("json") else {}
            raise Problem(response.status_code, body.get("title", "Error"), body.get("detail"),
                          extra={"service": self.service})
        return response.json()

    async def loans_for_customer(self, customer_id: str, token: str) -> list[LoanSummary]:
        return _LOANS.validate_python(await self.every_item(
            "/loans", token=token, params={"customer_id": customer_id, "limit": _PAGE}, answer=self._ok))

    async def open_alerts_for_customer(self, customer_id: str, token: str) -> list[AlertSummary]:
        return _ALERTS.validate_python(await self.every_item(
            "/alerts", token=token, params={"customer_id": customer_id, "status": "open", "limit": _PAGE},
            answer=self._ok))

    async def customer_risk(self, customer_id: str, *, token: str) -> CustomerRisk:
        response = await self.request("GET", f"/customers/{customer_id}/risk", token=token)
        return CustomerRisk.model_validate(self._ok(response))

    async def screening_facts(self, customer_id: str, *, days: int, token: str) -> ScreeningFacts:
        response = await self.request("GET", f"/customers/{customer_id}/screening-facts", token=token,
                                      params={"days": days})
        return ScreeningFacts.model_validate(self._ok(response))

    async def queue_item(self, item_id: str, *, token: str) -> QueueItem | None:
        """None when no such item exists in the caller's scope."""
        response = await self.request("GET", f"/collections/queue/{item_id}", token=token)
        if response.status_code == 404:
            return None
        return QueueItem.model_validate(self._ok(response))

    async def loan_by_external_id(self, external_id: str, *, token: str) -> LoanSummary | None:
        response = await self.request("GET", "/loans", token=token, params={"external_id": external_id, "limit": 1})
        loans = _LOANS.validate_python(self._ok(response)["items"])
        return loans[0] if loans else None

    async def loan_outcomes(self, as_of: date, *, window_months: int, token: str, cursor: str | None = None,
                            limit: int = 1000) -> OutcomePage:
        """One page of point-in-time loan facts and outcomes; pass `next_cursor` back for the next."""
        params: dict[str, Any] = {"as_of": as_of.isoformat(), "window_months": window_months, "limit": limit}
        if cursor:
            params["cursor"] = cursor
        response = await self.request("GET", "/loans/outcomes", token=token, params=params)
        return OutcomePage.model_validate(self._ok(response))

    async def register_loan(self, loan: dict[str, Any], *, token: str, idempotency_key: str) -> LoanSummary:
        """`loan` as `POST /loans` takes it; the key makes a retry return the loan booked the first time."""
        response = await self.request("POST", "/loans", token=token, json=loan, idempotency_key=idempotency_key)
        return LoanSummary.model_validate(self._ok(response))

    async def quote_schedule(self, terms: dict[str, Any], *, token: str) -> ScheduleQuote:
        """The schedule of a loan on `terms` (as `POST /loans/schedule-preview` takes them), creating nothing."""
        response = await self.request("POST", "/loans/schedule-preview", token=token, json=terms)
        return ScheduleQuote.model_validate(self._ok(response))
