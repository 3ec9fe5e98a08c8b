"""Bounded hyper-parameter search per family, selected on the validation split.

The budget is a number of parameter sets drawn from a fixed grid with a seeded RNG, so the same
spec, seed and rows give the same trials, the same winner and the same metrics. `halving` tries
the same draws on growing slices of the most recent training rows (the rows closest to the
validation period) and keeps the better half each round. `optuna` samples the grid's box with
TPE and prunes XGBoost trials on their boosting rounds (`optuna_search.py`); its budget counts
trials, pruned ones included.
"""

from __future__ import annotations

import contextvars
import math
import os
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

import numpy as np
from sklearn.base import clone
from sklearn.pipeline import Pipeline

from ml_assets.core.matrix import FeatureSchema, to_text_categoricals
from ml_assets.core.metrics import PRIMARY, better, higher_is_better
from ml_assets.core.model import Family, Task
from ml_assets.core.predictor import predict
from ml_assets.layers.train.dask_engine import active_engine
from ml_assets.layers.train.families import (
    fit,
    grid,
    make_model,
    metrics,
)
from ml_assets.layers.train.optuna_search import optuna_search
from ml_assets.layers.train.trials import Split, Trial

MIN_HALVING_ROWS = 200
# Trials fit side by side in threads (XGBoost and the BLAS under scikit-learn release the GIL),
# each on one thread as before, so every trial and the winner are the same as one at a time:
# measured on this 2-core box, 4 XGBoost fits of 60k rows took 2.7 s side by side against 5.4 s
# one at a time, with the same CPU time. `ML_ASSETS_TRIAL_WORKERS=1` fits them one at a time.
TRIAL_WORKERS_ENV = "ML_ASSETS_TRIAL_WORKERS"


def trial_workers() -> int:
    """How many trials fit at once: the env var, else one per core (at most 2)."""
    value = os.environ.get(TRIAL_WORKERS_ENV)
    if value is not None:
        if not value.isdigit() or int(value) < 1:
            raise ValueError(f"{TRIAL_WORKERS_ENV} must be a whole number >= 1, got {value!r}")
        return int(value)
    return max(1, min(2, os.cpu_count() or 1))


T = TypeVar("T")
R = TypeVar("R")


def _in_order(
    fn: Callable[[T], R], items: Iterable[T], cost: Callable[[T], float] | None = None
) -> list[R]:
    """`fn` over `items`, side by side, the results in the items' order.

    With `cost`, the dearest items start first (longest processing time first): in draw order a
    300-tree fit drawn last ran alone on one core while the other idled."""
    items = list(items)
    workers = min(trial_workers(), len(items))
    if workers <= 1:
        return [fn(item) for item in items]
    # Not on a Dask cluster: there the fits' partitions land on workers by timing, and the
    # draw order is the one whose reruns were seen to give the same trees.
    if cost is not None and active_engine() is None:
        order: Iterable[int] = sorted(range(len(items)), key=lambda i: -cost(items[i]))
    else:
        order = range(len(items))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="trial") as pool:
        # Each trial runs in a copy of the caller's context: the training engine of the run
        # (`dask_engine.active_engine`, a ContextVar) must reach the fits in the threads.
        futures = {i: pool.submit(contextvars.copy_context().run, fn, items[i]) for i in order}
        return [futures[i].result() for i in range(len(items))]


def fit_cost(params: dict[str, Any]) -> float:
    """A trial's relative fitting time: boosting rounds x tree depth (1 for a linear head)."""
    return float(params.get("n_estimators", 1)) * float(params.get("max_depth", 1))


@dataclass
class FamilyResult:
    """The family's best model, trained on the whole train split, and how it was found."""

    family: Family
    params: dict[str, Any]
    model: Any
    train_metrics: dict[str, float]
    validation_metrics: dict[str, float]
    validation_pred: np.ndarray
    trials: list[Trial] = field(default_factory=list)
    seconds: float = 0.0
    search: dict[str, str] = field(default_factory=dict)  # how the search ran (tracking tags)

    def primary(self, task: Task) -> float:
        return self.validation_metrics[PRIMARY[task]]


def draw(family: Family, task: Task, budget: int, seed: int) -> list[dict[str, Any]]:
    """`budget` distinct points of the grid (all of it if smaller), reproducible from the seed."""
    points = grid(family, task)
    rng = np.random.default_rng(seed)
    picks = rng.choice(len(points), size=min(budget, len(points)), replace=False)
    return [points[i] for i in sorted(int(p) for p in picks)]


