"""Bounds every service puts on numbers and dates it is given, so no value a database or the calendar cannot hold
reaches a rule: such a value is a 422 naming the field, never a 500 from deep inside a query or a date sum.

- `BusinessDate`: a date from 1900-01-01 to 2199-12-31. A loan's last due date is at most 40 years (480 months)
  after its first, so every date a schedule derives from a bounded one still exists (9999-12-31 plus a month
  does not). `Timestamp`: a moment within the same bounds, in UTC (a naive one read as UTC); converted to UTC,
  9999-12-31T23:59:59-23:59 overflowed into a 500. Both are ISO 8601 text only: pydantic's lax mode read a
  number (`since=-1`, `"1700000000"`) as seconds since 1970, so a list `since=-1` began on 1969-12-31, and took
  "1990-01-01T00:00:00Z" for a birth date.
- `control_character_at`: where a JSON document holds text with a control character (C0 but tab, line feed and
  carriage return; DEL; C1) or a bidirectional override or isolate, which no name, note or id needs: the kernel
  refuses such a body with a 422 naming that field, on every database alike (PostgreSQL cannot even store a NUL).
  `control_character_in_row` does the same for a row of an uploaded file, which no body check sees.
- `boolean_for_number_at`: where a JSON document holds `true` or `false` for a field typed as a number, which
  pydantic's lax mode would read as 1 or 0 (a loan of `"term_months": true` was booked for one month): the kernel
  refuses such a body with a 422 naming that field. `text_for_integer_at` likewise finds text for a field typed
  as a whole number (`"household_size": "3"` was read as 3); a decimal's text is its own check's.
- `in_cents`: an amount as it is written back, with two decimals: "1e5" is accepted as 100000.00 and answered so,
  never echoed as "1E+5" (nor "12000.5"), in an answer, an event or a stored idempotent replay.
- `said`: a name or a reason has something to say: at least so many visible characters, a letter or a digit among
  them. A reveal of a national ID was granted for a reason of five spaces (or ideographic spaces, or zero-width
  ones, or "....."), and a customer was named "   ".
- `plain_decimal` and `loose_decimal_at`: a decimal is written with the digits 0-9, a sign, a point and an exponent,
  nothing else. Python's Decimal also read "٥" (an Arabic-Indic five) as 5, "1_000" as 1000 and "  5 " as 5: a
  file row or a body holding such text is a 422 naming the field. And a JSON number for a decimal field must mean
  exactly what it says: JSON bodies are read with binary floats, so 99999999999999.99 arrived as
  99999999999999.98 and 1.0000000000000000001 as 1.0 (past the two decimals money allows); such a number is a
  422 asking for the amount as a string. A number a float holds exactly as written (21000.5, 1e5) is taken.
"""

from __future__ import annotations

import math
import re
import types
import unicodedata
from collections.abc import Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import AfterValidator, BaseModel, BeforeValidator, Field

MIN_DATE = date(1900, 1, 1)
MAX_DATE = date(2199, 12, 31)

DATE_TEXT_REFUSED = "must be an ISO 8601 date as text (YYYY-MM-DD), not a number nor a date and time"
MOMENT_TEXT_REFUSED = "must be an ISO 8601 date and time as text (YYYY-MM-DDTHH:MM:SS, offset optional), not a number"
_DATE_TEXT = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_MOMENT_TEXT = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}(?:[Tt ].*)?", re.DOTALL)


def _date_text(value: Any) -> Any:
    # A `date` the code itself gives passes; a datetime is no date, even at midnight.
    if isinstance(value, str) and _DATE_TEXT.fullmatch(value) or type(value) is date:
        return value
    raise ValueError(DATE_TEXT_REFUSED)


def _moment_text(value: Any) -> Any:
    # Only the date's shape is looked at here: the rest of the text is pydantic's to read.
    if isinstance(value, str) and _MOMENT_TEXT.fullmatch(value) or isinstance(value, datetime):
        return value
    raise ValueError(MOMENT_TEXT_REFUSED)


# In BusinessDate and Timestamp: a date or a moment without one takes a number as seconds since 1970.
iso_date = BeforeValidator(_date_text)
iso_moment = BeforeValidator(_moment_text)
BusinessDate = Annotated[date, Field(ge=MIN_DATE, le=MAX_DATE), iso_date]


