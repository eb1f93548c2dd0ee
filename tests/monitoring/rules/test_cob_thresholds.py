"""COB ages most loans in SQL, trusting that between two of `state_thresholds()` only a plain loan's DPD moves."""

from datetime import date
from types import SimpleNamespace

import pytest

from services.monitoring.delinquency import service as delinquency
from services.monitoring.loans.products import POLICIES


@pytest.mark.parametrize("product", [p.value for p in POLICIES])
def test_a_plain_loans_bucket_class_and_stage_change_only_at_a_threshold(product):
    loan = SimpleNamespace(product=product, classification="normal", restructured_on=None, override_class=None,
                           hardship_on=None, hardship_until=None)
    thresholds = set(delinquency.state_thresholds())
    day = date(2030, 6, 30)
    previous = delinquency.assess(loan, 0, day)
    for dpd in range(1, 2000):
        state = delinquency.assess(loan, dpd, day)
        reported = (state.bucket, state.loan_class, state.stage)
        if reported != (previous.bucket, previous.loan_class, previous.stage):
            assert dpd in thresholds, f"{product}: the state changes at {dpd} DPD, not a threshold"
        previous = state
