"""Fault fixtures: a real sqlite Dagster instance configured by the repo's dagster.yaml, and a
prepared project (warehouse, MLflow store, instance) that fault cases copy."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pytest

from ml_assets_tests.conftest import REPO
from ml_assets_tests.faults.driver import Outcome, run_job
from ml_assets_tests.faults.prepared import (
    MODEL,
    RETRAIN_AS_OF,
    audit,
    build_prepared,
    copy_project,
    expect_success,
    table_states,
    tracking,
    train_job,
    warehouse,
)


@pytest.fixture
def dagster_home(home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """DAGSTER_HOME under the temp project home, with the repo's dagster.yaml (pool limit 1, run
    monitoring); the sqlite storage is created by the first process that opens it."""
    path = home / "dagster_home"
    path.mkdir()
    shutil.copy(REPO / "dagster.yaml", path / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(path))
    return path


@pytest.fixture
def sqlite_instance(dagster_home: Path) -> Iterator[dg.DagsterInstance]:
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        yield instance


@pytest.fixture(scope="session")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The prepared project the fault cases copy (see `prepared.py`), built once."""
    home = tmp_path_factory.mktemp("faults_prepared")
    build_prepared(home)
    return home


@pytest.fixture
def project(home: Path, prepared: Path) -> Path:
    """A copy of the prepared project as this test's ML_ASSETS_HOME; returns its DAGSTER_HOME."""
    return copy_project(prepared, home)


@dataclass(frozen=True)
class Retrain:
    """An uninterrupted retrain (as of RETRAIN_AS_OF) of the prepared project."""

    outcome: Outcome
    audit: list[tuple]
    champion: str
    champion_metrics: dict[str, float]
    content: dict[str, tuple[int, int, int]]


def champion_metrics(home: Path) -> tuple[str, dict[str, float]]:
    client = tracking(home).client()
    version = client.get_model_version_by_alias(MODEL, "champion")
    metrics = client.get_run(version.run_id).data.metrics
    return str(version.version), {k: v for k, v in metrics.items() if k.startswith("validation_")}


@pytest.fixture(scope="session")
def retrain(tmp_path_factory: pytest.TempPathFactory, prepared: Path) -> Retrain:
    home = tmp_path_factory.mktemp("faults_retrain")
    dagster_home = copy_project(prepared, home)
    outcome = expect_success(run_job(home, dagster_home, train_job(RETRAIN_AS_OF, "retrain")))
    version, metrics = champion_metrics(home)
    db = warehouse(home)
    return Retrain(outcome, audit(db), version, metrics, table_states(db, content=True))
