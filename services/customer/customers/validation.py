"""Checks a bank makes on identity data: the resident ID's check digit and birth date, phone, age."""

from __future__ import annotations

import re
from datetime import date

# GB 11643-1999: ISO 7064 MOD 11-2 over the first 17 digits.
_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK_CHARS = "10X98765432"
_RESIDENT_ID = re.compile(r"^\d{17}[\dX]$")
MOBILE = re.compile(r"^1[3-9]\d{9}$")
MIN_AGE, MAX_AGE = 18, 110


def check_digit(first17: str) -> str:
    return _CHECK_CHARS[sum(int(d) * w for d, w in zip(first17, _WEIGHTS, strict=True)) % 11]


def birth_date_in_id(national_id: str) -> date | None:
    try:
        return date(int(national_id[6:10]), int(national_id[10:12]), int(national_id[12:14]))
    except ValueError:
        return None


def resident_id(value: str) -> str:
    """The normalised 18-digit resident ID, or ValueError saying what is wrong with it."""
    value = value.strip().upper()
    if not _RESIDENT_ID.match(value):
        raise ValueError("must be an 18-character resident ID: 17 digits and a check digit (0-9 or X)")
    if check_digit(value[:17]) != value[17]:
        raise ValueError("check digit does not match (ISO 7064 MOD 11-2)")
    born = birth_date_in_id(value)
    if born is None or not plausible_birth_date(born):
        raise ValueError("embedded birth date is not a plausible date of birth")
    return value


def mobile_phone(value: str) -> str:
    digits = re.sub(r"[\s-]", "", value).removeprefix("+86")
    if not MOBILE.match(digits):
        raise ValueError("must be a mainland mobile number: 11 digits starting 13-19, optionally +86")
    return digits


def plausible_birth_date(value: date, today: date | None = None) -> bool:
    today = today or date.today()
    return date(today.year - MAX_AGE, 1, 1) <= value <= today


def adult_birth_date(value: date) -> date:
    today = date.today()
    if not plausible_birth_date(value, today):
        raise ValueError(f"must be a real date of birth within the last {MAX_AGE} years")
    age = today.year - value.year - ((today.month, today.day) < (value.month, value.day))
    if age < MIN_AGE:
        raise ValueError(f"the customer must be at least {MIN_AGE}")
    return value


def id_matches_birth_date(national_id: str, date_of_birth: date) -> bool:
    return birth_date_in_id(national_id) == date_of_birth
