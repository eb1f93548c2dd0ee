"""Cursor pagination every service shares: an opaque cursor over the sort key of the last row of a page."""

from __future__ import annotations

import base64
import json
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, Field

from shared.errors import field_problem

T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last page.")


def encode_cursor(*values: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(values, default=str).encode()).decode()


def decode_cursor(cursor: str, arity: int) -> list[Any]:
    """The values `encode_cursor` packed; a 422 naming `query.cursor` for anything this service did not issue."""
    try:
        values = json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except ValueError:
        raise field_problem("query.cursor", "is not a cursor this service issued") from None
    if not isinstance(values, list) or len(values) != arity or not all(
            isinstance(v, str | int | float) and not isinstance(v, bool) for v in values):
        raise field_problem("query.cursor", "is not a cursor this service issued")
    return values
