"""Train every configured family on the train split and pick the candidate on validation.

Models are fit on the train split only and never refit on validation: the validation metrics
logged are then exactly those of the registered model, and the test split stays untouched for
the evaluation layer. A binary winner then gets, from the validation split too, a calibration
(`calibrate.py`, kept only where it helps) and a decision threshold (`threshold.py`, chosen on
the scores the version will serve); both are stored with the registered version.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ml_assets.core.matrix import FeatureSchema, fit_schema, model_matrix
from ml_assets.core.metrics import PRIMARY, better
from ml_assets.core.model import Family, Task
from ml_assets.core.scores import DecisionThreshold
from ml_assets.core.spec import ThresholdPolicy, TrainingSection
from ml_assets.layers.train.calibrate import CalibrationFit, calibrate
from ml_assets.layers.train.dask_engine import training_engine
from ml_assets.layers.train.families import metrics
from ml_assets.layers.train.search import FamilyResult, Split, search_family
from ml_assets.layers.train.threshold import choose_threshold


@dataclass
class Candidate:
    task: Task
    schema: FeatureSchema
    results: dict[str, FamilyResult]
    chosen: Family
    validation_keys: np.ndarray
    # What the registered version predicts on validation: calibrated when a calibrator was kept.
    served_pred: np.ndarray
    # Binary only (None for regression): fitted on the chosen family's validation scores.
    calibration: CalibrationFit | None = None
    threshold: DecisionThreshold | None = None

    @property
    def best(self) -> FamilyResult:
        return self.results[self.chosen]

    def served_metrics(self, y: np.ndarray) -> dict[str, float]:
        """The registered version's validation metrics (calibrated scores when calibrated)."""
        return metrics(self.task, y, self.served_pred)

    @property
    def primary_metric(self) -> str:
        return PRIMARY[self.task]


def to_split(frame: pd.DataFrame, schema: FeatureSchema) -> Split:
    return Split(
        X=model_matrix(frame, schema),
        y=frame["_label"].to_numpy(dtype="float64"),
        keys=frame["_key"].to_numpy(),
    )


def train_candidate(
    rows: pd.DataFrame,
    declared: FeatureSchema,
    task: Task,
    training: TrainingSection,
    threshold: ThresholdPolicy | None = None,
) -> Candidate:
    """`_train_candidate` on the engine `training.engine` names (`dask_engine.py`); the XGBoost
    family's tracking tags then say where it was fit."""
    with training_engine(training) as engine:
        candidate = _train_candidate(rows, declared, task, training, threshold)
    if engine is not None and "xgboost" in candidate.results:
        candidate.results["xgboost"].search.update(engine.tags())
    return candidate


def _train_candidate(
    rows: pd.DataFrame,
    declared: FeatureSchema,
    task: Task,
    training: TrainingSection,
    threshold: ThresholdPolicy | None = None,
) -> Candidate:
    """Search each family in `training.models`; the best validation primary metric wins (ties:
    the family listed first). A binary winner is then calibrated (per `training.calibration`)
    and given the decision threshold `threshold` picks (default: max_f1) on validation."""
    by_split = {s: rows[rows["_split"] == s] for s in ("train", "validation")}
    for name, part in by_split.items():
        if part.empty:
            raise ValueError(f"the training set has no '{name}' rows")
    schema = fit_schema(by_split["train"], declared)
    train, valid = to_split(by_split["train"], schema), to_split(by_split["validation"], schema)
    results: dict[str, FamilyResult] = {}
    chosen: Family | None = None
    for family in training.models:
        results[family] = search_family(
            family,
            task,
            schema,
            train,
            valid,
            method=training.search.method,
            budget=training.search.budget,
            seed=training.seed,
        )
        if chosen is None or better(
            PRIMARY[task], results[family].primary(task), results[chosen].primary(task)
        ):
            chosen = family
    if chosen is None:
        raise ValueError("training.models is empty: nothing to train")
    raw = results[chosen].validation_pred
    if task != "binary":
        return Candidate(task, schema, results, chosen, valid.keys, raw)
    fit = calibrate(
        valid.y, raw, by_split["validation"]["_partition_date"].to_numpy(), training.calibration
    )
    served = raw if fit.calibration is None else fit.calibration.apply(raw)
    decision = choose_threshold(valid.y, served, threshold or ThresholdPolicy())
    return Candidate(task, schema, results, chosen, valid.keys, served, fit, decision)
