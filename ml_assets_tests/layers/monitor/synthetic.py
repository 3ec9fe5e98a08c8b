"""Seeded tables for the drift tests: known distributions, known shifts, known gaps."""

from __future__ import annotations

import numpy as np
import pandas as pd

NUMERIC = ["normal", "skewed", "count", "binary"]
CATEGORICAL = ["colour", "flag"]
BASE_MIX = {"red": 0.5, "green": 0.3, "blue": 0.2}


def frame(
    rows: int,
    seed: int,
    *,
    shift: float = 0.0,
    mix: dict[str, float] | None = None,
    score_power: float = 1.0,
    nan_rate: float = 0.0,
) -> pd.DataFrame:
    """`shift` moves the means of `normal` and `skewed` (in reference standard deviations);
    `mix` replaces the colour distribution (new keys are categories unseen in the reference);
    `score_power` > 1 pushes the prediction score towards 0; `nan_rate` blanks that share of
    `normal` and of `colour`."""
    rng = np.random.default_rng(seed)
    mix = mix or BASE_MIX
    out = pd.DataFrame(
        {
            "normal": rng.normal(10 + shift * 2.0, 2.0, rows),
            "skewed": rng.exponential(1.0, rows) + shift,  # exponential(1) has std 1
            "count": rng.integers(0, 4, rows).astype(float),  # 4 values: count-based tests
            "binary": rng.integers(0, 2, rows).astype(float),
            "colour": rng.choice(list(mix), rows, p=list(mix.values())),
            "flag": rng.choice(["yes", "no"], rows, p=[0.3, 0.7]),
            "score": rng.uniform(0.0, 1.0, rows) ** score_power,
        }
    )
    if nan_rate:
        out.loc[rng.random(rows) < nan_rate, "normal"] = np.nan
        out.loc[rng.random(rows) < nan_rate, "colour"] = None
    return out
