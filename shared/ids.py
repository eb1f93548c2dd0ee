"""Ids and the clock every service stamps its rows with, defined once."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime


def new_id() -> str:
    """32 random hex digits. Uniformly random on purpose: COB plans its chunks as equal slices of the hex range
    (services/monitoring/cob/flows.py), which holds only while ids are spread evenly over it."""
    return uuid.uuid4().hex


def now() -> datetime:
    """The current instant in UTC (every stored time is UTC)."""
    return datetime.now(UTC)
