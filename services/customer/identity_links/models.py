"""Identifiers a customer shares with other customers, named by kind only: screening reads counts and ids."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel


class SharedKind(StrEnum):
    NATIONAL_ID = "national_id"
    PHONE = "phone"
    ADDRESS = "address"


class SharedIdentifier(BaseModel):
    kind: SharedKind
    count: int
    customer_ids: list[str]


class SharedIdentifiers(BaseModel):
    """`GET /customers/{id}/shared-identifiers`: which other customers hold the same identifier; never its value."""

    customer_id: str
    shared: list[SharedIdentifier]
