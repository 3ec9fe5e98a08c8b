"""Fault fixtures: a real sqlite Dagster instance configured by the repo's dagster.yaml."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest

from ml_assets_tests.conftest import REPO


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
