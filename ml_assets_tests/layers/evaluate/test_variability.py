"""The expected worst trailing window: a day-block bootstrap of the holdout."""

from __future__ import annotations

import numpy as np

from ml_assets.layers.evaluate.metrics import evaluate_predictions
from ml_assets.layers.evaluate.variability import expected_worst


def clustered(days: int, rows: int, day_noise: float, seed: int = 0):
    """Scores with a day-level shock shared by every row of the day (like a storm)."""
    rng = np.random.default_rng(seed)
    day = np.repeat(np.arange(days), rows)
    signal = rng.normal(0, 1, days * rows)
    shock = np.repeat(rng.normal(0, day_noise, days), rows)
    y = (signal + shock + rng.normal(0, 1, days * rows) > 0.5).astype(float)
    score = 1 / (1 + np.exp(-(signal - 0.5)))
    return y, score, day


def test_expected_worst_is_below_the_pooled_metric_and_wider_for_clustered_days() -> None:
    kwargs = {"task": "binary", "metric": "roc_auc", "threshold": 0.5, "quantile": 0.01}
    y, s, d = clustered(14, 400, day_noise=1.0)
    pooled = evaluate_predictions(y, s, "binary").values["roc_auc"]
    worst7 = expected_worst(y, s, d, window_days=7, **kwargs)
    worst3 = expected_worst(y, s, d, window_days=3, **kwargs)
    assert worst7 < pooled and worst3 < worst7  # fewer days: more chance variation
    y0, s0, d0 = clustered(14, 400, day_noise=0.0)
    calm = evaluate_predictions(y0, s0, "binary").values["roc_auc"]
    assert calm - expected_worst(y0, s0, d0, window_days=7, **kwargs) < pooled - worst7
    # Lower-is-better metrics take the other tail.
    loss = expected_worst(y, s, d, window_days=7, **{**kwargs, "metric": "log_loss"})
    assert loss > evaluate_predictions(y, s, "binary").values["log_loss"]
