"""End the MLflow runs of trainings whose Dagster run is over: a killed training leaves them RUNNING.

A training logs to MLflow inside `MlflowTracking.start_run`, which ends the run FINISHED or FAILED
when the block exits. `kill -9` (or the OOM killer) skips that: the parent run and its family
runs stay RUNNING in the MLflow UI forever, telling a reader that a training is still going on.
Once the Dagster run that started them is over (failed by the reaper, or ended any other way) or
gone, nothing can finish them, so they are set KILLED, which is what happened to them. Runs of a
Dagster run still in progress, and runs that no Dagster run started, are left alone.
"""

from __future__ import annotations

import logging

import dagster as dg
from mlflow.entities import RunStatus, ViewType

from ml_assets.resources.mlflow_tracking import MlflowTracking

log = logging.getLogger(__name__)

DAGSTER_RUN_TAG = "dagster_run_id"
PARENT_TAG = "mlflow.parentRunId"
ENDED_BY_TAG = "ended_by"
IN_PROGRESS = {
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
}


def end_orphaned_runs(tracking: MlflowTracking, instance: dg.DagsterInstance) -> list[str]:
    """Set KILLED every RUNNING MLflow run whose Dagster run (its own tag, or its parent's) is
    over or deleted; returns their run ids."""
    client = tracking.client()
    experiments = [e.experiment_id for e in client.search_experiments(view_type=ViewType.ALL)]
    if not experiments:
        return []
    running = client.search_runs(
        experiments, filter_string="attributes.status = 'RUNNING'", max_results=1000
    )
    parents = {r.info.run_id: r for r in running}
    ended = []
    for run in running:
        dagster_run_id = run.data.tags.get(DAGSTER_RUN_TAG)
        parent_id = run.data.tags.get(PARENT_TAG)
        if dagster_run_id is None and parent_id is not None:
            parent = parents.get(parent_id) or client.get_run(parent_id)
            dagster_run_id = parent.data.tags.get(DAGSTER_RUN_TAG)
        if not dagster_run_id:
            continue
        owner = instance.get_run_by_id(dagster_run_id)
        if owner is not None and owner.status in IN_PROGRESS:
            continue
        state = "deleted" if owner is None else owner.status.value
        client.set_tag(run.info.run_id, ENDED_BY_TAG, f"ml_assets: Dagster run {state}")
        client.set_terminated(run.info.run_id, status=RunStatus.to_string(RunStatus.KILLED))
        log.warning(
            "MLflow run %s was still RUNNING, but its Dagster run %s is %s: set KILLED",
            run.info.run_id,
            dagster_run_id,
            state,
        )
        ended.append(run.info.run_id)
    return ended
