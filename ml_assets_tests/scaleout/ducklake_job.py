"""Flights raw -> validated/quarantine (with one check each) as a job on Dagster's multiprocess
executor, for the DuckLake tests to launch in processes of their own:

    python -m ml_assets_tests.scaleout.ducklake_job 2013-01-02

Each step runs in its own process (forked from a server that has the definitions imported, so a
step does not pay for loading them again); the instance is `$DAGSTER_HOME`'s, the warehouse the
backend the environment selects.
"""

from __future__ import annotations

import json
import sys

import dagster as dg

from ml_assets.core.partitions import daily_partitions
from ml_assets.core.spec import load_spec
from ml_assets.definitions import build_defs
from ml_assets_tests.conftest import FLIGHTS_SPEC

JOB = "flights_ducklake_layers"
LAYERS = [dg.AssetKey(["flights", k]) for k in ("raw", "validated", "quarantine")]
CHECKS = [
    dg.AssetCheckKey(LAYERS[0], "source_rows_accounted"),
    dg.AssetCheckKey(LAYERS[1], "row_conservation"),
]
EXECUTOR = dg.multiprocess_executor.configured(
    {
        "max_concurrent": 2,
        "start_method": {"forkserver": {"preload_modules": ["ml_assets.definitions"]}},
    }
)


def layers_job() -> dg.JobDefinition:
    spec = load_spec(FLIGHTS_SPEC)
    selection = dg.AssetSelection.assets(*LAYERS).without_checks() | dg.AssetSelection.checks(
        *CHECKS
    )
    job = dg.define_asset_job(
        JOB, selection=selection, partitions_def=daily_partitions(spec), executor_def=EXECUTOR
    )
    defs = dg.Definitions.merge(build_defs([spec]), dg.Definitions(jobs=[job]))
    return defs.resolve_job_def(JOB)


def main(day: str) -> None:
    with dg.DagsterInstance.get() as instance:
        result = dg.execute_job(
            dg.reconstructable(layers_job),
            instance=instance,
            tags={"dagster/partition": day},
            raise_on_error=False,
        )
        print(json.dumps({"run_id": result.run_id, "success": result.success}))


if __name__ == "__main__":
    main(sys.argv[1])
