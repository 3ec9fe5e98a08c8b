"""Drift thresholds calibrated on the reference's own days: ordinary days pass, real shifts fail."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from ml_assets.layers.monitor.calibration import calibrate, calibrated
from ml_assets.layers.monitor.drift import compute_drift

NUMERIC, CATEGORICAL = ["temp", "rate"], ["weekday"]


def days_like_weather(n_days: int, rows: int, seed: int, offset: float = 0.0) -> pd.DataFrame:
    """Each day has its own level (like a day's weather), so one day differs from the window."""
    rng = np.random.default_rng(seed)
    frames = []
    start = dt.date(2024, 1, 1)
    for d in range(n_days):
        level = rng.normal(0, 1.0)
        frames.append(
            pd.DataFrame(
                {
                    "_partition_date": start + dt.timedelta(days=d),
                    "temp": rng.normal(level + offset, 0.5, rows),
                    "rate": rng.beta(2, 5, rows),
                    "weekday": str(d % 7),
                    "score": rng.beta(2, 5, rows),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def test_an_ordinary_day_passes_and_a_shifted_day_fails() -> None:
    reference = days_like_weather(60, 300, seed=1)
    calibration = calibrate(reference, NUMERIC, CATEGORICAL, p_value=0.01, quantile=0.99)
    assert calibration.days == 60
    assert calibration.methods["temp"] == "wasserstein"
    # A day's temperature level alone is far beyond Evidently's 0.1 between days of the window.
    assert calibration.bounds["temp"] > 0.1

    ordinary = days_like_weather(1, 300, seed=7)
    raw = compute_drift(reference, ordinary, NUMERIC, CATEGORICAL, 0.01, score="score")
    assert raw.columns["temp"].drifted  # Evidently's fixed threshold: "drifted" every day
    judged = calibrated(raw, calibration, expected=["weekday"])
    assert not judged.columns["temp"].drifted and not judged.columns["rate"].drifted
    assert judged.columns["temp"].threshold == calibration.bounds["temp"]
    # weekday is one value per day: it drifts, but as declared expected it is not in the share.
    assert judged.share_drifted == 0.0

    shifted = days_like_weather(1, 300, seed=7, offset=6.0)
    judged = calibrated(
        compute_drift(reference, shifted, NUMERIC, CATEGORICAL, 0.01, score="score"),
        calibration,
        expected=["weekday"],
    )
    assert judged.columns["temp"].drifted and judged.share_drifted == 0.5


def test_calibration_never_loosens_a_stable_column_below_evidently() -> None:
    rng = np.random.default_rng(3)
    stable = pd.DataFrame(
        {
            "_partition_date": np.repeat(
                [dt.date(2024, 1, 1) + dt.timedelta(days=d) for d in range(30)], 400
            ),
            "temp": rng.normal(0, 1, 12_000),
            "rate": rng.normal(0, 1, 12_000),
            "weekday": "1",
        }
    )
    calibration = calibrate(stable, NUMERIC, CATEGORICAL, p_value=0.01, quantile=0.99, score=None)
    assert calibration.bounds["temp"] < 0.1  # identical days: tiny spread
    moved = stable.head(400).assign(temp=lambda f: f.temp + 0.2)
    judged = calibrated(compute_drift(stable, moved, NUMERIC, CATEGORICAL, 0.01), calibration)
    assert judged.columns["temp"].threshold == 0.1 and judged.columns["temp"].drifted


def test_a_one_value_per_day_column_is_found_and_not_counted() -> None:
    # weekday holds one value per reference day: a day can only say which weekday it is.
    reference = days_like_weather(60, 300, seed=1)
    calibration = calibrate(reference, NUMERIC, CATEGORICAL, p_value=0.01, quantile=0.99)
    assert calibration.day_constant == ("weekday",)
    ordinary = days_like_weather(1, 300, seed=7)
    judged = calibrated(
        compute_drift(reference, ordinary, NUMERIC, CATEGORICAL, 0.01, score="score"), calibration
    )
    assert "weekday" in judged.expected
    assert judged.share_drifted == 0.0
    # A column that varies within days (temp) is judged as before.
    assert "temp" not in calibration.day_constant
