"""Load a registered model version as a `Predictor`: what evaluation and scoring call.

The model comes from the MLflow registry by `ModelRef.uri`, in its own flavor (XGBoost JSON or
the scikit-learn pipeline), and the feature schema (model order, categorical levels) from the
metadata logged beside it, so predictions go through exactly the preprocessing used in training.
A binary version's calibration and decision threshold come from the same metadata
(`core/scores.py`): what it predicts is the calibrated probability, and what it decides is that
probability against its own threshold, whoever loads it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import mlflow.models
import mlflow.sklearn
import mlflow.xgboost
import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException
from sklearn.pipeline import Pipeline

from ml_assets.core.matrix import FeatureSchema, model_matrix, to_text_categoricals
from ml_assets.core.model import ModelRef, Task
from ml_assets.core.scores import Calibration, DecisionThreshold
from ml_assets.resources.mlflow_tracking import MlflowTracking

# The registry aliases: `champion` serves, `challenger` is the newest registered candidate.
CHAMPION = "champion"
CHALLENGER = "challenger"
# Keys of the logged model's metadata (MLmodel) that `model_candidate` writes.
FEATURE_SCHEMA = "feature_schema"
CALIBRATION = "calibration"
DECISION_THRESHOLD = "decision_threshold"


def predict(model: Any, task: Task, X: pd.DataFrame) -> np.ndarray:
    """Probability of the positive class (binary) or the predicted value (regression), float64."""
    if isinstance(model, Pipeline):
        X = to_text_categoricals(X)
    out = model.predict_proba(X)[:, 1] if task == "binary" else model.predict(X)
    return np.asarray(out, dtype="float64")


@dataclass(frozen=True)
class RegisteredPredictor:
    """A registered model version with the preprocessing it was trained with, and (binary) the
    calibration and decision threshold stored with it."""

    ref: ModelRef
    schema: FeatureSchema
    model: Any
    calibration: Calibration | None = None  # None: the raw scores were kept (or regression)
    decision: DecisionThreshold | None = None  # binary only

    @property
    def threshold(self) -> float | None:
        return None if self.decision is None else self.decision.value

    def raw_predict(self, frame: pd.DataFrame) -> np.ndarray:
        """The model's own output, before calibration."""
        return predict(self.model, self.ref.task, model_matrix(frame, self.schema))

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        """Positive-class probabilities (binary, calibrated when the version stores a
        calibration) or values (regression), one per row of `frame`.

        `frame` needs the feature columns (any order, extra columns ignored). Categorical values
        unseen in training are treated as missing.
        """
        raw = self.raw_predict(frame)
        return raw if self.calibration is None else self.calibration.apply(raw)

    @cached_property
    def column_scorer(self) -> _ColumnScorer | _LinearScorer | None:
        """The DataFrame-free scorer `predict_columns` uses, or None (built on first use)."""
        return _column_scorer(self)

    def predict_columns(self, columns: Mapping[str, np.ndarray]) -> np.ndarray:
        """`predict` of feature columns (numeric float64, categorical objects with None): the
        same scores, through `inplace_predict` without a DataFrame where the model allows it."""
        missing = [c for c in self.schema.features if c not in columns]
        if missing:
            raise ValueError(f"frame is missing feature columns {missing}")
        scorer = self.column_scorer
        raw = None if scorer is None else scorer.raw(columns)
        if raw is None:
            raw = self.raw_predict(pd.DataFrame({c: columns[c] for c in self.schema.features}))
        return raw if self.calibration is None else self.calibration.apply(raw)


