"""The contract between training, evaluation, promotion and scoring: a reference to a model.

A `ModelRef` is small, serializable and enough to find everything else: the registered version
in MLflow, the run that trained it, the features it expects and the data it saw. Assets pass it
to each other as inputs, never "the newest file on disk".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol

import numpy as np
import pandas as pd

if TYPE_CHECKING:  # core.matrix imports the spec, which imports this module
    from ml_assets.core.matrix import FeatureSchema

Task = Literal["binary", "regression"]
Family = Literal["xgboost", "linear"]


@dataclass(frozen=True)
class ModelRef:
    registered_name: str  # MLflow registered model name
    version: str  # MLflow model version
    run_id: str  # MLflow run that trained it
    family: Family
    task: Task
    features: tuple[str, ...]  # feature columns, in model order
    categorical: tuple[str, ...]  # the subset that is categorical
    data_version: str  # hash of the training set rows
    train_window: tuple[str, str]  # first and last partition day of the training set

    @property
    def uri(self) -> str:
        return f"models:/{self.registered_name}/{self.version}"


class Predictor(Protocol):
    """A loaded model: probabilities of the positive class (binary) or values (regression).

    `threshold` is a binary version's decision threshold, stored with the version (a score at or
    above it is a positive decision); None for regression. `model` (the raw model object, before
    calibration) and `schema` are what per-row explanations read.
    """

    ref: ModelRef
    model: Any
    schema: FeatureSchema

    @property
    def threshold(self) -> float | None: ...

    def predict(self, frame: pd.DataFrame) -> np.ndarray: ...