def _utc_within_bounds(value: datetime) -> datetime:
    try:
        utc = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except OverflowError:  # 9999-12-31T23:59:59-23:59 is past the calendar once in UTC
        utc = None
    if utc is None or not MIN_DATE <= utc.date() <= MAX_DATE:
        raise ValueError(f"must lie from {MIN_DATE.isoformat()} to {MAX_DATE.isoformat()} (UTC)")
    return utc


# A moment a request gives: naive read as UTC, answered in UTC, within the business dates' bounds.
Timestamp = Annotated[datetime, iso_moment, AfterValidator(_utc_within_bounds)]


# Spaces, line and paragraph separators, controls and invisible format characters (zero-width space and joiners).
_UNSEEN = frozenset({"Zs", "Zl", "Zp", "Cc", "Cf"})


def said(min_length: int, max_length: int) -> Any:
    """Text that says something: `min_length` to `max_length` characters, of which at least `min_length` are
    visible and one is a letter or a digit."""
    def check(value: str) -> str:
        seen = [unicodedata.category(c) for c in value if unicodedata.category(c) not in _UNSEEN]
        if len(seen) < min_length or not any(kind[0] in "LN" for kind in seen):
            raise ValueError(f"must say something: at least {min_length} visible character"
                             f"{'s' if min_length > 1 else ''}, a letter or a digit among them")
        return value

    return Annotated[str, Field(min_length=min_length, max_length=max_length), AfterValidator(check)]


CENT = Decimal("0.01")


def cents(value: Decimal) -> Decimal:
    return value.quantize(CENT)


# Put after a money field's bounds (`decimal_places=2` has refused a third decimal by then, so nothing rounds).
in_cents = AfterValidator(cents)

DECIMAL_TEXT_REFUSED = "must be written with the digits 0-9 and an optional sign, point and exponent, nothing else"
INEXACT_NUMBER_REFUSED = "this JSON number cannot be read exactly as written; send the amount as a string"
_DECIMAL_TEXT = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


def _plain(value: Any) -> Any:
    if isinstance(value, str) and not _DECIMAL_TEXT.fullmatch(value):
        raise ValueError(DECIMAL_TEXT_REFUSED)
    return value


# Put first on a decimal field a file row can fill too (a body's are checked by `loose_decimal_at` as well).
plain_decimal = BeforeValidator(_plain)
# Money as a request gives it: at most 16 digits, two of them decimals, answered with two.
PositiveAmount = Annotated[Decimal, plain_decimal, Field(gt=0, max_digits=16, decimal_places=2), in_cents]
Amount = Annotated[Decimal, plain_decimal, Field(ge=0, max_digits=16, decimal_places=2), in_cents]


CONTROL_REFUSED = "must not contain control characters or bidirectional overrides"
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


def control_character_in_row(row: Mapping[str, Any]) -> str | None:
    """For a row of an uploaded file (a CSV line, a JSON line), which no JSON body check sees: the column whose
    value holds a control character, "line" when a column's name does, else None."""
    found = control_character_at(dict(row))
    return None if found is None else "line" if found == "body" else found.removeprefix("body.")


def _bare(annotation: Any) -> Any:
    while get_origin(annotation) is Annotated:
        annotation = get_args(annotation)[0]
    return annotation


def _choices(annotation: Any) -> tuple[Any, ...] | None:
    """The members of a union (None left out), or None when `annotation` is no union."""
    if get_origin(annotation) in (Union, types.UnionType):
        return tuple(_bare(arg) for arg in get_args(annotation) if arg is not type(None))
    return None


def _only(annotation: Any, kinds: type | types.UnionType) -> bool:
    """Whether `annotation` takes values of `kinds` (a boolean not among them) or None, and nothing else."""
    annotation = _bare(annotation)
    choices = _choices(annotation)
    if choices is not None:
        return bool(choices) and all(_only(choice, kinds) for choice in choices)
    return isinstance(annotation, type) and issubclass(annotation, kinds) and not issubclass(annotation, bool)


