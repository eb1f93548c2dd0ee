"""Bounds every service puts on numbers and dates it is given, so no value a database or the calendar cannot hold
reaches a rule: such a value is a 422 naming the field, never a 500 from deep inside a query or a date sum.

- `BusinessDate`: a date from 1900-01-01 to 2199-12-31. A loan's last due date is at most 40 years (480 months)
  after its first, so every date a schedule derives from a bounded one still exists (9999-12-31 plus a month
  does not).
"""

from __future__ import annotations

from datetime import date
from typing import Annotated

from pydantic import Field

MIN_DATE = date(1900, 1, 1)
MAX_DATE = date(2199, 12, 31)

BusinessDate = Annotated[date, Field(ge=MIN_DATE, le=MAX_DATE)]
