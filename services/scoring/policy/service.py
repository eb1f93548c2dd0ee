"""Decision policy: score -> grade -> decision, suggested limit and rate adjustment (from settings), and the
bounds every approval keeps: the product's amount, term and rate bands, the grade's limit, the amount asked for,
and the credit committee above a threshold."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from services.scoring.settings import GradeBand, ProductBand, ScoringSettings, SecurityRule
from shared.errors import field_problem

# Warnings of the input contract (scores/contract.py): an answer carrying one is never approved by the policy alone.
CONTRACT_WARNINGS = frozenset({"unseen_category", "missing_value"})


@dataclass(frozen=True)
class Treatment:
    grade: str
    decision: str
    suggested_limit: Decimal
    rate_adjustment_bps: int
    # Why the policy sent to review an answer its grade would approve (the contract warnings' codes).
    held_for: tuple[dict[str, Any], ...] = ()


def band_for(settings: ScoringSettings, score: float) -> GradeBand:
    # Bands are sorted from the highest floor down; below every floor means the lowest band.
    return next((band for band in settings.grades if score >= band.min_score), settings.grades[-1])


def grade_band(settings: ScoringSettings, grade: str) -> GradeBand:
    return next((band for band in settings.grades if band.grade == grade), settings.grades[-1])


def treatment(settings: ScoringSettings, score: float, requested: Decimal | None = None,
              warnings: list[dict[str, Any]] | None = None) -> Treatment:
    """The suggested limit is the grade's ceiling, or the amount asked for when that is lower. An approval with an
    input-contract warning becomes a review, the warnings its reasons."""
    band = band_for(settings, score)
    limit = band.max_limit if band.decision != "decline" else Decimal("0.00")
    if requested is not None:
        limit = min(limit, requested)
    decision, held = band.decision, ()
    if decision == "approve":
        held = tuple(w for w in warnings or () if w.get("code") in CONTRACT_WARNINGS)
        if held:
            decision = "review"
    return Treatment(band.grade, decision, limit.quantize(Decimal("0.01")), band.rate_adjustment_bps, held)


def product_band(settings: ScoringSettings, product: str, field: str = "body.product") -> ProductBand:
    band = settings.products.get(str(product))
    if band is None:
        raise field_problem(field, f"{product} is not offered (the decision policy has no band for it)")
    return band


def check_application(settings: ScoringSettings, product: str, amount: Decimal, term_months: int) -> None:
    """What is asked for must lie in the product's bands: 422 naming the field otherwise."""
    band = product_band(settings, product)
    if not band.min_amount <= amount <= band.max_amount:
        raise field_problem("body.amount", f"a {product} is between {band.min_amount} and {band.max_amount}")
    if not band.min_term_months <= term_months <= band.max_term_months:
        raise field_problem("body.term_months", f"a {product} runs {band.min_term_months} to "
                                                f"{band.max_term_months} months")


def needs_committee(settings: ScoringSettings, *, product: str, requested: Decimal, grade: str, amount: Decimal,
                    field: str, by_committee: bool) -> bool:
    """Whether approving `amount` still needs the credit committee; 422 naming `field` when no one may approve it:
    above the amount asked for, above the product's maximum, or above the grade's limit where the committee may not
    lift it."""
    band = product_band(settings, product)
    if amount > requested:
        raise field_problem(field, f"may not exceed the amount asked for, {requested}")
    if amount > band.max_amount:
        raise field_problem(field, f"may not exceed the {product} maximum of {band.max_amount}")
    above_grade = amount > grade_band(settings, grade).max_limit
    if above_grade and not settings.committee_may_exceed_grade_limit:
        raise field_problem(field, f"may not exceed grade {grade}'s limit of {grade_band(settings, grade).max_limit}")
    return not by_committee and (above_grade or amount > approval_threshold(settings, grade))


def approval_threshold(settings: ScoringSettings, grade: str) -> Decimal:
    """Up to what amount an approval needs no committee: the fast lane's limit for its grades, else the threshold."""
    if grade in settings.fast_lane_grades:
        return max(settings.fast_lane_limit, settings.committee_threshold)
    return settings.committee_threshold


def auto_approvable(settings: ScoringSettings, amount: Decimal, grade: str) -> bool:
    """The policy alone approves no more than the committee threshold (the fast lane's limit for its grades)."""
    return amount <= approval_threshold(settings, grade)


def missing_security(settings: ScoringSettings, grade: str, *, collateral: str | None,
                     guarantor: str | None) -> tuple[SecurityRule, str] | None:
    """The grade's security rule and why it is not met, or None when the grade needs none or it is offered."""
    rule = settings.security_by_grade.get(grade)
    if rule is None:
        return None
    met = {"collateral": bool(collateral), "guarantor": bool(guarantor),
           "collateral_or_guarantor": bool(collateral or guarantor)}[rule.requires]
    if met:
        return None
    return rule, f"grade {grade} requires {rule.requires.replace('_', ' ')}; none was offered"


def check_rate(settings: ScoringSettings, product: str, rate: Decimal, field: str) -> None:
    band = product_band(settings, product)
    if not band.min_rate <= rate <= band.max_rate:
        raise field_problem(field, f"a {product} is booked at an annual rate between {band.min_rate} and "
                                   f"{band.max_rate}; {rate} is outside")


def high_risk(settings: ScoringSettings, grade: str) -> bool:
    """At or below `education_at_or_below` in the grade order (bands best first): the customer is offered credit
    education or counselling."""
    order = [band.grade for band in settings.grades]
    floor = settings.education_at_or_below
    return floor in order and grade in order and order.index(grade) >= order.index(floor)
