from __future__ import annotations

from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field

from services.customer.common import MoneyOut
from services.customer.offers.catalogue import ProductKind


class ProductRead(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "code": "PL-PRIME", "kind": "loan", "name": "Prime personal loan", "grades": ["A", "B"], "segments": None,
        "lifecycles": ["growing", "mature"], "base_rate": "3.45", "base_limit": "200000.00",
        "credit_building": False}]})

    code: str
    kind: ProductKind
    name: str
    grades: list[str] | None = Field(description="Grades it is open to; null means any.")
    segments: list[str] | None
    lifecycles: list[str] | None
    base_rate: Decimal | None = Field(description="% a year: interest on credit, yield on deposits.")
    base_limit: MoneyOut | None
    credit_building: bool


class Offer(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "rank": 1, "code": "PL-PRIME", "kind": "loan", "name": "Prime personal loan", "rate": "2.95",
        "limit": "300000.00", "fast_lane": True, "requires_guarantee": False,
        "reasons": ["grade A: preferential rate, higher limit, fast lane", "open to grade A customers"]}]})

    rank: int
    code: str
    kind: ProductKind
    name: str
    rate: Decimal | None
    limit: MoneyOut | None
    fast_lane: bool
    requires_guarantee: bool
    reasons: list[str]


class OfferList(BaseModel):
    customer_id: str
    grade: str | None = Field(description="Latest grade; null when never scored (offers use grade C terms).")
    segments: list[str]
    lifecycle_stage: str
    offers: list[Offer]
