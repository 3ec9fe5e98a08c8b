"""Real flights data for model-lifecycle tests: Jan 1 - May 31 2013 through features, once.

The warehouse is built once per session with the layers' own functions (the code their assets
run; their Dagster runs are tested in their own suites) and copied into each test's home. The
model layers then run as real Dagster jobs against a real MLflow sqlite store.
"""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Callable
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from ml_assets import settings
from ml_assets.core.spec import DatasetSpec, load_spec, read_spec_mapping, write_spec
from ml_assets.core.tags import TRIGGER_TAG
from ml_assets.definitions import build_defs
from ml_assets.resources.mlflow_tracking import MlflowTracking
from ml_assets_tests.conftest import FLIGHTS_SPEC, build_flights_warehouse

FIRST, LAST = dt.date(2013, 1, 1), dt.date(2013, 5, 31)

# Small, fast training for tests: same code paths, smaller search.
TEST_TRAINING = {"window_days": 45, "search": {"method": "random", "budget": 2}}


@pytest.fixture(scope="session")
def flights_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("lifecycle_template")
    (home / "data").mkdir()
    build_flights_warehouse(home, FIRST, LAST, features=True)
    with pytest.MonkeyPatch.context() as mp:
        # A migrated empty MLflow store: creating one runs migrations for seconds.
        mp.setenv("ML_ASSETS_HOME", str(home))
        MlflowTracking().client().search_experiments()
    return home


@pytest.fixture
def flights_home(home: Path, flights_template: Path) -> Path:
    shutil.copytree(flights_template / "data", home / "data", dirs_exist_ok=True)
    return home


def deep_update(target: dict, changes: dict) -> dict:
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            deep_update(target[key], value)
        else:
            target[key] = value
    return target


@pytest.fixture
def flights_variant(home: Path) -> Callable[..., DatasetSpec]:
    """The flights spec with some sections changed (feature SQL kept), written under the home."""

    def make(label: str = "base", **changes: dict) -> DatasetSpec:
        raw = read_spec_mapping(FLIGHTS_SPEC)
        raw["features"]["sql"] = [
            str(FLIGHTS_SPEC.parent / p) for p in raw["features"].get("sql", [])
        ]
        deep_update(raw, {"training": TEST_TRAINING, "evaluation": {"floor": 0.6}})
        deep_update(raw, changes)
        path = home / "specs" / label / "flights.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        write_spec(path, raw)
        return load_spec(path)

    return make


def train(
    spec: DatasetSpec, instance: dg.DagsterInstance, as_of: dt.date, trigger: str = "test"
) -> dg.ExecuteInProcessResult:
    job = build_defs([spec]).resolve_job_def(spec.names.job("train"))
    return job.execute_in_process(
        instance=instance,
        run_config={"ops": {"flights__training_set": {"config": {"as_of": as_of.isoformat()}}}},
        tags={TRIGGER_TAG: trigger},
        raise_on_error=False,
    )


def gate_results(result: dg.ExecuteInProcessResult) -> dict[str, bool]:
    return {
        e.check_name: e.passed
        for e in result.get_asset_check_evaluations()
        if e.asset_key.path[-1] == "model_evaluation"
    }


def audit_rows(conn_path: Path | None = None) -> list[tuple]:
    with duckdb.connect(str(conn_path or settings.warehouse_path()), read_only=True) as conn:
        return conn.execute(
            """SELECT decision, candidate_version, previous_champion_version, new_champion_version,
                      "trigger", dagster_run_id
               FROM governance.model_decisions ORDER BY decision_id"""
        ).fetchall()
