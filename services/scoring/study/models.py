"""Relationship studies as run: the report kept, so it (and its chart) can be read again and audited."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field as PydanticField
from sqlalchemy import JSON, Column
from sqlmodel import Field

from services.scoring.db import ScoringTable
from shared.ids import new_id, now
from shared.bounds import BusinessDate


class RelationshipStudy(ScoringTable, table=True):
    __tablename__ = "relationship_studies"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    as_of: date
    window_months: int
    report: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    created_by: str = Field(max_length=64)
    created_at: datetime = Field(default_factory=now)


class StudyRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"as_of": "2025-06-30", "window_months": 12}]})

    as_of: BusinessDate = PydanticField(description=(
        "The observation date: every measure and control is taken as of it; the outcome window follows it and "
        "must have closed by monitoring's business date."))
    window_months: int = PydanticField(12, ge=1, le=60, description="Outcome window: default = more than 90 days "
                                                                     "past due within (as_of, as_of + window].")


class StudyRead(BaseModel):
    id: str
    as_of: date
    window_months: int
    created_by: str
    created_at: datetime
    chart: str = PydanticField(description="Path of the chart (PNG) of this study, relative to the service.")
    report: dict[str, Any] = PydanticField(description=(
        "sample (n, defaults, exclusions), model, relationship (odds ratio per SD, 95% CI, p-value, direction), "
        "joint_test, coefficients, missing_values, merged_levels, bands (raw and matched default rates), lift "
        "(AUC with and without relationship measures, DeLong 95% CI)."))
