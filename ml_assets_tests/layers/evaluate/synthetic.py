"""Synthetic binary data with a known structure, and real models fitted on it.

`a` drives the label strongly, `c` (categorical) moderately, `b` is noise, `k` is constant;
`segment` is a slice column with one tiny segment. Seeds make every number reproducible.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from ml_assets.layers.evaluate.baseline import (
    BaselineReport,
    NaiveBaselines,
    baseline_skill,
    fit_baselines,
)
from ml_assets.layers.evaluate.metrics import Metrics

NUMERIC = ["a", "b", "k"]
CATEGORICAL = ["c"]
FEATURES = NUMERIC + CATEGORICAL


def binary_frame(n: int = 4_000, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    a = rng.normal(size=n)
    b = rng.normal(size=n)
    c = rng.choice(["x", "y", "z"], size=n)
    logit = 1.5 * a + 1.5 * (c == "z") - 1.0
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    segment = np.where(rng.random(n) < 0.5, "north", "south")
    segment[: max(1, n // 80)] = "tiny"
    return pd.DataFrame(
        {
            "a": a,
            "b": b,
            "k": 1.0,
            "c": c,
            "segment": segment,
            "leak": y + rng.normal(0, 0.01, n),
            "y": y,
        }
    )


def linear_pipeline(numeric: list[str], categorical: list[str]) -> Pipeline:
    # Shaped like the training layer's pipeline: imputers inside per-kind sub-pipelines.
    parts = []
    if numeric:
        num = Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())])
        parts.append(("numeric", num, numeric))
    if categorical:
        cat = Pipeline(
            [
                ("impute", SimpleImputer(strategy="constant", fill_value="__missing__")),
                ("onehot", OneHotEncoder(handle_unknown="ignore")),
            ]
        )
        parts.append(("categorical", cat, categorical))
    return Pipeline(
        [("pre", ColumnTransformer(parts)), ("model", LogisticRegression(max_iter=500))]
    )


def fit_linear(frame: pd.DataFrame, numeric: list[str], categorical: list[str]) -> Pipeline:
    return linear_pipeline(numeric, categorical).fit(frame[numeric + categorical], frame["y"])


def scores(model: Pipeline, frame: pd.DataFrame) -> np.ndarray:
    return model.predict_proba(frame[list(model.feature_names_in_)])[:, 1]


def constant_baselines(task: str, train_labels: np.ndarray) -> NaiveBaselines:
    """The naive baselines of a train split whose rows all fall on one weekday (Monday)."""
    labels = np.asarray(train_labels, dtype=float)
    return fit_baselines(task, [(1, labels.size, float(labels.mean()))])


def skill_of(metrics: Metrics, train_labels: np.ndarray, y_true: np.ndarray) -> BaselineReport:
    """The candidate's skill against the training-mean baseline (every row a Monday)."""
    b = constant_baselines(metrics.task, train_labels)
    return baseline_skill(metrics, b, np.asarray(y_true, dtype=float), np.ones(len(y_true)))
