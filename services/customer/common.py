"""Small types and helpers every customer feature shares (no web framework here)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from enum import Enum
from typing import Annotated, Any

from pydantic import AfterValidator, Field
from sqlalchemy import Connection, DateTime, and_, or_
from sqlalchemy.orm import Session

from shared.db import Money as MoneyColumn
from shared.errors import field_problem
from shared.pagination import decode_cursor, encode_cursor


def new_id() -> str:
    return uuid.uuid4().hex


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    # SQLite hands back naive datetimes; everything is stored in UTC, so naive means UTC.
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


UtcDateTime = Annotated[datetime, AfterValidator(as_utc)]
def cents(value: Decimal) -> Decimal:
    return value.quantize(Decimal("0.01"))


# Always two decimals on the way out, so 21000.5 reads back as "21000.50" whether or not it went via the database.
Money = Annotated[Decimal, Field(ge=0, max_digits=18, decimal_places=2, examples=["12000.00"]), AfterValidator(cents)]
MoneyOut = Annotated[Decimal, AfterValidator(cents)]
MONEY_SQL = MoneyColumn()  # the kernel's exact money type
TIMESTAMP_SQL = DateTime(timezone=True)


def cursor_time(value: str) -> datetime:
    try:
        return as_utc(datetime.fromisoformat(value))
    except ValueError:
        raise field_problem("query.cursor", "is not a cursor this service issued") from None


def keyset(query: Any, cursor: str | None, at_column: Any, id_column: Any, *, newest_first: bool,
           limit: int) -> Any:
    """Order by (time, id) and start after the cursor: stable under inserts, so no row is skipped or repeated.
    Fetches one row more than the page, which tells `next_cursor` whether another page exists."""
    if cursor:
        at, last_id = decode_cursor(cursor, 2)
        at = cursor_time(at)
        if newest_first:
            query = query.where(or_(at_column < at, and_(at_column == at, id_column < last_id)))
        else:
            query = query.where(or_(at_column > at, and_(at_column == at, id_column > last_id)))
    order = (at_column.desc(), id_column.desc()) if newest_first else (at_column, id_column)
    return query.order_by(*order).limit(limit + 1)


def next_cursor(rows: Sequence[Any], limit: int, at_field: str) -> str | None:
    if len(rows) <= limit:
        return None
    last = rows[limit - 1]
    return encode_cursor(as_utc(getattr(last, at_field)).isoformat(), last.id)


def plain(values: dict[str, Any]) -> dict[str, Any]:
    """Enum members as their plain values, so every database driver stores the same text."""
    return {key: value.value if isinstance(value, Enum) else value for key, value in values.items()}


def connection_of(session: Session | Connection) -> Connection:
    """The connection a statement runs on, for code that serves both ORM sessions (writes) and the bare
    autocommit connections of reads."""
    return session.connection() if isinstance(session, Session) else session
