from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


class ImportFormat(StrEnum):
    CSV = "csv"
    JSONL = "jsonl"


class RowError(BaseModel):
    line: int = Field(description="Line in the file (a CSV's header is line 1).")
    field: str | None = Field(description="The column at fault, when one is.")
    reason: str


class ImportReport(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "rows": 3, "created": 1, "already_present": 1, "failed": 1,
        "errors": [{"line": 4, "field": "national_id", "reason": "check digit does not match (ISO 7064 MOD 11-2)"}]}]})

    rows: int
    created: int
    already_present: int = Field(description="Rows whose national ID or external id is already on file; "
                                             "re-running an import counts its rows here instead of duplicating them.")
    failed: int
    errors: list[RowError]
