"""Model registry: artifacts (bundle bytes by sha256), versions with their state, and every transition."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field as PydanticField
from sqlalchemy import JSON, Column, Index, LargeBinary, UniqueConstraint, text
from sqlmodel import Field

from services.scoring.db import ScoringTable
from shared.ids import new_id, now
from shared.bounds import said


class ModelState(StrEnum):
    DRAFT = "draft"
    VALIDATED = "validated"
    CHAMPION = "champion"
    CHALLENGER = "challenger"
    RETIRED = "retired"


class ModelArtifact(ScoringTable, table=True):
    """The bundle zip itself, so every process (on any host) can load it; the file store is a local cache."""

    __tablename__ = "model_artifacts"

    sha256: str = Field(primary_key=True, max_length=64)
    data: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    size: int
    created_at: datetime = Field(default_factory=now)


class ModelVersion(ScoringTable, table=True):
    """One servable model: a role (scorecard or challenger family) inside a bundle."""

    __tablename__ = "model_versions"
    # Partial unique indexes: the database itself refuses a second champion or challenger.
    __table_args__ = (
        UniqueConstraint("name", "version", name="uq_model_versions_name_version"),
        *(Index(f"uq_model_versions_one_{state}", "state", unique=True,
                sqlite_where=text(f"state = '{state}'"), postgresql_where=text(f"state = '{state}'"))
          for state in ("champion", "challenger")),
    )

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    name: str = Field(max_length=64)
    version: int
    role: str = Field(max_length=32)
    family: str = Field(max_length=32)
    state: str = Field(default=ModelState.DRAFT, max_length=16, index=True)
    artifact_sha256: str = Field(foreign_key="model_artifacts.sha256", max_length=64)
    onnx_sha256: str = Field(max_length=64)
    data_sha256: str = Field(max_length=64)
    schema_: list[dict[str, Any]] = Field(sa_column=Column("schema", JSON, nullable=False))
    metrics: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    card: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    # Score deciles of the training sample (for PSI); None when registered without its data.
    reference: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    note: str | None = Field(default=None, max_length=500)
    created_at: datetime = Field(default_factory=now)
    created_by: str = Field(max_length=64)

    @property
    def label(self) -> str:
        return f"{self.name}-v{self.version}"


class ModelTransition(ScoringTable, table=True):
    """Append-only history of state changes: who, why, and which champion a promotion replaced."""

    __tablename__ = "model_transitions"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    model_id: str = Field(foreign_key="model_versions.id", index=True, max_length=32)
    from_state: str | None = Field(default=None, max_length=16)
    to_state: str = Field(max_length=16)
    actor: str = Field(max_length=64)
    reason: str = Field(max_length=500)
    replaced_model_id: str | None = Field(default=None, max_length=32)
    at: datetime = Field(default_factory=now, index=True)


class TransitionRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    from_state: ModelState | None
    to_state: ModelState
    actor: str
    reason: str
    replaced_model_id: str | None
    at: datetime


class FeatureRead(BaseModel):
    name: str
    kind: str = PydanticField(description="numeric or categorical")
    required: bool
    nullable: bool
    min: float | None = None
    max: float | None = None
    categories: list[str] | None = None


class ModelRead(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "id": "5f0c6f1e2b7d4c4e9a3f1d2e3c4b5a69", "version_label": "german-credit-v1", "name": "german-credit",
        "version": 1, "role": "scorecard", "family": "scorecard", "state": "champion",
        "artifact_sha256": "9f86d08...", "onnx_sha256": "2c26b46...", "data_sha256": "fcde2b2...",
        "features": [], "metrics": {"test_auc": 0.78}, "note": None, "created_at": "2026-01-15T08:00:00Z",
        "created_by": "bootstrap", "transitions": []}]})

    id: str
    version_label: str
    name: str
    version: int
    role: str
    family: str
    state: ModelState
    artifact_sha256: str
    onnx_sha256: str
    data_sha256: str
    features: list[FeatureRead]
    metrics: dict[str, Any]
    note: str | None
    created_at: datetime
    created_by: str
    transitions: list[TransitionRead]


class ReasonedCommand(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"reason": "Out-of-time AUC 0.78, PSI stable"}]})

    reason: said(3, 500) = PydanticField(description="Why: kept in the model's history.")


class PromotionTarget(StrEnum):
    CHAMPION = "champion"
    CHALLENGER = "challenger"


class PromotionCommand(ReasonedCommand):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"target": "champion", "reason": "Beats the current champion on the out-of-time sample"}]})

    target: PromotionTarget
