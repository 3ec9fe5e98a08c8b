"""Drift thresholds calibrated on the reference window's own day-to-day variability.

Evidently's fixed thresholds (a normed Wasserstein distance of 0.1) call a feature drifted on
most ordinary days of seasonal data: the weather, schedules and rolling delay rates of any one
day differ that much from a 90-day window (measured on flights 2013: 71-74% of features "drift"
on an ordinary day). So each column's threshold is measured instead: every reference day is
tested against the whole reference window with the same statistic, and the column drifts on a
monitored day only when its statistic is beyond the `drift_quantile` of those reference days (and
beyond Evidently's own threshold, so a stable column keeps Evidently's verdict). With quantile q
an ordinary day exceeds a column's threshold with probability about 1 - q.

A column that holds one value per day in every reference day (the weekday, a holiday flag) cannot
be judged day by day: each day is "all Mondays" against a window of all weekdays, so the day's
statistic only says which value the day has. Such columns are found in the reference and, like
`expected_drift`, reported but not counted.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ml_assets.layers.monitor.drift import ColumnDrift, DriftResult, compute_drift, prepare

DISTANCE_METHODS = frozenset({"wasserstein", "jensenshannon"})
P_VALUE_METHODS = frozenset({"ks", "chisquare", "z"})


@dataclass(frozen=True)
class Calibration:
    """Per column (features and the score): the statistic's method and its calibrated bound."""

    quantile: float
    days: int  # reference days measured
    methods: Mapping[str, str]
    bounds: Mapping[str, float]  # a distance (drifted above) or a p-value (drifted below)
    day_constant: tuple[str, ...] = ()  # one value per reference day: not judged per day

    def to_json(self) -> dict[str, object]:
        return {
            "quantile": self.quantile,
            "days": self.days,
            "columns": {
                c: {"method": self.methods[c], "bound": round(float(b), 6)}
                for c, b in self.bounds.items()
            },
            "day_constant": list(self.day_constant),
        }


def calibrate(
    reference: pd.DataFrame,
    numeric: Sequence[str],
    categorical: Sequence[str],
    *,
    p_value: float,
    quantile: float,
    day_column: str = "_partition_date",
    score: str | None = "score",
) -> Calibration:
    """Each reference day against the whole reference: the `quantile` of each column's statistic."""
    per_column: dict[str, list[float]] = {}
    methods: dict[str, str] = {}
    days = 0
    # Every day is tested against the same window: sort and count the window once.
    whole = prepare(reference, [*numeric, *([score] if score else [])], categorical)
    for _, day in reference.groupby(day_column, sort=True):
        result = compute_drift(whole, day, numeric, categorical, p_value, score=score)
        days += 1
        for column, drift in _tested(result).items():
            if drift.method not in DISTANCE_METHODS | P_VALUE_METHODS:
                continue
            methods[column] = drift.method
            per_column.setdefault(column, []).append(drift.score)
    bounds = {
        c: float(
            np.quantile(v, quantile)
            if methods[c] in DISTANCE_METHODS
            else np.quantile(v, 1 - quantile)
        )
        for c, v in per_column.items()
    }
    return Calibration(quantile, days, methods, bounds, day_constant(reference, day_column))


def day_constant(reference: pd.DataFrame, day_column: str = "_partition_date") -> tuple[str, ...]:
    """Columns with at most one distinct value within each reference day, and several overall."""
    if reference.empty:
        return ()
    columns = [c for c in reference.columns if c != day_column and not c.startswith("_")]
    per_day = reference.groupby(day_column, sort=False)[columns].nunique(dropna=True).max()
    overall = reference[columns].nunique(dropna=True)
    return tuple(c for c in columns if per_day[c] <= 1 and overall[c] > 1)


def _tested(result: DriftResult) -> dict[str, ColumnDrift]:
    out = dict(result.columns)
    if result.prediction is not None:
        out[result.prediction.column] = result.prediction
    return out


def judge(drift: ColumnDrift, calibration: Calibration | None) -> ColumnDrift:
    """The column's verdict against its calibrated bound, never looser than Evidently's own."""
    if calibration is None or drift.column not in calibration.bounds:
        return drift
    if calibration.methods[drift.column] != drift.method:
        return drift  # a different test on this day (e.g. a small sample): keep its own verdict
    bound = calibration.bounds[drift.column]
    if drift.method in DISTANCE_METHODS:
        threshold = max(drift.threshold, bound)
        drifted = drift.score >= threshold
    else:
        threshold = min(drift.threshold, bound)
        drifted = drift.score < threshold
    return dataclasses.replace(drift, threshold=threshold, drifted=bool(drifted))


def calibrated(
    result: DriftResult, calibration: Calibration | None, expected: Sequence[str] = ()
) -> DriftResult:
    """`result` re-judged per column; `expected` and day-constant columns are reported but not
    in the share."""
    prediction = judge(result.prediction, calibration) if result.prediction else None
    constant = calibration.day_constant if calibration is not None else ()
    return dataclasses.replace(
        result,
        columns={c: judge(d, calibration) for c, d in result.columns.items()},
        prediction=prediction,
        expected=tuple(dict.fromkeys([*expected, *constant])),
    )
