"""Turn a DatasetSpec into that dataset's assets, checks, jobs and sensors."""

from __future__ import annotations

import dagster as dg

from ml_assets.automation.landing import build_landing_sensor
from ml_assets.layers.features.assets import build_features_assets
from ml_assets.layers.features.checks import build_features_checks
from ml_assets.layers.ingest.assets import build_raw_asset
from ml_assets.layers.ingest.checks import build_raw_checks
from ml_assets.layers.validate.assets import build_validate_assets
from ml_assets.layers.validate.checks import build_validate_checks
from ml_assets.specs import DatasetSpec


def daily_layers_job_name(spec: DatasetSpec) -> str:
    return f"{spec.name}__daily_layers"


def build_dataset_defs(spec: DatasetSpec) -> dg.Definitions:
    """Everything Dagster knows about one dataset, generated from its spec alone."""
    assets = [build_raw_asset(spec), build_validate_assets(spec)]
    checks = [*build_raw_checks(spec), *build_validate_checks(spec)]
    if spec.features:
        assets += build_features_assets(spec)
        checks += build_features_checks(spec)
    daily_layers = dg.define_asset_job(
        daily_layers_job_name(spec),
        selection=dg.AssetSelection.groups(spec.name) & dg.AssetSelection.assets(*assets),
        description=f"raw -> validated/quarantine (-> features) for `{spec.name}`, with checks.",
    )
    return dg.Definitions(
        assets=assets,
        asset_checks=checks,
        jobs=[daily_layers],
        sensors=[build_landing_sensor(spec, daily_layers.name)],
    )
