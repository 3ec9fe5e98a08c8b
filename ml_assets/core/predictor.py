"""Load a registered model version as a `Predictor`: what evaluation and scoring call.

The model comes from the MLflow registry by `ModelRef.uri`, in its own flavor (XGBoost JSON or
the scikit-learn pipeline), and the feature schema (model order, categorical levels) from the
metadata logged beside it, so predictions go through exactly the preprocessing used in training.
A binary version's calibration and decision threshold come from the same metadata
(`core/scores.py`): what it predicts is the calibrated probability, and what it decides is that
probability against its own threshold, whoever loads it.
"""

from __future__ import annotations

from dataclasses import dataclass
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
