"""Batch scoring with per-row lineage: every prediction names the model and data behind it."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd

from ml_assets.core.faults import fault_point
from ml_assets.core.model import Predictor
from ml_assets.core.spec import DatasetSpec
from ml_assets.core.sql import create_tables, ident, render, rewrite_window
from ml_assets.layers.score.explanations import explain_rows, insert_explanations

SQL = Path(__file__).parent / "sql"


@dataclass(frozen=True)
class ScoreWrite:
    rows: int
    rows_per_day: dict[dt.date, int]
    score_mean: float | None
    positive_rate: float | None = None  # share of positive decisions (binary)
    threshold: float | None = None
    explained: int = 0  # rows written to `<ds>.explanations` (0 when explain_top_k is 0)


def features_frame(
    conn: duckdb.DuckDBPyConnection,
    spec: DatasetSpec,
    features: list[str],
    start: dt.date,
    end: dt.date,
) -> pd.DataFrame:
    sql = render(
        SQL / "features_window.sql",
        features_table=spec.names.table("features"),
        feature_columns=", ".join(ident(c) for c in features),
    )
    return conn.execute(sql, {"start": start, "end": end}).df()


def score_window(
    conn: duckdb.DuckDBPyConnection,
    spec: DatasetSpec,
    predictor: Predictor,
    start: dt.date,
    end: dt.date,
    *,
    run_id: str,
    scored_at: dt.datetime,
) -> ScoreWrite:
    """Replace the window's predictions and their explanations in one transaction, one row of
    each per feature row.

    A binary row's decision is its score against the threshold stored with the version
    (`predictor.threshold`), never one from the spec: the version decides as it was evaluated.
    Explanations (`explanations.py`) keep `scoring.explain_top_k` contributions per row; with 0,
    the window's old explanations are still removed, so none can outlive its prediction.
    """
    ref = predictor.ref
    frame = features_frame(conn, spec, list(ref.features), start, end)
    scores = pd.Series(
        predictor.predict(frame[list(ref.features)]) if len(frame) else [],
        index=frame.index,
        dtype="float64",
    )
    threshold = predictor.threshold if ref.task == "binary" else None
    if ref.task == "binary" and threshold is None:
        raise ValueError(f"{ref.uri} is binary but has no decision threshold")
    out = pd.DataFrame(
        {
            "_key": frame["_key"],
            "_event_time": frame["_event_time"],
            "_partition_date": frame["_partition_date"],
            "score": scores,
            "decision": pd.Series(None, index=frame.index, dtype="boolean")
            if threshold is None
            else (scores >= threshold).astype("boolean"),
            "decision_threshold": pd.Series(threshold, index=frame.index, dtype="float64"),
            "model_name": ref.registered_name,
            "model_version": str(ref.version),
            "mlflow_run_id": ref.run_id,
            "feature_partition": frame["_partition_date"],
            "dagster_run_id": run_id,
            "scored_at": scored_at,
        }
    )
    k = spec.scoring.explain_top_k
    explained = (
        explain_rows(
            predictor.model,
            ref,
            predictor.schema,
            frame,
            k,
            spec.scoring.xgboost_contributions,
        )
        if k and len(frame)
        else None
    )
    table, explanations = spec.names.table("predictions"), spec.names.table("explanations")
    create_tables(
        conn, SQL / "tables.sql", predictions_table=table, explanations_table=explanations
    )
    with rewrite_window(conn, [table, explanations], start, end):
        conn.register("_scored", out)
        conn.execute(f"INSERT INTO {table} BY NAME SELECT * FROM _scored")
        fault_point("scoring.predictions_written")
        conn.unregister("_scored")
        if explained is not None:
            insert_explanations(conn, explanations, explained, ref, run_id=run_id)
    fault_point("scoring.committed")
    per_day = out.groupby("_partition_date").size()
    return ScoreWrite(
        rows=len(out),
        rows_per_day={pd.Timestamp(d).date(): int(n) for d, n in per_day.items()},
        score_mean=float(out["score"].mean()) if len(out) else None,
        positive_rate=float(out["decision"].mean()) if threshold is not None and len(out) else None,
        threshold=threshold,
        explained=0 if explained is None else len(explained.rows),
    )


def unscored(
    conn: duckdb.DuckDBPyConnection, spec: DatasetSpec, start: dt.date, end: dt.date
) -> list[tuple[dt.date, int, list[str]]]:
    sql = render(
        SQL / "unscored.sql",
        features_table=spec.names.table("features"),
        predictions_table=spec.names.table("predictions"),
    )
    return [tuple(r) for r in conn.execute(sql, {"start": start, "end": end}).fetchall()]
