"""How the screening checks did against planted patterns: per check, of the customers screened, how many it hit,
how many of the planted it found (recall) and how many of its hits were planted (precision). Pure arithmetic on
what each check found per customer and a ground-truth file (the generated portfolio's `ground_truth.jsonl`)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping

from pydantic import BaseModel, Field

from services.scoring.screening.models import Check

# The ground truth's kinds of planted pattern, by the check meant to find them.
PLANTED_AS = {"shared_identifier": Check.SHARED_IDENTIFIERS, "shared_payer": Check.SHARED_PAYER,
              "card_cash_out": Check.CARD_CASH_OUT, "illegal_fundraising": Check.ILLEGAL_FUNDRAISING}


class PlantedFound(BaseModel):
    planted: int
    found: int


class CheckReview(BaseModel):
    check: Check
    screened: int = Field(description="Customers screened")
    hits: int = Field(description="Of those, customers the check stopped")
    planted: int = Field(description="Customers screened that the truth file plants with the check's pattern")
    planted_found: int
    recall: float | None = Field(description="planted_found / planted; null when none was planted")
    precision: float | None = Field(description="planted_found / hits; null when the check stopped no one")
    by_variant: dict[str, PlantedFound] = Field(default_factory=dict, description=(
        "Per variant of the pattern (for shared identifiers: `email`, `address`, `account`), planted and found"))


class Planted(BaseModel):
    """Check -> planted customers, and per variant (e.g. which identifier is shared) -> planted customers."""

    customers: dict[Check, set[str]] = Field(default_factory=dict)
    variants: dict[Check, dict[str, set[str]]] = Field(default_factory=dict)


def read_planted(lines: Iterable[str]) -> Planted:
    """The planted patterns of a ground-truth file: lines of the kinds in PLANTED_AS, naming `customers` (a group)
    or one `customer_id`; other lines (loan outcomes, early signs) are not about screening and are passed over."""
    planted = Planted()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            check = PLANTED_AS.get(row.get("kind")) if isinstance(row, dict) else None
            if check is None:
                continue
            customers = set(row["customers"]) if "customers" in row else {row["customer_id"]}
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"line {number}: {exc}") from None
        planted.customers.setdefault(check, set()).update(customers)
        if "identifier" in row:
            planted.variants.setdefault(check, {}).setdefault(row["identifier"], set()).update(customers)
    return planted


def review_checks(found: Mapping[str, set[Check]], planted: Planted) -> list[CheckReview]:
    """`found`: each screened customer -> the checks that stopped them."""
    screened = set(found)
    reviews = []
    for check in PLANTED_AS.values():
        hits = {customer for customer, checks in found.items() if check in checks}
        mine = planted.customers.get(check, set()) & screened
        variants = {name: PlantedFound(planted=len(members & screened), found=len(members & hits))
                    for name, members in sorted(planted.variants.get(check, {}).items())}
        reviews.append(CheckReview(check=check, screened=len(screened), hits=len(hits), planted=len(mine),
                                   planted_found=len(mine & hits),
                                   recall=len(mine & hits) / len(mine) if mine else None,
                                   precision=len(mine & hits) / len(hits) if hits else None, by_variant=variants))
    return reviews
