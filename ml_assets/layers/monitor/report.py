"""Drift of a window, day by day on the full data, and one Evidently report for humans."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa

from ml_assets.core.spec import DatasetSpec, MonitoringSection
from ml_assets.core.sql import ident, render, rewrite_window
from ml_assets.layers.monitor.calibration import Calibration, calibrated
from ml_assets.layers.monitor.drift import DriftResult, compute_drift, prepare
from ml_assets.layers.monitor.evidently_report import (
    EvidentlyOutcome,
    disagreements,
    evidently_report,
)
from ml_assets.layers.monitor.performance import ensure_monitor_tables

SQL = Path(__file__).parent / "sql"


@dataclass(frozen=True)
class WindowDrift:
    days: dict[dt.date, DriftResult]
    window: DriftResult | None  # all days of the window pooled (what the Evidently report shows)
    evidently: EvidentlyOutcome | None
    disagreements: list[str]

    def worst_day(self) -> tuple[dt.date, DriftResult] | None:
        if not self.days:
            return None
        return max(self.days.items(), key=lambda kv: (kv[1].share_drifted, kv[0]))


def reference_frame(
    conn: duckdb.DuckDBPyConnection,
    spec: DatasetSpec,
    columns: list[str],
    start: dt.date,
    end: dt.date,
) -> pd.DataFrame:
    sql = render(
        SQL / "reference_features.sql",
        columns=", ".join(ident(c) for c in columns),
        features_table=spec.names.table("features"),
    )
    return conn.execute(sql, {"start": start, "end": end}).df()


def current_frame(
    conn: duckdb.DuckDBPyConnection,
    spec: DatasetSpec,
    columns: list[str],
    start: dt.date,
    end: dt.date,
) -> pd.DataFrame:
    sql = render(
        SQL / "current_features.sql",
        feature_columns=", ".join(f"f.{ident(c)}" for c in columns),
        features_table=spec.names.table("features"),
        predictions_table=spec.names.table("predictions"),
    )
    frame = conn.execute(sql, {"start": start, "end": end}).df()
    frame["_partition_date"] = pd.to_datetime(frame["_partition_date"]).dt.date
    return frame


def window_drift(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    numeric: list[str],
    categorical: list[str],
    monitoring: MonitoringSection,
    *,
    report_path: Path | None,
    seed: int,
    calibration: Calibration | None = None,
) -> WindowDrift:
    """Per-day drift on every row, judged against the reference's own spread (`calibration`);
    the pooled window, with Evidently's thresholds, for the Evidently report and agreement."""
    # Every day is tested against the same reference: sort and count it once.
    prepared = prepare(reference, [*numeric, "score"], categorical)
    days = {
        day: calibrated(
            compute_drift(
                prepared,
                group,
                numeric,
                categorical,
                monitoring.drift_p_value,
                drift_share=monitoring.drift_share_warn,
                score="score",
            ),
            calibration,
            monitoring.expected_drift,
        )
        for day, group in current.groupby("_partition_date", sort=True)
    }
    if current.empty:
        return WindowDrift(days, None, None, [])
    pooled = compute_drift(
        prepared,
        current,
        numeric,
        categorical,
        monitoring.drift_p_value,
        drift_share=monitoring.drift_share_warn,
        score="score",
    )
    if report_path is None or not wants_evidently(monitoring, days.values(), pooled):
        return WindowDrift(days, pooled, None, [])
    outcome = evidently_report(
        reference,
        current,
        numeric,
        categorical,
        report_path,
        sample_rows=monitoring.evidently_sample_rows,
        seed=seed,
        p_value=monitoring.drift_p_value,
        drift_share=monitoring.drift_share_warn,
        score="score",
    )
    return WindowDrift(days, pooled, outcome, disagreements(pooled, outcome))


def wants_evidently(
    monitoring: MonitoringSection, days: Iterable[DriftResult], pooled: DriftResult
) -> bool:
    """`monitoring.evidently_report`: render always, never, or when a day drifted.

    "Drifted" is the calibrated per-day verdict the checks use: a day at or over
    `drift_share_warn`, or a day whose scores drifted. Not the pooled window: it is judged with
    Evidently's fixed thresholds, which a month against a 90-day window exceeds every time (9 of 9
    flights months of 2013), so rendering on it meant rendering always (~4 s a window here)."""
    if monitoring.evidently_report != "on_drift":
        return monitoring.evidently_report == "always"
    return any(
        d.share_drifted >= monitoring.drift_share_warn
        or (d.prediction is not None and d.prediction.drifted)
        for d in days
    )


def write_drift(
    conn: duckdb.DuckDBPyConnection,
    spec: DatasetSpec,
    drift: WindowDrift,
    start: dt.date,
    end: dt.date,
    *,
    reference: tuple[str, str],
    model_version: str,
    run_id: str,
) -> None:
    """Replace the window's rows of `<ds>.drift` in one transaction."""
    table = spec.names.table("drift")
    rows = []
    for day, result in drift.days.items():
        frame = result.to_frame()
        for rec in frame.to_dict("records"):
            rows.append(
                (
                    day,
                    rec["column"],
                    rec["method"],
                    rec["score"],
                    rec["threshold"],
                    bool(rec["drifted"]),
                    bool(rec["is_prediction"]),
                    result.share_drifted,
                    reference[0],
                    reference[1],
                    model_version,
                    run_id,
                )
            )
    ensure_monitor_tables(conn, spec)
    with rewrite_window(conn, [table], start, end, column="day"):
        if rows:
            # One INSERT from Arrow columns: `executemany` costs about a millisecond a row in
            # DuckDB (a year's replay writes some 7,000 rows). Arrow keeps None as NULL and NaN
            # as NaN, as the parameters did (a pandas frame would turn None into NaN).
            frame = pa.table(
                {f"c{i}": pa.array(list(col)) for i, col in enumerate(zip(*rows, strict=True))}
            )
            conn.register("_drift_rows", frame)
            try:
                conn.execute(f"INSERT INTO {table} SELECT * FROM _drift_rows")
            finally:
                conn.unregister("_drift_rows")
