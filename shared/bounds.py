"""Bounds every service puts on numbers and dates it is given, so no value a database or the calendar cannot hold
reaches a rule: such a value is a 422 naming the field, never a 500 from deep inside a query or a date sum.

- `BusinessDate`: a date from 1900-01-01 to 2199-12-31. A loan's last due date is at most 40 years (480 months)
  after its first, so every date a schedule derives from a bounded one still exists (9999-12-31 plus a month
  does not).
- `control_character_at`: where a JSON document holds text with a control character (C0 but tab, line feed and
  carriage return; DEL; C1) or a bidirectional override or isolate, which no name, note or id needs: the kernel
  refuses such a body with a 422 naming that field, on every database alike (PostgreSQL cannot even store a NUL).
- `in_cents`: an amount as it is written back, with two decimals: "1e5" is accepted as 100000.00 and answered so,
  never echoed as "1E+5" (nor "12000.5"), in an answer, an event or a stored idempotent replay.
"""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal
from typing import Annotated, Any

from pydantic import AfterValidator, Field

MIN_DATE = date(1900, 1, 1)
MAX_DATE = date(2199, 12, 31)

BusinessDate = Annotated[date, Field(ge=MIN_DATE, le=MAX_DATE)]


CENT = Decimal("0.01")


def cents(value: Decimal) -> Decimal:
    return value.quantize(CENT)


# Put after a money field's bounds (`decimal_places=2` has refused a third decimal by then, so nothing rounds).
in_cents = AfterValidator(cents)


_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def control_character_at(document: Any, path: str = "body") -> str | None:
    """The dotted path of the first text (a value or a key) in `document` holding a control character, else None."""
    if isinstance(document, str):
        return path if _CONTROL.search(document) else None
    if isinstance(document, dict):
        for key, value in document.items():
            found = control_character_at(key, path) or control_character_at(value, f"{path}.{key}")
            if found:
                return found
    elif isinstance(document, list):
        for index, value in enumerate(document):
            found = control_character_at(value, f"{path}.{index}")
            if found:
                return found
    return None
