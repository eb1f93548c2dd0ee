"""Decision policy: score -> grade -> decision, suggested limit and rate adjustment (from settings)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from services.scoring.settings import GradeBand, ScoringSettings


@dataclass(frozen=True)
class Treatment:
    grade: str
    decision: str
    suggested_limit: Decimal
    rate_adjustment_bps: int


def band_for(settings: ScoringSettings, score: float) -> GradeBand:
    # Bands are sorted from the highest floor down; below every floor means the lowest band.
    return next((band for band in settings.grades if score >= band.min_score), settings.grades[-1])


def treatment(settings: ScoringSettings, score: float, requested: Decimal | None = None) -> Treatment:
    """The suggested limit is the grade's ceiling, or the amount asked for when that is lower."""
    band = band_for(settings, score)
    limit = band.max_limit if band.decision != "decline" else Decimal("0.00")
    if requested is not None:
        limit = min(limit, requested)
    return Treatment(band.grade, band.decision, limit.quantize(Decimal("0.01")), band.rate_adjustment_bps)
