"""The one entry point: every dataset component under `ml_assets/defs/`, plus shared resources.

`dagster dev -w workspace.yaml`, `dg dev`, `dg check defs` and `make run` all load this module.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import dagster as dg
from dagster_shared.utils.warnings import BetaWarning

from ml_assets import event_log_batches, settings, sqlite_durability
from ml_assets.automation.alerts import AlertWebhook
from ml_assets.automation.reaper import build_reaper_sensor
from ml_assets.core.spec import DatasetSpec, load_specs
from ml_assets.factory import build_dataset_defs
from ml_assets.resources.mlflow_tracking import MlflowTracking
from ml_assets.resources.warehouse import warehouse_pool, warehouse_resource

# Every process that loads the code location (run workers, `make run`) writes the instance.
sqlite_durability.install()
event_log_batches.install()


def ignore_loader_warnings() -> None:
    """Dagster 1.13.27's defs-folder loader re-wraps each `@asset_check` (to add the defs.yaml
    path to its metadata) and converts it back with the beta `execution_type` parameter, which
    warns on every load. Nothing in this project uses that parameter; the warning is Dagster's."""
    warnings.filterwarnings("ignore", message="Parameter `execution_type`", category=BetaWarning)


def run_executor() -> dg.ExecutorDefinition:
    """Dagster's default executor (`multiprocess` or `in_process`, chosen in run config), with
    the default chosen by the warehouse: `in_process` on the embedded file, whose single writer (a
    pool of 1) runs the steps one at a time anyway, so a process per step only loads the code
    again for every step: under `dagster dev` a daily partition's ~15 steps took 15-20 s each to
    start on 2 cores, for steps that ran in 0.1-3 s. On DuckLake, `multiprocess`: steps run in
    parallel step processes."""
    default = "in_process" if warehouse_pool() else "multiprocess"
    return dg.multi_or_in_process_executor.configured(
        lambda config: config or {default: {}},
        name="multi_or_in_process_executor",
        config_schema=dg.Field(dg.Permissive(), default_value={default: {}}),
    )


def shared_resources(warehouse_path: str | None = None) -> dg.Definitions:
    """The resources every dataset's assets bind to, built when definitions load, with the
    run executor and the one project-wide sensor (the dead-run reaper)."""
    return dg.Definitions(
        executor=run_executor(),
        sensors=[build_reaper_sensor()],
        resources={
            "warehouse": warehouse_resource(warehouse_path),
            "mlflow": MlflowTracking(),
            # Slack-format webhook for failed checks and runs; read when a tick posts.
            "alert_webhook": AlertWebhook(url=dg.EnvVar("ML_ASSETS_ALERT_WEBHOOK_URL")),
        },
    )


def build_defs(specs: Sequence[DatasetSpec], warehouse_path: str | None = None) -> dg.Definitions:
    """Definitions for the given specs; tests call this with their own specs and a temp warehouse."""
    return dg.Definitions.merge(
        *(build_dataset_defs(spec) for spec in specs), shared_resources(warehouse_path)
    )


def load_definitions() -> dg.Definitions:
    """The project's definitions: the defs folder's components, or the `ML_ASSETS_SPECS` folder."""
    ignore_loader_warnings()
    override = settings.specs_override()
    if override is not None:
        return build_defs(load_specs(override))
    return dg.Definitions.merge(
        dg.load_from_defs_folder(path_within_project=settings.defs_dir()), shared_resources()
    )


@dg.definitions
def defs() -> dg.Definitions:
    return load_definitions()
