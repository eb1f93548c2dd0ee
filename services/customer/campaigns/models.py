from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field as PydanticField
from sqlalchemy import JSON, Column
from sqlmodel import Field

from services.customer.common import TIMESTAMP_SQL, UtcDateTime, new_id, utcnow
from services.customer.db import CustomerTable
from services.customer.portrait.models import Segment
from shared.bounds import said


class CampaignStatus(StrEnum):
    DRAFT = "draft"
    AUDIENCE_BUILT = "audience_built"


class Reply(StrEnum):
    RESPONDED = "responded"
    CONVERTED = "converted"
    DECLINED = "declined"


class Campaign(CustomerTable, table=True):
    __tablename__ = "campaigns"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    name: str = Field(max_length=200)
    segment: str | None = Field(default=None, max_length=32)
    grades: list[str] = Field(sa_column=Column(JSON, nullable=False))
    product_code: str | None = Field(default=None, max_length=32)
    # A loan officer's campaign reaches only their branch; an admin's every branch (or the one named).
    branch: str | None = Field(default=None, max_length=32)
    status: str = Field(default=CampaignStatus.DRAFT, max_length=16)
    audience_size: int = 0
    excluded_without_consent: int = 0
    created_by: str = Field(max_length=64)
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(TIMESTAMP_SQL, nullable=False))
    audience_built_at: datetime | None = Field(default=None, sa_column=Column(TIMESTAMP_SQL))


class CampaignMember(CustomerTable, table=True):
    __tablename__ = "campaign_members"

    campaign_id: str = Field(foreign_key="campaigns.id", primary_key=True, max_length=32)
    customer_id: str = Field(foreign_key="customers.id", primary_key=True, max_length=32, index=True)
    grade: str | None = Field(default=None, max_length=8)
    segments: str = Field(default="", max_length=200, description="Comma-separated, as at audience time.")
    reply: str | None = Field(default=None, max_length=16)
    replied_at: datetime | None = Field(default=None, sa_column=Column(TIMESTAMP_SQL))


class CampaignCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "name": "Spring prime loan", "segment": "high_value", "grades": ["A", "B"], "product_code": "PL-PRIME"}]})

    name: said(1, 200)
    segment: Segment | None = PydanticField(None, description="Null targets every segment.")
    grades: list[str] = PydanticField(default_factory=list, description="Empty targets every grade, unscored too.")
    product_code: str | None = None
    branch: str | None = PydanticField(None, max_length=32, description="Admins only; officers get their own.")


class CampaignRead(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "id": "c4m9a1c0e8d7a4e4f1f9a6b5c4d3e2f1", "name": "Spring prime loan", "segment": "high_value",
        "grades": ["A", "B"], "product_code": "PL-PRIME", "branch": "BJ001", "status": "audience_built",
        "audience_size": 120, "excluded_without_consent": 31, "created_by": "li.wei",
        "created_at": "2026-11-23T09:00:00Z", "audience_built_at": "2026-11-23T09:05:00Z"}]})

    id: str
    name: str
    segment: Segment | None
    grades: list[str]
    product_code: str | None
    branch: str | None
    status: CampaignStatus
    audience_size: int
    excluded_without_consent: int = PydanticField(description="Matched the target but had no marketing consent.")
    created_by: str
    created_at: UtcDateTime
    audience_built_at: UtcDateTime | None


class Rates(BaseModel):
    key: str
    audience: int
    responded: int
    converted: int
    response_rate: float
    conversion_rate: float


class CampaignReport(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "campaign_id": "c4m9a1c0e8d7a4e4f1f9a6b5c4d3e2f1",
        "total": {"key": "all", "audience": 120, "responded": 30, "converted": 9, "response_rate": 0.25,
                  "conversion_rate": 0.075},
        "by_grade": [], "by_segment": []}]})

    campaign_id: str
    total: Rates
    by_grade: list[Rates]
    by_segment: list[Rates]
