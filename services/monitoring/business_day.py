"""The institution's business date: stored, advanced by COB, optionally overridden by a setting."""

from __future__ import annotations

from datetime import UTC, date, datetime

from sqlmodel import Field, Session

from services.monitoring.db import MonitoringTable
from services.monitoring.settings import MonitoringSettings

_KEY = "business_date"


class BusinessDay(MonitoringTable, table=True):
    __tablename__ = "business_days"

    key: str = Field(primary_key=True, max_length=32)
    value: date
    updated_at: datetime = Field(default_factory=lambda: datetime.now(UTC))


def business_date(session: Session, settings: MonitoringSettings) -> date:
    """The date postings and ageing run on; before the first COB it is today's date."""
    if settings.business_date is not None:
        return settings.business_date
    row = session.get(BusinessDay, _KEY)
    return row.value if row is not None else datetime.now(UTC).date()


def last_closed(session: Session) -> date | None:
    """The stored business date, which COB advances one day at a time (None before the first COB); the override
    setting does not move it."""
    row = session.get(BusinessDay, _KEY)
    return row.value if row is not None else None


def set_business_date(session: Session, value: date) -> None:
    row = session.get(BusinessDay, _KEY)
    if row is None:
        session.add(BusinessDay(key=_KEY, value=value))
    else:
        row.value = value
        row.updated_at = datetime.now(UTC)
        session.add(row)
