"""Synthetic `<ds>.features` tables and specs with `features` and `training` sections.

The features layer is built elsewhere; these tests write its table contract directly, with a
real signal in the label so a model can learn something measurable.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from ml_assets.core.spec import DatasetSpec, load_spec
from ml_assets.resources.mlflow_tracking import MlflowTracking
from ml_assets.resources.warehouse import Warehouse, warehouse_resource

SPEC = """
name: {name}
source: {{files: [data/{name}/*.csv], format: csv}}
partitions: {{start: 2024-01-01, end: 2024-12-31}}
event_time: {{column: at}}
label: {{kind: {kind}, column: y, delay_days: 1}}
contract:
  unique_key: [id]
  columns:
    id: {{type: BIGINT, nullable: false}}
    at: {{type: TIMESTAMP, nullable: false}}
    y: {{type: DOUBLE}}
features:
  sql: [features/{name}.sql]
  columns:
    load: {{kind: numeric}}
    speed: {{kind: numeric}}
    hour: {{kind: numeric, min: 0, max: 23}}
    region: {{kind: categorical}}
    size: {{kind: categorical}}
training:
  window_days: {window_days}
  split: {{validation_days: 7, test_days: 7}}
  seed: 7
  search: {{method: {method}, budget: {budget}}}
  models: {models}
evaluation: {evaluation}
scoring: {scoring}
"""

START = dt.date(2024, 1, 1)
REGIONS = ["north", "south", "east", "west", "centre", "coast"]
SIZES = ["S", "M", "L"]


def write_spec(
    home: Path,
    name: str,
    kind: str = "binary",
    window_days: int = 30,
    method: str = "random",
    models: str = "[xgboost, linear]",
    budget: int = 3,
    evaluation: str = "{floor: 0.5}",
    scoring: str = "{}",
) -> DatasetSpec:
    path = home / "specs" / f"{name}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        SPEC.format(
            name=name,
            kind=kind,
            window_days=window_days,
            method=method,
            budget=budget,
            models=models,
            evaluation=evaluation,
            scoring=scoring,
        )
    )
    return load_spec(path)


def synthetic_features(
    kind: str, days: int, rows_per_day: int, seed: int = 0, start: dt.date = START
) -> pd.DataFrame:
    """Rows for `days` days from `start`: a non-linear signal in every feature, 5% NULL speed,
    3% NULL labels (like cancelled flights), and an audit column the training set must drop."""
    rng = np.random.default_rng(seed)
    n = days * rows_per_day
    day_index = np.repeat(np.arange(days), rows_per_day)
    minutes = rng.integers(6 * 60, 22 * 60, n)
    event = (
        pd.Timestamp(start)
        + pd.to_timedelta(day_index, unit="D")
        + pd.to_timedelta(minutes, unit="m")
    )
    load = rng.normal(size=n)
    speed = rng.uniform(0, 10, n)
    hour = (minutes // 60).astype(float)
    region = np.array(REGIONS, dtype=object)[rng.integers(0, len(REGIONS), n)]
    size = np.array(SIZES, dtype=object)[rng.integers(0, len(SIZES), n)]
    # A step, a daily cycle and an interaction: a linear model sees only part of it.
    signal = (
        1.0 * load
        + np.where(speed > 6, 1.0, -0.5)
        + 1.2 * np.sin(2 * np.pi * hour / 24)
        + np.where(region == "north", 0.8, 0.0)
        - np.where(region == "coast", 0.6, 0.0)
        + 1.0 * load * (size == "L")
    )
    if kind == "binary":
        label = (rng.random(n) < 1 / (1 + np.exp(-(signal - 0.8)))).astype(float)
    else:
        label = 3.0 + 2.0 * signal + rng.normal(scale=1.0, size=n)
    label[rng.random(n) < 0.03] = np.nan
    speed[rng.random(n) < 0.05] = np.nan
    frame = pd.DataFrame(
        {
            "_key": [f"k{i:07d}" for i in range(n)],
            "_event_time": event,
            "_partition_date": event.normalize().date,
            "_label": label,
            "_label_known_at": event + pd.Timedelta(days=1),
            "load": load,
            "speed": speed,
            "hour": hour.astype(int),
            "region": region,
            "size": size,
            "_computed_at": pd.Timestamp("2025-01-01"),
        }
    )
    return frame


def write_features(conn: duckdb.DuckDBPyConnection, name: str, frame: pd.DataFrame) -> None:
    conn.execute(f"CREATE SCHEMA IF NOT EXISTS {name}")
    conn.register("_frame", frame)
    conn.execute(
        f"""CREATE OR REPLACE TABLE {name}.features AS
        SELECT _key, CAST(_event_time AS TIMESTAMP) AS _event_time,
               CAST(_partition_date AS DATE) AS _partition_date, _label,
               CAST(_label_known_at AS TIMESTAMP) AS _label_known_at,
               load, speed, CAST(hour AS INTEGER) AS hour, region, size, _computed_at
        FROM _frame"""
    )
    conn.unregister("_frame")


@pytest.fixture
def synth_spec(home: Path) -> DatasetSpec:
    return write_spec(home, "synth")


@dataclass
class Store:
    """A private DuckDB warehouse and MLflow store (sqlite + artifacts) under `root`."""

    root: Path
    warehouse: Warehouse
    tracking: MlflowTracking

    def resources(self) -> dict:
        return {"warehouse": self.warehouse, "mlflow": self.tracking}

    def frame(self, sql: str) -> pd.DataFrame:
        with self.warehouse.get_connection() as conn:
            return conn.execute(sql).df()


def make_store(root: Path) -> Store:
    root.mkdir(parents=True, exist_ok=True)
    return Store(
        root=root,
        warehouse=warehouse_resource(str(root / "warehouse.duckdb")),
        tracking=MlflowTracking(
            tracking_uri=f"sqlite:///{root / 'mlflow.db'}",
            artifact_root=(root / "artifacts").as_uri(),
        ),
    )


def load_features(
    store: Store,
    name: str,
    kind: str,
    days: int,
    rows_per_day: int,
    frame: pd.DataFrame | None = None,
) -> None:
    """Write `<name>.features` (synthetic rows, or `frame`) and a `<name>.validated` holding
    their keys, which the evaluation joins for slice columns."""
    rows = synthetic_features(kind, days, rows_per_day, seed=11) if frame is None else frame
    with duckdb.connect(store.warehouse.database) as conn:
        write_features(conn, name, rows)
        conn.execute(
            f"CREATE OR REPLACE TABLE {name}.validated AS "
            f"SELECT _key, _partition_date FROM {name}.features"
        )
