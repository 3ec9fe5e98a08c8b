"""The two model families, their search grids, predictions and metrics.

XGBoost is the expected winner on tabular data; the linear pipeline is the baseline that keeps it
honest (a tree model that cannot beat a logistic regression points at a feature problem). Both
take the `model_matrix` frame, so they see identical columns.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import log_loss, mean_absolute_error, roc_auc_score, root_mean_squared_error
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from xgboost import XGBClassifier, XGBModel, XGBRegressor

from ml_assets.core.matrix import FeatureSchema, to_text_categoricals
from ml_assets.core.model import Family, Task
from ml_assets.layers.train.dask_engine import active_engine

# One thread: training shares the machine with DuckDB and other steps, and XGBoost's OpenMP
# threads busy-wait; on a loaded 2-core box 2 threads took 3-4x longer than 1 (measured: 12-17 s
# vs 4 s for the same fit). Results are identical for 1 or 2 threads (hist is deterministic).
THREADS = 1

# Fixed grids; a search draws `training.search.budget` points from them with a seeded RNG.
GRIDS: dict[str, dict[str, list[Any]]] = {
    "xgboost": {
        "n_estimators": [100, 200, 300],
        "max_depth": [3, 4, 6],
        "learning_rate": [0.05, 0.1, 0.2],
        "min_child_weight": [1, 5, 20],
        "subsample": [0.8, 1.0],
        "colsample_bytree": [0.7, 1.0],
        "reg_lambda": [1.0, 10.0],
    },
    "linear_binary": {"C": [0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0]},
    "linear_regression": {"alpha": [0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0]},
}


def grid(family: Family, task: Task) -> list[dict[str, Any]]:
    """Every point of the family's grid, in a fixed order."""
    axes = GRIDS["xgboost"] if family == "xgboost" else GRIDS[f"linear_{task}"]
    names = sorted(axes)
    return [
        dict(zip(names, values, strict=True))
        for values in itertools.product(*(axes[n] for n in names))
    ]


@dataclass(frozen=True)
class Axis:
    """One parameter's range for a sampling search (Optuna): the box the grid spans."""

    low: float
    high: float
    integer: bool
    step: int | None = None  # integers only; None with `log`
    log: bool = False


def space(family: Family, task: Task) -> dict[str, Axis]:
    """The family's search box, derived from its grid so both searches cover the same ranges.

    Integers keep the grid's common spacing (n_estimators 100..300 by 100); an axis spanning a
    factor of 10 or more is searched on a log scale (learning rates, penalties), where equal
    ratios matter rather than equal differences.
    """
    axes = GRIDS["xgboost"] if family == "xgboost" else GRIDS[f"linear_{task}"]
    out: dict[str, Axis] = {}
    for name in sorted(axes):
        values = sorted(axes[name])
        low, high = values[0], values[-1]
        log = low > 0 and high / low >= 10
        if all(isinstance(v, int) for v in values):
            step = (
                math.gcd(*(b - a for a, b in itertools.pairwise(values))) if len(values) > 1 else 1
            )
            out[name] = Axis(low, high, True, None if log else step, log)
        else:
            out[name] = Axis(float(low), float(high), False, None, log)
    return out


def make_model(
    family: Family, task: Task, params: dict[str, Any], schema: FeatureSchema, seed: int
):
    """An unfitted estimator for one parameter set."""
    if family == "xgboost":
        cls = XGBClassifier if task == "binary" else XGBRegressor
        extra = {"eval_metric": "logloss"} if task == "binary" else {}
        return cls(
            tree_method="hist",
            enable_categorical=True,
            max_cat_to_onehot=1,
            n_jobs=THREADS,
            random_state=seed,
            **extra,
            **params,
        )
    numeric = Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())])
    categorical = Pipeline(
        [
            ("impute", SimpleImputer(strategy="constant", fill_value="__missing__")),
            ("onehot", OneHotEncoder(handle_unknown="ignore")),
        ]
    )
    columns = ColumnTransformer(
        [
            ("numeric", numeric, list(schema.numeric)),
            ("categorical", categorical, list(schema.categorical)),
        ]
    )
    head = (
        LogisticRegression(max_iter=2000, random_state=seed, **params)
        if task == "binary"
        else Ridge(random_state=seed, **params)
    )
    return Pipeline([("columns", columns), ("model", head)])


def fit(model, X: pd.DataFrame, y: np.ndarray):
    engine = active_engine()  # `training.engine: dask` sends XGBoost fits to the cluster
    if engine is not None and isinstance(model, XGBModel):
        return engine.fit(model, X, y)
    if isinstance(model, Pipeline):
        # Linear models read categoricals as text; frozen levels already turned unseen values
        # into NULL, which the imputer maps to the `__missing__` level.
        X = to_text_categoricals(X)
    return model.fit(X, y)


def metrics(task: Task, y: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    """Binary: ROC AUC and log loss; regression: RMSE and MAE (plus the label mean for context)."""
    if task == "binary":
        if len(np.unique(y)) < 2:
            raise ValueError("ROC AUC needs both classes; this split has only one")
        return {
            "roc_auc": float(roc_auc_score(y, pred)),
            "log_loss": float(log_loss(y, np.clip(pred, 1e-15, 1 - 1e-15), labels=[0, 1])),
            "positive_rate": float(np.mean(y)),
        }
    return {
        "rmse": float(root_mean_squared_error(y, pred)),
        "mae": float(mean_absolute_error(y, pred)),
        "label_mean": float(np.mean(y)),
    }