def _score(
    family: Family,
    task: Task,
    params: dict[str, Any],
    schema: FeatureSchema,
    seed: int,
    train: Split,
    valid: Split,
    rows: int,
) -> tuple[Any, Trial, np.ndarray]:
    # The most recent `rows` training rows: rows are ordered by event time.
    model = fit(
        make_model(family, task, params, schema, seed), train.X.iloc[-rows:], train.y[-rows:]
    )
    pred = predict(model, task, valid.X)
    return model, Trial(params, rows, metrics(task, valid.y, pred)), pred


def shared_columns(
    family: Family,
    task: Task,
    params: dict[str, Any],
    schema: FeatureSchema,
    seed: int,
    train: Split,
) -> tuple[Any, Any]:
    """The pipeline's column step fitted once on the whole train split, and its output.

    Every parameter set of a linear search changes only the head (C or alpha); the imputers,
    scaler and one-hot encoder fit the same rows the same way each time, so they fit once and
    each trial fits its head on their output: the same models, without refitting the columns
    for every trial (a quarter of a flights retrain's search time)."""
    columns = clone(make_model(family, task, params, schema, seed).steps[0][1])
    matrix = columns.fit_transform(to_text_categoricals(train.X), train.y)
    return columns, matrix


def _score_head(
    family: Family,
    task: Task,
    params: dict[str, Any],
    schema: FeatureSchema,
    seed: int,
    columns: tuple[Any, Any],
    train: Split,
    valid: Split,
) -> tuple[Any, Trial, np.ndarray]:
    fitted, matrix = columns
    model = make_model(family, task, params, schema, seed)
    name, head = model.steps[-1]
    head.fit(matrix, train.y)
    model.steps[0] = (model.steps[0][0], fitted)
    model.steps[-1] = (name, head)
    pred = predict(model, task, valid.X)
    return model, Trial(params, len(train.y), metrics(task, valid.y, pred)), pred


def search_family(
    family: Family,
    task: Task,
    schema: FeatureSchema,
    train: Split,
    valid: Split,
    *,
    method: Literal["random", "halving", "optuna"],
    budget: int,
    seed: int,
) -> FamilyResult:
    """Try `budget` parameter sets, keep the best on validation (ties: the earlier draw)."""
    started = time.perf_counter()
    if method == "optuna":
        (model, trial, pred), trials, notes = optuna_search(
            family, task, schema, train, valid, budget=budget, seed=seed
        )
        return _result(family, task, train, model, trial, pred, trials, started, notes)
    metric = PRIMARY[task]
    candidates = draw(family, task, budget, seed)
    trials: list[Trial] = []
    n = len(train.y)
    if method == "halving" and len(candidates) > 1:
        rounds = math.ceil(math.log2(len(candidates)))
        for r in range(rounds):
            # Never below a few hundred rows: a tiny slice may lack a class or say nothing.
            rows = max(min(n, MIN_HALVING_ROWS), n >> (rounds - r))
            round_trials = _in_order(
                lambda p, rows=rows: _score(family, task, p, schema, seed, train, valid, rows)[1],
                candidates,
                fit_cost,
            )
            trials.extend(round_trials)
            scored = [(t.validation[metric], t.params) for t in round_trials]
            keep = max(1, math.ceil(len(candidates) / 2))
            order = sorted(
                range(len(scored)),
                key=lambda i: (-scored[i][0] if higher_is_better(metric) else scored[i][0], i),
            )
            candidates = [scored[i][1] for i in sorted(order[:keep])]
    best: tuple[Any, Trial, np.ndarray] | None = None
    if isinstance(make_model(family, task, candidates[0], schema, seed), Pipeline):
        columns = shared_columns(family, task, candidates[0], schema, seed, train)
        results = _in_order(
            lambda p: _score_head(family, task, p, schema, seed, columns, train, valid), candidates
        )
    else:
        results = _in_order(
            lambda p: _score(family, task, p, schema, seed, train, valid, n), candidates, fit_cost
        )
    for result in results:
        trials.append(result[1])
        if best is None or better(metric, result[1].validation[metric], best[1].validation[metric]):
            best = result
    if best is None:
        raise ValueError(f"no parameter sets to try for {family}: search budget is {budget}")
    model, trial, pred = best
    return _result(family, task, train, model, trial, pred, trials, started, {})


def _result(
    family: Family,
    task: Task,
    train: Split,
    model: Any,
    trial: Trial,
    pred: np.ndarray,
    trials: list[Trial],
    started: float,
    notes: dict[str, str],
) -> FamilyResult:
    return FamilyResult(
        family=family,
        params=trial.params,
        model=model,
        train_metrics=metrics(task, train.y, predict(model, task, train.X)),
        validation_metrics=trial.validation,
        validation_pred=pred,
        trials=trials,
        seconds=time.perf_counter() - started,
        search=notes,
    )
