"""`training.engine: dask`: XGBoost fits run on a Dask cluster with `xgboost.dask`.

Why only the fit moves: the training set is read, split and turned into the model matrix exactly
as for the local engine, and what comes back is an ordinary `XGBClassifier`/`XGBRegressor`
holding the booster the cluster trained. Everything after the fit (metrics, calibration,
threshold, the MLflow runs and the registered version, the predictor that serving loads) is then
the local engine's code on the same kind of object: same registry, same lineage. The family runs
carry the engine and the scheduler as tags.

Reproducible: the rows are cut into one partition per worker in their own order (no shuffle),
`hist` is deterministic, and the same seed goes to every fit; the same rows and seed on the same
cluster give the same trees and metrics. A distributed fit merges per-worker quantile sketches,
so its trees can differ slightly from a single-process fit of the same rows: compare dask runs
with dask runs.

`families.fit` asks `active_engine()`; `training_engine` sets it for the span of a training.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from xgboost import XGBClassifier, XGBModel

from ml_assets.core.spec import TrainingSection

if TYPE_CHECKING:
    from distributed import Client

ADDRESS_ENV = "ML_ASSETS_DASK_ADDRESS"
CONNECT_TIMEOUT_S = 30
# Below this many rows a worker's share is not worth a partition of its own.
MIN_ROWS_PER_PARTITION = 1000
_LABEL = "__ml_assets_label"
_active: ContextVar[DaskEngine | None] = ContextVar("ml_assets_training_engine", default=None)


def scheduler_address(training: TrainingSection) -> str:
    """`training.dask.address`, else `ML_ASSETS_DASK_ADDRESS`; an error naming both if neither."""
    address = training.dask.address or os.environ.get(ADDRESS_ENV)
    if not address:
        raise ValueError(
            f"training.engine is dask but neither training.dask.address nor {ADDRESS_ENV} "
            "names a scheduler (e.g. tcp://dask-scheduler:8786)"
        )
    return address


@dataclass
class DaskEngine:
    """A connected client: where `fit` sends XGBoost fits."""

    client: Client
    address: str

    def partitions(self, rows: int) -> int:
        workers = len(self.client.scheduler_info(n_workers=-1)["workers"])
        return max(1, min(workers, rows // MIN_ROWS_PER_PARTITION))

    def fit(self, model: XGBModel, X: pd.DataFrame, y: np.ndarray) -> XGBModel:
        """Fit `model`'s parameters on the cluster; return `model` holding the trained booster."""
        # Imported here: Dask and xgboost.dask add 1.5 s to every process that loads the
        # definitions, and only a dask training needs them.
        import dask.dataframe as dd
        import xgboost.dask as xgb_dask

        frame = X.assign(**{_LABEL: y})
        parts = dd.from_pandas(frame, npartitions=self.partitions(len(frame)), sort=False)
        remote_cls = (
            xgb_dask.DaskXGBClassifier
            if isinstance(model, XGBClassifier)
            else xgb_dask.DaskXGBRegressor
        )
        remote = remote_cls(**model.get_params())
        remote.client = self.client
        remote.fit(parts[list(X.columns)], parts[_LABEL])
        # The booster's JSON carries the sklearn attributes (classes, features): `model` is then
        # what a local fit would have returned, for every consumer downstream.
        model.load_model(bytearray(remote.get_booster().save_raw("json")))
        return model

    def tags(self) -> dict[str, str]:
        return {"training_engine": "dask", "dask_scheduler": self.address}


def active_engine() -> DaskEngine | None:
    """The engine of the training in progress, or None for the local engine."""
    return _active.get()


@contextmanager
def training_engine(training: TrainingSection) -> Iterator[DaskEngine | None]:
    """For `engine: dask`, a client to the configured scheduler for the block; XGBoost fits
    inside it (`families.fit`) run there. A no-op for `engine: local`."""
    if training.engine != "dask":
        yield None
        return
    from distributed import Client

    address = scheduler_address(training)
    # The process's default client for the block: xgboost.dask (3.2) asks for the default
    # client even when the estimator is given one, and fails if there is none.
    with Client(address, timeout=CONNECT_TIMEOUT_S) as client:
        engine = DaskEngine(client, address)
        token = _active.set(engine)
        try:
            yield engine
        finally:
            _active.reset(token)