class _ColumnScorer:
    """The model's raw output from feature columns, without a DataFrame: XGBoost's
    `inplace_predict` over a float matrix (categorical values as their training codes, missing
    or unseen as NaN), which is what `model_matrix` and `predict_proba` compute, minus pandas.
    Built only after it matched the DataFrame path on probe rows (`_column_scorer`)."""

    def __init__(self, model: Any, schema: FeatureSchema, task: Task) -> None:
        self.booster = model.get_booster()
        self.features = schema.features
        self.codes = {
            c: {level: float(i) for i, level in enumerate(schema.levels.get(c, ()))}
            for c in schema.categorical
        }
        best = getattr(model, "best_iteration", None)
        self.iterations = (0, 0) if best is None else (0, int(best) + 1)
        self.missing = getattr(model, "missing", np.nan)
        self.task = task

    def raw(self, columns: Mapping[str, np.ndarray]) -> np.ndarray | None:
        """None when a categorical value is not text (the DataFrame path decides)."""
        n = len(columns[self.features[0]])
        X = np.empty((n, len(self.features)), dtype="float64")
        for j, c in enumerate(self.features):
            codes = self.codes.get(c)
            if codes is None:
                X[:, j] = columns[c]
                continue
            for i, value in enumerate(columns[c]):
                if value is None:
                    X[i, j] = np.nan
                elif isinstance(value, str):
                    X[i, j] = codes.get(value, np.nan)
                else:
                    return None
        out = self.booster.inplace_predict(
            X, iteration_range=self.iterations, missing=self.missing, validate_features=False
        )
        return np.asarray(out, dtype="float64").reshape(n)


class _LinearScorer:
    """The linear family's pipeline (`families.make_model`: median impute and scale, constant
    impute and one-hot, then a linear head) in NumPy: the same arithmetic, minus pandas and
    scikit-learn's checks. Built only after it matched the pipeline on probe rows."""

    def __init__(self, model: Pipeline, schema: FeatureSchema, task: Task) -> None:
        (_, columns), (_, head) = model.steps
        by_name = {name: (steps, cols) for name, steps, cols in columns.transformers_}
        numeric, numeric_cols = by_name["numeric"]
        categorical, categorical_cols = by_name["categorical"]
        if set(by_name) - {"numeric", "categorical", "remainder"} or (
            "remainder" in by_name and by_name["remainder"][0] != "drop"
        ):
            raise ValueError("not the linear family's column transformer")
        impute, scale = numeric.named_steps["impute"], numeric.named_steps["scale"]
        fill, onehot = categorical.named_steps["impute"], categorical.named_steps["onehot"]
        if onehot.handle_unknown != "ignore" or onehot.drop is not None:
            raise ValueError("not the linear family's one-hot encoder")
        self.numeric = list(numeric_cols)
        self.median = np.asarray(impute.statistics_, dtype="float64")
        self.mean = np.zeros(len(self.numeric)) if scale.mean_ is None else scale.mean_
        self.scale = np.ones(len(self.numeric)) if scale.scale_ is None else scale.scale_
        self.categorical = list(categorical_cols)
        self.fill = fill.fill_value
        self.levels = [{str(v): i for i, v in enumerate(c)} for c in onehot.categories_]
        self.widths = [len(c) for c in onehot.categories_]
        self.coef = np.asarray(head.coef_, dtype="float64").reshape(-1)
        self.intercept = float(np.asarray(head.intercept_, dtype="float64").reshape(-1)[0])
        self.task = task

    def raw(self, columns: Mapping[str, np.ndarray]) -> np.ndarray | None:
        n = len(columns[(self.numeric or self.categorical)[0]])
        X = np.zeros((n, len(self.coef)), dtype="float64")
        if self.numeric:
            num = np.column_stack([np.asarray(columns[c], dtype="float64") for c in self.numeric])
            num = np.where(np.isnan(num), self.median, num)
            X[:, : len(self.numeric)] = (num - self.mean) / self.scale
        offset = len(self.numeric)
        for c, levels, width in zip(self.categorical, self.levels, self.widths, strict=True):
            for i, value in enumerate(columns[c]):
                if value is None:
                    value = self.fill
                elif not isinstance(value, str):
                    return None
                j = levels.get(value)
                if j is not None:
                    X[i, offset + j] = 1.0
            offset += width
        z = X @ self.coef + self.intercept
        return 1.0 / (1.0 + np.exp(-z)) if self.task == "binary" else z


def _probe(schema: FeatureSchema) -> dict[str, np.ndarray]:
    """A few feature rows that touch every categorical code path: known, missing, unseen."""
    rng = np.random.default_rng(0)
    n = 8
    out: dict[str, np.ndarray] = {}
    for c in schema.features:
        if c in schema.categorical:
            levels = list(schema.levels.get(c, ())) or ["?"]
            values = [levels[i % len(levels)] for i in range(n)]
            values[1], values[2] = None, "__unseen_probe__"
            out[c] = np.asarray(values, dtype=object)
        else:
            values = rng.normal(0, 50, n)
            values[3] = np.nan
            values[4] = 0.0
            out[c] = values
    return out


