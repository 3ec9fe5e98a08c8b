"""Turn a DatasetSpec into that dataset's assets, checks, jobs, schedules and sensors.

The data layers (raw -> validated -> features) come from the spec alone; the model layers
(training set -> candidate -> evaluation -> champion -> card, and predictions -> drift /
performance) are added when the spec configures them (see `DatasetSpec.has_model_layers`).
"""

from __future__ import annotations

import dagster as dg

from ml_assets.automation.alerts import build_alert_sensor
from ml_assets.automation.landing import build_landing_sensor
from ml_assets.automation.retrain import build_retrain_sensor
from ml_assets.automation.shadow_gate import build_shadow_gate_sensor
from ml_assets.core.spec import DatasetSpec
from ml_assets.layers.evaluate.assets import build_evaluate_assets
from ml_assets.layers.features.assets import build_features_assets
from ml_assets.layers.features.checks import build_features_checks
from ml_assets.layers.ingest.assets import build_raw_asset
from ml_assets.layers.ingest.checks import build_raw_checks
from ml_assets.layers.monitor.assets import build_monitor_assets
from ml_assets.layers.monitor.online_assets import build_online_monitor_assets
from ml_assets.layers.online.assets import build_online_assets
from ml_assets.layers.promote.assets import build_promote_assets
from ml_assets.layers.requests.assets import build_request_assets
from ml_assets.layers.score.assets import build_score_assets, build_score_checks
from ml_assets.layers.train.assets import build_train_assets
from ml_assets.layers.train.checks import build_train_checks
from ml_assets.layers.validate.assets import build_validate_assets
from ml_assets.layers.validate.checks import build_validate_checks
from ml_assets.streaming.sensor import build_stream_sensor

# New days flow on by themselves: once an upstream partition updates (and its blocking checks
# passed), the same partition downstream is requested. Only the latest day is eligible, so this
# never starts a backfill of history.
EAGER = dg.AutomationCondition.eager()


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
    names = spec.names
    raw = [build_raw_asset(spec)]
    downstream = [build_validate_assets(spec)]
    checks = [*build_raw_checks(spec), *build_validate_checks(spec)]
    if spec.features is not None:
        downstream += build_features_assets(spec)
        checks += build_features_checks(spec)
    daily = raw + _eager(downstream)
    daily_job = _job(
        names.job("daily_layers"),
        daily,
        f"raw -> validated/quarantine (-> features) for `{spec.name}`, with checks.",
    )
    jobs = [daily_job]
    # A dataset's new rows arrive as landed files or as messages on its Kafka topic.
    arrivals = (
        build_stream_sensor(spec, daily_job.name)
        if spec.source.kafka is not None
        else build_landing_sensor(spec, daily_job.name)
    )
    sensors = [arrivals, build_alert_sensor(spec)]
    schedules = [
        dg.build_schedule_from_partitioned_job(
            daily_job,
            name=names.schedule("daily_ingest"),
            hour_of_day=2,
            description=f"Ingests each new day of `{spec.name}` after it closes.",
        )
    ]
    assets = list(daily)
    if spec.features is not None:
        # Unpartitioned: each run publishes one snapshot as of the newest features day.
        online = _eager(build_online_assets(spec))
        jobs.append(
            _job(
                names.job("online"),
                online,
                "online feature snapshot (data/online/), published if training/serving parity holds.",
            )
        )
        assets += online
    if spec.has_model_layers:
        training = (
            build_train_assets(spec) + build_evaluate_assets(spec) + build_promote_assets(spec)
        )
        monitoring = _eager(build_score_assets(spec) + build_monitor_assets(spec))
        checks += build_train_checks(spec) + build_score_checks(spec)
        train_job = _job(
            names.job("train"),
            training,
            "training set -> candidate -> evaluation (gates) -> champion -> model card.",
        )
        jobs += [
            train_job,
            _job(names.job("monitor"), monitoring, "predictions -> drift report, performance."),
            dg.define_asset_job(
                names.job("rollback"),
                selection=dg.AssetSelection.assets(
                    names.key("champion_model"), names.key("model_card")
                ),
                description=(
                    "Point `champion` back at an earlier version (config rollback_to: a version "
                    "or 'previous'; reason), audited, and regenerate the card."
                ),
            ),
        ]
        sensors.append(build_retrain_sensor(spec, train_job.name, names.op("training_set")))
        if spec.evaluation.shadow is not None:
            sensors.append(build_shadow_gate_sensor(spec))
        # The service's request log, ingested on demand (the log has no event to be eager on).
        online_log = build_request_assets(spec) + build_online_monitor_assets(spec)
        jobs.append(
            _job(
                names.job("online_log"),
                online_log,
                "request log -> online summary, online performance.",
            )
        )
        assets += training + monitoring + online_log
    return dg.Definitions(
        assets=assets, asset_checks=checks, jobs=jobs, sensors=sensors, schedules=schedules
    )
