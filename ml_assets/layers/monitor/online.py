"""Online traffic under the monitoring layers: realized performance and score drift per day.

The batch `performance` and `drift_report` assets judge the batch predictions; the service's
rows are another population (whoever called, when they called, with the fields they had). Per
day and served model version this joins the ingested request log to what has arrived since:
the label (realized metric once labels are known, as `performance` computes it) and the batch
prediction of the same key by the same version (how many scored alike: the service computes the
features from the snapshot as of the request, batch scoring from the day's complete data, so a
difference is information, not an error). The day's online scores are tested for drift against
that version's batch scores over the trailing `REFERENCE_DAYS`, with the drift layer's test.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from ml_assets.core.spec import DatasetSpec
from ml_assets.core.sql import render, transaction
from ml_assets.layers.evaluate.metrics import metric_value
from ml_assets.layers.monitor.drift import numeric_drift
from ml_assets.layers.requests.ingest import ensure_tables

SQL = Path(__file__).parent / "sql"
REFERENCE_DAYS = 28
SAME_SCORE = 1e-9  # online and batch scores of one key by one version count as alike within it


@dataclass(frozen=True)
class OnlineDay:
    day: dt.date
    model_version: str
    rows: int
    labelled_rows: int
    metric: str
    metric_value: float | None
    batch_matched_rows: int
    batch_score_max_abs_diff: float | None
    reference_rows: int
    score_drift_method: str | None
    score_drift_score: float | None
    score_drifted: bool | None


def _metric(group: pd.DataFrame, spec: DatasetSpec) -> float | None:
    labelled = group[group["_label"].notna()]
    if labelled.empty or (spec.label.kind == "binary" and labelled["_label"].nunique() < 2):
        return None
    threshold = labelled["decision_threshold"].dropna()
    value = metric_value(
        labelled["_label"],
        labelled["score"],
        spec.label.kind,
        spec.evaluation.metric,
        float(threshold.iloc[0]) if len(threshold) else 0.5,
    )
    return None if math.isnan(value) else float(value)


def online_performance(
    conn: duckdb.DuckDBPyConnection,
    spec: DatasetSpec,
    start: dt.date,
    end: dt.date,
    *,
    known_by: dt.datetime,
    run_id: str,
) -> list[OnlineDay]:
    """Rewrite the days [start, end] of `<ds>.online_performance`; returns its rows."""
    names = spec.names
    ensure_tables(conn, spec)  # the request log's tables, empty if no service ever ran
    conn.execute(
        render(
            SQL / "online_performance_table.sql",
            performance_table=names.table("online_performance"),
        )
    )
    tables = {
        "requests_table": names.table("online_requests"),
        "features_table": names.table("features"),
        "predictions_table": names.table("predictions"),
    }
    frame = conn.execute(
        render(SQL / "online_labelled.sql", **tables),
        {"start": start, "end": end, "known_by": known_by},
    ).df()
    reference_sql = render(
        SQL / "online_reference_scores.sql", predictions_table=tables["predictions_table"]
    )
    out = []
    for (day, version), group in frame.groupby(["day", "model_version"], sort=True):
        day = pd.Timestamp(day).date()
        reference = conn.execute(
            reference_sql,
            {
                "version": version,
                "day": day,
                "reference_start": day - dt.timedelta(days=REFERENCE_DAYS - 1),
            },
        ).fetchnumpy()["score"]
        drift = (
            numeric_drift(
                "score",
                np.asarray(reference, dtype="float64"),
                group["score"].to_numpy(dtype="float64"),
                p_value=spec.monitoring.drift_p_value,
            )
            if len(reference)
            else None
        )
        batch = group[group["batch_score"].notna()]
        diff = (batch["score"] - batch["batch_score"]).abs()
        out.append(
            OnlineDay(
                day=day,
                model_version=str(version),
                rows=len(group),
                labelled_rows=int(group["_label"].notna().sum()),
                metric=spec.evaluation.metric,
                metric_value=_metric(group, spec),
                batch_matched_rows=int((diff <= SAME_SCORE).sum()),
                batch_score_max_abs_diff=float(diff.max()) if len(diff) else None,
                reference_rows=len(reference),
                score_drift_method=None if drift is None else drift.method,
                score_drift_score=None if drift is None else float(drift.score),
                score_drifted=None if drift is None else bool(drift.drifted),
            )
        )
    table = names.table("online_performance")
    rows = pd.DataFrame([asdict(d) for d in out], columns=list(OnlineDay.__dataclass_fields__))
    rows["dagster_run_id"] = run_id
    with transaction(conn):
        conn.execute(
            f"DELETE FROM {table} WHERE day BETWEEN $start AND $end", {"start": start, "end": end}
        )
        if len(rows):
            conn.register("_online_days", rows)
            conn.execute(f"INSERT INTO {table} BY NAME SELECT * FROM _online_days")
            conn.unregister("_online_days")
    return out
