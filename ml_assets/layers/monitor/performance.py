"""Realized performance: predictions scored against the labels once they have arrived.

A day's metric on ~900 flights is noisy (ROC AUC moves by about +-0.02 from sampling alone), so
each day is judged on the pooled predictions of the trailing `window_days` days ending on it.

Two expectations bound that window, and a day is degraded only beyond both:
- chance on the holdout: the worst window the champion's holdout makes likely (a day-block
  bootstrap, `layers/evaluate/variability.py`), minus `tolerance`;
- the production gap: a 14-day holdout cannot show how the world moves after it (on flights one
  champion's 7-day AUC ranged 0.60 to 0.83 over four months of 2013 with nothing wrong but the
  weather), so once `history_days` earlier days have been judged, the `quantile` of how far their
  windows fell below their champion's holdout metric is subtracted from this champion's.
Either way an ordinary window fails with probability about `quantile`; a shifted world (a new
route mix, broken features) falls far below both.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from ml_assets.core.metrics import higher_is_better
from ml_assets.core.spec import DatasetSpec
from ml_assets.core.sql import create_tables, render, rewrite_window
from ml_assets.layers.evaluate.metrics import metric_value

SQL = Path(__file__).parent / "sql"


@dataclass(frozen=True)
class DayPerformance:
    day: dt.date
    labelled_rows: int
    trailing_rows: int
    daily_value: float | None
    trailing_value: float | None
    model_versions: list[str]
    bound: float | None = None  # the degradation bound the trailing value was judged against
    degraded: bool = False


@dataclass(frozen=True)
class Expectation:
    """What the champion promised: its holdout metric and its expected worst window."""

    metric: str
    holdout: float  # the primary metric on the champion's evaluation holdout
    expected_worst: float  # the bootstrap's worst likely window (the holdout metric if unknown)
    tolerance: float
    quantile: float
    history_days: int
    window_days: int


@dataclass(frozen=True)
class JudgedDay:
    """A day of monitoring history: what was realized and what its champion had promised."""

    day: dt.date
    trailing_value: float
    holdout_value: float


def _metric(frame: pd.DataFrame, task: str, metric: str, threshold: float) -> float | None:
    if len(frame) == 0:
        return None
    value = metric_value(frame["_label"], frame["score"], task, metric, threshold)
    return None if math.isnan(value) else float(value)


def worse(value: float, bound: float, metric: str) -> bool:
    """`value` is beyond `bound` in the metric's bad direction."""
    return value < bound if higher_is_better(metric) else value > bound


def degradation_bound(
    expectation: Expectation, history: Sequence[JudgedDay], day: dt.date
) -> tuple[float, int]:
    """The bound for `day`, and how many earlier judged days the production gap used.

    Only days whose windows end before `day`'s window starts count, so an episode of bad days
    cannot widen its own margin.
    """
    e = expectation
    sign = 1.0 if higher_is_better(e.metric) else -1.0
    by_chance = e.expected_worst - sign * e.tolerance
    cutoff = day - dt.timedelta(days=e.window_days)
    shortfalls = [sign * (h.holdout_value - h.trailing_value) for h in history if h.day <= cutoff]
    if len(shortfalls) < e.history_days:
        return by_chance, len(shortfalls)
    gap = max(e.tolerance, float(np.quantile(shortfalls, 1 - e.quantile)))
    from_history = e.holdout - sign * gap
    loosest = min if sign > 0 else max
    return loosest(by_chance, from_history), len(shortfalls)


def judged_history(
    conn: duckdb.DuckDBPyConnection, spec: DatasetSpec, before: dt.date, metric: str
) -> list[JudgedDay]:
    """Earlier judged days of `<ds>.performance` (with their champion's holdout metric)."""
    ensure_monitor_tables(conn, spec)
    rows = conn.execute(
        f"SELECT day, trailing_value, holdout_value FROM {spec.names.table('performance')} "
        "WHERE day < ? AND metric = ? AND trailing_value IS NOT NULL "
        "AND holdout_value IS NOT NULL ORDER BY day",
        [before, metric],
    ).fetchall()
    return [JudgedDay(d, float(t), float(h)) for d, t, h in rows]


def realized_performance(
    conn: duckdb.DuckDBPyConnection,
    spec: DatasetSpec,
    start: dt.date,
    end: dt.date,
    *,
    expectation: Expectation,
    known_by: dt.datetime,
    min_rows: int = 1,
    threshold: float = 0.5,
) -> list[DayPerformance]:
    """Per day of [start, end]: the day's and the trailing window's metric, and a verdict.

    Days are judged in order, each one adding to the history the next ones are judged with.
    """
    metric, window_days = expectation.metric, expectation.window_days
    sql = render(
        SQL / "labelled_predictions.sql",
        predictions_table=spec.names.table("predictions"),
        features_table=spec.names.table("features"),
    )
    first = start - dt.timedelta(days=window_days - 1)
    frame = conn.execute(sql, {"start": first, "end": end, "known_by": known_by}).df()
    frame["_partition_date"] = pd.to_datetime(frame["_partition_date"]).dt.date
    history = judged_history(conn, spec, start, metric)
    out = []
    day = start
    while day <= end:
        today = frame[frame["_partition_date"] == day]
        trailing = frame[
            (frame["_partition_date"] > day - dt.timedelta(days=window_days))
            & (frame["_partition_date"] <= day)
        ]
        # Too few labelled rows: the metric's own noise would read as degradation.
        value = (
            _metric(trailing, spec.label.kind, metric, threshold)
            if len(trailing) >= min_rows
            else None
        )
        bound, _ = degradation_bound(expectation, history, day)
        out.append(
            DayPerformance(
                day=day,
                labelled_rows=len(today),
                trailing_rows=len(trailing),
                daily_value=_metric(today, spec.label.kind, metric, threshold),
                trailing_value=value,
                model_versions=sorted(today["model_version"].unique().tolist()),
                bound=bound,
                degraded=value is not None and worse(value, bound, metric),
            )
        )
        if value is not None:
            history.append(JudgedDay(day, value, expectation.holdout))
        day += dt.timedelta(days=1)
    return out


def write_performance(
    conn: duckdb.DuckDBPyConnection,
    spec: DatasetSpec,
    days: list[DayPerformance],
    *,
    expectation: Expectation,
    run_id: str,
) -> None:
    """Replace the window's rows of `<ds>.performance` in one transaction."""
    table = spec.names.table("performance")
    ensure_monitor_tables(conn, spec)
    rows = [
        (
            d.day,
            d.labelled_rows,
            d.trailing_rows,
            expectation.metric,
            d.daily_value,
            d.trailing_value,
            expectation.expected_worst,
            d.degraded,
            d.model_versions,
            run_id,
            expectation.holdout,
            d.bound,
        )
        for d in days
    ]
    if not days:
        return
    with rewrite_window(conn, [table], days[0].day, days[-1].day, column="day"):
        conn.executemany(
            f"INSERT INTO {table} (day, labelled_rows, trailing_rows, metric, daily_value, "
            "trailing_value, reference_value, degraded, model_versions, dagster_run_id, "
            "holdout_value, bound) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )


def ensure_monitor_tables(conn: duckdb.DuckDBPyConnection, spec: DatasetSpec) -> None:
    create_tables(
        conn,
        SQL / "tables.sql",
        drift_table=spec.names.table("drift"),
        performance_table=spec.names.table("performance"),
    )
