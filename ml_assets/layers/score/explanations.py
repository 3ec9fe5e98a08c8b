"""Per-prediction explanations for audit: each scored row's top-K feature contributions.

So an auditor can ask "why did row X get score S" of the warehouse, every prediction gets one
row in `<ds>.explanations`: the K features that moved the raw model output most (by
|contribution|), each with the value the model saw, plus the base value, the sum of the other
features' contributions and the raw margin they add up to. For XGBoost, its path attributions
by default (`scoring.xgboost_contributions: saabas`: exact TreeSHAP costs ~25x more per row) or
TreeSHAP (`tree_shap`); coefficient x standardized input for the linear pipeline
(`layers/evaluate/explain.py`).

Units: the raw model's margin, before calibration: log-odds for a binary model (the served score
of a calibrated version is a monotone map of sigmoid(raw_margin), not the margin itself), label
units for regression. `margin_units` says which on every row.

Vectorised: the contributions come as one (rows x features) matrix, the top K per row from
`np.argpartition`, and DuckDB folds the picks into one list per row (`sql/explanations_insert.sql`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import duckdb
import numpy as np
import pandas as pd

from ml_assets.core.matrix import FeatureSchema, model_matrix
from ml_assets.core.model import ModelRef
from ml_assets.core.sql import render
from ml_assets.layers.evaluate.explain import Contributions, contributions

SQL = Path(__file__).parent / "sql"
LINEAR_METHOD = "coef_x_standardized"
UNITS = {"binary": "log_odds", "regression": "label"}


@dataclass(frozen=True)
class Explained:
    """Explanations of n scored rows as frames DuckDB reads: one row per scored row (`rows`),
    one per (row, rank) pick (`top`), and the lookups of feature names and category levels."""

    rows: pd.DataFrame
    top: pd.DataFrame
    features: pd.DataFrame
    levels: pd.DataFrame
    method: str
    units: str


def top_k(values: np.ndarray, k: int) -> np.ndarray:
    """Column indices of each row's `k` largest |values|, largest first (rows x k)."""
    k = min(k, values.shape[1])
    magnitude = np.abs(values)
    if k < values.shape[1]:
        picked = np.argpartition(-magnitude, k - 1, axis=1)[:, :k]
    else:
        picked = np.broadcast_to(np.arange(values.shape[1]), values.shape).copy()
    order = np.argsort(-np.take_along_axis(magnitude, picked, axis=1), axis=1, kind="stable")
    return np.take_along_axis(picked, order, axis=1)


def _value_matrices(X: pd.DataFrame, schema: FeatureSchema) -> tuple[np.ndarray, np.ndarray]:
    """The model matrix as numbers (NaN for categorical columns and missing values) and as level
    codes (-1 for numeric columns and missing levels), so picks are gathered without a loop."""
    numbers = np.full(X.shape, np.nan)
    codes = np.full(X.shape, -1, dtype="int32")
    for j, column in enumerate(X.columns):
        if column in schema.categorical:
            codes[:, j] = X[column].cat.codes.to_numpy()
        else:
            numbers[:, j] = X[column].to_numpy(dtype="float64")
    return numbers, codes


def explain_rows(
    model: object,
    ref: ModelRef,
    schema: FeatureSchema,
    frame: pd.DataFrame,
    k: int,
    xgboost_method: Literal["tree_shap", "saabas"] = "tree_shap",
) -> Explained:
    """The top-`k` contributions of every row of `frame` (features plus `_key` and
    `_partition_date`) under the registered model `model` of `ref`; an XGBoost model's by
    `xgboost_method` (`scoring.xgboost_contributions`)."""
    X = model_matrix(frame, schema)
    approximate = ref.family == "xgboost" and xgboost_method == "saabas"
    found: Contributions = contributions(model, ref.family, X, approximate)
    if found.features != tuple(X.columns):
        X = X[list(found.features)]
    picked = top_k(found.values, k)
    n, kept = picked.shape
    chosen = np.take_along_axis(found.values, picked, axis=1)
    numbers, codes = _value_matrices(X, schema)
    margin = found.margin
    rows = pd.DataFrame(
        {
            "row": np.arange(n),
            "_key": frame["_key"].to_numpy(),
            "_partition_date": frame["_partition_date"].to_numpy(),
            "base_margin": found.base,
            "raw_margin": margin,
            "other_contribution": found.values.sum(axis=1) - chosen.sum(axis=1),
        }
    )
    top = pd.DataFrame(
        {
            "row": np.repeat(np.arange(n), kept),
            "rank": np.tile(np.arange(1, kept + 1), n),
            "feature_index": picked.ravel(),
            "contribution": chosen.ravel(),
            "value": np.take_along_axis(numbers, picked, axis=1).ravel(),
            "code": np.take_along_axis(codes, picked, axis=1).ravel(),
        }
    )
    features = pd.DataFrame({"feature_index": np.arange(X.shape[1]), "feature": list(X.columns)})
    levels = pd.DataFrame(
        [
            (j, code, level)
            for j, column in enumerate(X.columns)
            if column in schema.categorical
            for code, level in enumerate(X[column].cat.categories)
        ],
        columns=["feature_index", "code", "level"],
    ).astype({"feature_index": "int64", "code": "int32", "level": "object"})
    method = xgboost_method if ref.family == "xgboost" else LINEAR_METHOD
    return Explained(rows, top, features, levels, method, UNITS[ref.task])


def insert_explanations(
    conn: duckdb.DuckDBPyConnection,
    table: str,
    explained: Explained,
    ref: ModelRef,
    *,
    run_id: str,
) -> None:
    """Insert one explanation row per explained row; the caller owns the transaction (the
    predictions' window rewrite), so both tables land together or not at all."""
    frames = {
        "_explained_rows": explained.rows,
        "_explained_top": explained.top,
        "_explained_features": explained.features,
        "_explained_levels": explained.levels,
    }
    for name, df in frames.items():
        conn.register(name, df)
    try:
        conn.execute(
            render(SQL / "explanations_insert.sql", explanations_table=table),
            {
                "model_name": ref.registered_name,
                "model_version": str(ref.version),
                "method": explained.method,
                "margin_units": explained.units,
                "run_id": run_id,
            },
        )
    finally:
        for name in frames:
            conn.unregister(name)


def stored_explanation(
    conn: duckdb.DuckDBPyConnection,
    table: str,
    key: str,
    day: dt.date | None = None,
    *,
    model_version: str | None = None,
) -> dict[str, Any] | None:
    """The explanation stored for the prediction of `key` (on `day`, else its newest; by
    `model_version`, else whichever scored it), as a dict; None when there is none."""
    cur = conn.execute(
        render(SQL / "explanation_by_key.sql", explanations_table=table),
        {"key": key, "day": day, "model_version": model_version},
    )
    row = cur.fetchone()
    return None if row is None else dict(zip([d[0] for d in cur.description], row, strict=True))
