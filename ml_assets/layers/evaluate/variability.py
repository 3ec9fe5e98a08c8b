"""How much the primary metric of a trailing window moves by chance, measured on the holdout.

Monitoring judges the champion on the pooled predictions of the trailing `window_days` days.
Delays move together within a day (weather, ground stops), so such a window's metric varies far
more than its row count suggests, and a point estimate from the holdout is not a bound. A day-
block bootstrap of the holdout (draw `window_days` of its days with replacement, pool their rows,
compute the metric) gives the distribution a window of that size would show if nothing changed;
its `quantile` in the worse direction is the expected worst, so a realized window beyond it is a
false alarm with probability about `quantile`.
"""

from __future__ import annotations

import math

import numpy as np

from ml_assets.core.metrics import higher_is_better
from ml_assets.layers.evaluate.metrics import metric_value


def expected_worst(
    y_true: np.ndarray,
    y_score: np.ndarray,
    days: np.ndarray,
    *,
    task: str,
    metric: str,
    threshold: float,
    window_days: int,
    quantile: float,
    draws: int = 200,
    seed: int = 0,
) -> float:
    """The `quantile` (worse side) of the metric over bootstrapped `window_days`-day windows."""
    unique = np.unique(days)
    by_day = [np.flatnonzero(days == d) for d in unique]
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(draws):
        picked = rng.integers(0, len(unique), size=window_days)
        rows = np.concatenate([by_day[i] for i in picked])
        value = metric_value(y_true[rows], y_score[rows], task, metric, threshold)
        if not math.isnan(value):
            values.append(value)
    if not values:
        return math.nan
    q = quantile if higher_is_better(metric) else 1 - quantile
    return float(np.quantile(values, q))
