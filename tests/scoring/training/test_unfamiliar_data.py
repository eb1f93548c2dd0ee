"""What a risk analyst trying the pipeline on a book of their own runs into first: column names that are not
identifiers, targets that are not clean 0/1 or good/bad, rare categories, and input errors on the command line."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from services.scoring.training import MODEL_FAMILIES
from services.scoring.training.dataset import load_dataset
from services.scoring.training.flows import build_model
from services.scoring.training.models import Scaling
from services.scoring.training.runtime import feeds_from_rows, make_session
from services.scoring.training.split import split_rows

from .conftest import synthetic_loans


@pytest.mark.parametrize("family", MODEL_FAMILIES)
def test_columns_named_with_punctuation_are_the_onnx_inputs(family: str) -> None:
    """As in "Give Me Some Credit" (NumberOfTime30-59DaysPastDueNotWorse): the graph is fed by the raw names."""
    names = {"debt_ratio": "NumberOfTime30-59 (ratio)", "employment": "employment/status", "region": "1st region"}
    loans = synthetic_loans(n=800).drop(columns="application_date").rename(columns=names)
    ds = load_dataset(loans, "status", good="repaid")
    parts, _ = split_rows(ds.y, 0)
    model = build_model(family, ds, parts, Scaling(), seed=0)
    session = make_session(model.onnx)
    assert [i.name for i in session.get_inputs()] == model.features
    out = session.run(["pd"], feeds_from_rows(model.schema, [{"NumberOfTime30-59 (ratio)": 0.9}]))[0]
    assert np.all(np.isfinite(out)) and model.parity_max_abs_diff <= 1e-5