def _first_at(annotation: Any, document: Any, path: str, judge: Any) -> str | None:
    """The dotted path of the first value in `document` that `judge(its annotation, the value)` refuses (True),
    else None; where `judge` says False the value is taken as it is, where None its parts are looked at in turn."""
    annotation = _bare(annotation)
    verdict = judge(annotation, document)
    if verdict is not None:
        return path if verdict else None
    choices = _choices(annotation)
    if choices is not None:
        return next((found for choice in choices
                     if (found := _first_at(choice, document, path, judge)) is not None), None)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        if not isinstance(document, Mapping):
            return None
        for name, field in annotation.model_fields.items():
            key = field.alias or name
            if key in document:
                found = _first_at(field.annotation, document[key], f"{path}.{key}", judge)
                if found is not None:
                    return found
        return None
    origin, args = get_origin(annotation), get_args(annotation)
    if isinstance(document, list) and origin in (list, tuple, set, frozenset) and args:
        for index, value in enumerate(document):
            found = _first_at(args[0] if origin is not tuple or args[-1] is Ellipsis or len(args) == 1
                              else args[min(index, len(args) - 1)], value, f"{path}.{index}", judge)
            if found is not None:
                return found
    elif isinstance(document, Mapping) and origin in (dict, Mapping) and len(args) == 2:
        for key, value in document.items():
            found = _first_at(args[1], value, f"{path}.{key}", judge)
            if found is not None:
                return found
    return None


def _boolean_for_number(annotation: Any, value: Any) -> bool | None:
    return _only(annotation, int | float | Decimal) if isinstance(value, bool) else None


def boolean_for_number_at(annotation: Any, document: Any, path: str = "body") -> str | None:
    """The dotted path of the first `true`/`false` in `document` where `annotation` (a model, or a type holding
    models) wants a number, else None."""
    return _first_at(annotation, document, path, _boolean_for_number)


def _text_for_integer(annotation: Any, value: Any) -> bool | None:
    return _only(annotation, int) if isinstance(value, str) else None


def text_for_integer_at(annotation: Any, document: Any, path: str = "body") -> str | None:
    """The dotted path of the first text in `document` where `annotation` (a model, or a type holding models)
    wants a whole number and nothing else, else None."""
    return _first_at(annotation, document, path, _text_for_integer)


def _loose_decimal(annotation: Any, value: Any) -> bool | None:
    if not (isinstance(annotation, type) and issubclass(annotation, Decimal)):
        return None
    if isinstance(value, str):
        return _DECIMAL_TEXT.fullmatch(value) is None
    if isinstance(value, Decimal):  # a JSON number with a point or an exponent, as written
        read = float(value)
        return math.isfinite(read) and Decimal(repr(read)) != value  # an infinite one is pydantic's to refuse
    return False


def has_decimal(annotation: Any) -> bool:
    """Whether `annotation` (a model, or a type holding models) has a decimal anywhere."""
    return _has(annotation, Decimal, frozenset())


def has_integer(annotation: Any) -> bool:
    """Whether `annotation` (a model, or a type holding models) has an integer anywhere (a boolean counts: this
    only spares bodies without one a walk)."""
    return _has(annotation, int, frozenset())


def _has(annotation: Any, kind: type, seen: frozenset[Any]) -> bool:
    annotation = _bare(annotation)
    if isinstance(annotation, type) and issubclass(annotation, kind):
        return True
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation not in seen and any(_has(f.annotation, kind, seen | {annotation})
                                              for f in annotation.model_fields.values())
    return any(_has(arg, kind, seen) for arg in get_args(annotation))


def loose_decimal_at(annotation: Any, document: Any, path: str = "body") -> tuple[str, str] | None:
    """The dotted path of the first decimal in `document` (read with `json.loads(..., parse_float=Decimal)`, so
    a number keeps its digits) written other than `plain_decimal` allows, or a number a float cannot hold as
    written, where `annotation` wants a decimal, and why; else None."""
    why: list[str] = []

    def judge(annotation: Any, value: Any) -> bool | None:
        verdict = _loose_decimal(annotation, value)
        if verdict:
            why.append(DECIMAL_TEXT_REFUSED if isinstance(value, str) else INEXACT_NUMBER_REFUSED)
        return verdict

    found = _first_at(annotation, document, path, judge)
    return None if found is None else (found, why[-1])
