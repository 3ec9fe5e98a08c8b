"""`make run` killed half way, then run again, tells the history an uninterrupted run tells.

Real `python -m ml_assets.run` processes (as `make run` starts them) on the bundled flights data,
replaying the newest month (`--replay-months 1`: the first model, then December with its retrain)
into a real DuckDB warehouse, MLflow store and sqlite Dagster instance. One project runs
uninterrupted. The other is killed with SIGKILL (`ML_ASSETS_FAULT`) at the two points where a
restart from scratch would go wrong: right after the December retrain registered its candidate
(a redo would register the same model as a second version), and, in the rerun, right after that
candidate's decision was recorded (a redo would judge it against itself and decide it twice).
Then a plain rerun: its summary (rows, checks, monthly figures, decisions) is the uninterrupted
one, the registry holds the same versions, and one more run changes nothing.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
from mlflow import MlflowClient

from ml_assets_tests.conftest import REPO

# Slow tier (five main-job processes, about a minute each on 2 cores).
pytestmark = pytest.mark.slow

MODEL = "flights_arrival_delay"
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def main_job(home: Path, fault: str | None = None) -> subprocess.CompletedProcess[str]:
    dagster_home = home / "dagster_home"
    if not dagster_home.exists():
        dagster_home.mkdir(parents=True)
        shutil.copy(REPO / "dagster.yaml", dagster_home / "dagster.yaml")
    env = {**os.environ, "ML_ASSETS_HOME": str(home), "DAGSTER_HOME": str(dagster_home)}
    env.pop("ML_ASSETS_FAULT", None)
    if fault:
        env["ML_ASSETS_FAULT"] = fault
    return subprocess.run(
        [sys.executable, "-m", "ml_assets.run", "--replay-months", "1"],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )


def summary(done: subprocess.CompletedProcess[str], home: Path) -> str:
    """What the run reports, without what differs between any two runs (ids, paths, times)."""
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    out = done.stdout
    text = out[out.index("  rows per layer") : out.index("  model card:")]
    return UUID.sub("<run>", text.replace(str(home), "<home>"))


def registry(home: Path) -> list[tuple[str, str]]:
    uri = f"sqlite:///{home / 'data' / 'mlflow' / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    versions = client.search_model_versions(f"name = '{MODEL}'")
    aliases = client.get_registered_model(MODEL).aliases
    return sorted((v.version, v.tags.get("lineage_key", "")) for v in versions) + sorted(
        aliases.items()
    )


def decisions(home: Path) -> list[tuple]:
    path = home / "data" / "warehouse" / "warehouse.duckdb"
    with duckdb.connect(str(path), read_only=True) as conn:
        return conn.execute(
            "SELECT candidate_version, decision, new_champion_version, reason"
            " FROM governance.model_decisions ORDER BY decision_id"
        ).fetchall()


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    home = tmp_path_factory.mktemp("make_run_whole")
    return home, summary(main_job(home), home)


def test_make_run_killed_then_rerun_gives_the_uninterrupted_summary(
    tmp_path: Path, uninterrupted: tuple[Path, str]
) -> None:
    whole_home, whole = uninterrupted
    # The December retrain is the second training: killed after it registered its candidate.
    killed = main_job(tmp_path, "kill@training.registered:2")
    assert killed.returncode == -9, killed.stdout[-2000:]
    assert "replay 2013-12" not in killed.stdout
    # The rerun redoes December (the initial training is journaled) and is killed again right
    # after the retrained candidate's decision was recorded, before the alias moved.
    killed_again = main_job(tmp_path, "kill@promotion.audit_recorded:1")
    assert killed_again.returncode == -9, killed_again.stdout[-2000:]
    assert "(journaled)" in killed_again.stdout

    rerun = main_job(tmp_path)

    assert summary(rerun, tmp_path) == whole
    # December's retrain was the one candidate after the first: two versions, no third.
    assert "champion v2" in whole and "v3" not in whole
    assert registry(tmp_path) == registry(whole_home)
    assert decisions(tmp_path) == decisions(whole_home)
    # Finished: one more run replays nothing and says the same.
    again = main_job(tmp_path)
    assert summary(again, tmp_path) == whole
    assert again.stdout.count("(journaled)") == 2  # the first training and December's retrain
    assert registry(tmp_path) == registry(whole_home)
    assert decisions(tmp_path) == decisions(whole_home)
