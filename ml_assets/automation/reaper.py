"""The daemon's own reaper: under `dagster dev`, dead runs give back their pool slot unattended.

Dagster's run monitoring fails runs that never start, and frees the slots of runs that ended,
but with the default run launcher it cannot tell that a STARTED run's worker was killed
(`kill -9`, the OOM killer): the run stays STARTED, keeps its `duckdb_warehouse` slot, and every
later run queues behind it. `make run` reaps before it starts (`instance_health.prepare_headless`);
this sensor does the same from the daemon, so a UI user's rerun converges with no manual step.
It judges by the pids the runs recorded, so it only acts on runs of this host (local storage).
"""

from __future__ import annotations

import dagster as dg

from ml_assets.instance_health import reap_dead_runs
from ml_assets.mlflow_orphans import end_orphaned_runs
from ml_assets.resources.mlflow_tracking import MlflowTracking

SENSOR_NAME = "reap_dead_runs"
INTERVAL_S = 30


def build_reaper_sensor() -> dg.SensorDefinition:
    @dg.sensor(
        name=SENSOR_NAME,
        minimum_interval_seconds=INTERVAL_S,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=(
            "Fails runs whose processes are gone without recording an end (killed, OOM) and "
            "frees the pool slots they hold, as `make reap` does, and sets KILLED the MLflow "
            "runs such a training left RUNNING; never touches a live run."
        ),
    )
    def reaper(context: dg.SensorEvaluationContext, mlflow: MlflowTracking) -> dg.SkipReason:
        acted = [h for h in reap_dead_runs(context.instance) if h.action == "reaped"]
        for health in acted:
            context.log.warning(health.line())
        ended = end_orphaned_runs(mlflow, context.instance)
        said = []
        if acted:
            said.append(f"reaped {len(acted)} dead run(s): " + "; ".join(h.run_id for h in acted))
        if ended:
            said.append(f"set KILLED {len(ended)} MLflow run(s) left RUNNING: {'; '.join(ended)}")
        return dg.SkipReason(". ".join(said) or "no dead run holds a slot or claims to be running")

    return reaper
