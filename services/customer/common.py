"""Small types and helpers every customer feature shares (no web framework here)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from enum import Enum
from typing import Annotated, Any

from pydantic import AfterValidator, Field
from sqlalchemy import Connection, DateTime
from sqlalchemy.orm import Session

from shared.bounds import in_cents, plain_decimal
from shared.db import Money as MoneyColumn
from shared.ids import new_id, now as utcnow  # noqa: F401 - the customer features' names for them


def as_utc(value: datetime) -> datetime:
    # SQLite hands back naive datetimes; everything is stored in UTC, so naive means UTC.
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


UtcDateTime = Annotated[datetime, AfterValidator(as_utc)]
# Always two decimals on the way out, so 21000.5 reads back as "21000.50" whether or not it went via the database.
Money = Annotated[Decimal, plain_decimal, Field(ge=0, max_digits=18, decimal_places=2, examples=["12000.00"]), in_cents]
MoneyOut = Annotated[Decimal, in_cents]
MONEY_SQL = MoneyColumn()  # the kernel's exact money type
TIMESTAMP_SQL = DateTime(timezone=True)


def plain(values: dict[str, Any]) -> dict[str, Any]:
    """Enum members as their plain values, so every database driver stores the same text."""
    return {key: value.value if isinstance(value, Enum) else value for key, value in values.items()}


def connection_of(session: Session | Connection) -> Connection:
    """The connection a statement runs on, for code that serves both ORM sessions (writes) and the bare
    autocommit connections of reads."""
    return session.connection() if isinstance(session, Session) else session
