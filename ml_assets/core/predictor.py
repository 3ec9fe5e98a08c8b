"""Load a registered model version as a `Predictor`: what evaluation and scoring call.

The model comes from the MLflow registry by `ModelRef.uri`, in its own flavor (XGBoost JSON or
the scikit-learn pipeline), and the feature schema (model order, categorical levels) from the
metadata logged beside it, so predictions go through exactly the preprocessing used in training.
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
from ml_assets.resources.mlflow_tracking import MlflowTracking

# The registry aliases: `champion` serves, `challenger` is the newest registered candidate.
CHAMPION = "champion"
CHALLENGER = "challenger"


def predict(model: Any, task: Task, X: pd.DataFrame) -> np.ndarray:
    """Probability of the positive class (binary) or the predicted value (regression), float64."""
    if isinstance(model, Pipeline):
        X = to_text_categoricals(X)
    out = model.predict_proba(X)[:, 1] if task == "binary" else model.predict(X)
    return np.asarray(out, dtype="float64")


@dataclass(frozen=True)
class RegisteredPredictor:
    """A registered model version with the preprocessing it was trained with."""

    ref: ModelRef
    schema: FeatureSchema
    model: Any

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        """Positive-class probabilities (binary) or values (regression), one per row of `frame`.

        `frame` needs the feature columns (any order, extra columns ignored). Categorical values
        unseen in training are treated as missing.
        """
        return predict(self.model, self.ref.task, model_matrix(frame, self.schema))


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
    if "feature_schema" not in metadata:
        raise ValueError(f"models:/{name}/{found.version} was not logged by ml_assets")
    schema = FeatureSchema.from_dict(metadata["feature_schema"])
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
    if "feature_schema" not in metadata:
        raise ValueError(f"{ref.uri} has no feature_schema metadata: not logged by ml_assets")
    schema = FeatureSchema.from_dict(metadata["feature_schema"])
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
    return RegisteredPredictor(ref=ref, schema=schema, model=model)


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
