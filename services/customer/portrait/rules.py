"""The documented rules that turn portrait features into tiers, stages, flags and named segments.

Value tier (relationship value = assets + 12 × monthly income):
  platinum ≥ 1,000,000 or (≥ 500,000 and 3+ products); gold ≥ 300,000; silver ≥ 100,000; else standard.
Lifecycle stage, first match wins:
  lost (closed or erased) → prospect (no product) → new (tenure < 6 months) → dormant (no contact for a year)
  → declining (falling activity or satisfaction) → growing (tenure < 24 months) → mature.
Retention risk ("falling activity or satisfaction"): contacts in the last 90 days under half those of the 90
  before (with at least 2 before), or CSAT trend ≤ -1 point, or an NPS detractor (≤ 6) with a complaint in 12 months,
  or a churn-risk probability ≥ 0.5 from the last churn model run (services/customer/relationship/portfolio.py).
  Contacts are relationship contacts only: collection calls never count.
Credit risk (from monitoring's per-customer risk summary; the last known figures when it does not answer):
  credit hold: a loan past due now, more than 30 days past due in the last 12 months, or a loan classed below
  normal; also while monitoring has never answered for the customer (unknown is not clean). A customer on hold
  gets no new-credit offer and is left out of campaigns for credit products.
Segments bankers use:
  high_risk: latest grade D or E, 3+ complaints in 12 months, more than 30 days past due in the last 12 months,
  or a loan classed below normal;
  high_value: gold or platinum and not high risk;
  potential: standard or silver, tenure ≤ 24 months, not high risk, and grade A/B or income ≥ 15,000;
  retention_risk: the flag above.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from services.customer.portrait.models import SERIOUS_DPD, Lifecycle, Segment, ValueTier
from shared.clients.customer import CustomerStatus, lending_refusal

HIGH_RISK_GRADES = frozenset({"D", "E"})
CLEAN_CLASSES = frozenset({None, "normal"})
GOOD_GRADES = frozenset({"A", "B"})
_POTENTIAL_INCOME = Decimal("15000")


@dataclass(frozen=True)
class Features:
    closed: bool
    tenure_months: int
    products_held: int
    contacts_90d: int
    contacts_prior_90d: int
    days_since_last_contact: int | None
    csat_trend: float | None
    nps_latest: int | None
    complaints_12m: int
    monthly_income: Decimal | None
    assets: Decimal | None
    latest_grade: str | None
    # Monitoring's figures; None when it never answered for this customer.
    current_max_dpd: int | None = None
    max_dpd_12m: int | None = None
    worst_class: str | None = None
    # The churn-risk model's last probability (None: never scored).
    churn_risk: float | None = None


CHURN_FLAG_AT = 0.5


def credit_hold(current_max_dpd: int | None, max_dpd_12m: int | None, worst_class: str | None,
                status: str = CustomerStatus.ACTIVE, kyc_status: str | None = None) -> str | None:
    """Why no new credit may be offered, or None."""
    refusal = lending_refusal(status, kyc_status)  # as scoring and booking refuse them
    if refusal:
        return f"{refusal}: no new credit"
    if current_max_dpd is None or max_dpd_12m is None:
        return "credit record unknown: monitoring has not answered for this customer"
    if current_max_dpd > 0:
        return f"open delinquency: {current_max_dpd} days past due"
    if max_dpd_12m > SERIOUS_DPD:
        return f"{max_dpd_12m} days past due within the last 12 months"
    if worst_class not in CLEAN_CLASSES:
        return f"a loan classed {worst_class}"
    return None


def delinquent(f: Features) -> bool:
    return (f.max_dpd_12m or 0) > SERIOUS_DPD or f.worst_class not in CLEAN_CLASSES


def value_tier(f: Features) -> ValueTier:
    value = (f.assets or Decimal(0)) + 12 * (f.monthly_income or Decimal(0))
    if value >= 1_000_000 or (value >= 500_000 and f.products_held >= 3):
        return ValueTier.PLATINUM
    if value >= 300_000:
        return ValueTier.GOLD
    if value >= 100_000:
        return ValueTier.SILVER
    return ValueTier.STANDARD


def retention_risk(f: Features) -> bool:
    falling_activity = f.contacts_prior_90d >= 2 and f.contacts_90d * 2 < f.contacts_prior_90d
    falling_satisfaction = f.csat_trend is not None and f.csat_trend <= -1.0
    unhappy = f.nps_latest is not None and f.nps_latest <= 6 and f.complaints_12m > 0
    likely_to_leave = f.churn_risk is not None and f.churn_risk >= CHURN_FLAG_AT
    return falling_activity or falling_satisfaction or unhappy or likely_to_leave


def lifecycle_stage(f: Features) -> Lifecycle:
    silent_for_a_year = (f.days_since_last_contact is None and f.tenure_months >= 12) or (
        f.days_since_last_contact is not None and f.days_since_last_contact > 365)
    if f.closed:
        return Lifecycle.LOST
    if f.products_held == 0:
        return Lifecycle.PROSPECT
    if f.tenure_months < 6:
        return Lifecycle.NEW
    if silent_for_a_year:
        return Lifecycle.DORMANT
    if retention_risk(f):
        return Lifecycle.DECLINING
    return Lifecycle.GROWING if f.tenure_months < 24 else Lifecycle.MATURE


def segments(f: Features) -> list[Segment]:
    tier = value_tier(f)
    high_risk = f.latest_grade in HIGH_RISK_GRADES or f.complaints_12m >= 3 or delinquent(f)
    named = []
    if high_risk:
        named.append(Segment.HIGH_RISK)
    if tier in (ValueTier.GOLD, ValueTier.PLATINUM) and not high_risk:
        named.append(Segment.HIGH_VALUE)
    if (tier in (ValueTier.STANDARD, ValueTier.SILVER) and f.tenure_months <= 24 and not high_risk
            and (f.latest_grade in GOOD_GRADES or (f.monthly_income or 0) >= _POTENTIAL_INCOME)):
        named.append(Segment.POTENTIAL)
    if retention_risk(f):
        named.append(Segment.RETENTION_RISK)
    return named
