"""Reproducible train / validation / test split (random stratified, or out-of-time)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from .models import DataError, SplitInfo

TEST_SIZE = 0.30
VALIDATION_SIZE = 0.15  # of all rows; used for model selection before the final refit
MIN_ROWS_PER_CLASS = 4  # the fewest with which both stratified splits leave each part both classes


@dataclass
class SplitIndices:
    train: np.ndarray
    validation: np.ndarray
    test: np.ndarray

    @property
    def fit(self) -> np.ndarray:
        """Rows the final models are refitted on (train + validation)."""
        return np.sort(np.concatenate([self.train, self.validation]))


def split_rows(
    y: np.ndarray,
    seed: int,
    dates: pd.Series | None = None,
    test_size: float = TEST_SIZE,
    validation_size: float = VALIDATION_SIZE,
) -> tuple[SplitIndices, SplitInfo]:
    n = len(y)
    idx = np.arange(n)
    if dates is None:
        counts = np.bincount(y, minlength=2)
        if counts.min() < MIN_ROWS_PER_CLASS:
            rarer = "bad" if counts[1] < counts[0] else "good"
            raise DataError(f"only {counts.min()} {rarer} rows: train, validation and test each need some")
        rest, test = train_test_split(idx, test_size=test_size, stratify=y, random_state=seed)
        train, val = train_test_split(
            rest, test_size=validation_size / (1.0 - test_size), stratify=y[rest], random_state=seed
        )
        parts = SplitIndices(np.sort(train), np.sort(val), np.sort(test))
        return parts, SplitInfo("stratified", seed, len(train), len(val), len(test))

    # Oldest rows train, newest test, validation in between: the models are judged on a later period.
    order = np.argsort(dates.to_numpy(), kind="stable")
    n_test = int(round(n * test_size))
    n_val = int(round(n * validation_size))
    train, val, test = order[: n - n_test - n_val], order[n - n_test - n_val : n - n_test], order[n - n_test :]
    for name, part in (("train", train), ("validation", val), ("test", test)):
        if len(np.unique(y[part])) < 2:
            raise DataError(f"out-of-time {name} period has only one class")
    ranges = {
        name: [str(dates.iloc[part].min().date()), str(dates.iloc[part].max().date())]
        for name, part in (("train", train), ("validation", val), ("test", test))
    }
    parts = SplitIndices(np.sort(train), np.sort(val), np.sort(test))
    info = SplitInfo("out_of_time", seed, len(train), len(val), len(test), dates.name, ranges)
    return parts, info
