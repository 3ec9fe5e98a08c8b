"""Scale-out fixtures: a real PostgreSQL server (one per test worker) and Dagster instances on it
configured by the repo's `dagster.postgres.yaml`."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest

from ml_assets.local_postgres import LocalPostgres
from ml_assets_tests.conftest import REPO


@pytest.fixture(scope="session")
def postgres() -> Iterator[LocalPostgres]:
    """A cluster made with `initdb` in a temp folder, served on a free 127.0.0.1 port (as an
    unprivileged user when the tests run as root, as CI does) and removed after the session."""
    with LocalPostgres.start() as pg:
        yield pg


@pytest.fixture
def pg_dagster_home(home: Path, postgres: LocalPostgres, monkeypatch: pytest.MonkeyPatch) -> Path:
    """DAGSTER_HOME with the repo's dagster.postgres.yaml, its DAGSTER_PG_* variables set to a
    new database of its own on the session's server."""
    database = postgres.create_database(f"dagster_{uuid.uuid4().hex[:12]}")
    for name, value in postgres.env(database).items():
        monkeypatch.setenv(name, value)
    path = home / "dagster_home"
    path.mkdir()
    shutil.copy(REPO / "dagster.postgres.yaml", path / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(path))
    return path


@pytest.fixture
def pg_instance(pg_dagster_home: Path) -> Iterator[dg.DagsterInstance]:
    with dg.DagsterInstance.from_config(str(pg_dagster_home)) as instance:
        yield instance


@pytest.fixture
def ducklake_env(
    home: Path, postgres: LocalPostgres, monkeypatch: pytest.MonkeyPatch
) -> dict[str, str]:
    """The warehouse backend switched to DuckLake: its catalog a new database on the session's
    server, its data files under the test's home. Set in os.environ (child processes inherit
    it) and returned, for subprocesses given an explicit environment."""
    database = postgres.create_database(f"lake_{uuid.uuid4().hex[:12]}")
    env = {
        "ML_ASSETS_WAREHOUSE": "ducklake",
        "ML_ASSETS_DUCKLAKE_CATALOG": postgres.dsn(database),
        "ML_ASSETS_DUCKLAKE_DATA_PATH": str(home / "data" / "lake"),
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env
