"""Realized performance: predictions scored against the labels once they have arrived.

A day's metric on ~900 flights is noisy (ROC AUC moves by about +-0.02 from sampling alone), so
each day is judged on the pooled predictions of the trailing `window_days` days ending on it,
against the champion's metric on its evaluation holdout.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd

from ml_assets.core.metrics import higher_is_better
from ml_assets.core.spec import DatasetSpec
from ml_assets.core.sql import create_tables, render, rewrite_window
from ml_assets.layers.evaluate.metrics import evaluate_predictions

SQL = Path(__file__).parent / "sql"


@dataclass(frozen=True)
class DayPerformance:
    day: dt.date
    labelled_rows: int
    trailing_rows: int
    daily_value: float | None
    trailing_value: float | None
    degraded: bool
    model_versions: list[str]


def _metric(frame: pd.DataFrame, task: str, metric: str, threshold: float) -> float | None:
    if len(frame) == 0:
        return None
    value = evaluate_predictions(frame["_label"], frame["score"], task, threshold).values[metric]
    return None if math.isnan(value) else float(value)


def is_degraded(value: float | None, reference: float, metric: str, tolerance: float) -> bool:
    """Worse than the reference by more than the tolerance, in the metric's own direction."""
    if value is None:
        return False
    return (
        value < reference - tolerance if higher_is_better(metric) else value > reference + tolerance
    )


def realized_performance(
    conn: duckdb.DuckDBPyConnection,
    spec: DatasetSpec,
    start: dt.date,
    end: dt.date,
    *,
    metric: str,
    reference: float,
    tolerance: float,
    window_days: int,
    known_by: dt.datetime,
    min_rows: int = 1,
    threshold: float = 0.5,
) -> list[DayPerformance]:
    """Per day of [start, end]: the day's and the trailing window's metric, and a verdict."""
    sql = render(
        SQL / "labelled_predictions.sql",
        predictions_table=spec.names.table("predictions"),
        features_table=spec.names.table("features"),
    )
    first = start - dt.timedelta(days=window_days - 1)
    frame = conn.execute(sql, {"start": first, "end": end, "known_by": known_by}).df()
    frame["_partition_date"] = pd.to_datetime(frame["_partition_date"]).dt.date
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
        out.append(
            DayPerformance(
                day=day,
                labelled_rows=len(today),
                trailing_rows=len(trailing),
                daily_value=_metric(today, spec.label.kind, metric, threshold),
                trailing_value=value,
                degraded=is_degraded(value, reference, metric, tolerance),
                model_versions=sorted(today["model_version"].unique().tolist()),
            )
        )
        day += dt.timedelta(days=1)
    return out


def write_performance(
    conn: duckdb.DuckDBPyConnection,
    spec: DatasetSpec,
    days: list[DayPerformance],
    *,
    metric: str,
    reference: float,
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
            metric,
            d.daily_value,
            d.trailing_value,
            reference,
            d.degraded,
            d.model_versions,
            run_id,
        )
        for d in days
    ]
    if not days:
        return
    with rewrite_window(conn, [table], days[0].day, days[-1].day, column="day"):
        conn.executemany(f"INSERT INTO {table} VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)


def ensure_monitor_tables(conn: duckdb.DuckDBPyConnection, spec: DatasetSpec) -> None:
    create_tables(
        conn,
        SQL / "tables.sql",
        drift_table=spec.names.table("drift"),
        performance_table=spec.names.table("performance"),
    )