def _column_scorer(predictor: RegisteredPredictor) -> _ColumnScorer | _LinearScorer | None:
    """The column scorer of an XGBoost or linear version, if it gives the DataFrame path's
    output on probe rows; else None (scores go through `model_matrix`, as in batch)."""
    model, schema, task = predictor.model, predictor.schema, predictor.ref.task
    try:
        if hasattr(model, "get_booster"):
            scorer = _ColumnScorer(model, schema, task)
        elif isinstance(model, Pipeline):
            scorer = _LinearScorer(model, schema, task)
        else:
            return None
        probe = _probe(predictor.schema)
        fast = scorer.raw(probe)
        slow = predictor.raw_predict(pd.DataFrame(probe))
    except Exception:
        return None
    if fast is None or not np.allclose(fast, slow, rtol=0, atol=1e-12, equal_nan=True):
        return None
    return scorer


def registered_ref(
    tracking: MlflowTracking, name: str, *, alias: str | None = None, version: str | None = None
) -> ModelRef:
    """The `ModelRef` of a registered version, by alias (e.g. `champion`) or version number.

    Rebuilt from the tags and metadata `model_candidate` put on the version, so a model found
    through the registry carries the same lineage as one passed between assets.
    """
    if (alias is None) == (version is None):
        raise ValueError("give exactly one of alias or version")
    client = tracking.client()
    found = (
        client.get_model_version_by_alias(name, alias)
        if alias is not None
        else client.get_model_version(name, str(version))
    )
    metadata = mlflow.models.get_model_info(f"models:/{name}/{found.version}").metadata or {}
    if FEATURE_SCHEMA not in metadata:
        raise ValueError(f"models:/{name}/{found.version} was not logged by ml_assets")
    schema = FeatureSchema.from_dict(metadata[FEATURE_SCHEMA])
    first, _, last = found.tags["train_window"].partition("..")
    return ModelRef(
        registered_name=name,
        version=str(found.version),
        run_id=found.run_id,
        family=found.tags["family"],
        task=found.tags["task"],
        features=schema.features,
        categorical=schema.categorical,
        data_version=found.tags["data_version"],
        train_window=(first, last),
    )


def load_predictor(ref: ModelRef, tracking: MlflowTracking) -> RegisteredPredictor:
    """Fetch `ref`'s registered version and check it is the model the reference describes."""
    tracking.client()  # points MLflow's tracking and registry URIs at this resource's store
    metadata = mlflow.models.get_model_info(ref.uri).metadata or {}
    if FEATURE_SCHEMA not in metadata:
        raise ValueError(f"{ref.uri} has no feature_schema metadata: not logged by ml_assets")
    schema = FeatureSchema.from_dict(metadata[FEATURE_SCHEMA])
    if schema.features != tuple(ref.features) or schema.categorical != tuple(ref.categorical):
        raise ValueError(
            f"{ref.uri} was trained on features {list(schema.features)}, "
            f"but the reference lists {list(ref.features)}"
        )
    if metadata.get("data_version") != ref.data_version:
        raise ValueError(
            f"{ref.uri} was trained on data version {metadata.get('data_version')}, "
            f"not {ref.data_version}"
        )
    if ref.family == "xgboost":
        model = mlflow.xgboost.load_model(ref.uri)
    elif ref.family == "linear":
        model = mlflow.sklearn.load_model(ref.uri)
    else:
        raise ValueError(f"unknown model family {ref.family!r} in {ref}")
    calibration, decision = None, None
    if ref.task == "binary":
        stored = metadata.get(CALIBRATION)
        calibration = Calibration.from_dict(stored) if stored else None
        stored = metadata.get(DECISION_THRESHOLD)
        decision = DecisionThreshold.from_dict(stored) if stored else DecisionThreshold.legacy()
    return RegisteredPredictor(ref, schema, model, calibration, decision)


def current_champion(tracking: MlflowTracking, name: str) -> str | None:
    """The version the `champion` alias points at; None for no alias or no registered model."""
    try:
        aliases = tracking.client().get_registered_model(name).aliases
    except MlflowException as exc:
        if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
            return None
        raise
    version = aliases.get(CHAMPION)
    return None if version is None else str(version)
