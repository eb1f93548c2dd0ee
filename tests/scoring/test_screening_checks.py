"""The screening checks as pure functions: where each threshold starts to hit, and what stays clean."""

from datetime import date, timedelta
from decimal import Decimal

from services.scoring.screening import service
from services.scoring.screening.models import Check
from services.scoring.settings import ScoringSettings
from shared.clients.monitoring import FeedRow, PayerFacts

SETTINGS = ScoringSettings()
DAY = date(2026, 5, 1)


def row(days, amount, direction, kind, **extra):  # noqa: ANN001, ANN201
    # Monitoring sends a counterparty masked with its keyed hash: here the name stands for both.
    return FeedRow(booked_on=DAY + timedelta(days=days), amount=Decimal(amount), direction=direction, kind=kind,
                   counterparty_hash=extra.get("counterparty"), **extra)


def test_an_address_shared_with_one_other_household_is_not_a_hit_but_a_device_is():
    assert service.shared_identifiers({"address": (1, ["a"])}, SETTINGS) is None
    found = service.shared_identifiers({"address": (1, ["a"]), "device_id": (1, ["b"])}, SETTINGS)
    assert found.check == Check.SHARED_IDENTIFIERS and list(found.facts) == ["device_id"]


def test_a_payer_of_one_other_borrower_hits_only_within_one_estate():
    spread = PayerFacts(payer_account="****0777", payer_account_hash="h", other_borrowers=1, other_borrower_ids=["x"],
                        estates=["A", "B"])
    assert service.shared_payer([spread], SETTINGS) is None
    one_estate = spread.model_copy(update={"estates": ["A"]})
    assert service.shared_payer([one_estate], SETTINGS).facts["payers"][0]["same_estate"] is True


def test_salary_after_card_spend_is_no_cash_out_and_two_pairs_are_not_enough():
    salary = [row(0, "3000", "debit", "card_purchase", merchant=f"m{i}") for i in range(3)] + \
             [row(1, "3000", "credit", "salary")] * 3
    assert service.card_cash_out(salary, SETTINGS) is None
    two = [row(i * 3, "3000", "debit", "card_purchase", merchant=f"m{i}") for i in range(2)] + \
          [row(i * 3 + 1, "2950", "credit", "transfer") for i in range(2)]
    assert service.card_cash_out(two, SETTINGS) is None
    # The same two pairs at one merchant among five purchases: concentrated, a hit.
    concentrated = [row(i * 3, "3000", "debit", "card_purchase", merchant="one") for i in range(5)] + two[2:]
    assert service.card_cash_out(concentrated, SETTINGS).facts["top_merchant_share"] == "1.0000"


def test_many_small_inflows_kept_on_the_account_are_not_fundraising():
    inflows = [row(0, "500", "credit", "transfer", counterparty=f"p{i}") for i in range(10)]
    assert service.illegal_fundraising(inflows, SETTINGS) is None
    spent = inflows + [row(2, "1000", "debit", "transfer", counterparty=f"o{i}") for i in range(3)]
    assert service.illegal_fundraising(spent, SETTINGS) is None  # 40% to the top two: spread, not funnelled
    funnelled = inflows + [row(2, "4000", "debit", "transfer", counterparty="boss")]
    assert service.illegal_fundraising(funnelled, SETTINGS).facts["funnelled_share"] == "0.8000"


def test_fundraising_that_ended_before_the_latest_weeks_is_still_found():
    """The scheme in the feed's first month, then two months of ordinary salary: any window of the feed counts."""
    scheme = [row(0, "3000", "credit", "transfer", counterparty=f"p{i}") for i in range(12)]
    scheme += [row(5, "30000", "debit", "transfer", counterparty="boss")]
    later = [row(day, "8000", "credit", "salary", counterparty="payroll") for day in (40, 70)]
    found = service.illegal_fundraising(scheme + later, SETTINGS)
    assert found is not None and found.facts["distinct_payers"] == 12
    assert found.facts["from"] == scheme[0].booked_on.isoformat()
