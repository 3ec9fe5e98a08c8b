"""Where one prediction came from, end to end.

Given a prediction (dataset, entity key, day), walk back: model version -> MLflow run -> training
window and data version -> the feature row -> the validated row -> the raw row -> the source file
and its checksum. Every hop reads a recorded fact (a column or a registry tag), none is inferred.
Beside the chain, the prediction's explanation: why the model gave that score (its top feature
contributions, stored with the prediction; None for rows scored without one).

    python -m ml_assets.provenance flights "2013|7|31|UA|1454|LGA"
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from typing import Any

import duckdb

from ml_assets import settings
from ml_assets.core.sql import ident, table_exists
from ml_assets.layers.score.explanations import stored_explanation
from ml_assets.resources.mlflow_tracking import MlflowTracking


class ProvenanceError(LookupError):
    """A hop of the chain is missing; the message says which."""


def _one(conn: duckdb.DuckDBPyConnection, sql: str, params: list, what: str) -> dict[str, Any]:
    cur = conn.execute(sql, params)
    row = cur.fetchone()
    if row is None:
        raise ProvenanceError(f"no {what} for {params}")
    return dict(zip([d[0] for d in cur.description], row, strict=True))


def prediction_explanation(
    conn: duckdb.DuckDBPyConnection, dataset: str, key: str, day: dt.date, model_version: str
) -> dict[str, Any] | None:
    """The stored explanation of the prediction for `key` on `day` by `model_version`: its top
    contributions (a list of {rank, feature, value, contribution}), base and raw margin, in the
    raw model's margin units (`margin_units`: log-odds before calibration, or label units).

    None when there is none: rows scored before explanations existed or with
    `scoring.explain_top_k: 0`.
    """
    if not table_exists(conn, dataset, "explanations"):
        return None
    return stored_explanation(
        conn, f"{ident(dataset)}.explanations", key, day, model_version=model_version
    )


def prediction_provenance(
    conn: duckdb.DuckDBPyConnection,
    tracking: MlflowTracking,
    dataset: str,
    key: str,
    day: dt.date | None = None,
) -> dict[str, Any]:
    """The full lineage chain of the prediction for `key` (on `day`, else its newest)."""
    s = ident(dataset)
    pred = _one(
        conn,
        f"""SELECT _key, _event_time, _partition_date, score, model_name, model_version,
                   mlflow_run_id, feature_partition, dagster_run_id, scored_at
            FROM {s}.predictions WHERE _key = ? AND (? IS NULL OR _partition_date = ?)
            ORDER BY _partition_date DESC LIMIT 1""",
        [key, day, day],
        "prediction",
    )
    client = tracking.client()
    version = client.get_model_version(pred["model_name"], pred["model_version"])
    run = client.get_run(pred["mlflow_run_id"])
    features = _one(
        conn,
        f"""SELECT _partition_date, _label, _label_known_at, _run_id AS dagster_run_id, _featurized_at
            FROM {s}.features WHERE _key = ? AND _partition_date = ?""",
        [key, pred["feature_partition"]],
        "feature row",
    )
    validated = _one(
        conn,
        f"""SELECT _partition_date, _source_file, _source_checksum, _source_row,
                   _run_id AS dagster_run_id, _validated_at
            FROM {s}.validated WHERE _key = ? AND _partition_date = ?""",
        [key, pred["feature_partition"]],
        "validated row",
    )
    raw = _one(
        conn,
        f"""SELECT _partition_date, _source_file, _source_checksum, _source_row,
                   _run_id AS dagster_run_id, _ingested_at
            FROM {s}.raw WHERE _source_checksum = ? AND _source_row = ?""",
        [validated["_source_checksum"], validated["_source_row"]],
        "raw row",
    )
    source = _one(
        conn,
        f"""SELECT checksum, path, kind, format, rows, first_date, last_date, registered_at
            FROM {s}.source_files WHERE checksum = ?""",
        [raw["_source_checksum"]],
        "source file",
    )
    tags = version.tags
    return {
        "prediction": pred,
        "explanation": prediction_explanation(
            conn, dataset, key, pred["_partition_date"], pred["model_version"]
        ),
        "model": {
            "name": pred["model_name"],
            "version": pred["model_version"],
            "family": tags.get("family"),
            "training_dagster_run_id": tags.get("dagster_run_id"),
        },
        "mlflow_run": {
            "run_id": run.info.run_id,
            "parent_run_id": tags.get("mlflow_parent_run_id"),
            "params": dict(run.data.params),
            "metrics": dict(run.data.metrics),
        },
        "training_data": {
            "window": tags.get("train_window"),
            "data_version": tags.get("data_version"),
        },
        "features": features,
        "validated": validated,
        "raw": raw,
        "source_file": source,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset")
    parser.add_argument("key", help="the row's `_key`, e.g. 2013|7|31|UA|1454|LGA")
    parser.add_argument("--day", type=dt.date.fromisoformat, default=None)
    args = parser.parse_args(argv)
    with duckdb.connect(str(settings.warehouse_path()), read_only=True) as conn:
        chain = prediction_provenance(conn, MlflowTracking(), args.dataset, args.key, args.day)
    json.dump(chain, sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
