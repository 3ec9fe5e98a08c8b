"""Several partitions launched together against one DuckDB file all succeed.

Real processes, a real Dagster instance configured by the repo's dagster.yaml (pool limit 1),
the default executor (in the run's process on the embedded warehouse): three partitions
launched at once from three terminals.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from ml_assets import settings
from ml_assets_tests.conftest import REPO

# Slow tier (three concurrent CLI materializations): `make test` runs it, `make test-fast` not.
pytestmark = pytest.mark.slow

DAYS = ["2013-03-01", "2013-03-02", "2013-03-03"]


def test_partitions_launched_together_all_succeed(home: Path) -> None:
    dagster_home = home / "dagster_home"
    dagster_home.mkdir()
    shutil.copy(REPO / "dagster.yaml", dagster_home / "dagster.yaml")
    # Create the instance's sqlite storage once, as `dagster dev` does before launching runs.
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        assert instance.get_runs() == []
    env = {**os.environ, "DAGSTER_HOME": str(dagster_home), "ML_ASSETS_HOME": str(home)}
    dagster = Path(sys.executable).parent / "dagster"
    procs = [
        subprocess.Popen(
            [
                str(dagster),
                "asset",
                "materialize",
                "-m",
                "ml_assets.definitions",
                "--select",
                "flights/raw",
                "--partition",
                day,
            ],
            env=env,
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for day in DAYS
    ]
    outputs = [p.communicate(timeout=600)[0] for p in procs]
    for day, proc, out in zip(DAYS, procs, outputs, strict=True):
        assert proc.returncode == 0, f"{day} failed:\n{out[-3000:]}"
        assert "RUN_SUCCESS" in out
    # The pool made steps wait their turn rather than fail on the file lock.
    assert any("blocked by limit for pool duckdb_warehouse" in out for out in outputs)
    with duckdb.connect(str(settings.warehouse_path()), read_only=True) as conn:
        days = conn.execute(
            "SELECT DISTINCT _partition_date::VARCHAR FROM flights.raw ORDER BY 1"
        ).fetchall()
    assert [d for (d,) in days] == DAYS
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        runs = instance.get_runs()
        assert len(runs) == 3 and all(r.is_success for r in runs)
