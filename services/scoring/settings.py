"""Settings of the scoring service (`LOANCRM_SCORING_*`): policy, input tolerance, hot-loading, hashing."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

Decision = Literal["approve", "review", "decline"]


# The most recent scores one stability report reads: the rows come back in full (inputs included), so this bounds
# its cost (a second or two on SQLite).
MAX_PSI_WINDOW = 50_000


class GradeBand(BaseModel):
    """Scores at or above `min_score` (and below the next band up) get this grade and treatment."""

    grade: str = Field(min_length=1, max_length=8)
    min_score: float
    decision: Decision
    max_limit: Decimal = Field(ge=0, decimal_places=2)
    rate_adjustment_bps: int


# Scaling 600 points at 50:1, PDO 20: the German book's average applicant (30% bad) sits near 510 points.
DEFAULT_GRADES = [
    GradeBand(grade="A", min_score=560, decision="approve", max_limit=Decimal("200000.00"), rate_adjustment_bps=-50),
    GradeBand(grade="B", min_score=535, decision="approve", max_limit=Decimal("100000.00"), rate_adjustment_bps=0),
    GradeBand(grade="C", min_score=510, decision="review", max_limit=Decimal("50000.00"), rate_adjustment_bps=100),
    GradeBand(grade="D", min_score=485, decision="review", max_limit=Decimal("20000.00"), rate_adjustment_bps=250),
    GradeBand(grade="E", min_score=float("-inf"), decision="decline", max_limit=Decimal("0.00"),
              rate_adjustment_bps=0),
]


class SecurityRule(BaseModel):
    """What a grade must offer as security, and what happens to an application that offers none."""

    requires: Literal["collateral", "guarantor", "collateral_or_guarantor"]
    without: Literal["review", "decline"] = "review"


# Weak grades lend against security: C with collateral or a guarantor (referred to review without), D only with
# collateral (declined without). E is declined by its band anyway.
DEFAULT_SECURITY = {"C": SecurityRule(requires="collateral_or_guarantor", without="review"),
                    "D": SecurityRule(requires="collateral", without="decline")}


class ProductBand(BaseModel):
    """What may be lent under one product: amount and term asked for and approved, and the annual rate booked."""

    min_amount: Decimal = Field(gt=0, decimal_places=2)
    max_amount: Decimal = Field(gt=0, decimal_places=2)
    min_term_months: int = Field(ge=1)
    max_term_months: int = Field(ge=1)
    min_rate: Decimal = Field(ge=0, le=1)
    max_rate: Decimal = Field(ge=0, le=1)

    @model_validator(mode="after")
    def _ordered(self) -> ProductBand:
        if self.min_amount > self.max_amount or self.min_term_months > self.max_term_months \
                or self.min_rate > self.max_rate:
            raise ValueError("each band's minimum must not exceed its maximum")
        return self


def _band(amounts: tuple[str, str], terms: tuple[int, int], rates: tuple[str, str]) -> ProductBand:
    return ProductBand(min_amount=Decimal(amounts[0]), max_amount=Decimal(amounts[1]), min_term_months=terms[0],
                       max_term_months=terms[1], min_rate=Decimal(rates[0]), max_rate=Decimal(rates[1]))


# Every default rate (base 4.35% plus a grade's adjustment, 3.85% to 6.85%) lies in every band.
DEFAULT_PRODUCTS = {
    "personal_loan": _band(("1000.00", "500000.00"), (3, 84), ("0.03", "0.24")),
    "mortgage": _band(("50000.00", "10000000.00"), (60, 360), ("0.025", "0.12")),
    "business_loan": _band(("10000.00", "5000000.00"), (6, 120), ("0.03", "0.20")),
    "credit_card": _band(("500.00", "200000.00"), (1, 60), ("0.03", "0.36")),
}


class ScoringSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LOANCRM_SCORING_", extra="ignore")

    # JSON list of bands, e.g. LOANCRM_SCORING_GRADES='[{"grade":"A","min_score":560,"decision":"approve",
    # "max_limit":"200000","rate_adjustment_bps":-50}, ...]'; the lowest band should have min_score -inf.
    grades: list[GradeBand] = Field(default_factory=lambda: list(DEFAULT_GRADES), min_length=1)
    # JSON object of product -> band, e.g. LOANCRM_SCORING_PRODUCTS='{"personal_loan": {"min_amount": "1000",
    # "max_amount": "500000", "min_term_months": 3, "max_term_months": 84, "min_rate": "0.03", "max_rate": "0.24"},
    # ...}'; a product missing from it cannot be applied for.
    products: dict[str, ProductBand] = Field(default_factory=lambda: dict(DEFAULT_PRODUCTS))
    # An approval above this amount needs a member of the credit committee (a second, higher approval); below it a
    # loan officer or risk analyst decides. The policy never approves above it on its own.
    committee_threshold: Decimal = Field(Decimal("100000.00"), gt=0, decimal_places=2)
    # The credit committee may approve above the grade's limit (never above the product's maximum nor the amount
    # asked for); false makes the grade's limit a hard 422 for everybody.
    committee_may_exceed_grade_limit: bool = True
    # Security by grade, e.g. LOANCRM_SCORING_SECURITY_BY_GRADE='{"D": {"requires": "collateral", "without":
    # "decline"}}'; a grade not named lends without.
    security_by_grade: dict[str, SecurityRule] = Field(default_factory=lambda: dict(DEFAULT_SECURITY))
    # The fast lane: the policy alone approves these grades up to fast_lane_limit (instead of the committee
    # threshold), and a reviewer's approval of them needs no committee up to it.
    fast_lane_grades: list[str] = Field(default_factory=lambda: ["A"])
    fast_lane_limit: Decimal = Field(Decimal("200000.00"), gt=0, decimal_places=2)
    # Fees disclosed (and charged) with a loan, a flat amount by product, e.g. '{"mortgage": "1500.00"}'.
    fees_by_product: dict[str, Annotated[Decimal, Field(ge=0, decimal_places=2)]] = Field(default_factory=dict)
    # An applicant graded at or below this grade gets a credit education or counselling task for their officer in
    # the customer service; empty turns it off.
    education_at_or_below: str = "D"
    # A numeric input may lie this fraction of the training range beyond the observed min/max; a feature never
    # negative in training must not be negative (a hard rule).
    range_tolerance: float = Field(0.5, ge=0)
    # Every process re-reads which model is champion at most this often (0 = on every request).
    champion_refresh_seconds: float = Field(2.0, ge=0)
    top_reasons: int = Field(4, ge=1, le=20)
    max_batch_rows: int = Field(10_000, ge=1)
    # Inputs stored with a score keep these fields only as HMAC-SHA256 digests (identifiers, sex and marital
    # status, nationality). JSON list, e.g. LOANCRM_SCORING_PERSONAL_FIELDS='["national_id","phone"]'.
    personal_fields: list[str] = Field(default_factory=lambda: [
        "personal_status_and_sex", "foreign_worker", "national_id", "name", "phone", "email", "date_of_birth"])
    # Empty means a key generated once into <var_dir>/scoring_hash.key (mode 0600).
    hash_key: SecretStr = SecretStr("")
    # A draft model is refused validation below this test AUC or above this ONNX parity error.
    min_test_auc: float = Field(0.6, ge=0, le=1)
    max_parity_error: float = Field(1e-5, gt=0)
    # A disbursed loan's annual rate, unless given: this base plus the grade's rate adjustment.
    base_annual_rate: Decimal = Field(Decimal("0.0435"), ge=0, le=1)
    # SQLite only: NORMAL (in WAL mode) skips the fsync on every commit, so a stored score costs ~0.3 ms, not
    # ~3 ms; a commit survives a process crash but the last ones may be lost on power loss. FULL restores
    # fsync-per-commit. PostgreSQL is not affected.
    sqlite_synchronous: Literal["NORMAL", "FULL"] = "NORMAL"
    # Recent scores compared with the training sample for PSI.
    psi_window: int = Field(5000, ge=10, le=MAX_PSI_WINDOW)

    # Screening at submission and before disbursement (README "Screening before the money leaves").
    # Shared identifiers: a hit when the national ID, phone, device id or payout account is held by at least
    # this many other customers; an address by at least `screening_address_min_others` (a family shares one).
    screening_identifier_min_others: int = Field(1, ge=1)
    screening_address_min_others: int = Field(2, ge=1)
    # Shared payer: one payer account repaid at least this many other borrowers' loans; in one housing estate
    # (every repayment it made named the same estate) at least `screening_payer_min_others_same_estate`.
    screening_payer_min_others: int = Field(2, ge=1)
    screening_payer_min_others_same_estate: int = Field(1, ge=1)
    # The feed rows looked at: the last this many days before the business date.
    screening_feed_days: int = Field(90, ge=1, le=400)
    # Card cash-out: a card purchase followed within `cashout_days` by a credit (not salary, not a repayment) or a
    # cash withdrawal within `cashout_tolerance` of its amount is a cash-out pair; a hit at `cashout_min_pairs`
    # pairs, or at one pair when the top `cashout_top_merchants` merchants take at least `cashout_merchant_share`
    # of at least `cashout_min_card_purchases` card purchases.
    screening_cashout_days: int = Field(1, ge=0, le=30)
    screening_cashout_tolerance: Decimal = Field(Decimal("0.05"), ge=0, le=1)
    screening_cashout_min_pairs: int = Field(3, ge=1)
    screening_cashout_top_merchants: int = Field(2, ge=1)
    screening_cashout_merchant_share: Decimal = Field(Decimal("0.80"), gt=0, le=1)
    screening_cashout_min_card_purchases: int = Field(5, ge=1)
    # Illegal fundraising: at least `fundraising_min_payers` distinct payers each sent inflows no larger than
    # `fundraising_small_inflow` within `fundraising_days`, and at least `fundraising_out_share` of their total
    # left (debits) within `fundraising_days` to at most `fundraising_max_out_accounts` counterparties.
    screening_fundraising_days: int = Field(30, ge=1, le=400)
    screening_fundraising_small_inflow: Decimal = Field(Decimal("5000.00"), gt=0, decimal_places=2)
    screening_fundraising_min_payers: int = Field(10, ge=2)
    screening_fundraising_out_share: Decimal = Field(Decimal("0.70"), gt=0, le=1)
    screening_fundraising_max_out_accounts: int = Field(2, ge=1)

    @field_validator("grades")
    @classmethod
    def _ordered(cls, bands: list[GradeBand]) -> list[GradeBand]:
        return sorted(bands, key=lambda b: b.min_score, reverse=True)
