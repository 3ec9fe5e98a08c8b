"""Train every configured family on the train split and pick the candidate on validation.

Models are fit on the train split only and never refit on validation: the validation metrics
logged are then exactly those of the registered model, and the test split stays untouched for
the evaluation layer.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ml_assets.core.matrix import FeatureSchema, fit_schema, model_matrix
from ml_assets.core.metrics import PRIMARY, better
from ml_assets.core.model import Family, Task
from ml_assets.core.spec import TrainingSection
from ml_assets.layers.train.search import FamilyResult, Split, search_family


@dataclass
class Candidate:
    task: Task
    schema: FeatureSchema
    results: dict[str, FamilyResult]
    chosen: Family
    validation_keys: np.ndarray

    @property
    def best(self) -> FamilyResult:
        return self.results[self.chosen]

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
    rows: pd.DataFrame, declared: FeatureSchema, task: Task, training: TrainingSection
) -> Candidate:
    """Search each family in `training.models`; the best validation primary metric wins (ties:
    the family listed first)."""
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
    return Candidate(task, schema, results, chosen, valid.keys)
