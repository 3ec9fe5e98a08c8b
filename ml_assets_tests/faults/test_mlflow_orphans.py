"""MLflow runs a killed training left RUNNING are ended once their Dagster run is over.

A real sqlite Dagster instance and a real MLflow sqlite store. The MLflow runs are created as
`MlflowTracking.start_run` creates them (RUNNING until the block exits), and left so, as
`kill -9` leaves them: a parent with the Dagster run id tag and a nested family run.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import dagster as dg
import pytest
from mlflow import MlflowClient

from ml_assets.mlflow_orphans import end_orphaned_runs
from ml_assets.resources.mlflow_tracking import MlflowTracking
from ml_assets_tests.faults.test_instance_health import started_run, tiny_job


@pytest.fixture
def live_process() -> Iterator[subprocess.Popen]:
    proc = subprocess.Popen(["sleep", "120"])
    yield proc
    proc.kill()
    proc.wait()


def test_runs_of_an_ended_training_are_killed_and_those_of_a_live_one_left_running(
    home: object, sqlite_instance: dg.DagsterInstance, live_process: subprocess.Popen
) -> None:
    failed = sqlite_instance.create_run_for_job(
        job_def=tiny_job, status=dg.DagsterRunStatus.FAILURE
    ).run_id
    live = started_run(sqlite_instance, live_process.pid, claim=False)
    tracking = MlflowTracking()
    client: MlflowClient = tracking.client()
    experiment = tracking.experiment_id("flights")

    def running(**tags: str) -> str:
        return client.create_run(experiment, tags=tags).info.run_id

    parent = running(dagster_run_id=failed)
    family = running(**{"mlflow.parentRunId": parent})
    of_deleted = running(dagster_run_id="0" * 36)
    of_live = running(dagster_run_id=live)
    not_dagsters = running()

    ended = end_orphaned_runs(tracking, sqlite_instance)

    assert sorted(ended) == sorted([parent, family, of_deleted])
    status = {r: client.get_run(r).info.status for r in [parent, family, of_deleted, of_live]}
    assert status == {parent: "KILLED", family: "KILLED", of_deleted: "KILLED", of_live: "RUNNING"}
    assert client.get_run(not_dagsters).info.status == "RUNNING"
    assert client.get_run(parent).data.tags["ended_by"] == "ml_assets: Dagster run FAILURE"
    assert end_orphaned_runs(tracking, sqlite_instance) == []
