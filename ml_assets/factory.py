"""Turn a DatasetSpec into that dataset's assets, checks, jobs, schedules and sensors.

The data layers (raw -> validated -> features) come from the spec alone; the model layers
(training set -> candidate -> evaluation -> champion -> card, and predictions -> drift /
performance) are added when the spec has `training`, `evaluation` and `monitoring` sections.
"""

from __future__ import annotations

import dagster as dg

from ml_assets.automation.landing import build_landing_sensor
from ml_assets.automation.retrain import build_retrain_sensor
from ml_assets.layers.evaluate.assets import build_evaluate_assets
from ml_assets.layers.features.assets import build_features_assets
from ml_assets.layers.features.checks import build_features_checks
from ml_assets.layers.ingest.assets import build_raw_asset
from ml_assets.layers.ingest.checks import build_raw_checks
from ml_assets.layers.monitor.assets import build_monitor_assets
from ml_assets.layers.promote.assets import build_promote_assets, champion_key, model_card_key
from ml_assets.layers.score.assets import build_score_assets, build_score_checks
from ml_assets.layers.train.assets import build_train_assets
from ml_assets.layers.train.checks import build_train_checks
from ml_assets.layers.validate.assets import build_validate_assets
from ml_assets.layers.validate.checks import build_validate_checks
from ml_assets.specs import DatasetSpec

# New days flow on by themselves: once an upstream partition updates (and its blocking checks
# passed), the same partition downstream is requested. Only the latest day is eligible, so this
# never starts a backfill of history.
EAGER = dg.AutomationCondition.eager()


def daily_layers_job_name(spec: DatasetSpec) -> str:
    return f"{spec.name}__daily_layers"


def train_job_name(spec: DatasetSpec) -> str:
    return f"{spec.name}__train"


def monitor_job_name(spec: DatasetSpec) -> str:
    return f"{spec.name}__monitor"


def rollback_job_name(spec: DatasetSpec) -> str:
    return f"{spec.name}__rollback"


def has_model_layers(spec: DatasetSpec) -> bool:
    return bool(spec.features and spec.training and spec.evaluation and spec.monitoring)


def _eager(assets: list[dg.AssetsDefinition]) -> list[dg.AssetsDefinition]:
    return [
        a.map_asset_specs(lambda s: s.replace_attributes(automation_condition=EAGER))
        for a in assets
    ]


def _job(
    name: str, assets: list[dg.AssetsDefinition], description: str
) -> dg.UnresolvedAssetJobDefinition:
    return dg.define_asset_job(
        name, selection=dg.AssetSelection.assets(*assets), description=description
    )


def build_dataset_defs(spec: DatasetSpec) -> dg.Definitions:
    """Everything Dagster knows about one dataset, generated from its spec alone."""
    raw = [build_raw_asset(spec)]
    downstream = [build_validate_assets(spec)]
    checks = [*build_raw_checks(spec), *build_validate_checks(spec)]
    if spec.features:
        downstream += build_features_assets(spec)
        checks += build_features_checks(spec)
    daily = raw + _eager(downstream)
    daily_job = _job(
        daily_layers_job_name(spec),
        daily,
        f"raw -> validated/quarantine (-> features) for `{spec.name}`, with checks.",
    )
    jobs = [daily_job]
    sensors = [build_landing_sensor(spec, daily_job.name)]
    schedules = [
        dg.build_schedule_from_partitioned_job(
            daily_job,
            name=f"{spec.name}__daily_ingest",
            hour_of_day=2,
            description=f"Ingests each new day of `{spec.name}` after it closes.",
        )
    ]
    assets = list(daily)
    if has_model_layers(spec):
        training = (
            build_train_assets(spec) + build_evaluate_assets(spec) + build_promote_assets(spec)
        )
        monitoring = _eager(build_score_assets(spec) + build_monitor_assets(spec))
        checks += build_train_checks(spec) + build_score_checks(spec)
        train_job = _job(
            train_job_name(spec),
            training,
            "training set -> candidate -> evaluation (gates) -> champion -> model card.",
        )
        jobs += [
            train_job,
            _job(monitor_job_name(spec), monitoring, "predictions -> drift report, performance."),
            dg.define_asset_job(
                rollback_job_name(spec),
                selection=dg.AssetSelection.assets(champion_key(spec), model_card_key(spec)),
                description=(
                    "Point `champion` back at an earlier version (config rollback_to: a version "
                    "or 'previous'; reason), audited, and regenerate the card."
                ),
            ),
        ]
        sensors.append(
            build_retrain_sensor(spec, train_job.name, "__".join([spec.name, "training_set"]))
        )
        assets += training + monitoring
    return dg.Definitions(
        assets=assets, asset_checks=checks, jobs=jobs, sensors=sensors, schedules=schedules
    )
